"""Backends: where models are deployed. ``make_backend`` builds one from params."""
from __future__ import annotations

from pathlib import Path

from .. import specs as _specs
from ..procs import Supervisor
from ..quantity import parse_memory
from .base import Backend, DeployEvent, Endpoint, Usage, VerifyResult, model_names  # noqa: F401


def specs(p):
    """(traditional, mms) :class:`~mmslib.specs.ServiceSpec` of params ``p`` (:func:`mmslib.specs.for_params`)."""
    both = _specs.for_params(p)
    return both["traditional"], both["mms"]


def make_backend(p, workload, workdir: Path, supervisor: Supervisor, run_id: str) -> Backend:
    """A backend for validated params ``p`` (StressParams or PerformanceParams)."""
    model_memory = parse_memory(p.model_memory) if p.model_memory else workload.memory_estimate_bytes
    if p.backend == "local":
        from ..runtimes import get_runtime
        from .local import LocalBackend
        return LocalBackend(get_runtime(p.runtime), workload, workdir,
                            deploy_concurrency=p.deploy_concurrency, deploy_timeout_s=p.deploy_timeout_s,
                            host_memory_limit=parse_memory(p.mms_predictor_memory),
                            model_memory=model_memory, server_threads=p.server_threads,
                            supervisor=supervisor)
    from .kserve import KServeBackend
    trad, mms = specs(p)
    return KServeBackend(workload, run_id=run_id, namespace=p.namespace, kubeconfig=p.kubeconfig,
                         runtime=p.serving_runtime, storage_uri_prefix=p.storage_uri,
                         traditional_spec=trad, mms_spec=mms, model_memory=model_memory,
                         deploy_timeout_s=p.deploy_timeout_s, deploy_concurrency=p.deploy_concurrency,
                         ingress_host=p.ingress_host, ingress_port=p.ingress_port,
                         mms_engine=p.mms_engine, dry_run=p.dry_run, deployment_mode=p.deployment_mode,
                         dry_run_dir=Path(p.output_dir) / "manifests")
