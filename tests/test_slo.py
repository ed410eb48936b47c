"""SLO arithmetic on known data."""
from __future__ import annotations

import math

import numpy as np
import pytest

from mmslib.errors import ParamError
from mmslib.slo import (attainment, bisect_rate, check_slo_ms, check_target, clopper_pearson,
                        early_stopping_ok, max_rate, min_queries)


def test_min_queries_are_mlperfs_figures():
    # the (and MLPerf Inference's) figures for p99 at 99% confidence
    assert [min_queries(t) for t in (0, 1, 10, 100)] == [459, 662, 2010, 12571]
    assert early_stopping_ok(459, 0) and not early_stopping_ok(458, 0)
    assert early_stopping_ok(12571, 100) and not early_stopping_ok(12570, 100)
    # with none over: 0.99**n <= 0.01, by hand
    assert min_queries(0) == math.ceil(math.log(0.01) / math.log(0.99))


def test_clopper_pearson_known_values():
    lo, hi = clopper_pearson(5, 10)   # published table value: [0.1871, 0.8129]
    assert lo == pytest.approx(0.1871, abs=1e-4) and hi == pytest.approx(0.8129, abs=1e-4)
    lo, hi = clopper_pearson(0, 100)  # closed form: 1 - 0.025**(1/100)
    assert lo == 0 and hi == pytest.approx(1 - 0.025 ** 0.01)
    lo, hi = clopper_pearson(100, 100)
    assert hi == 1 and lo == pytest.approx(0.025 ** 0.01)
    assert all(math.isnan(x) for x in clopper_pearson(0, 0))


def test_attainment_counts_misses():
    lat = [1.0, 5.0, 10.0, 10.000001, float("nan"), 2.0]
    ok = [True, True, True, True, False, False]  # NaN: never answered; the last: wrong answer
    a = attainment(lat, ok, slo_ms=10, measured_s=2.0)
    assert (a.n, a.within) == (6, 3)  # 1, 5 and exactly 10 ms
    assert a.share == 0.5 and a.goodput == 1.5
    assert a.lo < 0.5 < a.hi
    with pytest.raises(ParamError, match="slo_ms"):
        attainment(lat, ok, slo_ms=0)


def test_bad_targets_and_slo():
    for v in (0, -0.1, 1.01, float("nan"), True, 1, 1.0):  # 1.0 is refused, never turned into 0.99
        with pytest.raises(ParamError, match="attainment_target"):
            check_target(v)
    with pytest.raises(ParamError, match="1.0 cannot be shown"):
        check_target(1.0)
    assert check_target(0.999) == 0.999
    with pytest.raises(ParamError, match="slo_ms"):
        check_slo_ms(-5)


def test_max_rate_from_a_sweep():
    import pandas as pd
    M, X, U = "met", "missed", "not enough data"
    lv = pd.DataFrame({"mode": ["a"] * 5 + ["b"] * 3 + ["c"] * 3,
                       "rate": [10, 20, 40, 80, 160, 10, 20, 40, 10, 20, 40],
                       "decision": [M, M, X, M, X, X, M, M, M, U, M],
                       "valid": [True, True, True, True, True, True, True, False, True, True, True]})
    out = max_rate(lv, 0.99, by=["mode"]).set_index("mode")
    assert out.loc["a", "max_rate"] == 20 and out.loc["a", "first_miss"] == 40
    assert out.loc["a", "stopped_by"] == "missed at 40"
    assert out.loc["a", "rates_meeting"] == [10.0, 20.0, 80.0]  # 80 met it, above a miss: not capacity
    assert math.isnan(out.loc["b", "max_rate"])  # its lowest rate missed; 40 is not valid
    # a level too short to decide stops the claim: no "holds up to 40" past a level that could not say
    assert out.loc["c", "max_rate"] == 10 and out.loc["c", "stopped_by"] == "not enough data at 20"
    assert out.loc["c", "first_unknown"] == 20 and math.isnan(out.loc["c", "first_miss"])


def test_bisection_finds_the_threshold():
    true_capacity = 123.4
    s = bisect_rate(lambda r: r <= true_capacity, 10, 1000, tolerance=5)
    assert s.converged and s.lo <= true_capacity < s.hi and s.hi - s.lo <= 5
    assert s.max_rate == s.lo and s.probes[0] == (10.0, True) and s.probes[1] == (1000.0, False)
    assert math.isnan(bisect_rate(lambda r: False, 10, 100, 1).max_rate)
    assert bisect_rate(lambda r: True, 10, 100, 1).max_rate == 100
