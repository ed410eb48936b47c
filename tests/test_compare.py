"""compare(): the verdict on synthetic runs with a known difference and a known spread."""
from __future__ import annotations

import numpy as np
import pytest

from mmslib import compare as cmp
from runfactory import perf_run

N = 4000


def _lognormal(seed, shift=0.0):
    rng = np.random.default_rng(seed)
    return lambda mode, q: rng.lognormal(np.log(10), 0.3, N) + shift


def test_known_shift_is_beyond_and_a_redraw_is_within(tmp_path):
    a = perf_run(tmp_path / "a", _lognormal(1), modes=("mms",), slo_p99_ms=30)
    b = perf_run(tmp_path / "b", _lognormal(2, shift=3.0), modes=("mms",), slo_p99_ms=30)
    c = perf_run(tmp_path / "c", _lognormal(3), modes=("mms",), slo_p99_ms=30)
    ab = cmp.compare(a.path, b.path).set_index("stat")
    assert ab.loc["p50", "verdict"] == "beyond run-to-run spread"
    # the true shift (3 ms) lies inside the interval, which excludes 0
    assert ab.loc["p50", "diff_lo"] < 3.0 < ab.loc["p50", "diff_hi"] and ab.loc["p50", "diff_lo"] > 0
    assert ab.loc["p50", "spread_from"] == "halves" and ab.loc["p50", "n_a"] == N
    ac = cmp.compare(a.path, c.path).set_index("stat")
    assert set(ac["verdict"]) == {"within run-to-run spread"}
    assert ac.loc["p50", "diff_lo"] < 0 < ac.loc["p50", "diff_hi"]
    # attainment of 30 ms: P(lognormal(log 10, .3) > 30) ~ 1e-4 -> both ~1; the shift costs a little
    assert ac.loc["attainment", "a"] > 0.99
    assert "p50 at mode mms, qps 25" in cmp.verdict_text(cmp.compare(a.path, b.path), "A", "B")


def test_difference_smaller_than_the_drift_is_within(tmp_path):
    # run A drifts from 10 to 14 ms between the halves of its level (spread 4 ms);
    # run B is flat at 12.5 ms: a real +2.5 ms vs A's first half, but inside the drift.
    rng = np.random.default_rng(7)
    drift = lambda m, q: np.concatenate([10 + rng.normal(0, 0.2, N // 2), 14 + rng.normal(0, 0.2, N // 2)])
    flat = lambda m, q: 14.5 + rng.normal(0, 0.2, N)
    a = perf_run(tmp_path / "a", drift, modes=("traditional",))
    b = perf_run(tmp_path / "b", flat, modes=("traditional",))
    t = cmp.compare(a.path, b.path, stats_shown=("p50",)).set_index("stat")
    assert t.loc["p50", "spread"] == pytest.approx(4.0, abs=0.3)
    assert abs(t.loc["p50", "diff"]) < t.loc["p50", "spread"]
    assert t.loc["p50", "verdict"] == "within run-to-run spread"


def test_repeats_give_the_spread_and_missing_levels_are_named(tmp_path):
    # A's two repeats sit at 10 and 15 ms (spread 5 ms); B at 12 ms: inside A's spread
    rng = np.random.default_rng(3)
    state = {"i": 0}

    def a_lat(m, q):
        state["i"] += 1
        return (10 if state["i"] % 2 else 15) + rng.normal(0, 0.1, N)
    a = perf_run(tmp_path / "a", a_lat, modes=("mms",), qps=(25.0,), repeats=2)
    b = perf_run(tmp_path / "b", lambda m, q: 12 + rng.normal(0, 0.1, N), modes=("mms",), qps=(25.0, 50.0),
                 repeats=2)
    t = cmp.compare(a.path, b.path, stats_shown=("p50",))
    row = t[t["qps"] == 25.0].iloc[0]
    assert row["spread_from"] == "repeats" and row["spread"] == pytest.approx(5.0, abs=0.1)
    assert row["verdict"] == "within run-to-run spread" and row["n_a"] == 2 * N
    assert list(t[t["qps"] == 50.0]["verdict"]) == ["unknown (only in run B)"]


def test_newcombe_interval_by_hand():
    # Newcombe (1998), table II example: 56/70 vs 48/80 -> difference 0.2, 95% CI 0.0524 to 0.3339
    lo, hi = cmp.diff_proportions(48, 80, 56, 70)
    assert lo == pytest.approx(0.0524, abs=5e-4) and hi == pytest.approx(0.3339, abs=5e-4)
