"""Tables across runs: stress, performance and saturation side by side; per run and mode the
seed's latency table layout (with the seed's own table beside it)."""
from __future__ import annotations

from typing import Any, Dict, List

import numpy as np
import pandas as pd

from .. import seed as seedmod
from .. import seed_layout, stats
from ..outcome import more_models
from .collection import Runs
from .labels import LATENCY_STATS, MODE_LABEL, MODES, RUN_KEYS, STRESS_COLUMNS, mode_order


def stress_side_by_side(runs: Runs) -> pd.DataFrame:
    """One row per stress run and mode: models deployed, what stopped it, servers,
    processes, measured memory (total and per model), reserved CPU/memory (total
    and per model), deploy rate and time to ready, with ``mms_over_traditional``
    (models, same run) on the mms rows.  Keys: :data:`RUN_KEYS`."""
    df = runs.stress
    cols = RUN_KEYS + ["mode"] + STRESS_COLUMNS + ["mms_over_traditional"]
    if not len(df):
        return pd.DataFrame(columns=cols)
    out = df[[c for c in RUN_KEYS + ["mode"] + STRESS_COLUMNS if c in df.columns]].copy()
    ratio = {}
    for run, g in df.groupby("run", sort=False):
        m = g.set_index("mode")["models_deployed"]
        if {"traditional", "mms"} <= set(m.index) and m["traditional"]:
            ratio[run] = more_models(m["traditional"], m["mms"])["mms_over_traditional"]
    out["mms_over_traditional"] = [ratio.get(r) if mode == "mms" else np.nan
                                   for r, mode in zip(out["run"], out["mode"])]
    order = {r: i for i, r in enumerate(runs.runs["run"])}
    out = out.assign(_r=out["run"].map(order), _m=mode_order(out["mode"]))
    return out.sort_values(["_r", "_m"]).drop(columns=["_r", "_m"]).reset_index(drop=True)


def aggregate_levels(perf: pd.DataFrame) -> pd.DataFrame:
    """Median over repeats per (run, mode, qps); one repeat passes through."""
    if not len(perf):
        return perf
    keys = ["run", "mode", "qps"]
    if "repeat" in perf and perf.groupby(keys).size().max() > 1:
        agg = stats.aggregate_repeats(perf, keys=keys)
        extra = [c for c in ("server_ms", "compute_ms", "queue_ms") if c in perf.columns]
        if extra:
            agg = agg.merge(perf.groupby(keys)[extra].median().reset_index(), on=keys, how="left")
        meta = perf.drop_duplicates("run").set_index("run")
        for k in reversed([c for c in RUN_KEYS + ["models", "hosts"] if c != "run" and c in perf.columns]):
            agg.insert(1, k, agg["run"].map(meta[k]))
        if "errors_total" in agg:
            agg["errors"] = agg["errors_total"]
        return agg
    out = perf.copy()
    out["n_repeats"] = 1
    return out


def performance_side_by_side(runs: Runs) -> pd.DataFrame:
    """One row per performance run, mode and client rate (median over repeats):
    rates per InferenceService and per model, latency statistics (ms), requests,
    achieved rate, errors, validity, server-side time, and ``max_ok_qps`` - the
    highest rate the mode held in that run (saturation)."""
    base = ["mode", "qps", "qps_per_isvc", "qps_per_model", *LATENCY_STATS, "n", "achieved_qps", "errors",
            "valid", "few_samples", "n_repeats", "server_ms"]
    cols = RUN_KEYS + ["models", "hosts"] + base + ["max_ok_qps"]
    perf = runs.performance
    if not len(perf):
        return pd.DataFrame(columns=cols)
    out = aggregate_levels(perf)
    out = out[[c for c in cols if c in out.columns and c != "max_ok_qps"]].copy()
    sat = runs.saturation
    if len(sat) and "max_ok_qps" in sat:
        out = out.merge(sat[["run", "mode", "max_ok_qps"]], on=["run", "mode"], how="left")
    else:
        out["max_ok_qps"] = np.nan
    order = {r: i for i, r in enumerate(runs.runs["run"])}
    out = out.assign(_r=out["run"].map(order), _m=mode_order(out["mode"]))
    return out.sort_values(["_r", "_m", "qps"]).drop(columns=["_r", "_m"]).reset_index(drop=True)


def saturation_side_by_side(runs: Runs) -> pd.DataFrame:
    """One row per performance run and mode: the highest rate held (valid, no errors,
    p99 within the SLO), the first failing rate and why, the SLO."""
    cols = RUN_KEYS + ["mode", "max_ok_qps", "first_fail_qps", "fail_reason", "slo_p99_ms", "n_levels"]
    sat = runs.saturation
    if not len(sat):
        return pd.DataFrame(columns=cols)
    out = sat[[c for c in cols if c in sat.columns]].copy()
    order = {r: i for i, r in enumerate(runs.runs["run"])}
    out = out.assign(_r=out["run"].map(order), _m=mode_order(out["mode"]))
    return out.sort_values(["_r", "_m"]).drop(columns=["_r", "_m"]).reset_index(drop=True)


def performance_tables(runs: Runs, include_seed: bool = True) -> List[Dict[str, Any]]:
    """Per performance run and mode: ``{"run", "mode", "title", "ours", "seed",
    "seed_title"}`` where ``ours`` is :func:`mmslib.seed_layout.seed_table` of the run
    (the seed's layout, ms) and ``seed`` the seed's table for the same workload
    and mode in the same layout (None without one, or when ``include_seed`` is
    false)."""
    out = []
    for run in runs.of("performance"):
        perf = run.performance
        if not len(perf):
            continue
        p = run.params
        for mode in [m for m in MODES if m in set(perf["mode"])] + sorted(set(perf["mode"]) - set(MODES)):
            n = p.get("models")
            layout = (f"{n} single-model servers" if mode == "traditional"
                      else f"{p.get('hosts')} server(s) holding {n} models")
            title = (f"{run.key}: {MODE_LABEL.get(mode, mode)}, {layout} - {run.row['workload']}, "
                     f"{run.row['backend']}/{run.row['runtime']}, {run.row['machine']}")
            seed_t, seed_title = None, None
            if include_seed and run.row["workload"] in seedmod.PUBLISHED_WORKLOADS and mode in MODES:
                seed_t = _seed_layout(seedmod.seed_latency(run.row["workload"], mode), mode)
                env = seedmod.seed_environment()["performance_test"]["layout"][mode]
                seed_title = (f"seed: {MODE_LABEL[mode]}, {env['isvcs']} InferenceService(s)"
                              + (f" and {env['trained_models']} TrainedModels" if env["trained_models"] else "")
                              + f" - {run.row['workload']} (ms)")
            out.append({"run": run.key, "mode": mode, "title": title, "ours": seed_layout.seed_table(perf, mode),
                        "seed": seed_t, "seed_title": seed_title})
    return out


def _seed_layout(df: pd.DataFrame, mode: str) -> pd.DataFrame:
    t = pd.DataFrame({"Client side QPS": df["client_qps"].to_numpy(),
                      "QPS per InferenceService": df["qps_per_isvc"].to_numpy()})
    if mode == "mms":
        t["QPS per TrainedModel"] = df["qps_per_model"].to_numpy()
    for s in LATENCY_STATS:
        t[s] = df[s].to_numpy()
    return t
