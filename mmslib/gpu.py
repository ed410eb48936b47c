"""GPU presence, without importing torch unless it is installed."""
from __future__ import annotations

import importlib.util
import shutil
import subprocess


def cuda_available() -> bool:
    if importlib.util.find_spec("torch") is not None:
        try:
            import torch
            return bool(torch.cuda.is_available())
        except Exception:  # pragma: no cover
            return False
    return False


def gpu_name() -> str:
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=10)
            return out.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    return ""


def process_memory_mib(pids) -> float | None:
    """GPU memory used by these processes (MiB, from nvidia-smi), or None without a GPU."""
    if not shutil.which("nvidia-smi"):
        return None
    try:
        out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    want = set(pids)
    total = 0.0
    for line in out.stdout.splitlines():
        parts = [x.strip() for x in line.split(",")]
        if len(parts) == 2 and parts[0].isdigit() and int(parts[0]) in want:
            try:
                total += float(parts[1])
            except ValueError:
                pass
    return total
