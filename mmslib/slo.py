"""SLO arithmetic: attainment with an interval, goodput, MLPerf's early
stopping, and the highest rate that meets a target.

Attainment
    The share of (non-warm-up) requests answered correctly within ``slo_ms``;
    errors, wrong answers, timeouts and requests never sent count as misses.
    Its 95% interval holds for **dependent** requests
    (:func:`mmslib.intervals.share_ci`): the requests of a queue come in busy
    periods, and a burst's misses come together, so the interval is
    Clopper-Pearson on the effective sample size (``n / deff``, the design
    effect from the busy periods), not on ``n``. Given no times it is plain
    Clopper-Pearson (independent requests). Coverage is shown by
    ``benchmarks/coverage_bench.py``, not assumed.

Decisions
    A level **meets** a target when the interval's lower end is at or above it,
    **misses** when the upper end is below it, and otherwise there is **not
    enough data** to say (:func:`decide`). Every decision built on attainment
    (the highest rate at the SLO, the rate search, the ``fail_on_slo`` gate, the
    report's "holds up to") uses this, never the point estimate. A target of
    1.0 is refused: no finite sample can show that no request will ever miss.

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

from . import intervals
from .errors import ParamError
from .intervals import clopper_pearson  # noqa: F401  (its home is intervals; kept for callers)

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
            or not 0 < v < 1:
        raise ParamError(name, v, "a share in (0, 1), e.g. 0.99 (1.0 cannot be shown by any finite "
                                  "number of requests: state 0.999 or 0.9999)")
    return float(v)


MET, MISSED, NOT_ENOUGH = "met", "missed", "not enough data"
DECISIONS = (MET, MISSED, NOT_ENOUGH)


def decide(lo, hi, target: float) -> str:
    """``met`` when the interval's lower end is >= ``target``, ``missed`` when its upper end is
    below it, else ``not enough data`` (also for a NaN interval: no requests)."""
    if lo == lo and lo >= target:
        return MET
    if hi == hi and hi < target:
        return MISSED
    return NOT_ENOUGH


@dataclass(frozen=True)
class Attainment:
    n: int              # requests counted (sent or not; warm-up excluded)
    within: int         # answered correctly within the SLO
    share: float        # within / n
    lo: float           # 95% interval (dependence-aware when times were given)
    hi: float
    goodput: float      # within / measured_s (requests/s)
    slo_ms: float
    n_eff: float = float("nan")   # effective sample size behind the interval
    method: str = ""              # how the interval was computed

    def as_row(self, prefix: str = "") -> Dict[str, float]:
        return {f"{prefix}{k}": getattr(self, k)
                for k in ("n", "within", "share", "lo", "hi", "goodput", "n_eff", "method")}

    def decision(self, target: float) -> str:
        return decide(self.lo, self.hi, target)


def attainment(latency_ms, ok, slo_ms: float, measured_s: float = float("nan"),
               conf: float = CONFIDENCE, t=None, batch=None) -> Attainment:
    """Attainment of requests with ``latency_ms`` and ``ok`` (both per
    request; a NaN latency, e.g. never sent, is a miss). ``t``: each request's
    scheduled time (seconds) and ``batch`` (e.g. the repeat): with them the
    interval accounts for busy periods (:func:`mmslib.intervals.share_ci`;
    ``latency_ms`` is then taken as measured from ``t``)."""
    slo_ms = check_slo_ms(slo_ms)
    lat = np.asarray(latency_ms, dtype=np.float64)
    ok = np.asarray(ok, dtype=bool)
    if lat.shape != ok.shape:
        raise ParamError("ok", f"{ok.shape[0] if ok.ndim else 0} values",
                         f"one per latency ({lat.shape[0] if lat.ndim else 0})")
    n = int(lat.size)
    hits = ok & (lat <= slo_ms)  # NaN <= x is False
    within = int(hits.sum())
    if t is None and batch is None:
        s = intervals.share_ci(hits, conf=conf)
    else:
        s = intervals.share_ci(hits, t=t, batch=batch, conf=conf, latency_s=np.where(ok, lat, np.nan) / 1000.0)
    share = within / n if n else float("nan")
    good = within / measured_s if measured_s and measured_s > 0 else float("nan")
    return Attainment(n, within, share, s.lo, s.hi, good, slo_ms, s.n_eff, s.method)


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

def _combine(decisions) -> str:
    """One decision for several rows of the same rate (conservative): met only if all met."""
    d = list(decisions)
    if d and all(x == MET for x in d):
        return MET
    if any(x == MISSED for x in d):
        return MISSED
    return NOT_ENOUGH


def max_rate(levels: pd.DataFrame, target: float, rate: str = "rate", decision: str = "decision",
             valid: str = "valid", by: Sequence[str] = ()) -> pd.DataFrame:
    """Per group (``by``), from a sweep whose rows carry a ``decision`` (:func:`decide`; pool the
    repeats of a rate before, or several rows of a rate are combined conservatively):
    ``max_rate`` = the highest valid rate **met** with every valid lower rate met too (NaN when the
    lowest is not met); ``stopped_by`` says what ended it: ``missed at R``, ``not enough data at
    R`` or ``met at every valid rate``; ``first_miss`` = the lowest valid rate missed (NaN if none);
    ``first_unknown`` = the lowest valid rate with not enough data (NaN if none);
    ``rates_meeting`` = all valid rates met."""
    target = check_target(target)
    rows = []
    groups = levels.groupby(list(by), sort=True) if by else [((), levels)]
    for key, g in groups:
        key = key if isinstance(key, tuple) else (key,)
        g = g[g[valid].astype(bool)] if valid in g.columns else g
        per = g.groupby(rate)[decision].agg(_combine).sort_index()
        first_miss = next((float(r) for r, d in per.items() if d == MISSED), float("nan"))
        first_unknown = next((float(r) for r, d in per.items() if d == NOT_ENOUGH), float("nan"))
        best, stopped = float("nan"), "no valid level"
        for r, d in per.items():
            if d != MET:
                stopped = f"{d} at {float(r):g}"
                break
            best, stopped = float(r), "met at every valid rate"
        rows.append({**dict(zip(by, key)), "max_rate": best, "stopped_by": stopped, "first_miss": first_miss,
                     "first_unknown": first_unknown,
                     "rates_meeting": [float(r) for r, d in per.items() if d == MET], "target": target})
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
    whether it met the target (True/False, or a :func:`decide` decision: only
    ``met`` passes; ``not enough data`` is recorded as such in ``probes`` and
    bisects as not passing, so the bracket's upper end may be a rate that was
    merely too short to decide). ``lo`` is measured first (if it fails,
    ``max_rate`` is NaN), then ``hi`` (if it passes, the capacity is at
    least ``hi``), then midpoints until ``hi - lo <= tolerance``."""
    if not (lo > 0 and hi > lo):
        raise ParamError("search", (lo, hi), "0 < lo < hi (requests per second)")
    if not tolerance > 0:
        raise ParamError("search_tolerance", tolerance, "a rate > 0 (requests per second)")
    probes = []

    def probe(r):
        res = passes(r)
        ok = res == MET if isinstance(res, str) else bool(res)
        probes.append((float(r), res if isinstance(res, str) else ok))
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
