"""The seed's table layout: a performance run's levels in the columns KServe's benchmark printed
(client QPS, QPS per InferenceService and per TrainedModel, mean, p50-p99, max), with the p99's
interval and, with repeats, the run-to-run range. One noun: the seed-layout table, read from
:func:`mmslib.stats.summarize`'s rows; :mod:`mmslib.stats` re-exports :func:`seed_table`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from . import stats

def _fmt_interval(lo: float, hi: float, digits: int | None) -> str:
    def f(v):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return "n/a"
        return f"{v:.{digits}f}" if digits is not None else f"{v:g}"
    return f"[{f(lo)}, {f(hi)}]"


def seed_table(summary: pd.DataFrame, mode: str, digits: int | None = 3) -> pd.DataFrame:
    """The seed's table layout for one ``mode``.

    Columns: ``Client side QPS``, ``QPS per InferenceService``,
    ``QPS per TrainedModel`` (mms only), ``mean``, ``p50``, ``p90``,
    ``p95``, ``p99``, ``max`` (ms), ``p99 95% CI`` (string ``"[lo, hi]"``,
    ``n/a`` for a bound the sample cannot give), ``n``, ``achieved QPS``,
    ``errors``, ``valid``.  With several repeats per level, values are the
    medians across repeats (:func:`mmslib.stats.aggregate_repeats`), ``errors`` is the
    total over repeats, ``valid`` requires all repeats valid, the CI column
    is the median of the per-run bounds (typical sampling uncertainty of one
    run) and two more columns follow: ``repeats`` and ``p99 range`` (min-max
    across repeats, the run-to-run variation).

    ``QPS per InferenceService`` = client QPS / n_servers of the mode (for
    traditional serving one model per InferenceService, for mms the number
    of hosting InferenceServices); ``QPS per TrainedModel`` = client QPS /
    n_models.  Both come from :func:`mmslib.stats.summarize`'s ``n_servers``/``n_models``.
    """
    missing = [c for c in ("mode", "qps") if c not in summary.columns]
    if missing:
        raise ValueError(f"summary is missing columns {missing}; has {list(summary.columns)}")
    df = summary[summary["mode"] == mode]
    multi = "repeat" in df and df.groupby("qps").size().max() > 1 if len(df) else False
    if multi:
        df = stats.aggregate_repeats(df)
    df = df.sort_values("qps").reset_index(drop=True)
    t = pd.DataFrame({"Client side QPS": df["qps"].to_numpy()})
    t["QPS per InferenceService"] = df["qps_per_isvc"].to_numpy()
    if mode == "mms":
        t["QPS per TrainedModel"] = df["qps_per_model"].to_numpy()
    for s in stats.SUMMARY_STATS:
        t[s] = df[s].to_numpy()
    t["p99 95% CI"] = [_fmt_interval(lo, hi, digits)
                       for lo, hi in zip(df["p99_lo"].to_numpy(float), df["p99_hi"].to_numpy(float))]
    n_col = df["n"].to_numpy(dtype=float)
    t["n"] = n_col.astype(np.int64) if np.all(np.mod(n_col, 1) == 0) else n_col
    t["achieved QPS"] = df["achieved_qps"].to_numpy()
    t["errors"] = (df["errors_total"] if multi else df["errors"]).to_numpy()
    t["valid"] = df["valid"].to_numpy(bool)
    if multi:
        t["repeats"] = df["n_repeats"].to_numpy()
        t["p99 range"] = [_fmt_interval(lo, hi, digits)
                          for lo, hi in zip(df["p99_min"].to_numpy(float),
                                            df["p99_max"].to_numpy(float))]
    if digits is not None:
        num = ["QPS per InferenceService", "QPS per TrainedModel", *stats.SUMMARY_STATS, "achieved QPS"]
        for c in num:
            if c in t:
                t[c] = t[c].astype(float).round(digits)
    return t
