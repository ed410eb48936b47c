"""Model-server runtimes for the local backend.

A runtime knows how to lay out a model in the store, how to start one server
process, and how the server lists its models. Loading, unloading, readiness
and inference go over the Open Inference Protocol (V2) REST API, the same for
every runtime (see :mod:`mmslib.v2`).

A new runtime is one module here, ``<name>.py``, defining ``RUNTIME`` (an
instance of a :class:`Runtime` subclass) that declares what it is made of
(``packages``: the distributions whose versions a run records and a report
shows) and its Prometheus metrics (``metrics``: a :class:`MetricSpec`), plus
``<name>_server.py`` if the server needs an entry point; add the name to
``RUNTIMES``. Nothing else branches on a runtime's name.

A runtime whose server needs packages that clash with the main venv declares its own environment:
``env = "<name>"`` names ``requirements/<name>.txt``; ``bash scripts/setup-runtime-env.sh <name>``
(``make envs`` for every one: ``python -m mmslib.runtimes envs`` lists them) creates
``<repo>/.venv-<name>`` (or ``$MMSLIB_<NAME>_VENV``) from it, installs mmslib there without its
dependencies, then runs the runtime's own ``check_available`` inside it (``python -m mmslib.runtimes
check <name>``: Triton copies its python-backend stub there). Three files in all: the module, its
server, its requirements.
"""
from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from ..errors import ParamError

RUNTIMES = ("kserve", "triton", "mlserver")
REPO_ROOT = Path(__file__).resolve().parents[2]   # holds the mmslib package and requirements/


def env_dir(env: str) -> Path:
    """Where a runtime's own environment ``env`` lives: ``$MMSLIB_<ENV>_VENV`` or ``<repo>/.venv-<env>``."""
    v = os.environ.get(f"MMSLIB_{env.upper()}_VENV")
    return Path(v) if v else REPO_ROOT / f".venv-{env}"


def setup_hint(env: str) -> str:
    """The command that creates environment ``env`` (named in every DependencyError about it)."""
    return f"bash scripts/setup-runtime-env.sh {env}"


@dataclass
class ServerConfig:
    name: str
    store: Path
    workdir: Path
    http_port: int
    grpc_port: int
    models: List[str] = field(default_factory=list)  # loaded at start
    metrics_port: int = 0                             # Prometheus port where separate (0: none)
    threads: int = 1                                  # request concurrency inside the server
    lazy_capacity: int = 0                            # >0: load on first request, keep at most this many (LRU)


@dataclass(frozen=True)
class MetricSpec:
    """Where a runtime's Prometheus metrics put the time spent inside the server.

    ``count``: the cumulative request counter; ``parts``: for each part
    (``server_ms``, ``queue_ms``, ``compute_ms``), the cumulative sums that add
    up to it, each with its scale to milliseconds. Read by :mod:`mmslib.server_metrics`.
    """

    count: str
    parts: Dict[str, Tuple[Tuple[str, float], ...]]


class Runtime:
    """Base runtime; subclasses override what differs."""

    name = "base"
    packages: Tuple[str, ...] = ()          # distributions that make the server (versions recorded and shown)
    metrics: Optional[MetricSpec] = None    # its Prometheus metrics; None: no server-side time
    processes_per_model = 0  # extra processes a loaded model costs (Triton python stubs: 1)
    lazy_loading = False     # loads a model on its first request, evicting LRU (ServerConfig.lazy_capacity)
    env: Optional[str] = None  # its own environment: requirements/<env>.txt -> .venv-<env> (None: the main venv)

    def check_available(self) -> None:
        """Raise DependencyError naming what to install when the runtime is missing."""

    def prepare_store(self, store: Path) -> None:
        Path(store).mkdir(parents=True, exist_ok=True)

    def write_model(self, store: Path, workload, model_name: str) -> Path:
        if workload.lay_out is not None:  # the workload lays its models out itself (a user's repository)
            return workload.lay_out(self, Path(store), model_name)
        return workload.write_artifact(Path(store) / model_name, model_name)

    def command(self, cfg: ServerConfig) -> Tuple[List[str], Optional[Dict[str, str]]]:
        raise NotImplementedError

    def metrics_url(self, server) -> str:
        """Prometheus endpoint of a running server (``server`` has http_port, metrics_port)."""
        return f"http://127.0.0.1:{server.http_port}/metrics"

    def start_timeout_s(self) -> float:
        return 120.0


def get_runtime(name: str) -> Runtime:
    if name not in RUNTIMES:
        raise ParamError("runtime", name, " | ".join(RUNTIMES))
    mod = importlib.import_module(f"{__name__}.{name}")
    return mod.RUNTIME


def version_keys() -> Dict[str, Tuple[str, ...]]:
    """``{runtime: packages}``: whose versions say which server a run measured."""
    return {name: get_runtime(name).packages for name in RUNTIMES}


def envs() -> List[str]:
    """The runtimes that declare their own environment (``Runtime.env``), in registry order."""
    return [n for n in RUNTIMES if get_runtime(n).env]
