"""compare(): verdicts from per-repeat statistics, on synthetic runs with a known change (or none)."""
from __future__ import annotations

import numpy as np
import pytest

from mmslib import compare as cmp
from runfactory import perf_run

N = 2000


def _runs(seed, slowdown=1.0, run_sd=0.05):
    """Latencies per repeat: lognormal around 10 ms times a machine factor drawn per repeat
    (the run-to-run variation), times ``slowdown``."""
    rng = np.random.default_rng(seed)
    state = {}

    def lat(mode, q):
        key = (mode, q)
        state[key] = state.get(key, 0) + 1
        machine = np.exp(rng.normal(0, run_sd))
        return rng.lognormal(np.log(10), 0.3, N) * machine * slowdown
    return lat


def test_one_repeat_is_unknown_even_for_a_clear_shift(tmp_path):
    a = perf_run(tmp_path / "a", _runs(1), modes=("mms",), slo_p99_ms=30)
    b = perf_run(tmp_path / "b", _runs(2, slowdown=1.5), modes=("mms",), slo_p99_ms=30)
    t = cmp.compare(a.path, b.path)
    assert set(t["verdict"]) == {cmp.NEEDS_REPEATS}
    assert t.set_index("stat").loc["p50", "diff"] > 3  # the difference is shown, the verdict withheld
    assert "fewer than 3 repeats" in cmp.verdict_text(t, "A", "B")
    assert not len(cmp.worse(t))


def test_planted_20_percent_regression_with_5_repeats_is_beyond(tmp_path):
    a = perf_run(tmp_path / "a", _runs(3), modes=("mms",), slo_p99_ms=30, repeats=5)
    b = perf_run(tmp_path / "b", _runs(4, slowdown=1.2), modes=("mms",), slo_p99_ms=30, repeats=5)
    t = cmp.compare(a.path, b.path).set_index("stat")
    assert t.loc["p50", "verdict"] == cmp.BEYOND and t.loc["p99", "verdict"] == cmp.BEYOND
    assert t.loc["p50", "repeats_a"] == 5 and t.loc["p50", "diff_lo"] > 0
    assert t.loc["p50", "p_adjusted"] < 0.05
    assert set(cmp.worse(t.reset_index())["stat"]) >= {"p50", "p99"}
    assert "p50 at mode mms, qps 25" in cmp.verdict_text(t.reset_index(), "A", "B")


def test_no_change_with_5_repeats_is_within(tmp_path):
    a = perf_run(tmp_path / "a", _runs(5), modes=("mms",), slo_p99_ms=30, repeats=5)
    b = perf_run(tmp_path / "b", _runs(6), modes=("mms",), slo_p99_ms=30, repeats=5)
    t = cmp.compare(a.path, b.path)
    assert set(t["verdict"]) == {cmp.WITHIN}
    assert "No statistic of B differs" in cmp.verdict_text(t, "A", "B")


def test_missing_levels_and_nan_statistics_are_unknown(tmp_path):
    a = perf_run(tmp_path / "a", _runs(7), qps=(25.0,), modes=("mms",), repeats=3)
    b = perf_run(tmp_path / "b", _runs(8), qps=(25.0, 50.0), modes=("mms",), repeats=3)
    t = cmp.compare(a.path, b.path, stats_shown=("p50",))
    assert list(t[t["qps"] == 50.0]["verdict"]) == ["unknown (only in run B)"]
    # a NaN statistic (no ok request in a repeat) is unknown, never counted as no spread
    v = cmp.repeat_verdicts([[1.0, 2.0, np.nan]], [[1.0, 2.0, 3.0]])
    assert v["verdict"].iloc[0].startswith("unknown") and np.isnan(v["p_adjusted"].iloc[0])


def test_welch_and_holm_by_hand():
    # Welch: a = (1, 2, 3), b = (4, 5, 6): diff 3, se = sqrt(1/3 + 1/3), df = 4, t = 3.674, p = 0.0213
    d, lo, hi, p = cmp.welch([1, 2, 3], [4, 5, 6])
    assert d == 3 and p == pytest.approx(0.02131, abs=1e-4)
    assert (lo, hi) == pytest.approx((3 - 2.7764 * 0.8165, 3 + 2.7764 * 0.8165), abs=1e-3)
    # Holm: p = (0.01, 0.04, 0.03) -> sorted 0.01*3, 0.03*2, 0.04*1 -> monotone (0.03, 0.06, 0.06)
    assert cmp.holm([0.01, 0.04, 0.03, np.nan]).tolist()[:3] == pytest.approx([0.03, 0.06, 0.06])
    # the same p-value alone would pass, in a family of three it does not
    v = cmp.repeat_verdicts([[1, 2, 3]] * 3, [[4, 5, 6], [1.1, 2, 3], [1, 2.1, 3]])
    assert v["verdict"].iloc[0] == cmp.WITHIN and v["p_value"].iloc[0] < 0.05


def test_newcombe_interval_by_hand():
    # Newcombe (1998), table II example: 56/70 vs 48/80 -> difference 0.2, 95% CI 0.0524 to 0.3339
    lo, hi = cmp.diff_proportions(48, 80, 56, 70)
    assert lo == pytest.approx(0.0524, abs=5e-4) and hi == pytest.approx(0.3339, abs=5e-4)
