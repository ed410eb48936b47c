"""Run metadata, like pyperf's: versions, machine, params, git sha."""
from __future__ import annotations

import datetime as dt
import os
import platform
import socket
import subprocess
import sys
from importlib import metadata as im
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import psutil

#: What every run uses; the runtimes' and workloads' own packages are added from their declarations.
BASE_PACKAGES = ("mmslib", "k6", "papermill", "scrapbook", "pandas", "numpy", "kubernetes", "psutil")


def packages() -> Tuple[str, ...]:
    """Every distribution whose version a run records: the base ones, each runtime's
    (``Runtime.packages``) and each workload's (``Workload.packages``)."""
    from .runtimes import version_keys
    from .workloads import WORKLOADS, get_workload
    out = list(BASE_PACKAGES)
    for names in list(version_keys().values()) + [get_workload(w).packages for w in WORKLOADS]:
        out += [n for n in names if n not in out]
    return tuple(out)


def versions() -> Dict[str, str]:
    out = {"python": platform.python_version()}
    for p in packages():
        try:
            out[p] = im.version(p)
        except im.PackageNotFoundError:
            pass
    return out


def git_sha(repo: Optional[Path] = None) -> str:
    repo = repo or Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True,
                             timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return (sha + ("-dirty" if dirty else "")) if sha else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def governor() -> Optional[str]:
    p = Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    try:
        return p.read_text().strip()
    except OSError:
        return None


def machine() -> Dict[str, Any]:
    vm = psutil.virtual_memory()
    from .gpu import gpu_name
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_total_bytes": vm.total,
        "memory_available_bytes": vm.available,
        "governor": governor(),
        "loadavg": list(os.getloadavg()),
        "gpu": gpu_name(),
    }


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def run_metadata(kind: str, params: Dict[str, Any], run_id: str) -> Dict[str, Any]:
    return {
        "run_id": run_id,
        "experiment": kind,
        "started": now(),
        "params": params,
        "versions": versions(),
        "machine": machine(),
        "git_sha": git_sha(),
        "argv": sys.argv,
    }
