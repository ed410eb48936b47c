"""Seldon MLServer as a runtime.

MLServer runs from its own environment ``.venv-mlserver`` (it pins an older
fastapi than kserve, which the main venv has): create it with
``bash scripts/setup-runtime-env.sh mlserver``. The env is found at
``$MMSLIB_MLSERVER_VENV`` or ``<repo root>/.venv-mlserver``.

Each server is ``<env>/bin/python -m mmslib.runtimes.mlserver_server CONFIG``
(see that module): MLServer started programmatically with
``parallel_workers=0``, an in-memory repository over the store (a model is the
artifact directory ``store/<name>``, as for kserve), REST and gRPC on
127.0.0.1, metrics off. Models run inside the server process
(``processes_per_model = 0``). REST is JSON only.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from ..errors import DependencyError
from . import MetricSpec, Runtime, ServerConfig, env_dir, setup_hint

REPO_ROOT = Path(__file__).resolve().parents[2]   # holds the mmslib package
SETUP_HINT = setup_hint("mlserver")


def venv_dir() -> Path:
    return env_dir("mlserver")   # $MMSLIB_MLSERVER_VENV or <repo root>/.venv-mlserver


class MLServerRuntime(Runtime):
    name = "mlserver"
    env = "mlserver"            # requirements/mlserver.txt -> .venv-mlserver (scripts/setup-runtime-env.sh mlserver)
    processes_per_model = 0
    packages = ("mlserver",)
    # model_infer_request_duration histogram, seconds.
    metrics = MetricSpec("model_infer_request_duration_count", {
        "server_ms": (("model_infer_request_duration_sum", 1e3),),
    })

    def __init__(self):
        self._checked: Optional[str] = None  # venv python that passed the check

    def _python(self) -> Path:
        return venv_dir() / "bin" / "python"

    def check_available(self) -> None:
        py = self._python()
        if self._checked == str(py) and py.exists():
            return
        if not py.exists():
            raise DependencyError(f"runtime 'mlserver' is not set up (no Python environment at "
                                  f"{venv_dir()}); run: {SETUP_HINT}")
        try:
            r = subprocess.run([str(py), "-c", "import mlserver, uvloop, mmslib.workloads"],
                               capture_output=True, text=True, timeout=120, env=self.server_env())
        except (OSError, subprocess.SubprocessError) as e:
            raise DependencyError(f"runtime 'mlserver': {py} does not run ({e}); run: {SETUP_HINT}") from None
        if r.returncode != 0:
            last = (r.stderr.strip().splitlines() or ["?"])[-1]
            raise DependencyError(f"runtime 'mlserver' is not set up in {venv_dir()} ({last}); "
                                  f"run: {SETUP_HINT}")
        self._checked = str(py)

    def server_env(self) -> Dict[str, str]:
        venv = venv_dir()
        env = dict(os.environ)
        env.pop("PYTHONHOME", None)
        env["VIRTUAL_ENV"] = str(venv)
        env["PATH"] = os.pathsep.join([str(venv / "bin"), env.get("PATH", "/usr/bin:/bin")])
        # mmslib is installed editable in the env; this also covers an env without it.
        env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def command(self, cfg: ServerConfig) -> Tuple[List[str], Optional[Dict[str, str]]]:
        cfg.workdir.mkdir(parents=True, exist_ok=True)
        path = cfg.workdir / f"{cfg.name}.mlserver.json"
        path.write_text(json.dumps({
            "store": str(cfg.store), "http_port": cfg.http_port, "grpc_port": cfg.grpc_port,
            "models": list(cfg.models), "threads": cfg.threads, "metrics_port": cfg.metrics_port,
            "workdir": str(cfg.workdir / f"{cfg.name}.mlserver")}))
        return [str(self._python()), "-m", "mmslib.runtimes.mlserver_server", str(path)], self.server_env()

    def start_timeout_s(self) -> float:
        return 120.0

    def metrics_url(self, server) -> str:
        return f"http://127.0.0.1:{server.metrics_port}/metrics"


RUNTIME = MLServerRuntime()
