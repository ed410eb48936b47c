"""summary.csv / summary.json: hand-computed values on synthetic runs, round trips, the gate."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mmslib import export, gate, summary
from mmslib.errors import ParamError
from mmslib.rundir import Run
from runfactory import perf_run, stress_run


def test_summary_values_by_hand(tmp_path):
    # 1..1000 ms: p50 = 500.5, p99 = 990.01 (numpy linear: index 999*0.99 = 989.01 -> 990.01), max 1000.
    # SLO 900 ms: 900 of 1000 within -> attainment 0.9 < 0.99 -> missed.
    # One request a second, each answered within 1 s: no two are ever in flight together, so every
    # request is its own busy period and the intervals are the independent-request ones.
    perf_run(tmp_path / "r", lambda m, q: np.arange(1, 1001), qps=(1.0,), modes=("mms",), slo_p99_ms=900)
    t = export.write_run_summary(tmp_path / "r")
    row = t.iloc[0]
    assert (row["mode"], row["qps"], row["n"], row["errors"]) == ("mms", 1.0, 1000, 0)
    assert row["p50"] == pytest.approx(500.5) and row["p99"] == pytest.approx(990.01) and row["max"] == 1000
    # 95% order-statistics interval of the median of n=1000: ranks 469 and 532 (standard tables, e.g. Conover)
    assert row["p50_lo"] == 469 and row["p50_hi"] == 532
    assert row["attainment"] == pytest.approx(0.9) and not row["slo_met"] and row["valid"]
    assert row["attainment_lo"] < 0.9 < row["attainment_hi"] < 0.99
    # same SLO, looser target: met
    t2 = Run.load(tmp_path / "r").summarize(slo_ms=900, slo_target=0.85)
    assert bool(t2["slo_met"].iloc[0])


def test_errors_count_as_misses_and_invalid_levels(tmp_path):
    perf_run(tmp_path / "r", lambda m, q: np.full(200, 5.0), modes=("traditional",), errors=10, dropped=50)
    t = Run.load(tmp_path / "r").summarize()
    row = t.iloc[0]
    # 50 dropped of 255 scheduled (205 sent, 5 of them warm-up): the measured window's share of the drops,
    # 200 * 50 / 205 = 48.8 -> 49 requests never answered, count as misses: 190 / (200 + 49)
    assert row["errors"] == 10 and row["n_ok"] == 190 and row["attainment"] == pytest.approx(190 / 249)
    assert not row["valid"] and "dropped" in row["invalid_reason"] and not row["slo_met"]


def test_exports_round_trip(tmp_path):
    perf_run(tmp_path / "r", lambda m, q: np.linspace(1, 50, 500) * (2 if m == "mms" else 1), qps=(10.0, 20.0))
    t = export.write_run_summary(tmp_path / "r", percentiles="50,99.9,max")
    assert {"p50", "p99.9", "p99.9_lo", "max"} <= set(t.columns) and "p90" not in t.columns
    csv = pd.read_csv(tmp_path / "r" / "summary.csv")
    back, ctx = export.read_table(tmp_path / "r" / "summary.json")
    assert len(csv) == len(back) == len(t) == 4
    num = ["qps", "n", "p50", "p50_lo", "p50_hi", "p99.9", "max", "attainment"]
    np.testing.assert_allclose(csv[num].to_numpy(float), t[num].to_numpy(float), equal_nan=True)
    np.testing.assert_allclose(back[num].to_numpy(float), t[num].to_numpy(float), equal_nan=True)
    assert list(back.columns) == list(t.columns) == list(csv.columns)
    assert ctx["format_version"] == 2 and ctx["by"] == ["mode", "qps", "repeat"] and ctx["slo_ms"] == 100.0
    assert ctx["percentiles"] == [50.0, 99.9, "max"] and ctx["run_id"] == Run.load(tmp_path / "r").run_id
    doc = json.loads((tmp_path / "r" / "summary.json").read_text())  # strict JSON: no NaN
    assert "NaN" not in (tmp_path / "r" / "summary.json").read_text() and doc["rows"][0]["mode"] == "mms"
    # Run.summary reads the saved file
    pd.testing.assert_frame_equal(Run.load(tmp_path / "r").summary, back)


def test_stress_summary_keeps_the_experiments_own_facts(tmp_path):
    stress_run(tmp_path / "s", seconds=(1.0, 2.0, 3.0, 4.0))
    t = export.write_run_summary(tmp_path / "s")
    assert list(t["mode"]) == ["mms", "traditional"] and list(t["n"]) == [4, 4]
    assert list(t["p50"]) == [2.5, 2.5] and list(t["stop_reason"]) == ["target reached"] * 2
    doc = json.loads((tmp_path / "s" / "summary.json").read_text())
    assert doc["modes"][0]["models_deployed"] == 4  # the stress experiment's own key survives (resume reads it)


def test_percentiles_parameter():
    assert summary.parse_percentiles("50,90,95,99,max") == (50.0, 90.0, 95.0, 99.0, "max")
    assert summary.parse_percentiles("[50, 99.99]") == (50.0, 99.99)
    assert summary.parse_percentiles("p50 p99 100") == (50.0, 99.0, "max")
    for bad in ("0", "101", "fast", "[]"):
        with pytest.raises(ParamError, match="percentiles"):
            summary.parse_percentiles(bad)


def test_spectrum_reaches_p9999(tmp_path):
    x = np.arange(1, 100_001, dtype=float)
    s = summary.spectrum(x)
    top = s.set_index("percentile")
    assert top.loc[99.99, "value"] == pytest.approx(np.percentile(x, 99.99))
    assert top.loc[100.0, "value"] == 100_000 and top.loc[99.0, "lo"] < top.loc[99.0, "value"] < top.loc[99.0, "hi"]


def test_gate_function(tmp_path):
    perf_run(tmp_path / "r", lambda m, q: np.arange(1, 1001) if q == 50 else np.full(1000, 3.0),
             qps=(25.0, 50.0), modes=("mms",), slo_p99_ms=100)
    export.write_run_summary(tmp_path / "r")
    gate.enforce(tmp_path / "r", False)
    gate.enforce(tmp_path / "r", "25")  # the 25 QPS level met the SLO
    with pytest.raises(gate.SLOMissed, match=r"mode=mms, qps=50, repeat=0: 10.00% of requests within 100 ms "
                                             r"\(95% interval up to [0-9.]+%\) < target 99.00%") as e:
        gate.enforce(tmp_path / "r", "true")
    assert list(e.value.missed["qps"]) == [50.0]
    gate_meta = Run.load(tmp_path / "r").meta["gate"]  # the verdict is kept with the run
    assert gate_meta["passed"] is False and gate_meta["missed"] == [{"mode": "mms", "qps": 50.0, "repeat": 0}]
    with pytest.raises(gate.SLOMissed, match="qps=75: not measured"):
        gate.enforce(tmp_path / "r", "25,75")
    with pytest.raises(ParamError, match="fail_on_slo"):
        gate.parse("sometimes")


def test_another_experiment_is_summarized_generically(tmp_path):
    """An experiment mmslib.summary knows nothing of (levels by rate and CV, latency from the
    scheduled time, each row carrying its level's verdict) gets its own keys and value."""
    from mmslib.rundir import RunDir
    rd = RunDir(tmp_path / "t", "another", {"slo_ms": 50.0, "modes": ["mms"]}, "k")
    rows = []
    for cv, late in ((1.0, 0.0), (4.0, 100.0)):
        n = 100
        rows.append(pd.DataFrame({"t_unix": np.arange(n), "latency_ms": np.full(n, 10.0),
                                  "latency_sched_ms": np.full(n, 10.0) + np.where(np.arange(n) < 30, late, 0),
                                  "ok": True, "warmup": False, "models": 5, "mode": "mms", "rate": 20.0, "cv": cv,
                                  "repeat": 0, "search": False, "valid": cv == 1.0}))
    for i, r in enumerate(rows):
        rd.save(f"requests/l{i}", r)
    rd.finish()
    t = export.write_run_summary(rd)
    ctx = export.read_table(tmp_path / "t" / "summary.json")[1]
    assert ctx["by"] == ["models", "mode", "rate", "cv", "search", "repeat"] and ctx["value"] == "latency_sched_ms"
    t = t.set_index("cv")
    # cv 1: all on time -> attainment 1, but 100 requests cannot show 99% (Clopper-Pearson's lower end
    # 0.964): not enough data; cv 4: 30 of 100 late by 100 ms -> 0.7, and marked not valid
    assert t.loc[1.0, "attainment"] == 1.0 and bool(t.loc[1.0, "valid"]) and not bool(t.loc[1.0, "slo_met"])
    assert t.loc[1.0, "slo_decision"] == "not enough data" and t.loc[4.0, "slo_decision"] == "not valid"
    assert t.loc[4.0, "attainment"] == pytest.approx(0.7) and not t.loc[4.0, "valid"]
    with pytest.raises(gate.SLOMissed, match="cv=4"):
        gate.enforce(tmp_path / "t", True)
