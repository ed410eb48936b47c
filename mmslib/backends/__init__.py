"""Backends: where models are deployed. ``make_backend`` builds one from params.

A backend is a module ``mmslib/backends/<name>.py`` with a :class:`Backend`
subclass and ``from_params(p, workload, workdir, supervisor, run_id)``; its
name goes in :data:`BACKENDS` (which ``params`` validates ``backend`` against).
"""
from __future__ import annotations

import importlib
from pathlib import Path

from .. import specs as _specs
from ..errors import ParamError
from ..procs import Supervisor
from ..quantity import parse_memory
from .base import Backend, DeployEvent, Endpoint, Usage, VerifyResult, model_names  # noqa: F401

#: Every backend, by name (the module ``mmslib.backends.<name>``).
BACKENDS = ("local", "kserve")


def specs(p):
    """(traditional, mms) :class:`~mmslib.specs.ServiceSpec` of params ``p`` (:func:`mmslib.specs.for_params`)."""
    both = _specs.for_params(p)
    return both["traditional"], both["mms"]


def backend_class(name: str) -> type:
    """The :class:`Backend` subclass named ``name`` (ParamError if there is none)."""
    if name not in BACKENDS:
        raise ParamError("backend", name, " | ".join(BACKENDS))
    mod = importlib.import_module(f"{__name__}.{name}")
    for v in vars(mod).values():
        if isinstance(v, type) and issubclass(v, Backend) and v is not Backend and v.name == name:
            return v
    raise ParamError("backend", name, f"a module mmslib.backends.{name} defining a Backend named {name!r}")


def describe(name: str) -> dict:
    """What a backend declares for reports: ``on_cluster``, ``servers_are``, ``memory_measure``."""
    cls = backend_class(name)
    return {k: getattr(cls, k) for k in ("on_cluster", "servers_are", "memory_measure")}


def model_memory(p, workload) -> int:
    """Bytes each model declares (TrainedModel memory): ``p.model_memory``, else the workload's estimate."""
    return parse_memory(p.model_memory) if p.model_memory else workload.memory_estimate_bytes


def make_backend(p, workload, workdir: Path, supervisor: Supervisor, run_id: str) -> Backend:
    """A backend for validated params ``p`` (an experiment's params): ``from_params`` of the module
    ``mmslib.backends.<p.backend>``."""
    if p.backend not in BACKENDS:
        raise ParamError("backend", p.backend, " | ".join(BACKENDS))
    mod = importlib.import_module(f"{__name__}.{p.backend}")
    return mod.from_params(p, workload, Path(workdir), supervisor, run_id)

