"""Compare two runs (e.g. before and after a runtime upgrade), per level and mode.

For each level both runs measured (e.g. mode x rate) and each statistic (``p50``, ``p99``,
``attainment`` of the SLO), the **repeat is the unit**: the statistic is computed per repeat in
each run, and the difference is tested against the variation between repeats. Requests within a
run are not independent (queues, bursts, a noisy machine, drift): an interval from one run's
requests says how precisely that run was measured, not how much a second run would differ.

* ``a``, ``b``: the statistic over each run's pooled requests; ``diff = b - a``, ``ratio = b / a``;
* ``mean_a``/``mean_b``: the mean of the per-repeat statistics, ``repeats_a``/``repeats_b``;
* ``diff_lo``/``diff_hi``: Welch's 95% interval for the difference of the per-repeat means
  (NaN below 2 repeats per run);
* ``p_value``: Welch's t test of the per-repeat statistics; ``p_adjusted``: Holm's adjustment over
  every tested row of the table, so the chance of any false "beyond" in the whole table is at
  most 5% (family-wise);
* ``verdict``: ``"beyond run-to-run spread"`` when ``p_adjusted < 0.05``, ``"within run-to-run
  spread"`` otherwise; ``"unknown: needs >= 3 repeats per run"`` with fewer (two repeats estimate
  a variance too poorly to decide); ``"unknown (...)"`` when a run lacks the level, a statistic is
  NaN, or the repeats do not vary at all while the means differ.

The false-alarm rate under no change and the power against a planted regression are printed by
``benchmarks/compare_bench.py`` (1, 3 and 5 repeats).
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Sequence, Union

import numpy as np
import pandas as pd
from scipy import stats as sps

from .intervals import diff_proportions  # noqa: F401  (re-exported: its home is mmslib.intervals)
from .rundir import Run

STATS = ("p50", "p99", "attainment")
MIN_REPEATS = 3
ALPHA = 0.05
BEYOND, WITHIN = "beyond run-to-run spread", "within run-to-run spread"
NEEDS_REPEATS = f"unknown: needs >= {MIN_REPEATS} repeats per run"
COLUMNS = ["stat", "a", "b", "diff", "ratio", "mean_a", "mean_b", "diff_lo", "diff_hi", "p_value", "p_adjusted",
           "repeats_a", "repeats_b", "verdict", "n_a", "n_b"]


def stat_of(x: np.ndarray, ok: np.ndarray, name: str, slo_ms: Optional[float]) -> float:
    """``p<q>`` of the ok latencies, or ``attainment`` (ok and within ``slo_ms``) of all."""
    if name == "attainment":
        return float(np.mean(ok & (x <= slo_ms))) if slo_ms is not None and x.size else np.nan
    xs = x[ok]
    return float(np.percentile(xs, float(name[1:]))) if xs.size else np.nan


def welch(a: Sequence[float], b: Sequence[float], conf: float = 0.95):
    """``(diff, lo, hi, p)`` for mean(b) - mean(a) by Welch's t (NaN below 2 values each;
    p NaN when neither sample varies)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.size < 2 or b.size < 2 or np.isnan(a).any() or np.isnan(b).any():
        return np.nan, np.nan, np.nan, np.nan
    d = b.mean() - a.mean()
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    se = np.sqrt(va + vb)
    if se == 0:
        return d, d, d, (1.0 if d == 0 else np.nan)
    df = (va + vb) ** 2 / (va ** 2 / (a.size - 1) + vb ** 2 / (b.size - 1))
    h = sps.t.ppf(1 - (1 - conf) / 2, df) * se
    return d, d - h, d + h, float(2 * sps.t.sf(abs(d) / se, df))


def holm(p: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN stays NaN): family-wise error control."""
    p = np.asarray(p, float)
    out = np.full(p.shape, np.nan)
    idx = np.flatnonzero(~np.isnan(p))
    if not idx.size:
        return out
    order = idx[np.argsort(p[idx], kind="stable")]
    m = order.size
    adj = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out[order] = adj
    return out


def repeat_verdicts(per_a: Sequence[Sequence[float]], per_b: Sequence[Sequence[float]],
                    alpha: float = ALPHA) -> pd.DataFrame:
    """For several comparisons at once (one per row), each given as per-repeat values of A and B:
    Welch's test, Holm's adjustment over the family, and the verdict (see the module doc)."""
    rows = []
    for a, b in zip(per_a, per_b):
        a, b = np.asarray(a, float), np.asarray(b, float)
        d, lo, hi, p = welch(a, b)
        rows.append({"mean_a": np.nanmean(a) if a.size else np.nan, "mean_b": np.nanmean(b) if b.size else np.nan,
                     "diff_lo": lo, "diff_hi": hi, "p_value": p, "repeats_a": int(a.size), "repeats_b": int(b.size),
                     "_enough": a.size >= MIN_REPEATS and b.size >= MIN_REPEATS,
                     "_nan": bool(np.isnan(a).any() or np.isnan(b).any() or not a.size or not b.size),
                     "_flat": bool(p != p and d == d)})
    t = pd.DataFrame(rows, columns=["mean_a", "mean_b", "diff_lo", "diff_hi", "p_value", "repeats_a", "repeats_b",
                                    "_enough", "_nan", "_flat"])
    tested = t["_enough"] & ~t["_nan"] & t["p_value"].notna()
    t["p_adjusted"] = holm(np.where(tested, t["p_value"], np.nan))
    verdict = np.where(t["p_adjusted"] < alpha, BEYOND, WITHIN).astype(object)
    verdict[~t["_enough"].to_numpy(bool)] = NEEDS_REPEATS
    verdict[(t["_enough"] & t["_nan"]).to_numpy(bool)] = "unknown (a statistic is NaN: too few requests)"
    verdict[(t["_enough"] & ~t["_nan"] & t["_flat"]).to_numpy(bool)] = "unknown (no variation between repeats)"
    t["verdict"] = verdict
    return t.drop(columns=["_enough", "_nan", "_flat"])


def _measured(run: Run) -> pd.DataFrame:
    r = run.records
    if not len(r):
        return r
    if "warmup" in r:
        r = r[~r["warmup"].astype(bool)]
    return r


def _as_run(x) -> Run:
    return x if isinstance(x, Run) else Run.load(x)


def _per_repeat(d: pd.DataFrame, value: str, s: str, slo) -> List[float]:
    parts = d.groupby("repeat") if "repeat" in d else [(0, d)]
    out = []
    for _, g in parts:
        ok = g["ok"].to_numpy(bool) if "ok" in g else np.ones(len(g), bool)
        out.append(stat_of(g[value].to_numpy(float), ok, s, slo))
    return out


def compare(run_a: Union[Run, str, Path], run_b: Union[Run, str, Path], stats_shown: Sequence[str] = STATS,
            slo_ms: Optional[float] = None, alpha: float = ALPHA) -> pd.DataFrame:
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
    pa, pb = [], []
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
            va, vb = stat_of(xa, oka, s, slo), stat_of(xb, okb, s, slo)
            rows.append({**kv, "stat": s, "a": va, "b": vb, "diff": vb - va, "ratio": vb / va if va else np.nan,
                         "n_a": len(xa), "n_b": len(xb), "_tested": len(pa)})
            pa.append(_per_repeat(da, value, s, slo))
            pb.append(_per_repeat(db, value, s, slo))
    out = pd.DataFrame(rows)
    if pa:
        v = repeat_verdicts(pa, pb, alpha)
        idx = out["_tested"].dropna().astype(int)
        for c in v.columns:
            out.loc[idx.index, c] = v[c].to_numpy()[idx.to_numpy()]
    return out.drop(columns=["_tested"], errors="ignore").reindex(columns=keys + COLUMNS)


def worse(table: pd.DataFrame) -> pd.DataFrame:
    """The rows where B is worse than A beyond the run-to-run spread (higher latency, lower
    attainment): what ``mmslib compare --fail-if-worse`` fails on (family-wise 5% under no change)."""
    beyond = table[table["verdict"] == BEYOND]
    return beyond[((beyond["stat"] != "attainment") & (beyond["diff"] > 0))
                  | ((beyond["stat"] == "attainment") & (beyond["diff"] < 0))]


def verdict_text(table: pd.DataFrame, label_a: str = "A", label_b: str = "B") -> str:
    """The comparison in a few sentences: what moved beyond the run-to-run spread, and what did not."""
    if not len(table):
        return "Nothing to compare: the runs share no level."
    beyond = table[table["verdict"] == BEYOND]
    unknown = table[table["verdict"].astype(str).str.startswith("unknown")]
    keys = [c for c in table.columns if c not in COLUMNS]
    tail = ""
    if len(unknown):
        needs = unknown["verdict"] == NEEDS_REPEATS
        tail = (f" {len(unknown)} of {len(table)} comparisons are unknown"
                + (f" ({int(needs.sum())} because a run has fewer than {MIN_REPEATS} repeats: rerun both with "
                   f"`repeats: {MIN_REPEATS}` or more to decide)" if needs.any() else "") + ".")
    if not len(beyond):
        decided = len(table) - len(unknown)
        if not decided:
            return f"No verdict: {tail.strip()}"
        return (f"No statistic of {label_b} differs from {label_a} beyond the run-to-run spread "
                f"({decided} comparisons decided, family-wise 5%).{tail}")
    parts = []
    for r in beyond.to_dict("records"):
        where = ", ".join(f"{k} {r[k]:g}" if isinstance(r[k], float) else f"{k} {r[k]}" for k in keys)
        unit = "" if r["stat"] == "attainment" else " ms"
        parts.append(f"{r['stat']} at {where}: {r['a']:.4g} -> {r['b']:.4g}{unit} "
                     f"({r['diff']:+.3g}, 95% interval [{r['diff_lo']:+.3g}, {r['diff_hi']:+.3g}], "
                     f"adjusted p {r['p_adjusted']:.2g})")
    return (f"{len(beyond)} of {len(table)} comparisons moved beyond the run-to-run spread from {label_a} to "
            f"{label_b}: " + "; ".join(parts) + "." + tail)
