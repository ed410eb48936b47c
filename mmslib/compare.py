"""Compare two runs (e.g. before and after a runtime upgrade), per level and mode.

For each level both runs measured (e.g. mode x rate; repeats pooled), and each statistic
(``p50``, ``p99``, ``attainment`` of the SLO):

* ``a``, ``b``: the statistic in run A and run B; ``diff = b - a``, ``ratio = b / a``;
* ``diff_lo``/``diff_hi``: a 95% interval for the difference. Percentiles: distribution-free,
  from each run's 97.5% order-statistics interval (``[lo_b - hi_a, hi_b - lo_a]``; by Bonferroni
  the coverage is at least 95%). Attainment: Newcombe's hybrid score interval for a difference
  of two proportions. NaN where a sample is too small to bound the quantile;
* ``spread``: the run-to-run spread of the statistic - the range across repeats when both runs
  have several, else the larger difference between the first and the second half (in time) of
  each run's level, a proxy for drift that an i.i.d. interval does not see (``spread_from``
  says which);
* ``verdict``: ``"beyond run-to-run spread"`` when the interval excludes 0 and ``|diff|`` exceeds
  the spread, ``"within run-to-run spread"`` otherwise, ``"unknown (...)"`` when a run lacks
  the level or the interval cannot be computed.

Requests are independent in none of these checks' assumptions but the interval's; the spread is
the honest guard (see :mod:`mmslib.stats`).
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Sequence, Union

import numpy as np
import pandas as pd
from scipy.stats import norm

from . import intervals
from .rundir import Run

STATS = ("p50", "p99", "attainment")
COLUMNS = ["stat", "a", "b", "diff", "diff_lo", "diff_hi", "ratio", "spread", "spread_from", "verdict",
           "n_a", "n_b"]


def _wilson(k: float, n: float, z: float):
    if n <= 0:
        return np.nan, np.nan
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return c - h, c + h


def diff_proportions(k_a, n_a, k_b, n_b, conf: float = 0.95):
    """Newcombe's hybrid score interval for p_b - p_a (his method 10)."""
    z = norm.ppf(1 - (1 - conf) / 2)
    pa, pb = k_a / n_a, k_b / n_b
    la, ua = _wilson(k_a, n_a, z)
    lb, ub = _wilson(k_b, n_b, z)
    d = pb - pa
    lo = d - np.sqrt((pb - lb) ** 2 + (ua - pa) ** 2)
    hi = d + np.sqrt((ub - pb) ** 2 + (pa - la) ** 2)
    return lo, hi


def diff_quantiles(x_a: np.ndarray, x_b: np.ndarray, q: float, conf: float = 0.95):
    """Distribution-free interval for Q_b(q) - Q_a(q): each quantile's order-statistics interval at
    1 - (1 - conf)/2, combined (Bonferroni)."""
    c = 1 - (1 - conf) / 2
    la, ha = intervals.quantile_ci(x_a, q, conf=c)
    lb, hb = intervals.quantile_ci(x_b, q, conf=c)
    return lb - ha, hb - la


def _stat(x: np.ndarray, ok: np.ndarray, name: str, slo_ms: Optional[float]) -> float:
    if name == "attainment":
        return float(np.mean(ok & (x <= slo_ms))) if slo_ms is not None and x.size else np.nan
    xs = x[ok]
    return float(np.percentile(xs, float(name[1:]))) if xs.size else np.nan


def _measured(run: Run) -> pd.DataFrame:
    r = run.records
    if not len(r):
        return r
    if "warmup" in r:
        r = r[~r["warmup"].astype(bool)]
    return r


def _as_run(x) -> Run:
    return x if isinstance(x, Run) else Run.load(x)


def compare(run_a: Union[Run, str, Path], run_b: Union[Run, str, Path], stats_shown: Sequence[str] = STATS,
            slo_ms: Optional[float] = None, conf: float = 0.95) -> pd.DataFrame:
    """One row per level and statistic (see the module docstring). ``slo_ms``: the SLO for
    attainment (default: run A's, else run B's; no SLO: attainment is left out)."""
    a, b = _as_run(run_a), _as_run(run_b)
    value = a.value_column
    keys = [k for k in a.level_keys if k != "repeat" and k in b.level_keys]
    slo = slo_ms if slo_ms is not None else (a.slo_ms if a.slo_ms is not None else b.slo_ms)
    shown = [s for s in stats_shown if s != "attainment" or slo is not None]
    ra, rb = _measured(a), _measured(b)
    if not keys or not len(ra) or not len(rb):
        return pd.DataFrame(columns=keys + COLUMNS)
    rows: List[dict] = []
    ga = dict(iter(ra.groupby(keys, sort=True)))
    gb = dict(iter(rb.groupby(keys, sort=True)))
    for lvl in sorted(set(ga) | set(gb), key=lambda k: tuple(map(str, k if isinstance(k, tuple) else (k,)))):
        kv = dict(zip(keys, lvl if isinstance(lvl, tuple) else (lvl,)))
        if lvl not in ga or lvl not in gb:
            for s in shown:
                rows.append({**kv, "stat": s, "verdict": f"unknown (only in run {'A' if lvl in ga else 'B'})"})
            continue
        da, db = ga[lvl], gb[lvl]
        xa, xb = da[value].to_numpy(float), db[value].to_numpy(float)
        oka = da["ok"].to_numpy(bool) if "ok" in da else np.ones(len(da), bool)
        okb = db["ok"].to_numpy(bool) if "ok" in db else np.ones(len(db), bool)
        for s in shown:
            va, vb = _stat(xa, oka, s, slo), _stat(xb, okb, s, slo)
            if s == "attainment":
                ka, kb = va * len(xa), vb * len(xb)
                lo, hi = diff_proportions(ka, len(xa), kb, len(xb), conf)
            else:
                lo, hi = diff_quantiles(xa[oka], xb[okb], float(s[1:]) / 100, conf)
            spread, source = _spread(da, db, value, s, slo)
            d = vb - va
            if np.isnan(lo) or np.isnan(hi) or np.isnan(d):
                verdict = "unknown (too few samples for an interval)"
            elif (lo > 0 or hi < 0) and abs(d) > (0 if np.isnan(spread) else spread):
                verdict = "beyond run-to-run spread"
            else:
                verdict = "within run-to-run spread"
            rows.append({**kv, "stat": s, "a": va, "b": vb, "diff": d, "diff_lo": lo, "diff_hi": hi,
                         "ratio": vb / va if va else np.nan, "spread": spread, "spread_from": source,
                         "verdict": verdict, "n_a": len(xa), "n_b": len(xb)})
    return pd.DataFrame(rows).reindex(columns=keys + COLUMNS)


def _spread(da: pd.DataFrame, db: pd.DataFrame, value: str, s: str, slo):
    def per_part(d, parts):
        out = []
        for _, g in parts(d):
            ok = g["ok"].to_numpy(bool) if "ok" in g else np.ones(len(g), bool)
            out.append(_stat(g[value].to_numpy(float), ok, s, slo))
        return out

    reps = lambda d: d.groupby("repeat") if "repeat" in d else []
    if "repeat" in da and "repeat" in db and da["repeat"].nunique() > 1 and db["repeat"].nunique() > 1:
        ranges = [np.nanmax(v) - np.nanmin(v) for v in (per_part(da, reps), per_part(db, reps))]
        return float(max(ranges)), "repeats"

    def halves(d):
        order = d.sort_values("t_unix") if "t_unix" in d else d
        n = len(order) // 2
        return [(0, order.iloc[:n]), (1, order.iloc[n:])]
    ranges = []
    for d in (da, db):
        v = per_part(d, halves)
        if len(v) == 2:
            ranges.append(abs(v[1] - v[0]))
    return (float(np.nanmax(ranges)) if ranges else np.nan), "halves"


def verdict_text(table: pd.DataFrame, label_a: str = "A", label_b: str = "B") -> str:
    """The comparison in a few sentences: what moved beyond the run-to-run spread, and what did not."""
    if not len(table):
        return "Nothing to compare: the runs share no level."
    beyond = table[table["verdict"] == "beyond run-to-run spread"]
    keys = [c for c in table.columns if c not in COLUMNS]
    if not len(beyond):
        return (f"No statistic of {label_b} differs from {label_a} beyond the run-to-run spread "
                f"({len(table)} comparisons).")
    parts = []
    for r in beyond.to_dict("records"):
        where = ", ".join(f"{k} {r[k]:g}" if isinstance(r[k], float) else f"{k} {r[k]}" for k in keys)
        unit = "" if r["stat"] == "attainment" else " ms"
        parts.append(f"{r['stat']} at {where}: {r['a']:.4g} -> {r['b']:.4g}{unit} "
                     f"({r['diff']:+.3g}, 95% interval [{r['diff_lo']:+.3g}, {r['diff_hi']:+.3g}])")
    return (f"{len(beyond)} of {len(table)} comparisons moved beyond the run-to-run spread from {label_a} to "
            f"{label_b}: " + "; ".join(parts) + ".")
