"""The simulator asked about other families (#23: "the simulator draws load times from these"):
a synthetic calibration run and hand-made per-model loads, expected values reasoned by hand."""
from __future__ import annotations

import numpy as np
import pytest
import pandas as pd

from mmslib import report, siminputs
from mmslib.report.families import PER_MODEL_COLUMNS
from mmslib.rundir import RunDir
from mmslib.simulate import Constant, Empirical


def _calibration_run(path, cluster_hosts=3):
    p = {"runtime": "kserve", "runtimes": ["kserve"], "workload": "simple_string", "backend": "local",
         "slo_ms": 100.0, "models": 16, "seed": 0, "cluster_models": [200], "cluster_host_memory": "1Gi",
         "cluster_alpha": 1.0, "cluster_qps": 50.0, "cluster_slo_ms": 100.0, "cluster_duration_s": 60.0}
    rd = RunDir(path, "coldstart", p, "k-cal")
    rd.save("lazy_cells", pd.DataFrame([{"name": "cal", "role": "calibration"}]))
    # hits 2 ms, clients saw 30 ms per cold start, the server's own load timer 10 ms: a 20 ms hand-off
    rd.save(siminputs.TABLE, siminputs.to_frame(Empirical([0.002] * 50), Empirical([0.030] * 50), Constant(0.002),
                                                [0.010] * 50))
    rd.save("cluster", pd.DataFrame([{"models": 200, "host_memory": "1Gi", "models_per_host": 1024,
                                      "hosts_needed": cluster_hosts, "attainment": 0.995, "note": ""}]))
    rd.finish("complete")
    return rd


def _loads(runtime, family, n, load_ms, pss=np.nan, declared=1.0, size=2**20, source="stress mms"):
    return [{"run": "k-s", "experiment": source.split()[0], "source": source, "runtime": runtime, "workload": family,
             "family": family, "source_model": "", "model": f"m{i}", "artifact_bytes": float(size),
             "load_ms": load_ms, "unload_ms": np.nan, "pss_added_mib": pss, "first": False,
             "host_memory_mib": 1024.0, "declared_mib": declared} for i in range(n)]


def test_each_family_asked_with_its_own_loads_and_memory(tmp_path):
    _calibration_run(tmp_path / "cal")
    pm = pd.DataFrame(
        _loads("kserve", "fast", 30, 1.0, pss=4.0)              # 4 MiB each: 256 per 1 GiB host, all 200 fit on one
        + _loads("kserve", "slow", 30, 2000.0, pss=4.0)         # the same, but a 2 s load
        + _loads("mlserver", "big", 25, 1.0, declared=300.0, source="performance mms")   # 3 per host (declared)
        + _loads("triton", "rare", 10, 1.0, pss=4.0, source="coldstart load/unload")     # too few loads
        + _loads("kserve", "fast", 5, 9e9, pss=4.0, source="stress traditional")         # a server start: not a load
        + _loads("kserve", "both", 25, 500.0, pss=4.0)                                   # overlapped loads ...
        + _loads("kserve", "both", 20, 2.0, pss=4.0, source="coldstart load/unload"),   # ... and one at a time
        columns=PER_MODEL_COLUMNS)
    fs = report.family_simulation(report.collect(tmp_path), pm)
    t = fs.table.set_index("family")
    own = t.loc["simple_string (run's own)"]
    assert own["hosts_needed"] == 3 and own["validation"] == "not validated under load"   # the run's own answer
    assert t["overhead_ms"].tolist() == pytest.approx([20.0] * 6)   # 30 ms seen - 10 ms server-side
    assert t.loc["fast", "loads"] == 30 and t.loc["fast", "load_ms_p50"] == 1.0   # traditional starts left out
    assert t.loc["fast", "memory_from"] == "measured PSS" and t.loc["fast", "models_per_host"] == 256
    # every model fits one host and a cold start (1 + 20 ms, one load at a time) is far within 100 ms: one host
    assert t.loc["fast", "hosts_needed"] == 1 and t.loc["fast", "attainment"] >= 0.99
    # a first request after the warm-up waits >= 2 s, and ~70 of the ~2,700 measured requests are first
    # requests to a model whatever the hosts: 99% is out of reach
    assert pd.isna(t.loc["slow", "hosts_needed"]) and t.loc["slow", "note"].startswith("not reachable"), t.loc["slow"]
    assert t.loc["big", "memory_from"] == "declared" and t.loc["big", "models_per_host"] == 3   # 1024 // 300
    assert t.loc["rare", "note"] == "not enough data: 10 loads (< 20)" and pd.isna(t.loc["rare", "hosts_needed"])
    assert t.loc["fast", "validation"].startswith("not validated for this family")
    # coldstart's cycles (one load at a time, as a lazy host) preferred when there are enough of them
    assert t.loc["both", "load_source"] == "coldstart load/unload" and t.loc["both", "loads"] == 20
    assert t.loc["both", "load_ms_p50"] == 2.0 and t.loc["fast", "load_source"] == "stress mms"
    assert "fast 1 MiB on kserve (load p50 1 ms): **1 host**;" in fs.text, fs.text
    assert "not validated for these families" in fs.text and "**cal**" in fs.text and "simple_string: 3 hosts" in fs.text


def test_without_a_calibrated_coldstart_run_it_says_so(tmp_path):
    _calibration_run(tmp_path / "cal")
    (tmp_path / "cal" / f"{siminputs.TABLE}.parquet").unlink()
    fs = report.family_simulation(report.collect(tmp_path), pd.DataFrame(columns=PER_MODEL_COLUMNS))
    assert not len(fs.table) and "No coldstart run with lazy-loading cells" in fs.text


def test_inputs_round_trip_and_overhead_never_negative():
    df = siminputs.to_frame(Empirical([0.004, 0.006]), Empirical([0.050, 0.070]), Constant(0.003), [0.1, 0.2])
    assert sorted(df["quantity"].unique()) == ["load_penalty", "occupancy", "server_load", "service"]
    got = siminputs.from_frame(df)
    assert list(got.service.values) == [0.004, 0.006] and got.occupancy.mean == 0.003
    assert got.overhead_s == 0.0        # the server's loads (150 ms) exceed what clients saw (60 ms): no hand-off
    no_server = siminputs.from_frame(df[df["quantity"] != "server_load"])
    assert no_server.server_load is None and no_server.overhead_s == 0.0
