"""Per-level summaries of a run's records: counts, percentiles with intervals, validity, SLO attainment.

One row per level (``by``: e.g. mode, qps, repeat for performance; mode for stress), computed
from the tidy records alone, so the percentiles or the SLO can be changed long after the run
(:func:`summarize_run`, used by the report at report time). :mod:`mmslib.export` writes these
rows as ``summary.csv`` / ``summary.json`` beside the records.

Columns: the ``by`` keys, ``n`` (measured rows: warm-up excluded), ``errors`` (rows not ``ok``),
``error_rate``, ``n_ok``, ``mean``, then per percentile ``q`` of ``percentiles``: ``p<q>`` with
``p<q>_lo``/``p<q>_hi`` (95% interval that accounts for busy periods where the records carry request
times, :func:`mmslib.intervals.quantile_ci_dep`; else the order-statistics interval; a bound the
sample cannot give is NaN) and ``max`` (no interval exists for a maximum); ``valid`` and
``invalid_reason`` (the load generator kept its schedule: :func:`mmslib.stats.summarize`'s rule when
the run saved generator counts, else "measured something"); with an SLO: ``slo_ms``, ``slo_target``,
``attainment`` (fraction of measured rows that are ``ok`` and within ``slo_ms``; errors count as
misses; so do requests the generator dropped, from the level's counts) with
``attainment_lo``/``attainment_hi`` (dependence-aware interval, :func:`mmslib.intervals.share_ci`, over the
repeats' busy periods), ``attainment_n_eff`` and ``attainment_method`` (what the interval rests on), ``slo_decision`` (:func:`mmslib.slo.decide`: ``met`` when the
lower end reaches the target, ``missed`` when the upper end is below it, ``not enough data`` between,
``not valid`` for an invalid level) and ``slo_met`` (``slo_decision == "met"``). Percentiles use numpy's default (linear) interpolation, the
same as :mod:`mmslib.stats`, so ``p99`` here equals ``stats.summarize``'s ``p99``.
"""
from __future__ import annotations

from typing import Any, Iterable, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd

from . import intervals, stats, values

#: The seed's columns: p50, p90, p95, p99 and max (their home: :mod:`mmslib.values`).
DEFAULT_PERCENTILES = values.DEFAULT_PERCENTILES
#: The spectrum the report draws (HDR style).
SPECTRUM = (0, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99)
#: A p99 SLO: 99% of requests within the threshold.
DEFAULT_SLO_TARGET = 0.99


def parse_percentiles(v: Any, name: str = "percentiles") -> Tuple[Union[float, str], ...]:
    """Percentiles as a user gives them (:func:`mmslib.values.percentiles`)."""
    return values.percentiles(v, name)


def column(q: Union[float, str]) -> str:
    """The column of percentile ``q``: ``p50``, ``p99.9``, ``max``."""
    return "max" if q == "max" else f"p{float(q):g}"


def summarize(records: pd.DataFrame, by: Sequence[str], value: str = "latency_ms",
              percentiles: Iterable = DEFAULT_PERCENTILES, slo_ms: Optional[float] = None,
              slo_target: Optional[float] = None, levels: Optional[pd.DataFrame] = None,
              conf: float = 0.95) -> pd.DataFrame:
    """One row per group of ``by`` (see the module docstring for the columns)."""
    by = [b for b in by]
    pcts = parse_percentiles(list(percentiles))
    target = DEFAULT_SLO_TARGET if slo_target is None else float(slo_target)
    cols = list(by) + ["n", "errors", "error_rate", "n_ok", "mean"]
    for q in pcts:
        c = column(q)
        cols += [c] if q == "max" else [c, f"{c}_lo", f"{c}_hi"]
    cols += ["valid", "invalid_reason"]
    if slo_ms is not None:
        cols += ["slo_ms", "slo_target", "attainment", "attainment_lo", "attainment_hi", "attainment_n_eff",
                 "attainment_method", "slo_decision", "slo_met"]
    if records is None or not len(records) or any(b not in records.columns for b in by) \
            or value not in records.columns:
        return pd.DataFrame(columns=cols)
    r = records
    warm = r["warmup"].to_numpy(bool) if "warmup" in r else np.zeros(len(r), bool)
    ok = r["ok"].to_numpy(bool) if "ok" in r else np.ones(len(r), bool)
    val = pd.to_numeric(r[value], errors="coerce").to_numpy(float)
    # the time each latency is counted from: scheduled time for schedule replays, else the send time
    tcol = "scheduled_unix" if value == "latency_sched_ms" and "scheduled_unix" in r else \
        ("t_unix" if "t_unix" in r else None)
    rows = []
    meas_frame = r.loc[~warm, by].copy()
    meas_frame["_ok"] = ok[~warm]
    meas_frame["_v"] = val[~warm]
    meas_frame["_t"] = r[tcol].to_numpy(float)[~warm] if tcol else np.nan
    meas_frame["_rep"] = r["repeat"].to_numpy()[~warm] if "repeat" in r and "repeat" not in by else 0
    for key, g in meas_frame.groupby(by, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(by, key))
        n = len(g)
        okv = g["_ok"].to_numpy(bool)
        v_all = g["_v"].to_numpy(float)
        dep = intervals.dependence(g["_t"].to_numpy(float), g["_rep"].to_numpy(), n,
                                   latency_s=np.where(okv, v_all, np.nan) / 1000.0) if tcol else None
        keep = okv & ~np.isnan(v_all)
        x = v_all[keep]
        sub = intervals.Dependence(dep.units[keep], dep.n_units, dep.unit_deff, dep.kind) if dep else None
        row.update(n=n, errors=int((~okv).sum()), error_rate=float((~okv).sum() / n) if n else np.nan,
                   n_ok=int(okv.sum()), mean=float(x.mean()) if x.size else np.nan)
        for q in pcts:
            c = column(q)
            if q == "max":
                row[c] = float(x.max()) if x.size else np.nan
                continue
            row[c] = float(np.percentile(x, q)) if x.size else np.nan
            if not x.size:
                lo, hi = np.nan, np.nan
            elif sub is not None:
                lo, hi, _ = intervals.quantile_ci_dep(x, q / 100, conf=conf, dep=sub)
            else:
                lo, hi = intervals.quantile_ci(x, q / 100, conf=conf)
            row[f"{c}_lo"], row[f"{c}_hi"] = lo, hi
        if slo_ms is not None:
            row["_hits"] = okv & (v_all <= slo_ms)
            row["_dep"] = dep
        rows.append(row)
    out = pd.DataFrame(rows)
    out = _validity(out, records, by, levels)
    if slo_ms is not None:
        from .slo import decide
        hits, deps = out.pop("_hits"), out.pop("_dep")
        drop = out["drop_frac"].to_numpy(float) if "drop_frac" in out else np.zeros(len(out))
        att, lo_, hi_, neff, dec, meth = [], [], [], [], [], []
        for h, d, df, valid in zip(hits, deps, drop, out["valid"].to_numpy(bool)):
            h = np.asarray(h, bool)
            # requests the generator dropped were never answered: misses (units of their own, conservatively
            # one busy period that holds them all)
            extra = int(round(h.size * df / (1 - df))) if df == df and 0 < df < 1 else 0
            if extra:
                h = np.concatenate([h, np.zeros(extra, bool)])
                d = intervals.Dependence(np.concatenate([d.units, np.full(extra, d.units.max() + 1 if d.units.size else 0)]),
                                         d.n_units + 1, d.unit_deff, d.kind) if d is not None else None
            si = intervals.share_ci(h, conf=conf, dep=d) if d is not None else intervals.share_ci(h, conf=conf)
            att.append(si.share), lo_.append(si.lo), hi_.append(si.hi), neff.append(si.n_eff), meth.append(si.method)
            dec.append(decide(si.lo, si.hi, target) if valid else "not valid")
        out["slo_ms"] = float(slo_ms)
        out["slo_target"] = target
        out["attainment"] = att
        out["attainment_lo"], out["attainment_hi"], out["attainment_n_eff"] = lo_, hi_, neff
        out["attainment_method"] = meth
        out["slo_decision"] = dec
        out["slo_met"] = out["slo_decision"].eq("met")
    return out.reindex(columns=cols)


def _validity(out: pd.DataFrame, records: pd.DataFrame, by, levels) -> pd.DataFrame:
    """``valid``/``invalid_reason``: the generator's rule (stats.summarize) when its counts exist."""
    out["valid"] = out["n"] > 0
    out["invalid_reason"] = np.where(out["n"] > 0, "", "no records")
    lk = list(stats.LEVEL_KEYS)
    need = set(stats.RECORD_COLUMNS_MIN) | set(lk)
    if levels is None or not len(levels) or not need <= set(records.columns) or not set(lk) <= set(levels.columns):
        if "valid" in records.columns:  # rows that carry their own verdict
            v = records.groupby(by, dropna=False)["valid"].all().reset_index()
            out = out.drop(columns=["valid"]).merge(v, on=by, how="left")
            out["valid"] = out["valid"].eq(True)
            out.loc[~out["valid"] & (out["invalid_reason"] == ""), "invalid_reason"] = "marked not valid"
        return out
    s = stats.summarize(records, levels, by=by if set(lk) <= set(by) else lk)
    keep = [c for c in ("valid", "invalid_reason", "target_qps", "achieved_qps", "drop_frac") if c in s]
    if set(lk) <= set(by):
        merged = out.drop(columns=["valid", "invalid_reason"]).merge(s[by + keep], on=by, how="left")
    else:  # coarser groups: valid when every level inside is
        lv = s[lk + ["valid", "invalid_reason"]]
        sub = records[list(dict.fromkeys(by + lk))].drop_duplicates().merge(lv, on=lk, how="left")
        agg = sub.groupby(by, dropna=False).agg(valid=("valid", "all"), invalid_reason=(
            "invalid_reason", lambda x: "; ".join(r for r in dict.fromkeys(x.dropna().astype(str)) if r)))
        merged = out.drop(columns=["valid", "invalid_reason"]).merge(agg.reset_index(), on=by, how="left")
    merged["valid"] = merged["valid"].eq(True)
    merged["invalid_reason"] = merged["invalid_reason"].fillna("no generator info")
    return merged


def summarize_run(run, percentiles=None, slo_ms: Any = "run", slo_target: Optional[float] = None,
                  by: Optional[Sequence[str]] = None, value: Optional[str] = None) -> pd.DataFrame:
    """:func:`summarize` over a :class:`mmslib.rundir.Run`'s records, with its level keys, value
    column and generator counts (``levels``); ``slo_ms="run"`` takes the run's own SLO, None none."""
    pcts = parse_percentiles(percentiles)
    slo = run.slo_ms if isinstance(slo_ms, str) and slo_ms == "run" else slo_ms
    if slo_target is None:
        slo_target = run.summary_doc.get("slo_target")
    recs = run.records
    by = [b for b in (by or run.level_keys) if b in recs.columns]  # keys a run's records lack are not levels
    value = value or run.value_column
    if value not in recs.columns and "latency_ms" in recs.columns:
        value = "latency_ms"
    return summarize(recs, by=by, value=value, percentiles=pcts,
                     slo_ms=slo, slo_target=slo_target, levels=run.table("levels"))


def spectrum(values: np.ndarray, percentiles: Sequence[float] = SPECTRUM) -> pd.DataFrame:
    """The percentile spectrum of ``values`` (HDR histogram style): ``percentile``, ``value``,
    ``lo``/``hi`` (order-statistics interval; NaN where the sample does not reach) and
    ``one_in`` = 1 / (1 - q) (the x axis of an HDR plot)."""
    x = np.sort(np.asarray(values, float))
    x = x[~np.isnan(x)]
    rows = []
    for q in percentiles:
        if not x.size:
            break
        v = float(np.percentile(x, q)) if q > 0 else float(x[0])
        lo, hi = intervals.quantile_ci(x, q / 100) if 0 < q < 100 else (np.nan, np.nan)
        rows.append({"percentile": float(q), "value": v, "lo": lo, "hi": hi, "one_in": 1 / (1 - q / 100)})
    rows.append({"percentile": 100.0, "value": float(x[-1]) if x.size else np.nan, "lo": np.nan, "hi": np.nan,
                 "one_in": float(x.size) if x.size else np.nan})
    return pd.DataFrame(rows, columns=["percentile", "value", "lo", "hi", "one_in"])
