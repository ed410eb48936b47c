"""Labels the report shows: run keys, mode names, machine/runtime/version labels, number formats.

Facts about workloads (artifact size, what a model computes, declared memory) come from
:mod:`mmslib.workloads`; the seed's facts from :mod:`mmslib.seed`.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Dict, Optional, Union

import numpy as np
import pandas as pd

from ..runtimes import version_keys

ROOT = Path(__file__).resolve().parent.parent.parent
MODES = ("traditional", "mms")
MODE_LABEL = {"traditional": "traditional", "mms": "multi-model"}
RUN_KEYS = ["run", "run_id", "backend", "runtime", "workload", "machine"]
LATENCY_STATS = ["mean", "p50", "p90", "p95", "p99", "max"]
#: Version keys worth showing, in order, per component.
VERSION_KEYS = {k: list(v) for k, v in version_keys().items()}  # each runtime declares its packages

RUN_COLUMNS = [
    "run", "path", "experiment", "run_id", "status", "format_version", "started", "duration_s", "output_dir",
    "git_sha", "backend", "runtime", "workload", "device", "modes", "models", "hosts", "qps", "cluster", "machine",
    "hostname", "cpu_model", "cpus", "memory_gib", "gpu", "gpus", "versions", "mmslib", "python", "gate",
]
STRESS_COLUMNS = [
    "models_target", "models_deployed", "stop_reason", "stop_detail", "servers", "processes",
    "pss_mib", "rss_mib", "pss_per_model_mib", "reserved_cpu", "reserved_memory_mib",
    "reserved_cpu_per_model", "reserved_memory_mib_per_model", "deploy_rate_per_s", "ready_p50_s",
    "ready_p99_s", "host_start_s", "idle_cpu_cores", "verify_ok",
]


def workload_facts(name: Optional[str]) -> Dict[str, Any]:
    """``{"bytes", "text", "memory"}`` for a workload, from its own module (one home per fact)."""
    from ..workloads import WORKLOADS, get_workload
    if name not in WORKLOADS:
        return {"bytes": None, "text": "unknown workload", "memory": "?"}
    w = get_workload(name)
    b = getattr(w, "artifact_bytes", 0) or None
    size = (f"{b:,} B" if b and b < 2**20 else f"~{b / 2**20:.0f} MiB" if b else "size not declared")
    mem = w.memory_estimate_bytes
    mem_text = f"{mem / 2**20:g}Mi" if mem else "?"
    return {"bytes": b, "text": f"{size} ({getattr(w, 'description', '') or name})", "memory": mem_text}


def machine_label(m: Dict[str, Any]) -> str:
    if not m:
        return "unknown machine"
    cpus = m.get("cpus_usable") or m.get("cpu_count")
    mem = m.get("memory_total_bytes")
    parts = [f"{cpus} CPU" if cpus else "? CPU", f"{mem / 2**30:.1f} GiB" if mem else "? GiB"]
    gpus = gpu_count(m)
    if gpus:
        parts.append(f"{gpus} GPU")
    return f"{m.get('hostname', '?')} ({', '.join(parts)})"


def gpu_count(m: Dict[str, Any]) -> int:
    g = (m or {}).get("gpu") or ""
    return len([ln for ln in str(g).splitlines() if ln.strip()])


def on_cluster(params: Dict[str, Any]) -> bool:
    """Whether the run's backend declares it runs on a cluster (:func:`mmslib.backends.describe`)."""
    from ..backends import BACKENDS, describe
    name = params.get("backend")
    return bool(describe(name)["on_cluster"]) if name in BACKENDS else False


def cluster_label(params: Dict[str, Any], env: Optional[Dict[str, Any]]) -> str:
    """"one machine", or the cluster a run ran on as its ``meta["environment"]`` recorded it
    (:meth:`mmslib.backends.base.Backend.environment`): "Kubernetes v1.31, 3 nodes: 48 CPU, 192 GiB"."""
    if not on_cluster(params):
        return "one machine"
    env = env or {}
    parts = ["Kubernetes" + (f" {env['kubernetes_version']}" if env.get("kubernetes_version") else "")]
    if isinstance(env.get("nodes"), int):
        shape = f"{env['nodes']} node{'s' if env['nodes'] != 1 else ''}"
        if env.get("allocatable_cpu") is not None:
            shape += f": {env['allocatable_cpu']:g} CPU, {env.get('allocatable_memory_gib', 0):g} GiB"
        if env.get("allocatable_gpus"):
            shape += f", {env['allocatable_gpus']} GPU"
        parts.append(shape)
    elif env.get("nodes"):
        parts.append(f"nodes {env['nodes']}")
    else:
        parts.append("cluster not recorded")
    return ", ".join(parts)


def runtime_label(params: Dict[str, Any]) -> str:
    if on_cluster(params):
        return str(params.get("serving_runtime") or params.get("runtime") or "?")
    return str(params.get("runtime") or "?")


def workload_packages(workload: Optional[str]) -> list:
    """The distributions a workload declares (``Workload.packages``)."""
    from ..workloads import WORKLOADS, get_workload
    return list(getattr(get_workload(workload), "packages", ())) if workload in WORKLOADS else []


def versions_label(versions: Dict[str, Any], params: Dict[str, Any], experiment: str) -> str:
    keys = ["mmslib"]
    rt = params.get("runtime", "kserve")
    keys += VERSION_KEYS.get(rt, [rt])
    if on_cluster(params) and "kubernetes" not in keys:
        keys.append("kubernetes")
    keys += workload_packages(params.get("workload"))
    if experiment != "stress":
        keys.append("k6")
    keys.append("python")
    seen = []
    for k in keys:
        if k in versions and k not in seen:
            seen.append(k)
    return ", ".join(f"{k} {versions[k]}" for k in seen)


def resolve(path: Union[str, Path]) -> Path:
    """A relative path that does not exist from here is tried from the repository root."""
    p = Path(path)
    if not p.is_absolute() and not p.exists() and (ROOT / p).exists():
        return ROOT / p
    return p


def fmt(x, nd: int = 1) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if isinstance(x, (int, np.integer)) or (isinstance(x, float) and x.is_integer() and abs(x) >= 1):
        return f"{int(x):,}"
    return f"{x:,.{nd}f}"


def ms(x) -> str:
    if x is None or pd.isna(x):
        return "n/a"
    return f"{x:.2f}" if x < 100 else f"{x:,.0f}"


def mode_order(s: pd.Series) -> pd.Series:
    return s.map({m: i for i, m in enumerate(MODES)}).fillna(len(MODES))


def _fmt_cell(x) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)) or x is pd.NA:
        return ""
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "no"
    if isinstance(x, (int, np.integer)):
        return f"{int(x):,}"
    if isinstance(x, (float, np.floating)):
        x = float(x)
        if x.is_integer() and abs(x) < 1e15:
            return f"{int(x):,}"
        a = abs(x)
        if a >= 100:
            return f"{x:,.0f}"
        if a >= 1:
            return f"{x:.2f}"
        return f"{x:.3g}"
    return str(x)


def format_table(df: pd.DataFrame) -> pd.DataFrame:
    """The table with every cell as a display string (integers with thousands separators,
    floats to 2-3 significant places, NaN blank)."""
    return df.apply(lambda col: col.map(_fmt_cell)) if len(df) else df
