"""Tests for mmslib.stats: CIs with known truth, summarize against numpy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binom

from mmslib import stats as S
from mmslib.seed_layout import seed_table

T0 = 1_700_000_000.0


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def level_records(mode, qps, repeat, latencies, *, duration_s=None, warmup_s=0.0,
                  ok=None, warm_latency=1000.0, start=T0):
    """Requests at exactly ``qps`` per second: ``warmup_s`` of warm-up rows
    (latency ``warm_latency``) then one measured row per latency given."""
    latencies = np.asarray(latencies, float)
    n_w = int(round(warmup_s * qps))
    n = latencies.size
    t = start + np.arange(n_w + n) / qps
    lat = np.concatenate([np.full(n_w, warm_latency), latencies])
    okv = np.ones(n_w + n, bool)
    if ok is not None:
        okv[n_w:] = ok
    return pd.DataFrame({
        "t_unix": t, "latency_ms": lat,
        "status": np.where(okv, 200, 503), "ok": okv,
        "model": [f"m{i % 5}" for i in range(n_w + n)], "endpoint": "http://x",
        "warmup": np.arange(n_w + n) < n_w,
        "mode": mode, "qps": float(qps), "repeat": repeat,
    })


def level_row(mode, qps, repeat, duration_s, iterations=None, dropped=0, target=None,
              warmup_s=0.0):
    """A loadgen-style level: ``duration_s`` is the measured (post-warm-up)
    duration; k6's iterations count the whole scenario."""
    return {"mode": mode, "qps": float(qps), "repeat": repeat,
            "target_qps": float(target if target is not None else qps),
            "duration_s": float(duration_s), "warmup_s": float(warmup_s),
            "iterations": (iterations if iterations is not None
                           else int(qps * (duration_s + warmup_s))),
            "dropped_iterations": dropped}


def fake_summary(rows):
    """A summary-shaped frame from a few columns (defaults: valid, no errors)."""
    df = pd.DataFrame(rows)
    for c, v in (("valid", True), ("errors", 0), ("invalid_reason", ""), ("n", 10_000),
                 ("repeat", 0)):
        if c not in df:
            df[c] = v
    return df


# --------------------------------------------------------------------------
# quantile_ci / order statistics
# --------------------------------------------------------------------------

def test_order_ci_coverage_exponential_p99():
    rng = np.random.default_rng(12345)
    n, trials, q = 2000, 2000, 0.99
    true_p99 = np.log(100.0)  # Exp(1) quantile
    data = rng.exponential(1.0, size=(trials, n))
    lo_miss = hi_miss = 0
    for row in data:
        lo, hi = S.quantile_ci(row, q)
        lo_miss += lo > true_p99
        hi_miss += hi < true_p99
    coverage = 1 - (lo_miss + hi_miss) / trials
    # exact coverage of the rank interval for this n (discreteness: >= 0.95)
    lo_i, hi_i = S.order_ci_indices(n, q)
    exact = binom.cdf(hi_i, n, q) - binom.cdf(lo_i, n, q)
    assert 0.95 <= exact < 0.97
    se = np.sqrt(exact * (1 - exact) / trials)
    assert 0.93 <= coverage <= 0.975
    assert abs(coverage - exact) < 4 * se
    # both tails miss at most ~2.5% (equal-tailed)
    assert lo_miss / trials < 0.035 and hi_miss / trials < 0.035


def test_order_ci_coverage_median_small_n():
    rng = np.random.default_rng(7)
    data = rng.exponential(2.0, size=(1000, 101))
    true_med = 2.0 * np.log(2.0)
    hits = sum(lo <= true_med <= hi for lo, hi in (S.quantile_ci(r, 0.5) for r in data))
    assert 0.93 <= hits / 1000 <= 0.985


def test_order_ci_matches_sorted_ranks_and_nan_when_out_of_sample():
    x = np.arange(1, 2001, dtype=float)[::-1]  # unsorted on purpose
    lo, hi = S.quantile_ci(x, 0.99)
    lo_i, hi_i = S.order_ci_indices(2000, 0.99)
    assert (lo, hi) == (float(lo_i + 1), float(hi_i + 1))  # value = rank
    assert lo < np.percentile(x, 99) < hi
    # 100 values cannot bound p99 from above: P(no value above p99) = 0.99**100 = 0.37
    lo, hi = S.quantile_ci(np.arange(100.0), 0.99)
    assert np.isnan(hi) and not np.isnan(lo)
    assert all(np.isnan(S.quantile_ci([], 0.5)))
    with pytest.raises(ValueError):
        S.quantile_ci([1.0, 2.0], 1.5)
    with pytest.raises(ValueError):
        S.quantile_ci([1.0, 2.0], 0.5, method="nope")


def test_order_ci_indices_vectorised_guarantee():
    ns = np.array([400, 1000, 3000, 6000, 60_000])
    for q in (0.5, 0.9, 0.99):
        lo, hi = S.order_ci_indices(ns, q)
        ok = (lo >= 0) & (hi >= 0)
        assert ok.all()
        cov = binom.cdf(hi, ns, q) - binom.cdf(lo, ns, q)
        assert (cov >= 0.95).all() and (cov < 0.98).all()
    # the 99.9th percentile's upper bound needs > ~3,700 values
    _, hi = S.order_ci_indices(np.array([1500, 6000]), S.MAX_PROXY_Q)
    assert hi[0] == -1 and hi[1] >= 0


# --------------------------------------------------------------------------
# bootstrap
# --------------------------------------------------------------------------

def test_bootstrap_contains_truth_large_sample():
    rng = np.random.default_rng(3)
    x = rng.exponential(1.0, 100_000)
    lo, hi = S.bootstrap_ci(x, 0.99, n_boot=4000, seed=1)
    assert lo < np.log(100.0) < hi and hi - lo < 0.2
    lo, hi = S.bootstrap_ci(x, "mean", n_boot=300, seed=1)
    assert lo < 1.0 < hi and hi - lo < 0.03
    # quantile_ci(method="bootstrap") is the same thing
    assert S.quantile_ci(x, 0.99, method="bootstrap", n_boot=4000, seed=1) == \
        S.bootstrap_ci(x, 0.99, n_boot=4000, seed=1)


def test_bootstrap_fast_quantile_path_matches_resampling():
    rng = np.random.default_rng(11)
    x = rng.lognormal(1.0, 0.5, 400)
    q = 0.9
    _, _, fast = S.bootstrap_ci(x, q, n_boot=20_000, seed=2, return_samples=True)
    _, _, slow = S.bootstrap_ci(x, lambda a, axis: np.quantile(a, q, axis=axis),
                                n_boot=20_000, seed=3, return_samples=True)
    # same bootstrap distribution: compare mean, sd and tails
    assert abs(fast.mean() - slow.mean()) < 0.05 * slow.std()
    assert abs(fast.std() / slow.std() - 1) < 0.05
    for p in (2.5, 50, 97.5):
        assert abs(np.percentile(fast, p) - np.percentile(slow, p)) < 0.15 * slow.std()
    # every bootstrap value of an interpolated quantile lies within the data
    assert fast.min() >= x.min() and fast.max() <= x.max()


def test_bootstrap_of_max_is_degenerate():
    x = np.random.default_rng(0).normal(size=5000)
    lo, hi, boots = S.bootstrap_ci(x, "max", n_boot=20_000, seed=0, return_samples=True)
    # ~1 - 1/e of resamples contain the observed max: why max has no CI
    assert abs(np.mean(boots == x.max()) - (1 - np.exp(-1))) < 0.02
    assert hi == x.max()


def test_bootstrap_reproducible_and_validates():
    x = np.arange(1000.0)
    assert S.bootstrap_ci(x, "median", n_boot=200, seed=5) == \
        S.bootstrap_ci(x, "median", n_boot=200, seed=5)
    with pytest.raises(ValueError):
        S.bootstrap_ci(x, "nope")
    with pytest.raises(ValueError):
        S.bootstrap_ci(x, "mean", conf=1.0)


# --------------------------------------------------------------------------
# summarize
# --------------------------------------------------------------------------

def test_summarize_matches_numpy_excludes_warmup_counts_errors():
    rng = np.random.default_rng(1)
    lat_a = rng.lognormal(1.0, 0.5, 1500)
    ok_a = np.ones(1500, bool)
    ok_a[::100] = False  # 15 errors
    lat_a[~ok_a] = 5000.0  # slow failures: must not enter the percentiles
    lat_b = rng.exponential(3.0, 600)
    recs = pd.concat([
        level_records("mms", 25, 0, lat_a, warmup_s=4.0, ok=ok_a),
        level_records("traditional", 25, 0, lat_b, warmup_s=4.0),
    ], ignore_index=True)
    levels = pd.DataFrame([level_row("mms", 25, 0, 60.0, warmup_s=4.0),
                           level_row("traditional", 25, 0, 24.0, warmup_s=4.0)])
    s = S.summarize(recs, levels, n_servers={"traditional": 5, "mms": 1}, n_models=5)
    assert list(s.columns) == ["mode", "qps", "repeat", *S.SUMMARY_COLUMNS]
    a = s.set_index("mode").loc["mms"]
    good = lat_a[ok_a]
    assert a["n"] == 1500 and a["n_warmup"] == 100 and a["errors"] == 15
    assert a["n_lat"] == 1485 and a["error_rate"] == pytest.approx(0.01)
    assert a["mean"] == pytest.approx(good.mean())
    for name, p in (("p50", 50), ("p90", 90), ("p95", 95), ("p99", 99), ("p999", 99.9)):
        assert a[name] == pytest.approx(np.percentile(good, p), rel=1e-12)
    assert a["max"] == good.max() and a["max"] < 1000  # warm-up latency 1000 excluded
    # independent requests: the dependence-aware interval holds the order-statistics one and is
    # at most one order statistic wider on each side (batch means' B/(B-1) correction)
    lo_i, hi_i = S.quantile_ci(good, 0.99)
    srt = np.sort(good)
    assert srt[np.searchsorted(srt, lo_i) - 1] <= a["p99_lo"] <= lo_i
    assert hi_i <= a["p99_hi"] <= srt[np.searchsorted(srt, hi_i) + 1]
    assert a["max_lo"] <= S.quantile_ci(good, 0.999)[0]  # never narrower
    assert np.isnan(a["max_hi"])  # 1485 values cannot bound p99.9 from above
    # rate: 1500 requests over the 60 s measured window (warm-up not counted)
    assert a["measured_s"] == pytest.approx(60.0)
    assert a["achieved_qps"] == pytest.approx(25.0)
    assert bool(a["valid"]) and a["invalid_reason"] == ""
    assert a["qps_per_isvc"] == 25.0 and a["qps_per_model"] == 5.0
    b = s.set_index("mode").loc["traditional"]
    assert b["p99"] == pytest.approx(np.percentile(lat_b, 99))
    assert b["qps_per_isvc"] == 5.0
    assert bool(b["few_samples"]) and not bool(a["few_samples"])

    # the seed's convention: latency over every response
    s_all = S.summarize(recs, levels, latency_of="all").set_index("mode").loc["mms"]
    assert s_all["n_lat"] == 1500 and s_all["max"] == 5000.0
    assert s_all["p99"] == pytest.approx(np.percentile(lat_a, 99))


def test_summarize_validity_flags():
    lat = np.full(3000, 2.0)
    recs = pd.concat([
        level_records("mms", 50, 0, lat),                       # fine
        level_records("mms", 50, 1, lat),                       # 2% dropped
        level_records("mms", 50, 2, lat[:2700]),                # under-rate (90%)
        level_records("mms", 50, 3, lat),                       # no levels row
        level_records("mms", 50, 4, lat[:2997]),                # 99.9% of target, 0.1% dropped: still ok
        level_records("mms", 50, 6, lat[:2985]),                # 0.5% dropped: half the p99's tail, not ok
    ], ignore_index=True)
    levels = pd.DataFrame([
        level_row("mms", 50, 0, 60.0),
        level_row("mms", 50, 1, 60.0, iterations=2940, dropped=60),
        level_row("mms", 50, 2, 60.0, iterations=2700, dropped=0),
        level_row("mms", 50, 4, 60.0, iterations=2997, dropped=3),
        level_row("mms", 50, 6, 60.0, iterations=2985, dropped=15),
    ])
    s = S.summarize(recs, levels).set_index("repeat")
    assert bool(s.loc[0, "valid"]) and s.loc[0, "invalid_reason"] == ""
    assert not s.loc[1, "valid"] and "dropped 2.00%" in s.loc[1, "invalid_reason"]
    assert s.loc[1, "drop_frac"] == pytest.approx(0.02)
    assert not s.loc[2, "valid"] and "achieved 45" in s.loc[2, "invalid_reason"]
    assert s.loc[2, "achieved_qps"] == pytest.approx(45.0)
    assert not s.loc[3, "valid"] and "no generator info" in s.loc[3, "invalid_reason"]
    # without generator info the rate comes from the span of the requests
    assert s.loc[3, "achieved_qps"] == pytest.approx(50.0)
    assert bool(s.loc[4, "valid"]), s.loc[4, "invalid_reason"]
    assert not s.loc[6, "valid"] and "dropped 0.50% > 0.1%" in s.loc[6, "invalid_reason"]
    assert (s["errors"] == 0).all() and not s["few_samples"].any()
    # a level the generator ran but that left no records stays visible
    lv5 = pd.concat([levels, pd.DataFrame([level_row("mms", 50, 5, 60.0)])], ignore_index=True)
    s5 = S.summarize(recs, lv5).set_index("repeat")
    assert len(s5) == 7 and s5.loc[5, "n"] == 0 and not s5.loc[5, "valid"]
    assert s5.loc[5, "invalid_reason"] == "no records" and bool(s5.loc[5, "few_samples"])
    assert s5.drop(index=5)["valid"].tolist() == s["valid"].tolist()


def test_summarize_measured_window_overrides_and_pooling():
    lat = np.full(1000, 1.0)
    recs = pd.concat([level_records("traditional", 20, r, lat, warmup_s=10.0)
                      for r in range(2)], ignore_index=True)
    lv = pd.DataFrame([level_row("traditional", 20, r, 50.0, warmup_s=10.0)
                       for r in range(2)])
    assert lv["iterations"].tolist() == [1200, 1200]
    base = S.summarize(recs, lv)
    assert base["measured_s"].tolist() == pytest.approx([50.0, 50.0])
    assert base["valid"].all() and base["drop_frac"].tolist() == [0.0, 0.0]
    # duration_s that wrongly includes the warm-up fails loudly (rate too low)
    wrong = S.summarize(recs, lv.assign(duration_s=60.0))
    assert not wrong["valid"].any() and "achieved 16.67" in wrong.loc[0, "invalid_reason"]
    # without iterations the scheduled count is target * (warmup_s + duration_s)
    no_it = S.summarize(recs, lv.assign(iterations=np.nan, dropped_iterations=12))
    assert no_it["drop_frac"].tolist() == pytest.approx([0.01, 0.01])
    lv3 = lv.assign(measured_s=40.0)
    s3 = S.summarize(recs, lv3)
    assert s3["achieved_qps"].tolist() == pytest.approx([25.0, 25.0])
    # pooling repeats sums windows, drops and requests
    pooled = S.summarize(recs, lv, by=("mode", "qps"))
    assert len(pooled) == 1
    assert pooled.loc[0, "n"] == 2000 and pooled.loc[0, "measured_s"] == pytest.approx(100.0)
    assert pooled.loc[0, "achieved_qps"] == pytest.approx(20.0)
    # int qps in levels still matches float qps in records
    s_int = S.summarize(recs, lv.assign(qps=lv["qps"].astype(int)))
    assert s_int["valid"].all()


def test_summarize_missing_columns_and_empty_groups():
    recs = level_records("mms", 10, 0, np.ones(20))
    with pytest.raises(ValueError, match="latency_ms"):
        S.summarize(recs.drop(columns="latency_ms"))
    all_err = level_records("mms", 10, 0, np.ones(20), ok=np.zeros(20, bool))
    s = S.summarize(all_err, pd.DataFrame([level_row("mms", 10, 0, 2.0)]))
    assert s.loc[0, "errors"] == 20 and s.loc[0, "n_lat"] == 0
    assert np.isnan(s.loc[0, "p99"]) and bool(s.loc[0, "few_samples"])


# --------------------------------------------------------------------------
# seed table
# --------------------------------------------------------------------------

def _two_mode_summary(repeats=1):
    rng = np.random.default_rng(5)
    parts, rows = [], []
    for r in range(repeats):
        for q in (25, 50):
            for m in ("traditional", "mms"):
                parts.append(level_records(m, q, r, rng.lognormal(1.3, 0.2, q * 40)))
                rows.append(level_row(m, q, r, 40.0))
    recs = pd.concat(parts, ignore_index=True)
    return S.summarize(recs, pd.DataFrame(rows),
                       n_servers={"traditional": 5, "mms": 1}, n_models=5)


def test_seed_table_columns_and_arithmetic():
    s = _two_mode_summary()
    trad = seed_table(s, "traditional")
    mms = seed_table(s, "mms")
    base = ["mean", "p50", "p90", "p95", "p99", "max", "p99 95% CI", "n",
            "achieved QPS", "errors", "valid"]
    assert list(trad.columns) == ["Client side QPS", "QPS per InferenceService", *base]
    assert list(mms.columns) == ["Client side QPS", "QPS per InferenceService",
                                 "QPS per TrainedModel", *base]
    assert trad["Client side QPS"].tolist() == [25.0, 50.0]
    assert trad["QPS per InferenceService"].tolist() == [5.0, 10.0]
    assert mms["QPS per InferenceService"].tolist() == [25.0, 50.0]
    assert mms["QPS per TrainedModel"].tolist() == [5.0, 10.0]
    row = s[(s["mode"] == "mms") & (s["qps"] == 50)].iloc[0]
    assert mms.loc[1, "p99"] == round(row["p99"], 3)
    assert mms.loc[1, "p99 95% CI"] == f"[{row['p99_lo']:.3f}, {row['p99_hi']:.3f}]"
    assert mms["valid"].all()


def test_seed_table_with_repeats_uses_medians_and_range():
    s = _two_mode_summary(repeats=3)
    t = seed_table(s, "traditional")
    assert "repeats" in t and "p99 range" in t and (t["repeats"] == 3).all()
    sub = s[(s["mode"] == "traditional") & (s["qps"] == 25)]
    assert t.loc[0, "p99"] == round(float(np.median(sub["p99"])), 3)
    assert t.loc[0, "p99 range"] == f"[{sub['p99'].min():.3f}, {sub['p99'].max():.3f}]"


# --------------------------------------------------------------------------
# repeats, comparison
# --------------------------------------------------------------------------

def test_aggregate_repeats_median_and_spread():
    s = fake_summary([
        {"mode": "mms", "qps": 10.0, "repeat": r, "p50": p50, "p99": p99, "mean": 1.0,
         "errors": e, "valid": v, "invalid_reason": "" if v else "dropped 5%"}
        for r, (p50, p99, e, v) in enumerate([(1.0, 10.0, 0, True), (2.0, 30.0, 4, True),
                                              (4.0, 20.0, 0, False)])
    ])
    a = S.aggregate_repeats(s).iloc[0]
    assert a["n_repeats"] == 3 and a["p50"] == 2.0 and a["p99"] == 20.0
    assert (a["p99_min"], a["p99_max"], a["p99_iqr"], a["p99_mad"]) == (10.0, 30.0, 10.0, 10.0)
    assert a["errors_total"] == 4 and a["errors_max"] == 4 and a["errors"] == 0
    assert not a["valid"] and a["n_valid"] == 2
    assert a["invalid_reason"] == "repeat 2: dropped 5%"


def test_compare_modes_rules():
    rows = []
    for r, (t50, m50, t99, m99) in enumerate([(3.0, 3.5, 10, 9), (3.1, 3.6, 12, 13),
                                              (3.2, 3.7, 11, 12)]):
        rows += [{"mode": "traditional", "qps": 25.0, "repeat": r, "p50": t50, "p99": t99},
                 {"mode": "mms", "qps": 25.0, "repeat": r, "p50": m50, "p99": m99}]
    rows += [{"mode": "traditional", "qps": 50.0, "repeat": 0, "p50": 3.0, "p99": 9.0},
             {"mode": "mms", "qps": 50.0, "repeat": 0, "p50": 9.0, "p99": 90.0},
             {"mode": "traditional", "qps": 100.0, "repeat": 0, "p50": 3.0, "p99": 9.0}]
    c = S.compare_modes(fake_summary(rows)).set_index("qps")
    assert c.loc[25.0, "p50_diff"] == pytest.approx(0.5)
    assert c.loc[25.0, "p50_beyond_spread"] == "yes"  # ranges [3.0,3.2] vs [3.5,3.7]
    assert c.loc[25.0, "p99_beyond_spread"] == "no"   # [10,12] vs [9,13]
    assert c.loc[25.0, "p99_diff"] == pytest.approx(1.0)
    assert c.loc[25.0, "p50_spread"] == pytest.approx(0.2)
    assert c.loc[50.0, "p99_beyond_spread"] == "unknown (1 repeat)"
    assert c.loc[50.0, "p99_ratio"] == pytest.approx(10.0)
    assert c.loc[100.0, "p50_beyond_spread"] == "unknown (missing mode)"
    assert c.loc[25.0, "n_repeats_mms"] == 3 and bool(c.loc[25.0, "valid"])


# --------------------------------------------------------------------------
# saturation
# --------------------------------------------------------------------------

def _sat_rows(mode, spec):
    """spec: list of (qps, valid, errors, p99) per level (single repeat)."""
    return [{"mode": mode, "qps": float(q), "valid": v, "errors": e, "p99": p,
             "invalid_reason": "" if v else "dropped 3.00% > 1% of scheduled"}
            for q, v, e, p in spec]


def test_saturation_each_cause():
    rows = (_sat_rows("valid_fails", [(25, True, 0, 5), (50, True, 0, 6), (100, False, 0, 7),
                                      (200, True, 0, 8)])
            + _sat_rows("errors_fail", [(25, True, 0, 5), (50, True, 3, 6), (100, True, 5, 7)])
            + _sat_rows("slo_fails", [(25, True, 0, 5), (50, True, 0, 9), (100, True, 0, 150)])
            + _sat_rows("never_fails", [(25, True, 0, 5), (50, True, 0, 6)])
            + _sat_rows("fails_first", [(25, True, 0, 500), (50, True, 0, 6)]))
    sat = S.saturation(fake_summary(rows), slo_p99_ms=100).set_index("mode")
    r = sat.loc["valid_fails"]
    assert r["max_ok_qps"] == 50 and r["first_fail_qps"] == 100
    assert r["fail_reason"].startswith("invalid") and "dropped" in r["fail_reason"]
    assert bool(r["passes_above_fail"])
    r = sat.loc["errors_fail"]
    assert r["max_ok_qps"] == 25 and r["first_fail_qps"] == 50
    assert r["fail_reason"].startswith("errors: 3") and not r["passes_above_fail"]
    r = sat.loc["slo_fails"]
    assert r["max_ok_qps"] == 50 and r["first_fail_qps"] == 100
    assert "p99 150 ms > SLO 100 ms" in r["fail_reason"]
    r = sat.loc["never_fails"]
    assert r["max_ok_qps"] == 50 and np.isnan(r["first_fail_qps"])
    r = sat.loc["fails_first"]
    assert np.isnan(r["max_ok_qps"]) and r["first_fail_qps"] == 25


def test_saturation_repeats_all_vs_median():
    rows = []
    for rep, p99s in enumerate([(5, 50), (5, 200), (5, 60)]):
        for q, p in zip((25.0, 50.0), p99s):
            rows.append({"mode": "mms", "qps": q, "repeat": rep, "valid": True,
                         "errors": 0, "p99": float(p)})
    s = fake_summary(rows)
    strict = S.saturation(s, 100).iloc[0]
    assert strict["max_ok_qps"] == 25 and "worst p99 200" in strict["fail_reason"]
    med = S.saturation(s, 100, rule="median").iloc[0]
    assert med["max_ok_qps"] == 50 and np.isnan(med["first_fail_qps"])
    with pytest.raises(ValueError):
        S.saturation(s, 100, rule="mean")


# --------------------------------------------------------------------------
# time series
# --------------------------------------------------------------------------

def test_latency_timeseries_bins():
    # 10 qps for 5 s after 2 s of warm-up; second k has latencies k*10 + 0..9
    lat = np.concatenate([np.arange(10) + 10.0 * k for k in range(5)])
    ok = np.ones(50, bool)
    ok[5] = False
    recs = level_records("mms", 10, 0, lat, warmup_s=2.0, ok=ok)
    ts = S.latency_timeseries(recs, bin_s=1.0)
    assert ts["t_s"].tolist() == [2.0, 3.0, 4.0, 5.0, 6.0]
    assert ts["count"].tolist() == [10] * 5
    assert ts["errors"].tolist() == [1, 0, 0, 0, 0]
    first = np.delete(np.arange(10.0), 5)
    assert ts.loc[0, "p99"] == pytest.approx(np.percentile(first, 99))
    assert ts.loc[0, "mean"] == pytest.approx(first.mean())
    assert ts.loc[3, "p50"] == pytest.approx(34.5)
    with_w = S.latency_timeseries(recs, bin_s=2.0, include_warmup=True)
    assert with_w["t_s"].tolist() == [0.0, 2.0, 4.0, 6.0]
    assert with_w["warmup"].tolist() == [True, False, False, False]
    assert with_w.loc[0, "p50"] == 1000.0


def test_saturation_needs_the_p99_shown_within_the_slo():
    # p99 90 ms under a 100 ms SLO, but its interval reaches 130 ms: not shown to hold (issue #21);
    # an interval wholly above the SLO is a miss; one wholly below holds
    rows = [{"mode": "mms", "qps": 25.0, "repeat": 0, "valid": True, "errors": 0, "p99": 50.0, "p99_lo": 45.0,
             "p99_hi": 60.0},
            {"mode": "mms", "qps": 50.0, "repeat": 0, "valid": True, "errors": 0, "p99": 90.0, "p99_lo": 80.0,
             "p99_hi": 130.0},
            {"mode": "traditional", "qps": 25.0, "repeat": 0, "valid": True, "errors": 0, "p99": 40.0,
             "p99_lo": 30.0, "p99_hi": float("nan")},
            {"mode": "x", "qps": 25.0, "repeat": 0, "valid": True, "errors": 0, "p99": 140.0, "p99_lo": 120.0,
             "p99_hi": 150.0}]
    sat = S.saturation(fake_summary(rows), 100).set_index("mode")
    assert sat.loc["mms", "max_ok_qps"] == 25 and sat.loc["mms", "first_fail_qps"] == 50
    assert sat.loc["mms", "fail_reason"].startswith("not enough data: p99 90 ms, 95% interval up to 130 ms")
    assert np.isnan(sat.loc["traditional", "max_ok_qps"])
    assert "unbounded (too few requests)" in sat.loc["traditional", "fail_reason"]
    assert sat.loc["x", "fail_reason"] == "p99 140 ms > SLO 100 ms"
