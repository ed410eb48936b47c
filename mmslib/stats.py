"""Statistics from per-request records (the numbers behind the seed's tables).

Input contract
==============
``records``: one row per request, columns

* ``t_unix`` (float, request start, epoch seconds), ``latency_ms`` (float),
  ``status`` (int), ``ok`` (bool: success AND correct response),
  ``model`` (str), ``endpoint`` (str), ``warmup`` (bool),
* the experiment keys ``mode`` (``traditional`` | ``mms``), ``qps`` (target
  client-side rate) and ``repeat`` (0-based).

``levels`` (generator info from k6): one row per (mode, qps, repeat) with
``target_qps``, ``duration_s``, ``iterations``, ``dropped_iterations``.
As in :class:`mmslib.loadgen.LevelResult`, ``duration_s`` is the
*measured* duration: k6 runs ``warmup_s + duration_s`` seconds and the
requests started in the first ``warmup_s`` are warm-up.  ``iterations`` and
``dropped_iterations`` are k6's counts for the whole scenario (warm-up
included).  Optional columns: ``warmup_s`` (used only when ``iterations`` is
missing) and ``measured_s`` (overrides ``duration_s`` as the measured window).
Other columns (e.g. loadgen's own ``achieved_qps``) are ignored.

Decisions (documented once here, referred to below)
===================================================

Warm-up
    Rows with ``warmup`` true are excluded from *every* statistic
    (counts, latency, rates, time series by default).  ``n_warmup`` reports
    how many were dropped.

Latency over successful requests
    The seed (Vegeta) computed latency over all responses.  Here latency
    statistics (mean, p50..max, CIs) are computed over requests with
    ``ok`` true by default, and failures are reported separately (``errors``,
    ``error_rate``): a fast 503 or a timeout would otherwise pull the
    percentiles down or up in ways that hide the failure.  Pass
    ``latency_of="all"`` to reproduce the seed's convention.  ``n`` counts
    all non-warm-up requests; ``n_lat`` the requests that entered the
    latency statistics.

Percentiles
    numpy's default (``method="linear"``, virtual index ``(n-1)*q``), so
    ``p99`` equals ``np.percentile(latencies, 99)`` for the same data.

Achieved rate
    ``achieved_qps = n / measured_s`` where ``n`` counts all non-warm-up
    requests (sent requests, failures included) and ``measured_s`` is the
    length of the post-warm-up window of the level:

    1. ``levels.measured_s`` if given, else
    2. ``levels.duration_s`` (the post-warm-up duration k6 was asked for;
       this is loadgen's own definition, ``achieved_qps = measured /
       duration_s``), else
    3. without generator info for the level: the span of the measured
       request starts, ``(t_last - t_first) * n / (n - 1)`` (unbiased for a
       constant rate), and the level is marked invalid ("no generator info").

    Using the nominal window (1-2) rather than the span of the requests means
    a generator that stalls or stops early shows up as a low achieved rate.
    (If someone passes a ``duration_s`` that includes the warm-up, the rate
    comes out low and the level invalid: a loud failure, not a silent one.)

Validity (did the generator keep up?)
    ``drop_frac = dropped / (iterations + dropped)`` (k6's counts for the
    whole level; if ``iterations`` is missing, ``dropped / (target_qps *
    (warmup_s + duration_s))``).  A level is ``valid`` when ``drop_frac <= 0.1%`` and
    ``achieved_qps >= 99%`` of ``target_qps`` and it has measured requests.
    ``invalid_reason`` lists every failed condition ("" when valid).  Errors
    do not make a level invalid: they are a property of the server, reported
    in ``errors``.  For groups finer than a level (e.g. ``by`` includes
    ``model``) ``valid`` is the level's; for groups pooling several levels it
    is true only when all of them are valid.

    The allowance is a tenth of the p99's tail (0.1%): a dropped request
    would have been a slow one, so a 1% allowance could hide the whole tail
    the p99 describes. Attainment (:mod:`mmslib.summary`) counts drops as misses.

Confidence intervals
    ``p99_lo``/``p99_hi``: 95% interval for the 99th percentile that holds
    for dependent requests (:func:`mmslib.intervals.quantile_ci_dep`):
    latencies of neighbouring requests are correlated (a burst fills the
    queue), so the interval counts **busy periods**, not requests, as the
    independent units, and is never narrower than the distribution-free
    order-statistics interval (:func:`mmslib.intervals.quantile_ci`), which
    assumes independent requests. Its coverage is shown by simulation
    (``benchmarks/coverage_bench.py``). A bound that the sample cannot
    provide (too few requests beyond the quantile) is NaN, never a made-up
    number. Run-to-run differences are judged across repeats
    (:mod:`mmslib.compare`).

    ``max_lo``/``max_hi``: the sample maximum has no consistent confidence
    interval (the population maximum of a latency distribution may not
    exist; the bootstrap of the max is inconsistent: about 63% of bootstrap
    resamples reproduce the observed max exactly).  What is defensible is an
    interval for a very high quantile, so ``max_lo``/``max_hi`` are the 95%
    order-statistics interval of the **99.9th percentile** (column ``p999``),
    a "max" proxy; ``max`` itself is reported without uncertainty.  With
    fewer than ~3,700 latency samples ``max_hi`` is NaN (the sample does not
    reach far enough into the tail).

few_samples
    ``n_lat < 1000``: fewer than 10 requests lie beyond the p99, so the p99
    (and its CI) is unstable.

Speed: everything is grouped numpy (one ``lexsort``, ``bincount``), no Python
loop per request; 1M records summarize in well under a second.

Layout: one noun, the per-level statistics of a run (~830 lines, half of them the decisions
above): summarize, repeats, mode comparison, saturation and the time series all read the same
grouped records. The seed's table layout is :mod:`mmslib.seed_layout`.  The interval estimators are a noun of their own,
:mod:`mmslib.intervals`, re-exported here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from . import records as _records
from . import intervals
from .intervals import bootstrap_ci, order_ci_indices, quantile_ci

__all__ = [
    "LEVEL_KEYS",
    "RECORD_COLUMNS",
    "LEVEL_COLUMNS",
    "SUMMARY_COLUMNS",
    "SUMMARY_STATS",
    "MAX_PROXY_Q",
    "FEW_SAMPLES",
    "MAX_DROP_FRAC",
    "MIN_ACHIEVED_FRAC",
    "order_ci_indices",
    "quantile_ci",
    "bootstrap_ci",
    "summarize",
    "aggregate_repeats",
    "compare_modes",
    "saturation",
    "latency_timeseries",
]

LEVEL_KEYS: tuple[str, ...] = ("mode", "qps", "repeat")
#: The per-request columns (their one home: :mod:`mmslib.records`) plus the level keys.
RECORD_COLUMNS: tuple[str, ...] = tuple(_records.REQUEST_COLUMNS) + ("mode", "qps", "repeat")
#: Columns summarize() and latency_timeseries() actually read (plus ``by``).
RECORD_COLUMNS_MIN: tuple[str, ...] = ("t_unix", "latency_ms", "ok", "warmup")
LEVEL_COLUMNS: tuple[str, ...] = (
    "mode", "qps", "repeat", "target_qps", "duration_s", "iterations",
    "dropped_iterations",
)
#: Latency statistics reported per group (ms).
SUMMARY_STATS: tuple[str, ...] = ("mean", "p50", "p90", "p95", "p99", "max")
#: Quantile whose CI stands in for the (non-existent) CI of the max.
MAX_PROXY_Q = 0.999
#: Fewer latency samples than this: p99 unstable.
FEW_SAMPLES = 1000
#: Validity thresholds.
#: Dropped requests (the generator had no VU free: the answers were slow) would all sit in the tail.
#: To keep the p99 honest, a level may drop at most a tenth of its 1% tail.
MAX_DROP_FRAC = 0.001
MIN_ACHIEVED_FRAC = 0.99

_PCTS = {"p50": 0.50, "p90": 0.90, "p95": 0.95, "p99": 0.99, "p999": MAX_PROXY_Q}

SUMMARY_COLUMNS: tuple[str, ...] = (
    "n", "n_warmup", "n_lat", "errors", "error_rate",
    "target_qps", "measured_s", "achieved_qps", "iterations", "dropped",
    "drop_frac",
    "mean", "p50", "p90", "p95", "p99", "p999", "max",
    "p99_lo", "p99_hi", "max_lo", "max_hi",
    "valid", "invalid_reason", "few_samples",
    "qps_per_isvc", "qps_per_model",
)


# --------------------------------------------------------------------------
# Grouped machinery
# --------------------------------------------------------------------------

def _check_columns(df: pd.DataFrame, cols: Iterable[str], what: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"{what} is missing columns {missing}; has {list(df.columns)}")


def _group_codes(df: pd.DataFrame, by: Sequence[str]):
    """Group codes (0..G-1, sorted key order) and the key frame."""
    by = list(by)
    if len(df) == 0:
        return np.zeros(0, dtype=np.int64), df[by].iloc[:0].reset_index(drop=True)
    g = df.groupby(by, sort=True, observed=True, dropna=False)
    codes = g.ngroup().to_numpy(dtype=np.int64)
    keys = g.size().reset_index()[by]
    return codes, keys


def _sorted_groups(codes: np.ndarray, values: np.ndarray, G: int):
    order = np.lexsort((values, codes))
    sv = values[order]
    counts = np.bincount(codes, minlength=G).astype(np.int64)
    starts = np.cumsum(counts) - counts
    return sv, starts, counts


def _grouped_quantile(sv, starts, counts, q):
    """numpy 'linear' quantile per group from group-sorted values."""
    out = np.full(counts.shape, np.nan)
    has = counts > 0
    if not has.any():
        return out
    c, s = counts[has], starts[has]
    h = (c - 1) * q
    lo = np.floor(h).astype(np.int64)
    frac = h - lo
    hi = np.minimum(lo + 1, c - 1)
    a, b = sv[s + lo], sv[s + hi]
    out[has] = a + frac * (b - a)
    return out


def _grouped_latency(codes, values, G, conf=0.95, with_ci=True):
    sv, starts, counts = _sorted_groups(codes, values, G)
    res = {"n_lat": counts}
    with np.errstate(invalid="ignore", divide="ignore"):
        res["mean"] = np.where(
            counts > 0, np.bincount(codes, weights=values, minlength=G) / counts, np.nan)
    for name, q in _PCTS.items():
        res[name] = _grouped_quantile(sv, starts, counts, q)
    res["max"] = np.where(counts > 0, sv[np.maximum(starts + counts - 1, 0)]
                          if sv.size else np.nan, np.nan)
    if with_ci:
        for name, q in (("p99", 0.99), ("max", MAX_PROXY_Q)):
            lo_i, hi_i = order_ci_indices(counts, q, conf)
            for suffix, idx in (("_lo", lo_i), ("_hi", hi_i)):
                ok = idx >= 0
                col = np.full(G, np.nan)
                col[ok] = sv[starts[ok] + idx[ok]]
                res[name + suffix] = col
    return res


def _dependent_cis(res, records, codes, meas, lat_mask, G, conf, by) -> None:
    """Replace the p99 and p99.9 intervals by ones that hold for dependent requests: the busy
    periods of each level (:func:`mmslib.intervals.quantile_ci_dep`; repeats never share one).
    Never narrower than the independent order-statistics interval."""
    t = records["t_unix"].to_numpy(dtype=float)
    lat = records["latency_ms"].to_numpy(dtype=float)
    rep = records["repeat"].to_numpy() if "repeat" in records and "repeat" not in by else np.zeros(len(records))
    for g in range(G):
        m = meas & (codes == g)
        if not m.any():
            continue
        # failed requests hold nothing (a lone timeout does not stall a concurrent server)
        held = np.where(records["ok"].to_numpy(dtype=bool)[m], lat[m], np.nan)
        dep = intervals.dependence(t[m], rep[m], int(m.sum()), latency_s=held / 1000.0)
        keep = lat_mask[m]
        if keep.sum() < 2:
            continue
        sub = intervals.Dependence(dep.units[keep], dep.n_units, dep.unit_deff, dep.kind)
        x = lat[m][keep]
        for name, q in (("p99", 0.99), ("max", MAX_PROXY_Q)):
            lo, hi, _ = intervals.quantile_ci_dep(x, q, conf=conf, dep=sub)
            res[name + "_lo"][g], res[name + "_hi"][g] = lo, hi


def _prepare(records: pd.DataFrame, latency_of: str):
    if latency_of not in ("ok", "all"):
        raise ValueError(f"latency_of must be 'ok' or 'all', got {latency_of!r}")
    warm = records["warmup"].to_numpy(dtype=bool)
    ok = records["ok"].to_numpy(dtype=bool)
    lat = records["latency_ms"].to_numpy(dtype=float)
    meas = ~warm
    lat_mask = meas & ~np.isnan(lat)
    if latency_of == "ok":
        lat_mask &= ok
    return warm, ok, lat, meas, lat_mask


def _per_mode(value, modes: np.ndarray) -> np.ndarray:
    """Broadcast an int | Mapping[mode, int] | None to one float per row."""
    if value is None:
        return np.full(len(modes), np.nan)
    if isinstance(value, Mapping):
        return np.array([float(value.get(m, np.nan)) for m in modes], dtype=float)
    return np.full(len(modes), float(value))


def _level_info(records, levels, warm, meas, level_keys):
    """Per-level generator facts: measured_s, target, drops, validity."""
    lk = list(level_keys)
    t = records["t_unix"].to_numpy(dtype=float)
    codes, keys = _group_codes(records, lk)
    G = len(keys)
    tm = np.full(G, np.inf)
    tl = np.full(G, -np.inf)
    if G:
        np.minimum.at(tm, codes[meas], t[meas])
        np.maximum.at(tl, codes[meas], t[meas])
    n = np.bincount(codes[meas], minlength=G).astype(np.int64)
    info = keys.copy()
    info["_n_level"] = n

    if levels is not None and len(levels):
        _check_columns(levels, lk, "levels")
        lv = levels.copy()
        if lv.duplicated(lk).any():
            raise ValueError(f"levels has duplicate rows for keys {lk}")
        for c in ("target_qps", "duration_s", "iterations", "dropped_iterations",
                  "measured_s", "warmup_s"):
            if c not in lv.columns:
                lv[c] = np.nan
        lv = lv[lk + ["target_qps", "duration_s", "iterations",
                      "dropped_iterations", "measured_s", "warmup_s"]]
        lv = lv.rename(columns={"measured_s": "_measured_given"})
        # align key dtypes (e.g. qps int in one frame, float in the other)
        for c in lk:
            if (pd.api.types.is_numeric_dtype(info[c]) and pd.api.types.is_numeric_dtype(lv[c])
                    and info[c].dtype != lv[c].dtype):
                lv[c] = lv[c].astype(info[c].dtype)
        info = info.merge(lv, on=lk, how="left", indicator=True)
        have = (info["_merge"] == "both").to_numpy()
        info = info.drop(columns="_merge")
    else:
        for c in ("target_qps", "duration_s", "iterations", "dropped_iterations",
                  "_measured_given", "warmup_s"):
            info[c] = np.nan
        have = np.zeros(len(info), dtype=bool)

    dur = info["duration_s"].to_numpy(dtype=float)
    given = info["_measured_given"].to_numpy(dtype=float)
    wus = np.nan_to_num(info["warmup_s"].to_numpy(dtype=float))
    with np.errstate(invalid="ignore"):
        span = np.where(n > 1, (tl - tm) * n / np.maximum(n - 1, 1), np.nan)
    measured = np.where(~np.isnan(given), given, dur)
    measured = np.where(np.isnan(measured), span, measured)
    measured = np.where(measured > 0, measured, np.nan)
    info["measured_s"] = measured

    target = info["target_qps"].to_numpy(dtype=float)
    qps_key = pd.to_numeric(info["qps"], errors="coerce").to_numpy(dtype=float) \
        if "qps" in info else np.full(len(info), np.nan)
    target = np.where(np.isnan(target), qps_key, target)
    info["target_qps"] = target
    with np.errstate(invalid="ignore", divide="ignore"):
        achieved = n / measured
        it = info["iterations"].to_numpy(dtype=float)
        dr = info["dropped_iterations"].to_numpy(dtype=float)
        sched = np.where(np.isnan(it), target * (dur + wus), it + np.nan_to_num(dr))
        drop_frac = np.where(np.isnan(dr), np.nan, dr / np.where(sched > 0, sched, np.nan))
    info["_achieved_level"] = achieved
    info["_sched"] = sched
    info["drop_frac"] = drop_frac

    reasons = []
    valid = np.ones(len(info), dtype=bool)
    for i in range(len(info)):  # one iteration per level, not per request
        r = []
        if not have[i]:
            r.append("no generator info")
        if n[i] == 0:
            r.append("no measured requests")
        if have[i]:
            if np.isnan(drop_frac[i]):
                r.append("dropped_iterations unknown")
            elif drop_frac[i] > MAX_DROP_FRAC:
                r.append(f"dropped {100 * drop_frac[i]:.2f}% > {100 * MAX_DROP_FRAC:g}%"
                         f" of scheduled")
            if np.isnan(achieved[i]) or np.isnan(target[i]):
                if n[i] > 0:
                    r.append("achieved rate unknown")
            elif achieved[i] < MIN_ACHIEVED_FRAC * target[i]:
                r.append(f"achieved {achieved[i]:.4g} qps < {100 * MIN_ACHIEVED_FRAC:g}%"
                         f" of target {target[i]:.4g}")
        valid[i] = not r
        reasons.append("; ".join(r))
    info["valid"] = valid
    info["invalid_reason"] = reasons
    info["dropped"] = info["dropped_iterations"]
    return info


# --------------------------------------------------------------------------
# summarize
# --------------------------------------------------------------------------

def summarize(records: pd.DataFrame, levels: pd.DataFrame | None = None,
              by: Sequence[str] = LEVEL_KEYS, n_servers=None, n_models=None,
              conf: float = 0.95, latency_of: str = "ok") -> pd.DataFrame:
    """One row per group of ``by`` with counts, rates, latency statistics,
    confidence intervals and validity flags.

    Parameters
    ----------
    records, levels
        See the module docstring (input contract).  ``levels`` may be None:
        then every level is invalid ("no generator info") and the rate comes
        from the span of the requests.
    by
        Grouping keys; default one row per level ``(mode, qps, repeat)``.
        Finer groups (add ``"model"``) inherit their level's validity; their
        ``achieved_qps`` is their own rate over the level's window.  Coarser
        groups (``("mode", "qps")`` pooling repeats) sum windows and drops.
    n_servers
        InferenceServices per mode: an int (all modes) or a mapping such as
        ``{"traditional": 5, "mms": 1}``.  ``qps_per_isvc = qps /
        n_servers[mode]``.  None: NaN.
    n_models
        Models served in the experiment; ``qps_per_model = qps / n_models``.
        None: NaN.
    conf
        Confidence level for ``p99_lo/p99_hi`` and ``max_lo/max_hi``.
    latency_of
        ``"ok"`` (default): latency over successful requests only;
        ``"all"``: over all responses, as the seed did.

    Returns
    -------
    DataFrame with columns ``by`` + :data:`SUMMARY_COLUMNS`:
    ``n, n_warmup, n_lat, errors, error_rate, target_qps, measured_s,
    achieved_qps, iterations, dropped, drop_frac, mean, p50, p90, p95, p99,
    p999, max, p99_lo, p99_hi, max_lo, max_hi, valid, invalid_reason,
    few_samples, qps_per_isvc, qps_per_model`` (latencies in ms, rates in
    requests/s).  ``max_lo/max_hi`` are the CI of ``p999`` (see module doc).
    With the default ``by``, a level present in ``levels`` but without any
    record is kept as a row with ``n == 0``, ``valid`` false and
    ``invalid_reason == "no records"``.
    """
    by = list(by)
    _check_columns(records, list(dict.fromkeys(RECORD_COLUMNS_MIN + LEVEL_KEYS + tuple(by))),
                   "records")
    level_keys = list(LEVEL_KEYS)
    warm, ok, lat, meas, lat_mask = _prepare(records, latency_of)

    codes, keys = _group_codes(records, by)
    G = len(keys)
    out = keys.copy()
    out["n"] = np.bincount(codes[meas], minlength=G).astype(np.int64)
    out["n_warmup"] = np.bincount(codes[warm], minlength=G).astype(np.int64)
    errors = np.bincount(codes[meas & ~ok], minlength=G).astype(np.int64)

    lat_stats = _grouped_latency(codes[lat_mask], lat[lat_mask], G, conf=conf)
    _dependent_cis(lat_stats, records, codes, meas, lat_mask, G, conf, by)
    out["n_lat"] = lat_stats["n_lat"]
    out["errors"] = errors
    with np.errstate(invalid="ignore", divide="ignore"):
        out["error_rate"] = np.where(out["n"] > 0, errors / out["n"].to_numpy(), np.nan)

    # ---- generator / rate / validity (per level, mapped onto groups)
    info = _level_info(records, levels, warm, meas, level_keys)
    combo_cols = list(dict.fromkeys(by + level_keys))
    combos = records[combo_cols].drop_duplicates()
    combos = combos.merge(info, on=level_keys, how="left")
    agg = combos.groupby(by, sort=True, observed=True, dropna=False).agg(
        target_qps=("target_qps", "mean"),
        measured_s=("measured_s", lambda s: s.sum(min_count=1)),
        iterations=("iterations", lambda s: s.sum(min_count=1)),
        dropped=("dropped", lambda s: s.sum(min_count=1)),
        _sched=("_sched", lambda s: s.sum(min_count=1)),
        valid=("valid", "all"),
        invalid_reason=("invalid_reason", _join_reasons),
    ).reset_index()
    if len(agg):
        # pooled drop fraction over the levels in the group
        sc, dr = agg.pop("_sched").to_numpy(float), agg["dropped"].to_numpy(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            agg["drop_frac"] = dr / np.where(sc > 0, sc, np.nan)
        out = out.merge(agg, on=by, how="left")
    else:
        for c in ("target_qps", "measured_s", "iterations", "dropped", "drop_frac",
                  "invalid_reason"):
            out[c] = pd.Series(dtype=float if c != "invalid_reason" else object)
        out["valid"] = pd.Series(dtype=bool)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["achieved_qps"] = out["n"].to_numpy(float) / out["measured_s"].to_numpy(float)

    for name in ("mean", "p50", "p90", "p95", "p99", "p999", "max",
                 "p99_lo", "p99_hi", "max_lo", "max_hi"):
        out[name] = lat_stats[name]
    out["valid"] = out["valid"].astype(bool)
    out["few_samples"] = out["n_lat"].to_numpy() < FEW_SAMPLES

    out["qps_per_isvc"] = np.nan
    out["qps_per_model"] = np.nan
    out = out[by + list(SUMMARY_COLUMNS)]
    if levels is not None and len(levels) and sorted(by) == sorted(LEVEL_KEYS):
        out = _add_levels_without_records(out, levels, by, records)
    # per-InferenceService / per-model rates need mode and qps among `by`
    if "qps" in out and "mode" in out:
        qps_vals = pd.to_numeric(out["qps"], errors="coerce").to_numpy(float)
        modes = out["mode"].to_numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            out["qps_per_isvc"] = qps_vals / _per_mode(n_servers, modes)
            out["qps_per_model"] = qps_vals / _per_mode(n_models, modes)
    return out


def _add_levels_without_records(out, levels, by, records):
    """Levels the generator reports but no record belongs to: keep them
    visible as invalid rows with n == 0 instead of silently losing them."""
    lk = list(LEVEL_KEYS)
    lv = levels[lk].drop_duplicates().copy()
    for c in lk:
        if (pd.api.types.is_numeric_dtype(lv[c]) and pd.api.types.is_numeric_dtype(records[c])
                and lv[c].dtype != records[c].dtype):
            lv[c] = lv[c].astype(records[c].dtype)
    seen = out[lk].drop_duplicates().assign(_seen=True)
    lv = lv.merge(seen, on=lk, how="left")
    lv = lv[lv["_seen"].isna()].drop(columns="_seen")
    if not len(lv):
        return out
    extra = lv.merge(levels.drop_duplicates(lk).astype({c: lv[c].dtype for c in lk}),
                     on=lk, how="left")
    rows = pd.DataFrame({c: extra[c] for c in by})
    for c in ("n", "n_warmup", "n_lat", "errors"):
        rows[c] = 0
    rows["target_qps"] = extra.get("target_qps", pd.Series(np.nan, index=extra.index))
    rows["iterations"] = extra.get("iterations", pd.Series(np.nan, index=extra.index))
    rows["dropped"] = extra.get("dropped_iterations", pd.Series(np.nan, index=extra.index))
    with np.errstate(invalid="ignore", divide="ignore"):
        it, dr = rows["iterations"].to_numpy(float), rows["dropped"].to_numpy(float)
        rows["drop_frac"] = dr / (it + dr)
    rows["valid"] = False
    rows["invalid_reason"] = "no records"
    rows["few_samples"] = True
    rows = rows.reindex(columns=out.columns)
    if not len(out):
        return rows.reset_index(drop=True)
    res = pd.concat([out, rows], ignore_index=True)
    res = res.sort_values(by, kind="stable").reset_index(drop=True)
    for c in ("n", "n_warmup", "n_lat", "errors"):
        res[c] = res[c].astype(np.int64)
    res["valid"] = res["valid"].astype(bool)
    res["few_samples"] = res["few_samples"].astype(bool)
    return res


def _join_reasons(s: pd.Series) -> str:
    parts = [r for r in dict.fromkeys(s.dropna().astype(str)) if r]
    return " | ".join(parts)


# --------------------------------------------------------------------------
# Repeats and mode comparison
# --------------------------------------------------------------------------

_MEDIAN_COLS = ("n", "n_warmup", "n_lat", "errors", "error_rate", "target_qps",
                "measured_s", "achieved_qps", "dropped", "drop_frac",
                "mean", "p50", "p90", "p95", "p99", "p999", "max",
                "p99_lo", "p99_hi", "max_lo", "max_hi",
                "qps_per_isvc", "qps_per_model")
_SPREAD_COLS = ("mean", "p50", "p99")


def aggregate_repeats(summary: pd.DataFrame, keys: Sequence[str] = ("mode", "qps"),
                      ) -> pd.DataFrame:
    """Per ``keys`` (default ``(mode, qps)``): the median across repeats of
    every statistic (same column names as :func:`summarize`), plus

    * ``n_repeats``, ``n_valid``, ``valid`` (all repeats valid),
      ``invalid_reason`` ("repeat r: reason" joined),
    * ``few_samples`` (any repeat), ``errors_max``, ``errors_total``,
    * run-to-run spread of ``mean``, ``p50``, ``p99``: ``{s}_min``,
      ``{s}_max``, ``{s}_iqr`` (75th-25th percentile across repeats, numpy
      linear; 0 with one repeat) and ``{s}_mad`` (median absolute deviation).

    The medians of ``p99_lo``/``p99_hi`` describe a typical single run's
    sampling uncertainty, not the uncertainty of the median; use the
    ``p99_min``/``p99_max`` range for run-to-run variation.
    """
    keys = list(keys)
    _check_columns(summary, keys + ["repeat"], "summary")
    df = summary.copy()
    if "invalid_reason" in df:
        df["_reason"] = np.where(df["invalid_reason"].fillna("") != "",
                                 "repeat " + df["repeat"].astype(str) + ": "
                                 + df["invalid_reason"].fillna("").astype(str), "")
    g = df.groupby(keys, sort=True, observed=True, dropna=False)
    med_cols = [c for c in _MEDIAN_COLS if c in df.columns]
    out = g[med_cols].median()
    out.insert(0, "n_repeats", g.size())
    if "valid" in df:
        out["n_valid"] = g["valid"].sum().astype(np.int64)
        out["valid"] = g["valid"].all()
    if "_reason" in df:
        out["invalid_reason"] = g["_reason"].agg(_join_reasons)
    if "few_samples" in df:
        out["few_samples"] = g["few_samples"].any()
    if "errors" in df:
        out["errors_max"] = g["errors"].max()
        out["errors_total"] = g["errors"].sum()
    for s in _SPREAD_COLS:
        if s not in df:
            continue
        gs = g[s]
        out[f"{s}_min"] = gs.min()
        out[f"{s}_max"] = gs.max()
        out[f"{s}_iqr"] = gs.quantile(0.75) - gs.quantile(0.25)
        out[f"{s}_mad"] = gs.agg(lambda v: float(np.median(np.abs(v - np.median(v))))
                                 if len(v) else np.nan)
    return out.reset_index()


def compare_modes(summary: pd.DataFrame, modes: tuple[str, str] = ("traditional", "mms"),
                  stats: Sequence[str] = ("p50", "p99")) -> pd.DataFrame:
    """Per ``qps``: how ``modes[1]`` (mms) differs from ``modes[0]``
    (traditional), using the median across repeats.

    Columns: ``qps``, ``n_repeats_<a>``, ``n_repeats_<b>``, ``valid`` (all
    repeats of both modes valid) and for each stat ``s``: ``s_<a>``,
    ``s_<b>`` (medians), ``s_diff`` (b - a, ms), ``s_ratio`` (b / a),
    ``s_spread`` (the larger of the two modes' repeat ranges max-min) and
    ``s_beyond_spread``:

    * ``"yes"`` when the two modes' repeat ranges ``[min, max]`` do not
      overlap (every repeat of one mode is above every repeat of the other),
    * ``"no"`` otherwise,
    * ``"unknown (1 repeat)"`` when either mode has a single repeat, and
      ``"unknown (missing mode)"`` when a mode lacks the level.

    Reading the rule: if the modes did not differ and repeats were
    exchangeable, complete separation of k vs k repeats happens by chance
    with probability 2 / C(2k, k): 0.33 (k=2), 0.10 (k=3), 0.029 (k=4),
    0.008 (k=5).  So "yes" with 3 repeats is suggestive, with 5 it is strong.
    """
    a, b = modes
    _check_columns(summary, ["mode", "qps", "repeat"], "summary")
    df = summary[summary["mode"].isin([a, b])]
    g = df.groupby(["qps", "mode"], sort=True, observed=True)
    cols = list(stats)
    med = g[cols].median().unstack("mode")
    mn = g[cols].min().unstack("mode")
    mx = g[cols].max().unstack("mode")
    nrep = g.size().unstack("mode")
    valid = g["valid"].all().unstack("mode") if "valid" in df else None
    qps_index = nrep.index
    out = pd.DataFrame({"qps": qps_index.to_numpy()})

    def col(frame, stat, mode):
        if frame is None:
            return np.full(len(qps_index), np.nan)
        key = (stat, mode) if stat is not None else mode
        if key in frame.columns:
            return frame[key].to_numpy(dtype=float)
        return np.full(len(qps_index), np.nan)

    na = np.nan_to_num(col(nrep, None, a)).astype(int)
    nb = np.nan_to_num(col(nrep, None, b)).astype(int)
    out[f"n_repeats_{a}"] = na
    out[f"n_repeats_{b}"] = nb
    if valid is not None:
        va = np.where(np.isnan(col(valid, None, a)), 0, col(valid, None, a)).astype(bool)
        vb = np.where(np.isnan(col(valid, None, b)), 0, col(valid, None, b)).astype(bool)
        out["valid"] = va & vb
    for s in cols:
        ma, mb = col(med, s, a), col(med, s, b)
        out[f"{s}_{a}"] = ma
        out[f"{s}_{b}"] = mb
        with np.errstate(invalid="ignore", divide="ignore"):
            out[f"{s}_diff"] = mb - ma
            out[f"{s}_ratio"] = mb / ma
        lo_a, hi_a = col(mn, s, a), col(mx, s, a)
        lo_b, hi_b = col(mn, s, b), col(mx, s, b)
        out[f"{s}_spread"] = np.fmax(hi_a - lo_a, hi_b - lo_b)
        separated = (lo_b > hi_a) | (lo_a > hi_b)
        verdict = np.where(separated, "yes", "no").astype(object)
        verdict[(na == 1) | (nb == 1)] = "unknown (1 repeat)"
        verdict[(na == 0) | (nb == 0)] = "unknown (missing mode)"
        out[f"{s}_beyond_spread"] = verdict
    return out


# --------------------------------------------------------------------------
# Saturation
# --------------------------------------------------------------------------

def saturation(summary: pd.DataFrame, slo_p99_ms: float, rule: str = "all") -> pd.DataFrame:
    """Per mode: the highest rate the system sustains.

    A level (one ``qps`` of one mode) *passes* when it is valid (generator
    kept up), has zero errors and its p99 is **shown** to be within the SLO:
    the upper end of its 95% interval (``p99_hi``, dependence-aware) is
    ``<= slo_p99_ms``. A level whose interval straddles the SLO (or cannot be
    bounded: too few requests) fails with "not enough data", never passes on
    its point estimate. Without ``p99_hi`` in the summary the point estimate is
    used.  With repeats:

    * ``rule="all"`` (default, conservative): every repeat must pass each
      condition;
    * ``rule="median"``: each condition is evaluated on the median repeat
      (median p99 <= SLO, median error count == 0, median of valid == 1,
      i.e. more than half the repeats valid).

    Levels are scanned in ascending ``qps``; ``max_ok_qps`` is the highest
    rate below the first failing one (NaN if the lowest fails),
    ``first_fail_qps`` the first failing rate (NaN if none fails) and
    ``fail_reason`` why ("invalid: ...", "errors: ...", "p99 ... > SLO").
    ``passes_above_fail`` flags a higher level that passes again (noise or a
    non-monotone system; look at it).  Columns: ``mode, max_ok_qps,
    first_fail_qps, fail_reason, n_levels, passes_above_fail, slo_p99_ms,
    rule``.
    """
    if rule not in ("all", "median"):
        raise ValueError(f"rule must be 'all' or 'median', got {rule!r}")
    _check_columns(summary, ["mode", "qps", "valid", "errors", "p99"], "summary")
    rows = []
    for mode, dm in summary.groupby("mode", sort=True, observed=True):
        passes, reasons, qs = [], [], []
        for qps, dl in dm.groupby("qps", sort=True):
            valid = dl["valid"].to_numpy(bool)
            errs = dl["errors"].to_numpy(float)
            p99 = dl["p99"].to_numpy(float)
            hi = dl["p99_hi"].to_numpy(float) if "p99_hi" in dl else p99
            lo = dl["p99_lo"].to_numpy(float) if "p99_lo" in dl else p99
            r = []
            if rule == "all":
                bad_valid = not valid.all()
                bad_err = bool((errs > 0).any())
                p99_shown = np.nanmax(p99) if not np.isnan(p99).all() else np.nan
                hi_shown = np.nan if np.isnan(hi).any() else np.max(hi)
                lo_shown = np.nanmax(lo) if not np.isnan(lo).all() else np.nan
                p99_label = "p99" if len(p99) == 1 else "worst p99"
            else:
                bad_valid = not np.median(valid.astype(float)) == 1.0
                bad_err = not np.median(errs) == 0
                p99_shown, hi_shown, lo_shown = np.median(p99), np.median(hi), np.median(lo)
                p99_label = "p99" if len(p99) == 1 else "median p99"
            bad_slo = bool(np.isnan(hi_shown) or hi_shown > slo_p99_ms)
            if bad_valid:
                why = ""
                if "invalid_reason" in dl:
                    why = _join_reasons(dl["invalid_reason"])
                n_bad = int((~valid).sum())
                r.append(f"invalid ({n_bad}/{len(valid)} repeats)" + (f": {why}" if why else ""))
            if bad_err:
                tot = int(np.nansum(errs))
                rate = ""
                if "n" in dl:
                    nn = float(dl["n"].sum())
                    rate = f" ({100 * tot / nn:.3g}%)" if nn else ""
                r.append(f"errors: {tot}{rate}")
            if bad_slo:
                if np.isnan(p99_shown):
                    r.append("p99 unknown (no successful requests)")
                elif lo_shown == lo_shown and lo_shown > slo_p99_ms or p99_shown > slo_p99_ms and "p99_lo" not in dl:
                    r.append(f"{p99_label} {p99_shown:.4g} ms > SLO {slo_p99_ms:g} ms")
                else:
                    r.append(f"not enough data: {p99_label} {p99_shown:.4g} ms, 95% interval up to "
                             + (f"{hi_shown:.4g} ms" if hi_shown == hi_shown else "unbounded (too few requests)")
                             + f", not shown <= SLO {slo_p99_ms:g} ms")
            qs.append(qps)
            passes.append(not r)
            reasons.append("; ".join(r))
        passes_arr = np.array(passes, dtype=bool)
        fail_idx = np.flatnonzero(~passes_arr)
        if fail_idx.size:
            f = int(fail_idx[0])
            max_ok = float(qs[f - 1]) if f > 0 else np.nan
            first_fail, reason = float(qs[f]), reasons[f]
            above = bool(passes_arr[f + 1:].any())
        else:
            max_ok, first_fail, above = float(qs[-1]), np.nan, False
            reason = "no failing level tested (saturation is above the highest rate)"
        rows.append({"mode": mode, "max_ok_qps": max_ok, "first_fail_qps": first_fail,
                     "fail_reason": reason, "n_levels": len(qs),
                     "passes_above_fail": above, "slo_p99_ms": float(slo_p99_ms),
                     "rule": rule})
    return pd.DataFrame(rows, columns=["mode", "max_ok_qps", "first_fail_qps", "fail_reason",
                                       "n_levels", "passes_above_fail", "slo_p99_ms", "rule"])


# --------------------------------------------------------------------------
# Time series
# --------------------------------------------------------------------------

def latency_timeseries(records: pd.DataFrame, bin_s: float = 1.0,
                       by: Sequence[str] = LEVEL_KEYS, include_warmup: bool = False,
                       latency_of: str = "ok") -> pd.DataFrame:
    """Latency over time per ``by`` group (default one series per level).

    Time is measured from the group's first request start (warm-up
    included, so warm-up and measured bins share an axis) and binned into
    ``bin_s``-second bins.  Columns: ``by`` + ``t_s`` (bin start, seconds
    since the group's start), ``warmup`` (bin holds warm-up requests; only
    when ``include_warmup``), ``count`` (requests started in the bin),
    ``errors``, ``n_lat``, ``mean``, ``p50``, ``p99`` (ms, over ok requests
    unless ``latency_of="all"``).  Warm-up requests are excluded unless
    ``include_warmup=True``.
    """
    if not bin_s > 0:
        raise ValueError(f"bin_s must be > 0, got {bin_s!r}")
    by = list(by)
    _check_columns(records, list(RECORD_COLUMNS_MIN) + by, "records")
    warm, ok, lat, meas, lat_mask = _prepare(records, latency_of)
    gcodes, _ = _group_codes(records, by)
    t = records["t_unix"].to_numpy(float)
    G = int(gcodes.max()) + 1 if gcodes.size else 0
    t0 = np.full(G, np.inf)
    if G:
        np.minimum.at(t0, gcodes, t)
    bins = np.floor((t - t0[gcodes]) / bin_s).astype(np.int64) if G else np.zeros(0, np.int64)
    keep = np.ones(len(records), bool) if include_warmup else meas
    if include_warmup:
        lat_mask = lat_mask | (warm & ~np.isnan(lat) & (ok if latency_of == "ok" else True))
    frame = records.loc[keep, by].copy()
    frame["_bin"] = bins[keep]
    if include_warmup:
        frame["warmup"] = warm[keep]
        key_cols = by + ["_bin", "warmup"]
    else:
        key_cols = by + ["_bin"]
    codes, keys = _group_codes(frame, key_cols)
    K = len(keys)
    out = keys.rename(columns={"_bin": "t_s"})
    out["t_s"] = out["t_s"].astype(float) * bin_s
    out["count"] = np.bincount(codes, minlength=K).astype(np.int64)
    ok_k = ok[keep]
    out["errors"] = np.bincount(codes[~ok_k], minlength=K).astype(np.int64)
    lm = lat_mask[keep]
    sv, starts, counts = _sorted_groups(codes[lm], lat[keep][lm], K)
    out["n_lat"] = counts
    with np.errstate(invalid="ignore", divide="ignore"):
        out["mean"] = np.where(counts > 0, np.bincount(codes[lm], weights=lat[keep][lm],
                                                       minlength=K) / counts, np.nan)
    out["p50"] = _grouped_quantile(sv, starts, counts, 0.5)
    out["p99"] = _grouped_quantile(sv, starts, counts, 0.99)
    return out
