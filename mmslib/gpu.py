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
