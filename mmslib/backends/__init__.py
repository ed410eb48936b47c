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
    out = {k: getattr(cls, k) for k in ("on_cluster", "servers_are", "memory_measure")}
    if "on_cluster" not in vars(cls):  # not declared by the class itself yet
        out.update(_DECLARED_HERE.get(name, {}))
    return out


# Until mmslib/backends/kserve.py declares these on KServeBackend itself (then this goes).
_DECLARED_HERE = {"kserve": {"on_cluster": True, "servers_are": "pods",
                             "memory_measure": "working set of the pods (PodMetrics)"}}


def model_memory(p, workload) -> int:
    """Bytes each model declares (TrainedModel memory): ``p.model_memory``, else the workload's estimate."""
    return parse_memory(p.model_memory) if p.model_memory else workload.memory_estimate_bytes


def make_backend(p, workload, workdir: Path, supervisor: Supervisor, run_id: str) -> Backend:
    """A backend for validated params ``p`` (an experiment's params): ``from_params`` of the module
    ``mmslib.backends.<p.backend>``."""
    if p.backend not in BACKENDS:
        raise ParamError("backend", p.backend, " | ".join(BACKENDS))
    mod = importlib.import_module(f"{__name__}.{p.backend}")
    build = getattr(mod, "from_params", None) or _FROM_PARAMS[p.backend]
    return build(p, workload, Path(workdir), supervisor, run_id)


def _kserve_from_params(p, workload, workdir: Path, supervisor: Supervisor, run_id: str) -> Backend:
    # Here until mmslib/backends/kserve.py offers from_params itself (then this goes).
    from .kserve import KServeBackend
    trad, mms = specs(p)
    return KServeBackend(workload, run_id=run_id, namespace=p.namespace, kubeconfig=p.kubeconfig,
                         runtime=p.serving_runtime, storage_uri_prefix=p.storage_uri,
                         traditional_spec=trad, mms_spec=mms, model_memory=model_memory(p, workload),
                         deploy_timeout_s=p.deploy_timeout_s, deploy_concurrency=p.deploy_concurrency,
                         ingress_host=p.ingress_host, ingress_port=p.ingress_port,
                         mms_engine=p.mms_engine, dry_run=p.dry_run, deployment_mode=p.deployment_mode,
                         dry_run_dir=Path(p.output_dir) / "manifests")


_FROM_PARAMS = {"kserve": _kserve_from_params}
