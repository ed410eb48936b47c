"""The seed's published results beside ours (the seed's facts come from :mod:`mmslib.seed` only)."""
from __future__ import annotations

from typing import Dict, Optional, Sequence, Union

import numpy as np
import pandas as pd

from .. import planner
from .. import seed as seedmod
from ..outcome import more_models
from .collection import Runs
from .labels import LATENCY_STATS
from .tables import performance_side_by_side, saturation_side_by_side, stress_side_by_side

def seed_setting(kind: str = "stress") -> Dict[str, str]:
    """The seed's setting in words: ``{"setting", "versions", "machine", "runtime"}``."""
    env = seedmod.seed_environment()
    lim = seedmod.seed_cluster_limits()
    versions = f"kfserving {env['kfserving']}, knative {env['knative']}, istio {env['istio']}"
    cluster = (f"Kubernetes cluster, {lim['nodes']} worker nodes (<= {lim['max_pods_per_node']} pods, "
               f"<= {lim['memory_per_node']} memory each)")
    if kind == "stress":
        s = env["stress_test"]
        spec = (f"queue-proxy {s['queue_proxy']['cpu']} CPU/{s['queue_proxy']['memory']}; predictor "
                f"{s['traditional_predictor']['cpu']}/{s['traditional_predictor']['memory']} (traditional), "
                f"{s['mms_predictor']['cpu']} CPU/{s['mms_predictor']['memory']} (MMS)")
    else:
        s = env["performance_test"]
        spec = (f"predictor 1 CPU/16GB (+1 GPU for bert), queue-proxy 1 CPU/500Mi; "
                f"{s['load_generator']}, 60 s per rate")
    return {"setting": f"seed: {env['model_server']} on KServe ({cluster}); {spec}",
            "versions": versions, "machine": cluster, "runtime": env["model_server"]}


def _ours_setting(df: pd.DataFrame, runs: Optional[Runs]) -> pd.DataFrame:
    df = df.copy()
    df.insert(0, "source", "ours")
    labels = {}
    versions = {}
    if runs is not None:
        for r in runs:
            labels[r.key] = (f"{r.row['backend']} backend, {r.row['runtime']} runtime, {r.row['cluster']}: "
                             f"{r.row['machine']}")
            versions[r.key] = r.row["versions"]
    if "run" in df:
        df.insert(1, "setting", df["run"].map(labels).fillna(""))
        df.insert(2, "versions", df["run"].map(versions).fillna(""))
    return df


def seed_stress_rows() -> pd.DataFrame:
    s = seedmod.seed_stress_summary().set_index(["mode", "quantity"])["value"]
    specs = planner.seed_specs()
    rows = []
    unit = seedmod.seed_stress_summary().set_index(["mode", "quantity"])["unit"]
    for mode in ("traditional", "mms"):
        published_mem = f"{s[(mode, 'memory_total')]:g} {unit[(mode, 'memory_total')]}"
        models = s[(mode, "models")]
        isvcs = s[(mode, "isvcs")]
        spec = specs[mode].isvc
        mem_mib = spec.memory * isvcs / planner.MiB
        cpu = float(spec.cpu) * isvcs
        rows.append({
            "run": "seed", "run_id": "", "backend": "kserve", "runtime": "Triton", "workload": "simple_string",
            "machine": "6 worker nodes", "mode": mode, "models_target": np.nan, "models_deployed": models,
            "stop_reason": "not published" if mode == "mms" else "not published (planner: CPU)",
            "stop_detail": "", "servers": isvcs, "processes": isvcs,
            "pss_mib": np.nan, "rss_mib": np.nan, "pss_per_model_mib": np.nan,
            "reserved_cpu": cpu, "reserved_memory_mib": mem_mib,
            "reserved_cpu_per_model": cpu / models, "reserved_memory_mib_per_model": mem_mib / models,
            "deploy_rate_per_s": np.nan, "ready_p50_s": np.nan, "ready_p99_s": np.nan,
            "host_start_s": np.nan, "idle_cpu_cores": np.nan, "verify_ok": None,
            "mms_over_traditional": (more_models(s[("traditional", "models")], s[("mms", "models")])["mms_over_traditional"]
                                     if mode == "mms" else np.nan),
            "published": (f"{int(models):,} {'InferenceServices' if mode == 'traditional' else 'models on 6 ISVCs'}, "
                          f"{s[(mode, 'cpu_total')]:g} CPU, {published_mem}"),
        })
    return pd.DataFrame(rows).astype({"verify_ok": object})


def seed_saturation_rows() -> pd.DataFrame:
    sat = seedmod.seed_saturation()
    rows = []
    for r in sat.itertuples():
        if r.behaviour == "starts_scaling_at":
            t = seedmod.seed_latency(r.workload, r.mode)["client_qps"]
            below = t[t < r.client_qps]
            max_ok, first_fail = (float(below.max()) if len(below) else np.nan), float(r.client_qps)
            reason = f"starts to scale up at {r.client_qps:g} QPS"
        else:
            max_ok, first_fail, reason = float(r.client_qps), np.nan, f"handles up to {r.client_qps:g} QPS without scaling"
        rows.append({"run": "seed", "run_id": "", "backend": "kserve", "runtime": "Triton", "workload": r.workload,
                     "machine": "6 worker nodes", "mode": r.mode, "max_ok_qps": max_ok, "first_fail_qps": first_fail,
                     "fail_reason": reason, "slo_p99_ms": np.nan, "n_levels": np.nan, "published": r.published})
    return pd.DataFrame(rows)


def _seed_latency_rows(workloads: Optional[Sequence[str]]) -> pd.DataFrame:
    lat = seedmod.seed_latency()
    if workloads:
        lat = lat[lat["workload"].isin(list(workloads))]
    sat = seed_saturation_rows().set_index(["workload", "mode"])["max_ok_qps"]
    out = pd.DataFrame({
        "run": "seed", "run_id": "", "backend": "kserve", "runtime": "Triton", "workload": lat["workload"],
        "machine": "6 worker nodes", "models": 5, "hosts": np.where(lat["mode"] == "mms", 1, np.nan),
        "mode": lat["mode"], "qps": lat["client_qps"], "qps_per_isvc": lat["qps_per_isvc"],
        "qps_per_model": lat["qps_per_model"], **{s: lat[s] for s in LATENCY_STATS},
    })
    out["max_ok_qps"] = [sat.get((w, m), np.nan) for w, m in zip(out["workload"], out["mode"])]
    return out.reset_index(drop=True)


def with_seed(table: Union[Runs, pd.DataFrame], kind: str = "latency", runs: Optional[Runs] = None) -> pd.DataFrame:
    """Our rows (``source="ours"``, labelled with backend/runtime/machine and versions)
    followed by the seed's published rows (``source="seed"``, labelled with its setting:
    kfserving 0.5.1, Triton, 6 worker nodes, ...), same columns.

    ``kind``: ``"stress"`` (:func:`stress_side_by_side`; the seed's 352 ISVCs and ~10K
    models on 6 ISVCs, reserved CPU/memory computed from its specs, and its words in
    ``published``), ``"latency"`` (:func:`performance_side_by_side`; the seed's four
    tables, restricted to the workloads we ran when we ran any) or ``"saturation"``
    (:func:`saturation_side_by_side`; the seed's "up to ... without scaling").
    ``table`` is a :class:`Runs` (the side-by-side table is computed) or such a table
    (pass ``runs`` too to label our rows).
    """
    if kind not in ("stress", "latency", "saturation"):
        raise ValueError(f"kind must be 'stress', 'latency' or 'saturation', got {kind!r}")
    if isinstance(table, Runs):
        runs = table
        table = {"stress": stress_side_by_side, "latency": performance_side_by_side,
                 "saturation": saturation_side_by_side}[kind](runs)
    ours = _ours_setting(table, runs)
    if kind == "stress":
        seed = seed_stress_rows()
    elif kind == "saturation":
        seed = seed_saturation_rows()
        if len(table) and "workload" in table:
            seed = seed[seed["workload"].isin(set(table["workload"]))]
    else:
        seed = _seed_latency_rows(sorted(set(table["workload"])) if len(table) and "workload" in table else None)
    s = seed_setting("stress" if kind == "stress" else "performance")
    seed = seed.copy()
    seed.insert(0, "source", "seed")
    seed.insert(1, "setting", s["setting"])
    seed.insert(2, "versions", s["versions"])
    frames = [f for f in (ours, seed) if len(f)]
    if not frames:
        return ours
    out = pd.concat(frames, ignore_index=True, sort=False)
    first = list(ours.columns) if len(ours.columns) else list(seed.columns)
    out = out[[c for c in first if c in out.columns] + [c for c in out.columns if c not in first]]
    return _int_counts(out, ("models_target", "models_deployed", "servers", "processes", "models", "hosts", "n",
                             "errors", "n_levels", "n_repeats"))


def _int_counts(df: pd.DataFrame, cols: Sequence[str]) -> pd.DataFrame:
    """Count columns made float by NaN in a concat, back to nullable integers."""
    for c in cols:
        if c in df and df[c].dtype.kind == "f":
            v = df[c].dropna()
            if (v == np.floor(v)).all():
                df[c] = df[c].astype("Int64")
    return df
