"""Resource accounting, two views: reserved (Kubernetes requests) and measured.

Reserved: what the deployments would request on Kubernetes, from per-server
container specs (predictor plus sidecars). Measured: RSS/PSS/USS of every
server process (from /proc/<pid>/smaps_rollup) and CPU seconds.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Dict, Iterable, List

import psutil


MiB = 1 << 20


@dataclass(frozen=True)
class ContainerSpec:
    name: str
    cpu: str
    memory: str

    @property
    def cpu_cores(self) -> float:
        from .planner import parse_cpu
        return parse_cpu(self.cpu)

    @property
    def memory_bytes(self) -> int:
        from .planner import parse_memory
        return parse_memory(self.memory)


@dataclass(frozen=True)
class ServerSpec:
    """Containers of one InferenceService pod (predictor + sidecars)."""

    containers: List[ContainerSpec] = field(default_factory=list)

    @property
    def cpu(self) -> float:
        return sum(c.cpu_cores for c in self.containers)

    @property
    def memory_bytes(self) -> int:
        return sum(c.memory_bytes for c in self.containers)

    @classmethod
    def from_params(cls, predictor_cpu, predictor_memory, sidecar_cpu, sidecar_memory) -> "ServerSpec":
        cs = [ContainerSpec("predictor", str(predictor_cpu), str(predictor_memory))]
        if sidecar_cpu is not None and str(sidecar_cpu) not in ("0", ""):
            cs.append(ContainerSpec("queue-proxy", str(sidecar_cpu), str(sidecar_memory)))
        return cls(cs)


def reserved(spec: ServerSpec, servers: int) -> Dict[str, float]:
    return {"reserved_cpu": round(spec.cpu * servers, 6),
            "reserved_memory_mib": spec.memory_bytes * servers / MiB,
            "reserved_sidecar_cpu": sum(c.cpu_cores for c in spec.containers[1:]) * servers,
            "reserved_sidecar_memory_mib": sum(c.memory_bytes for c in spec.containers[1:]) * servers / MiB}


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
