"""SLO arithmetic: attainment with an interval, goodput, MLPerf's early
stopping, and the highest rate that meets a target.

Attainment
    The share of (non-warm-up) requests answered correctly within ``slo_ms``;
    errors, wrong answers, timeouts and requests never sent count as misses.
    Its 95% interval is **Clopper-Pearson** (exact binomial): it never covers
    less than 95%, and stays honest near 1, where SLO targets live (99%,
    99.9%); with no miss at all the upper end is 1 and the lower end
    ``(alpha/2) ** (1/n)``.

Goodput
    Requests per second answered within the SLO: ``within / measured_s``.

Early stopping (MLPerf Inference, Server scenario)
    To claim "p99 <= bound" at 99% confidence from ``n`` queries of which
    ``t`` were over the bound, the chance of seeing ``t`` or fewer overs if
    the true over-bound share were 1% must be at most 1%:
    ``BinomCDF(t; n, 1 - percentile) <= 1 - confidence``.
    :func:`min_queries` is the smallest such ``n``: 459 with none over, 662
    with one, 2,010 with ten, 12,571 with a hundred.

Max rate at SLO
    From a sweep (:func:`max_rate`): the highest valid rate whose attainment
    is >= the target, with all valid lower rates meeting it too (a rate above
    a failing one is reported separately, not as capacity). Or a search
    (:func:`bisect_rate`): bisection over the rate, as MLPerf's Server
    scenario searches its target QPS, to a stated tolerance.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

from .errors import ParamError

CONFIDENCE = 0.95


def _finite(v) -> bool:
    try:
        return math.isfinite(v)
    except OverflowError:  # an int beyond any float (10**400)
        return False


def check_slo_ms(v, name: str = "slo_ms") -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.number)) or not _finite(v) or v <= 0:
        raise ParamError(name, v, "a number of milliseconds > 0")
    return float(v)


def check_target(v, name: str = "attainment_target") -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.number)) or not _finite(v) \
            or not 0 < v <= 1:
        raise ParamError(name, v, "a share in (0, 1], e.g. 0.99")
    return float(v)


def clopper_pearson(k, n, conf: float = CONFIDENCE):
    """Exact binomial interval for ``k`` successes of ``n`` (arrays allowed);
    (nan, nan) where n == 0."""
    k = np.asarray(k, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    a = (1.0 - conf) / 2.0
    with np.errstate(invalid="ignore", divide="ignore"):
        lo = np.where(k > 0, sps.beta.ppf(a, np.maximum(k, 1e-300), n - k + 1), 0.0)
        hi = np.where(k < n, sps.beta.ppf(1 - a, k + 1, np.maximum(n - k, 1e-300)), 1.0)
    bad = n <= 0
    lo = np.where(bad, np.nan, lo)
    hi = np.where(bad, np.nan, hi)
    if lo.ndim == 0:
        return float(lo), float(hi)
    return lo, hi


@dataclass(frozen=True)
class Attainment:
    n: int              # requests counted (sent or not; warm-up excluded)
    within: int         # answered correctly within the SLO
    share: float        # within / n
    lo: float           # 95% Clopper-Pearson interval
    hi: float
    goodput: float      # within / measured_s (requests/s)
    slo_ms: float

    def as_row(self, prefix: str = "") -> Dict[str, float]:
        return {f"{prefix}{k}": getattr(self, k) for k in ("n", "within", "share", "lo", "hi", "goodput")}


def attainment(latency_ms, ok, slo_ms: float, measured_s: float = float("nan"),
               conf: float = CONFIDENCE) -> Attainment:
    """Attainment of requests with ``latency_ms`` and ``ok`` (both per
    request; a NaN latency, e.g. never sent, is a miss)."""
    slo_ms = check_slo_ms(slo_ms)
    lat = np.asarray(latency_ms, dtype=np.float64)
    ok = np.asarray(ok, dtype=bool)
    if lat.shape != ok.shape:
        raise ParamError("ok", f"{ok.shape[0] if ok.ndim else 0} values",
                         f"one per latency ({lat.shape[0] if lat.ndim else 0})")
    n = int(lat.size)
    within = int((ok & (lat <= slo_ms)).sum())  # NaN <= x is False
    lo, hi = clopper_pearson(within, n, conf)
    share = within / n if n else float("nan")
    good = within / measured_s if measured_s and measured_s > 0 else float("nan")
    return Attainment(n, within, share, lo, hi, good, slo_ms)


# --------------------------------------------------------------------------- early stopping

def early_stopping_ok(n: int, over: int, percentile: float = 0.99, confidence: float = 0.99) -> bool:
    """True when ``n`` queries with ``over`` of them over the bound support the
    claim "the ``percentile`` latency is within the bound" at ``confidence``."""
    if n <= 0 or over >= n:
        return False
    return bool(sps.binom.cdf(int(over), int(n), 1.0 - percentile) <= 1.0 - confidence)


def min_queries(over: int, percentile: float = 0.99, confidence: float = 0.99) -> int:
    """The smallest number of queries for which ``over`` over-bound queries
    still support the claim (MLPerf's early-stopping rule; see module doc)."""
    if isinstance(over, bool) or not isinstance(over, (int, np.integer)) or over < 0:
        raise ParamError("over", over, "an integer >= 0 (queries over the latency bound)")
    if not 0 < percentile < 1:
        raise ParamError("percentile", percentile, "a share in (0, 1), e.g. 0.99")
    if not 0 < confidence < 1:
        raise ParamError("confidence", confidence, "a share in (0, 1), e.g. 0.99")
    over = int(over)
    p = 1.0 - percentile
    lo, hi = over + 1, max(over + 2, 16)
    while sps.binom.cdf(over, hi, p) > 1.0 - confidence:  # the CDF falls as n grows
        lo, hi = hi, hi * 2
    while lo < hi:
        mid = (lo + hi) // 2
        if sps.binom.cdf(over, mid, p) <= 1.0 - confidence:
            hi = mid
        else:
            lo = mid + 1
    return lo


# --------------------------------------------------------------------------- max rate

def max_rate(levels: pd.DataFrame, target: float, rate: str = "rate", share: str = "share",
             valid: str = "valid", by: Sequence[str] = ()) -> pd.DataFrame:
    """Per group (``by``), from a sweep: ``max_rate`` = the highest valid rate
    with ``share >= target`` and every valid lower rate meeting it too
    (NaN when the lowest fails); ``first_miss`` = the lowest valid rate that
    missed (NaN if none); ``rates_meeting`` = all valid rates that met it."""
    target = check_target(target)
    rows = []
    groups = levels.groupby(list(by), sort=True) if by else [((), levels)]
    for key, g in groups:
        key = key if isinstance(key, tuple) else (key,)
        g = g[g[valid].astype(bool)] if valid in g.columns else g
        per = g.groupby(rate)[share].median().sort_index()  # repeats: the median
        meets = per >= target
        miss = per.index[~meets.to_numpy()]
        first_miss = float(miss[0]) if len(miss) else float("nan")
        ok_rates = [float(r) for r in per.index[meets.to_numpy()]]
        below = [r for r in ok_rates if not (r >= first_miss)]
        rows.append({**dict(zip(by, key)), "max_rate": max(below) if below else float("nan"),
                     "first_miss": first_miss, "rates_meeting": ok_rates, "target": target})
    return pd.DataFrame(rows)


@dataclass
class Search:
    """Result of :func:`bisect_rate`: ``max_rate`` met the target, ``lo``..``hi``
    brackets the capacity (``hi - lo <= tolerance`` unless ``hi`` was never
    reached), ``probes`` lists every (rate, passed) measured, in order."""

    max_rate: float
    lo: float
    hi: float
    tolerance: float
    probes: List[tuple] = field(default_factory=list)

    @property
    def converged(self) -> bool:
        return self.hi - self.lo <= self.tolerance * (1 + 1e-9)


def bisect_rate(passes: Callable[[float], bool], lo: float, hi: float, tolerance: float,
                max_probes: int = 20) -> Search:
    """Bisection over the rate: ``passes(rate)`` measures one level and says
    whether it met the target. ``lo`` is measured first (if it fails,
    ``max_rate`` is NaN), then ``hi`` (if it passes, the capacity is at
    least ``hi``), then midpoints until ``hi - lo <= tolerance``."""
    if not (lo > 0 and hi > lo):
        raise ParamError("search", (lo, hi), "0 < lo < hi (requests per second)")
    if not tolerance > 0:
        raise ParamError("search_tolerance", tolerance, "a rate > 0 (requests per second)")
    probes = []

    def probe(r):
        ok = bool(passes(r))
        probes.append((float(r), ok))
        return ok

    if not probe(lo):
        return Search(float("nan"), 0.0, lo, tolerance, probes)
    if probe(hi):
        return Search(hi, hi, hi, tolerance, probes)
    a, b = float(lo), float(hi)
    while b - a > tolerance and len(probes) < max_probes:
        mid = (a + b) / 2
        if probe(mid):
            a = mid
        else:
            b = mid
    return Search(a, a, b, tolerance, probes)
