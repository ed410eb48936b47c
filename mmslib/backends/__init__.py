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

#: Every backend, by name (the module ``mmslib.backends.<name>``), with where its own parameters'
#: dataclass lives: ``"<module>:<Class>"`` in this package (a light module: :mod:`mmslib.params` imports
#: it to carry those parameters, without the backend's client code), or None (it has none).
BACKENDS = {"local": None, "kserve": "kserve_options:KServeOptions"}


def options_class(name: str):
    """The dataclass of backend ``name``'s own parameters (with ``validate(in_use)``), or None."""
    if not isinstance(name, str) or name not in BACKENDS:
        raise ParamError("backend", name, " | ".join(BACKENDS))
    if BACKENDS[name] is None:
        return None
    mod, cls = BACKENDS[name].split(":")
    return getattr(importlib.import_module(f"{__name__}.{mod}"), cls)


def option_fields() -> list:
    """Every backend's own parameters (dataclass fields, in registry order), for the experiments'
    parameters to carry under the same names; two backends may not both own a name."""
    import dataclasses
    out, owner = [], {}
    for name in BACKENDS:
        cls = options_class(name)
        for f in dataclasses.fields(cls) if cls is not None else ():
            if f.name in owner:
                raise TypeError(f"backend {name!r} and {owner[f.name]!r} both own the parameter {f.name!r}")
            owner[f.name] = name
            out.append(f)
    return out


def check_options(p) -> None:
    """Every backend's options on params ``p``: each value checked (and normalised in place) by its
    backend's ``validate``, the cluster's rules only for ``p.backend``; a field marked ``only_in_use``
    keeps its default with another backend. Raises ParamError naming the parameter."""
    import dataclasses
    for name in BACKENDS:
        cls = options_class(name)
        if cls is None:
            continue
        fs = dataclasses.fields(cls)
        o = cls(**{f.name: getattr(p, f.name) for f in fs}).validate(in_use=name == p.backend)
        for f in fs:
            v = getattr(o, f.name)
            if f.metadata.get("only_in_use") and name != p.backend and v != f.default:
                raise ParamError(f.name, v, f"{f.default!r} with backend {p.backend!r} ({f.name} is backend "
                                            f"{name!r}'s: -p backend {name})")
            setattr(p, f.name, v)


def specs(p):
    """(traditional, mms) :class:`~mmslib.specs.ServiceSpec` of params ``p`` (:func:`mmslib.specs.for_params`)."""
    both = _specs.for_params(p)
    return both["traditional"], both["mms"]


def backend_class(name: str) -> type:
    """The :class:`Backend` subclass named ``name`` (ParamError if there is none)."""
    if not isinstance(name, str) or name not in BACKENDS:
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
    if not isinstance(p.backend, str) or p.backend not in BACKENDS:
        raise ParamError("backend", p.backend, " | ".join(BACKENDS))
    mod = importlib.import_module(f"{__name__}.{p.backend}")
    return mod.from_params(p, workload, Path(workdir), supervisor, run_id)

