"""Arrival schedules: statistics of generated gaps and model shares (seeded,
tolerances from the sample sizes), determinism, traces and their errors."""
from __future__ import annotations

import math

import numpy as np
import pytest

from mmslib.arrivals import (make_schedule, popularity_weights, read_trace, summary, trace_models,
                             write_trace)
from mmslib.errors import ParamError

MODELS = [f"m{i}" for i in range(20)]
Z = 5.0  # tolerances are Z standard errors: a false failure has odds below 1e-6 per check


def _gaps(s):
    return np.diff(s.offset_s)


@pytest.mark.parametrize("arrival,cv", [("poisson", 1.0), ("gamma", 0.5), ("gamma", 2.0), ("gamma", 4.0)])
def test_rate_and_cv_match_parameters(arrival, cv):
    rate, span = 500.0, 200.0
    s = make_schedule(MODELS, rate, span, arrival=arrival, cv=cv, seed=7)
    n = len(s)
    # count of a renewal process over T: mean rate*T, variance ~ rate*T*cv^2
    assert abs(n - rate * span) <= Z * math.sqrt(rate * span) * cv + 2
    g = _gaps(s)
    # mean gap: standard error cv/(rate*sqrt(n))
    assert abs(g.mean() - 1 / rate) <= Z * cv / rate / math.sqrt(len(g))
    # gap CV (delta method for Gamma gaps): standard error cv*sqrt((1+cv^2)/(2n))
    se = cv * math.sqrt((1 + cv * cv) / (2 * len(g)))
    assert abs(g.std() / g.mean() - cv) <= Z * se
    assert (g >= 0).all() and s.offset_s[0] >= 0 and s.offset_s[-1] < span


def test_constant_is_the_seeds_even_schedule():
    s = make_schedule(["a"], 25, 4, warmup_s=1, arrival="constant")
    assert len(s) == 125 and np.allclose(np.diff(s.offset_s), 0.04) and s.offset_s[0] == 0
    assert int(s.warmup.sum()) == 25 and s.rate == pytest.approx(25)


def test_zipf_shares_match():
    n_models, alpha = 10, 1.2
    s = make_schedule(MODELS[:n_models], 400, 100, arrival="poisson", popularity="zipf", zipf_alpha=alpha, seed=3)
    w = np.arange(1, n_models + 1) ** -alpha
    w /= w.sum()
    counts = np.bincount(s.model, minlength=n_models)
    n = counts.sum()
    for k in range(n_models):  # each count is Binomial(n, w_k)
        assert abs(counts[k] - n * w[k]) <= Z * math.sqrt(n * w[k] * (1 - w[k])), k
    assert popularity_weights(4, "zipf", 0.0) == pytest.approx([0.25] * 4)


def test_hot_stream_on_top():
    s = make_schedule(MODELS, 100, 200, arrival="poisson", popularity="hot", hot_models=2, hot_rate=50,
                      hot_cv=3.0, seed=1)
    hot_models = set(s.model[s.hot].tolist())
    assert hot_models == {0, 1}
    nh = int(s.hot.sum())
    # the hot stream: Gamma gaps with CV 3 at 50/s
    assert abs(nh - 50 * 200) <= Z * math.sqrt(50 * 200) * 3 + 2
    g = np.diff(s.offset_s[s.hot])
    assert abs(g.std() / g.mean() - 3.0) <= Z * 3 * math.sqrt(10 / (2 * len(g)))
    base = ~s.hot
    assert abs(base.sum() - 100 * 200) <= Z * math.sqrt(100 * 200) + 2
    assert (np.diff(s.offset_s) >= 0).all()


def test_same_inputs_same_schedule_and_hash():
    a = make_schedule(MODELS, 50, 10, arrival="gamma", cv=2, seed=11, popularity="zipf")
    b = make_schedule(MODELS, 50, 10, arrival="gamma", cv=2, seed=11, popularity="zipf")
    c = make_schedule(MODELS, 50, 10, arrival="gamma", cv=2, seed=12, popularity="zipf")
    assert a.hash() == b.hash() and np.array_equal(a.offset_s, b.offset_s)
    assert a.hash() != c.hash()
    assert len(a.hash()) == 16 and summary(a)["hash"] == a.hash()


def test_trace_round_trip(tmp_path):
    s = make_schedule(MODELS, 80, 5, warmup_s=1, arrival="gamma", cv=2, popularity="zipf", seed=5)
    path = write_trace(tmp_path / "t.csv", s)
    offs, names = read_trace(path, MODELS)
    assert np.allclose(offs, s.offset_s, atol=1e-6) and names == list(s.frame()["model"])
    back = make_schedule(MODELS, 1, 5, warmup_s=1, arrival="trace", trace=path)
    assert back.hash() == s.hash() and len(back) == len(s)
    fast = make_schedule(MODELS, 1, 5, warmup_s=1, arrival="trace", trace=path, time_scale=2)
    assert np.allclose(fast.offset_s, s.offset_s[: len(fast)] / 2, atol=1e-6)
    assert fast.trace_rows_cut == 0  # all of it fits in the 6 s span at double speed
    short = make_schedule(MODELS, 1, 2, warmup_s=0, arrival="trace", trace=path)
    assert short.trace_rows_cut == int((s.offset_s >= 2).sum()) > 0
    assert set(trace_models(path)) <= set(MODELS)


def _write(tmp_path, text):
    p = tmp_path / "trace.csv"
    p.write_text(text)
    return p


@pytest.mark.parametrize("text,needle", [
    ("", "empty"),
    ("offset_s,model\n", "no rows"),
    ("time,model\n0,m0\n", "line 1"),
    ("offset_s,model\n0.0,m0\n0.5,m1\n0.2,m0\n", "line 4"),
    ("offset_s,model\n0.0,m0\nabc,m1\n", "line 3: offset 'abc'"),
    ("offset_s,model\n0.0,m0\n0.1,nope\n", "line 3: model 'nope'"),
    ("offset_s,model\n-1,m0\n", "line 2"),
])
def test_bad_traces_name_the_line(tmp_path, text, needle):
    with pytest.raises(ParamError) as e:
        read_trace(_write(tmp_path, text), MODELS)
    assert e.value.name == "trace" and needle in str(e.value)


def test_missing_trace_and_bad_values(tmp_path):
    with pytest.raises(ParamError, match="trace"):
        read_trace(tmp_path / "absent.csv")
    with pytest.raises(ParamError, match="'cv'"):
        make_schedule(MODELS, 10, 1, arrival="gamma", cv=0)
    with pytest.raises(ParamError, match="zipf_alpha"):
        make_schedule(MODELS, 10, 1, popularity="zipf", zipf_alpha=-0.5)
    with pytest.raises(ParamError, match="hot_models"):
        make_schedule(MODELS, 10, 1, popularity="hot", hot_rate=5, hot_models=21)
    with pytest.raises(ParamError, match="time_scale"):
        make_schedule(MODELS, 10, 1, arrival="trace", trace=tmp_path / "x.csv", time_scale=0)
