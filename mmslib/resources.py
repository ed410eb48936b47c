"""Resource accounting, two views: reserved (Kubernetes requests) and measured.

Reserved: what the deployments would request on Kubernetes, from per-server
container specs (:mod:`mmslib.specs`: predictor plus sidecars). Measured: RSS/PSS/USS of every
server process (from /proc/<pid>/smaps_rollup) and CPU seconds.
"""
from __future__ import annotations

import os
import time
from typing import Dict, Iterable, List

import psutil

from .quantity import MiB
from .specs import Container, ServiceSpec


# The former names of the one spec type (mmslib.specs), kept for callers that still use them.
ContainerSpec = Container
ServerSpec = ServiceSpec


def reserved(spec: ServiceSpec, servers: int) -> Dict[str, float]:
    """Requests of ``servers`` such pods: CPU in cores, memory in MiB, sidecars apart."""
    return spec.reserved(servers)


MEASURED_COLUMNS = ("processes", "rss_mib", "pss_mib", "uss_mib", "cpu_seconds")


def measured(usage) -> Dict[str, float]:
    """The measured columns of stress steps, summaries and deploy rows, from a
    backend's :class:`~mmslib.backends.base.Usage` (NaN where not measured).

    ``pss_mib`` holds ``usage.memory_mib``: the PSS sum of the server
    processes locally, the pods' working set on Kubernetes; the column keeps
    its name so records written before ``Usage`` existed still load.
    ``processes`` falls back to ``servers`` (pods) where processes are not counted.
    """
    nan = float("nan")

    def f(v):
        return nan if v is None else float(v)
    return {"processes": usage.processes if usage.processes is not None else usage.servers,
            "rss_mib": f(usage.rss_mib), "pss_mib": f(usage.memory_mib), "uss_mib": f(usage.uss_mib),
            "cpu_seconds": f(usage.cpu_seconds)}


def _smaps_rollup(pid: int) -> Dict[str, int]:
    out = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and parts[2] == "kB":
                    out[parts[0].rstrip(":")] = int(parts[1]) * 1024
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return {}
    return out


def memory_of(pids: Iterable[int]) -> Dict[str, float]:
    """Summed memory of processes, MiB: rss, pss, uss (private)."""
    rss = pss = uss = 0
    n = 0
    for pid in pids:
        m = _smaps_rollup(pid)
        if not m:
            continue
        n += 1
        rss += m.get("Rss", 0)
        pss += m.get("Pss", 0)
        uss += m.get("Private_Clean", 0) + m.get("Private_Dirty", 0)
    return {"processes": n, "rss_mib": rss / MiB, "pss_mib": pss / MiB, "uss_mib": uss / MiB}


def cpu_seconds(pids: Iterable[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def idle_cpu(pids: List[int], seconds: float = 2.0) -> float:
    """Cores used by ``pids`` over ``seconds`` of idleness."""
    c0 = cpu_seconds(pids)
    t0 = time.monotonic()
    time.sleep(seconds)
    return (cpu_seconds(pids) - c0) / (time.monotonic() - t0)


def machine_memory() -> Dict[str, int]:
    vm = psutil.virtual_memory()
    return {"total": vm.total, "available": vm.available}


def machine_cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
