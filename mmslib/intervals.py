"""Confidence intervals: order-statistics intervals for quantiles and the percentile bootstrap.

One noun, the interval estimators behind :mod:`mmslib.stats` (``p99_lo``/``p99_hi``,
``max_lo``/``max_hi``), :mod:`mmslib.summary`, :mod:`mmslib.compare` and
:mod:`mmslib.traffic`.  The choices (distribution-free order statistics by default; why the
max has no interval) are documented once in :mod:`mmslib.stats`' docstring, "Confidence
intervals".  :mod:`mmslib.stats` re-exports these names, so ``from mmslib.stats import
quantile_ci`` keeps working.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np
import pandas as pd
from scipy.stats import beta, binom, norm
from scipy.stats import t as t_dist

__all__ = ["order_ci_indices", "quantile_ci", "bootstrap_ci", "clopper_pearson", "wilson",
           "diff_proportions", "dependence", "share_ci", "quantile_ci_dep", "ShareInterval"]


def order_ci_indices(n, q: float, conf: float = 0.95):
    """0-based indices (lo, hi) into the sorted sample giving the
    distribution-free order-statistics interval ``[x[lo], x[hi]]`` for the
    ``q`` quantile.

    With ``B ~ Binomial(n, q)`` the number of observations below the true
    quantile, ``[x_(l), x_(u)]`` (1-based) covers it with probability
    ``P(l <= B <= u-1)``.  ``l`` is the smallest rank with
    ``P(B < l) <= a/2`` and ``u - 1`` the smallest with
    ``P(B <= u - 1) >= 1 - a/2``, so each tail misses with probability at
    most ``a/2`` and the coverage is at least ``conf`` (it is conservative
    because ranks are discrete).  Vectorised over ``n``; an index that falls
    outside the sample is returned as -1 (bound not available).
    """
    n = np.asarray(n, dtype=np.int64)
    if not 0.0 < q < 1.0:
        raise ValueError(f"q must be in (0, 1), got {q!r}")
    if not 0.0 < conf < 1.0:
        raise ValueError(f"conf must be in (0, 1), got {conf!r}")
    a = 1.0 - conf
    safe_n = np.maximum(n, 1)
    l_rank = binom.ppf(a / 2, safe_n, q)  # 1-based rank of lower bound
    u_rank = binom.ppf(1 - a / 2, safe_n, q) + 1  # 1-based rank of upper
    lo = np.where((l_rank >= 1) & (n > 0), l_rank - 1, -1).astype(np.int64)
    hi = np.where((u_rank <= n) & (n > 0), u_rank - 1, -1).astype(np.int64)
    return lo, hi


def quantile_ci(values, q: float, conf: float = 0.95, method: str = "order",
                n_boot: int = 2000, seed: int | None = 0) -> tuple[float, float]:
    """Confidence interval ``(lo, hi)`` for the ``q`` quantile (0 < q < 1).

    ``method="order"`` (default): distribution-free order-statistics
    (binomial) interval, coverage >= ``conf`` for continuous data; a bound
    the sample cannot provide is NaN (e.g. the upper bound of p99 with fewer
    than ~370 values).  ``method="bootstrap"``: percentile bootstrap
    (:func:`bootstrap_ci`) of the numpy-linear quantile.  NaNs in
    ``values`` are ignored.
    """
    x = np.asarray(values, dtype=float).ravel()
    x = x[~np.isnan(x)]
    if method == "bootstrap":
        return bootstrap_ci(x, q, conf=conf, n_boot=n_boot, seed=seed)
    if method != "order":
        raise ValueError(f"method must be 'order' or 'bootstrap', got {method!r}")
    lo_i, hi_i = order_ci_indices(x.size, q, conf)
    lo_i, hi_i = int(lo_i), int(hi_i)
    if x.size == 0:
        return (float("nan"), float("nan"))
    # Only two order statistics are needed: partition instead of a full sort.
    kth = [k for k in (lo_i, hi_i) if k >= 0]
    if kth:
        x = np.partition(x, kth)
    lo = float(x[lo_i]) if lo_i >= 0 else float("nan")
    hi = float(x[hi_i]) if hi_i >= 0 else float("nan")
    return (lo, hi)


_NAMED_STATS = {
    "mean": lambda a, axis: np.mean(a, axis=axis),
    "median": lambda a, axis: np.median(a, axis=axis),
    "max": lambda a, axis: np.max(a, axis=axis),
    "min": lambda a, axis: np.min(a, axis=axis),
    "std": lambda a, axis: np.std(a, axis=axis, ddof=1),
}


def bootstrap_ci(values, stat="mean", conf: float = 0.95, n_boot: int = 2000,
                 seed: int | None = 0, return_samples: bool = False):
    """Percentile-bootstrap interval ``(lo, hi)`` for ``stat`` of ``values``.

    ``stat``:

    * a float ``q`` in (0, 1): the numpy-linear ``q`` quantile.  Fast exact
      path, O(n_boot) after one sort: for sorted data the k-th order
      statistic of a resample is ``x[floor(n * U_(k))]`` where ``U_(k) ~
      Beta(k, n+1-k)`` is the k-th of n uniforms, and the (k+1)-th follows
      from ``U_(k+1) = U_(k) + (1 - U_(k)) * Beta(1, n-k)``.  This draws
      from exactly the same bootstrap distribution as resampling, without
      materialising resamples.
    * ``"max"`` uses the same path (k = n).  Caveat: the bootstrap of the
      max is inconsistent (~63% of resamples return the observed max), so
      its interval's upper end is always the observed max; do not read it as
      a confidence interval for the population max.
    * ``"mean"``, ``"median"``, ``"min"``, ``"std"`` or a callable
      ``f(array2d, axis)`` reducing along ``axis``: resamples are drawn in
      chunks of at most ~4M values (vectorised, bounded memory).

    Returns ``(lo, hi)``, or ``(lo, hi, samples)`` with
    ``return_samples=True``.  NaNs in ``values`` are ignored.
    """
    x = np.asarray(values, dtype=float).ravel()
    x = x[~np.isnan(x)]
    n = x.size
    if not 0.0 < conf < 1.0:
        raise ValueError(f"conf must be in (0, 1), got {conf!r}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot!r}")
    rng = np.random.default_rng(seed)
    a = 1.0 - conf
    if n == 0:
        boots = np.full(n_boot, np.nan)
    elif isinstance(stat, (float, np.floating)) or stat == "max":
        xs = np.sort(x)
        q = 1.0 if stat == "max" else float(stat)
        if not 0.0 < q <= 1.0:
            raise ValueError(f"quantile must be in (0, 1], got {q!r}")
        h = (n - 1) * q
        j = int(np.floor(h))  # 0-based; order statistic k = j + 1
        frac = h - j
        k = j + 1
        u_k = rng.beta(k, n + 1 - k, size=n_boot)
        idx_k = np.minimum((u_k * n).astype(np.int64), n - 1)
        boots = xs[idx_k]
        if frac > 0 and k < n:
            u_k1 = u_k + (1.0 - u_k) * rng.beta(1, n - k, size=n_boot)
            idx_k1 = np.minimum((u_k1 * n).astype(np.int64), n - 1)
            boots = boots + frac * (xs[idx_k1] - boots)
    else:
        if isinstance(stat, str):
            if stat not in _NAMED_STATS:
                raise ValueError(
                    f"stat must be a quantile in (0,1), one of "
                    f"{sorted(_NAMED_STATS)} or a callable; got {stat!r}")
            fn = _NAMED_STATS[stat]
        elif callable(stat):
            fn = stat
        else:
            raise ValueError(f"unsupported stat {stat!r}")
        chunk = max(1, min(n_boot, 4_000_000 // n))
        out = []
        for start in range(0, n_boot, chunk):
            m = min(chunk, n_boot - start)
            idx = rng.integers(0, n, size=(m, n))
            out.append(np.asarray(fn(x[idx], axis=1), dtype=float))
        boots = np.concatenate(out)
    lo, hi = np.quantile(boots, [a / 2, 1 - a / 2]) if n else (np.nan, np.nan)
    if return_samples:
        return float(lo), float(hi), boots
    return float(lo), float(hi)


# --------------------------------------------------------------------------- shares (proportions)

def clopper_pearson(k, n, conf: float = 0.95):
    """Exact binomial (Clopper-Pearson) interval for ``k`` successes of ``n``
    (arrays allowed; real-valued ``k``/``n`` allowed, for an effective sample
    size); (nan, nan) where n <= 0.  It never covers less than ``conf`` for
    independent trials and stays honest near 0 and 1."""
    k = np.asarray(k, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    a = (1.0 - conf) / 2.0
    with np.errstate(invalid="ignore", divide="ignore"):
        lo = np.where(k > 0, beta.ppf(a, np.maximum(k, 1e-300), np.maximum(n - k + 1, 1e-300)), 0.0)
        hi = np.where(k < n, beta.ppf(1 - a, k + 1, np.maximum(n - k, 1e-300)), 1.0)
    bad = n <= 0
    lo = np.where(bad, np.nan, lo)
    hi = np.where(bad, np.nan, hi)
    if lo.ndim == 0:
        return float(lo), float(hi)
    return lo, hi


def wilson(k, n, conf: float = 0.95):
    """Wilson score interval for ``k`` of ``n`` (used for Newcombe's difference)."""
    if n <= 0:
        return np.nan, np.nan
    z = norm.ppf(1 - (1 - conf) / 2)
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * np.sqrt(max(p * (1 - p), 0.0) / n + z * z / (4 * n * n)) / d
    return c - h, c + h


def diff_proportions(k_a, n_a, k_b, n_b, conf: float = 0.95):
    """Newcombe's hybrid score interval for p_b - p_a (his method 10), from
    (effective) counts."""
    if n_a <= 0 or n_b <= 0:
        return np.nan, np.nan
    pa, pb = k_a / n_a, k_b / n_b
    la, ua = wilson(k_a, n_a, conf)
    lb, ub = wilson(k_b, n_b, conf)
    d = pb - pa
    return d - np.sqrt((pb - lb) ** 2 + (ua - pa) ** 2), d + np.sqrt((ub - pb) ** 2 + (pa - la) ** 2)


#: Time batches per level for the batch-means variance (per repeat when repeats are units).
N_BATCHES = 20
#: Below this many non-empty batches the batch-means variance is not used (too few degrees of freedom).
MIN_BATCHES = 5


@dataclass(frozen=True)
class Dependence:
    """How a level's requests depend on each other: the unit each request belongs to (units are
    independent of each other), how many there are, and the size-biased mean unit size
    ``sum(size**2) / sum(size)`` (the design effect if misses took out whole units)."""

    units: np.ndarray     # unit id per request (codes 0..U-1)
    n_units: int          # non-empty units
    unit_deff: float      # size-biased mean unit size (>= 1)
    kind: str             # "busy periods" | "time batches" | "repeats" | "requests"


def _size_biased(units: np.ndarray) -> Tuple[int, float]:
    c = np.bincount(units) if units.size else np.zeros(0)
    c = c[c > 0].astype(float)
    return int(c.size), float((c * c).sum() / c.sum()) if c.size else 1.0


def dependence(t=None, batch=None, n: int = 0, n_batches: int = N_BATCHES, latency_s=None) -> Dependence:
    """The independent units of a level, for :func:`share_ci` / :func:`quantile_ci_dep`.

    With ``t`` (each request's scheduled or send time, seconds) and ``latency_s`` (its latency
    from that time; NaN where none was recorded, or for a failed request: it holds nothing, as a
    lone timeout does not stall a concurrent server): **busy periods**, the regenerative cycles of
    the system under test. A new cycle starts at a request that arrives when no earlier request is
    still in flight (its time is past every earlier completion): from there the servers start
    afresh, so what happens in one cycle is independent of the others (exactly so for one FIFO
    server fed by a renewal process; the regenerative method of queue simulation). A burst that
    builds a queue stays inside one cycle, however long. With ``t`` alone: ``n_batches`` equal-time
    batches. ``batch`` (e.g. the repeat) separates independent runs: no unit spans two. With
    neither, every request is its own unit (independence assumed)."""
    if t is None and batch is None:
        return Dependence(np.arange(n, dtype=np.int64), n, 1.0, "requests")
    if t is not None:
        t = np.asarray(t, dtype=np.float64).ravel()
        n = t.size
    b = np.zeros(n, dtype=np.int64) if batch is None else pd.factorize(np.asarray(batch).ravel())[0].astype(np.int64)
    if t is None:
        units, kind = b, "repeats"
    else:
        units = np.zeros(n, dtype=np.int64)
        kind = "busy periods" if latency_s is not None else "time batches"
        lat = None if latency_s is None else np.asarray(latency_s, dtype=np.float64).ravel()
        base = 0
        for g in np.unique(b):
            idx = np.flatnonzero(b == g)
            tg = t[idx]
            ok = np.isfinite(tg)
            if lat is not None:
                order = np.argsort(np.where(ok, tg, np.inf), kind="stable")
                ts = tg[order]
                # a request without a latency (never sent, or no answer recorded) holds nothing
                done = ts + np.where(np.isfinite(lat[idx][order]), lat[idx][order], 0.0)
                done = np.where(np.isfinite(ts), done, np.inf)
                prev = np.concatenate([[-np.inf], np.maximum.accumulate(done)[:-1]])
                ids = np.cumsum(ts > prev)
                units[idx[order]] = base + ids
                base += int(ids.max()) + 1 if ids.size else 1
            else:
                lo, hi = (tg[ok].min(), tg[ok].max()) if ok.any() else (0.0, 0.0)
                width = (hi - lo) / n_batches if hi > lo else 1.0
                bins = np.clip(np.floor((np.where(ok, tg, lo) - lo) / width), 0, n_batches - 1).astype(np.int64)
                units[idx] = base + bins
                base += n_batches
    units = pd.factorize(units)[0].astype(np.int64) if n else units
    n_units, sb = _size_biased(units)
    return Dependence(units, n_units, max(1.0, sb), kind)


@dataclass(frozen=True)
class ShareInterval:
    """A share with its interval. ``n_eff``: the effective sample size behind the interval
    (``n / deff``); ``method`` names how it was computed."""

    share: float
    lo: float
    hi: float
    n: int
    k: int
    n_eff: float
    deff: float
    method: str

    def as_row(self, prefix: str = "") -> dict:
        return {f"{prefix}{k}": getattr(self, k) for k in ("share", "lo", "hi", "n", "n_eff", "deff", "method")}


def _batch_var_share(hits: np.ndarray, units: np.ndarray) -> Tuple[float, int]:
    """Batch-means variance of the ratio estimator sum(hits)/n over units, and the units used."""
    nb = np.bincount(units).astype(float)
    kb = np.bincount(units, weights=hits.astype(float))
    B = int((nb > 0).sum())
    if B < 2:
        return float("nan"), B
    n = nb.sum()
    p = kb.sum() / n
    return float(B / (B - 1) * np.sum((kb - p * nb) ** 2) / (n * n)), B


def share_ci(hits, t=None, batch=None, conf: float = 0.95, n_batches: int = N_BATCHES,
             dep: Optional[Dependence] = None, latency_s=None) -> ShareInterval:
    """A share (e.g. SLO attainment) with an interval that holds for **dependent** requests.

    ``hits``: one boolean per request. ``t``: each request's time (seconds; the scheduled time
    where there is one) and ``batch``: independent groups (repeats). Requests of a queue are not
    independent (a burst fills the queue, and the misses come together), so the binomial variance
    ``p(1-p)/n`` is too small. The variance is estimated instead by **batch means** over
    ``n_batches`` equal-time batches per group, and its ratio to the binomial variance is the
    design effect ``deff``; the bursts the requests arrived in (the index of dispersion of the
    counts per batch) set a floor under it, since misses in a level with few misses cannot show
    their own clustering. The interval is Clopper-Pearson on the effective sample
    (``k_eff = share * n_eff``, ``n_eff = n / deff``), widened to the batch-means t interval
    where that is wider. With ``deff = 1`` it is plain Clopper-Pearson. Its coverage is checked
    by simulation in ``benchmarks/coverage_bench.py`` (queues with Poisson and Gamma CV 1-8
    arrivals), not taken from the formula.
    """
    h = np.asarray(hits, dtype=bool).ravel()
    n = int(h.size)
    if n == 0:
        return ShareInterval(float("nan"), float("nan"), float("nan"), 0, 0, 0.0, float("nan"), "no requests")
    k = int(h.sum())
    p = k / n
    d = dep if dep is not None else dependence(t, batch, n, n_batches, latency_s)
    if t is None and batch is None and dep is None:
        lo, hi = clopper_pearson(k, n, conf)
        return ShareInterval(p, lo, hi, n, k, float(n), 1.0, "Clopper-Pearson (independent requests)")
    var_bm, B = _batch_var_share(h, d.units)
    var_iid = p * (1 - p) / n
    deff_hits = var_bm / var_iid if var_iid > 0 and B >= MIN_BATCHES and var_bm == var_bm else 1.0
    # no miss (or no hit) shows no clustering of its own: take the clustering a miss would have
    # if it took out a whole unit (the size-biased mean unit size)
    floor = d.unit_deff
    deff = float(max(1.0, deff_hits, floor))
    n_eff = n / deff
    lo, hi = clopper_pearson(p * n_eff, n_eff, conf)
    method = f"Clopper-Pearson on n_eff = n/{deff:.3g} ({B} {d.kind})"
    if B >= MIN_BATCHES and var_bm == var_bm and var_bm > 0:
        half = t_dist.ppf(1 - (1 - conf) / 2, B - 1) * math.sqrt(var_bm)
        lo, hi = min(lo, max(0.0, p - half)), max(hi, min(1.0, p + half))
    return ShareInterval(p, float(lo), float(hi), n, k, n_eff, deff, method)


def quantile_ci_dep(values, q: float, t=None, batch=None, conf: float = 0.95,
                    n_batches: int = N_BATCHES, dep: Optional[Dependence] = None, latency_s=None):
    """Interval ``(lo, hi, n_eff)`` for the ``q`` quantile of dependent samples (latencies of a
    queue), by inverting :func:`share_ci`: the quantile ``Q`` satisfies ``F(Q) = q``, so the
    interval holds every ``x`` whose share-below interval contains ``q`` (the lower end is the
    smallest sample value whose share interval reaches ``q``, the upper end the largest whose
    interval starts at or below it). Its coverage is the share interval's at the true quantile,
    checked in ``benchmarks/coverage_bench.py``. Never narrower than the independent
    order-statistics interval of :func:`quantile_ci`; NaN where the sample cannot give a bound.
    ``n_eff``: the effective sample size at the estimated quantile. NaN values are ignored."""
    x = np.asarray(values, dtype=float).ravel()
    keep = ~np.isnan(x)
    lat = None if latency_s is None else np.asarray(latency_s, dtype=float).ravel()
    if dep is None and not keep.all():
        t = None if t is None else np.asarray(t, dtype=float).ravel()[keep]
        batch = None if batch is None else np.asarray(batch).ravel()[keep]
        lat = None if lat is None else lat[keep]
    elif dep is not None and not keep.all():
        dep = Dependence(dep.units[keep], dep.n_units, dep.unit_deff, dep.kind)
    x = x[keep]
    n = x.size
    lo_i, hi_i = quantile_ci(x, q, conf)
    if n == 0 or (t is None and batch is None and dep is None):
        return lo_i, hi_i, float(n)
    d = dep if dep is not None else dependence(t, batch, n, n_batches, lat)
    order = np.argsort(x, kind="stable")
    xs = x[order]

    def ci(j):  # the share interval of "x <= xs[j]"
        return share_ci(x <= xs[j], conf=conf, dep=d)

    # lower end: the smallest j whose interval's upper end reaches q
    a, b = 0, n - 1
    if ci(b).hi < q:
        lo = float("nan")
    else:
        while a < b:
            m = (a + b) // 2
            if ci(m).hi >= q:
                b = m
            else:
                a = m + 1
        lo = float(xs[a]) if a > 0 or ci(0).lo <= q else float("nan")
    # upper end: the largest j whose interval's lower end is still <= q
    a, b = 0, n - 1
    if ci(b).lo <= q:
        hi = float("nan")  # even the largest value cannot be shown to be above the quantile
    else:
        while a < b:
            m = (a + b) // 2
            if ci(m).lo > q:
                b = m
            else:
                a = m + 1
        hi = float(xs[a])
    n_eff = ci(min(n - 1, int(q * n))).n_eff
    lo = lo if lo != lo or lo_i != lo_i else min(lo, lo_i)
    hi = hi if hi != hi or hi_i != hi_i else max(hi, hi_i)
    return lo, hi, float(n_eff)
