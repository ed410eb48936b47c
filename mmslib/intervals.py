"""Confidence intervals: order-statistics intervals for quantiles and the percentile bootstrap.

One noun, the interval estimators behind :mod:`mmslib.stats` (``p99_lo``/``p99_hi``,
``max_lo``/``max_hi``), :mod:`mmslib.summary`, :mod:`mmslib.compare` and
:mod:`mmslib.traffic`.  The choices (distribution-free order statistics by default; why the
max has no interval) are documented once in :mod:`mmslib.stats`' docstring, "Confidence
intervals".  :mod:`mmslib.stats` re-exports these names, so ``from mmslib.stats import
quantile_ci`` keeps working.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import binom

__all__ = ["order_ci_indices", "quantile_ci", "bootstrap_ci"]


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
