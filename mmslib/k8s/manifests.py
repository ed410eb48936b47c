"""KServe manifests as plain dicts: InferenceService (``serving.kserve.io/v1beta1``) and
TrainedModel (``serving.kserve.io/v1alpha1``), their quantities, and writing them as YAML."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional

from ..errors import ParamError
from ..quantity import format_memory  # noqa: F401  (re-exported: k8s.format_memory)
from ..quantity import parse_quantity as _parse_quantity
from .names import ANN_DEPLOYMENT_MODE, ANN_QP, ISVC, MODELMESH, TM

# -- quantities ------------------------------------------------------------

def parse_quantity(q: Any) -> float:
    """A Kubernetes quantity as a float (cores for CPU, bytes for memory); ValueError if malformed
    (mmslib.quantity's exact parser; ParamError is a ValueError)."""
    return _parse_quantity(q, "quantity")


def memory_quantity(v: Any, param: str = "model_memory") -> str:
    """A memory value (bytes int or quantity string) as a quantity string, else ParamError."""
    if isinstance(v, bool) or v is None:
        raise ParamError(param, v, "a memory quantity such as 1Mi, 512Ki or a number of bytes")
    if isinstance(v, (int, float)):
        if v <= 0:
            raise ParamError(param, v, "a positive memory quantity")
        return format_memory(int(v))
    try:
        b = parse_quantity(v)
    except ValueError:
        raise ParamError(param, v, "a memory quantity such as 1Mi, 512Ki or a number of bytes") from None
    if b <= 0:
        raise ParamError(param, v, "a positive memory quantity")
    return str(v).strip()


# -- manifests -------------------------------------------------------------


def resources_block(cpu: Optional[str], memory: Optional[str]) -> Dict[str, Dict[str, str]]:
    """requests == limits (as the seed's predictor specs)."""
    r: Dict[str, str] = {}
    if cpu not in (None, ""):
        r["cpu"] = str(cpu)
    if memory not in (None, ""):
        r["memory"] = str(memory)
    return {"requests": dict(r), "limits": dict(r)} if r else {}


def queue_proxy_annotations(cpu: Optional[str], memory: Optional[str]) -> Dict[str, str]:
    out = {}
    for kind in ("requests", "limits"):
        if cpu not in (None, ""):
            out[ANN_QP[(kind, "cpu")]] = str(cpu)
        if memory not in (None, ""):
            out[ANN_QP[(kind, "memory")]] = str(memory)
    return out


def isvc_manifest(name: str, namespace: str, *, labels: Dict[str, str], model_format: str,
                  runtime: Optional[str] = None, storage_uri: Optional[str] = None,
                  cpu: Optional[str] = None, memory: Optional[str] = None,
                  sidecar_cpu: Optional[str] = None, sidecar_memory: Optional[str] = None,
                  min_replicas: Optional[int] = 1, container_concurrency: Optional[int] = 1,
                  deployment_mode: Optional[str] = None, annotations: Optional[Dict[str, str]] = None,
                  max_replicas: Optional[int] = None) -> dict:
    """An InferenceService with one predictor (``spec.predictor.model``).

    Without ``storage_uri`` it is a multi-model host for TrainedModels.
    ``sidecar_*`` become Knative's queue-proxy resource annotations on the
    predictor pod. ``deployment_mode="ModelMesh"`` adds KServe's annotation
    and leaves out the per-pod settings ModelMesh does not use.
    """
    model: Dict[str, Any] = {"modelFormat": {"name": model_format}}
    if runtime:
        model["runtime"] = runtime
    if storage_uri:
        model["storageUri"] = storage_uri
    ann = dict(annotations or {})
    predictor: Dict[str, Any] = {}
    if deployment_mode:
        ann[ANN_DEPLOYMENT_MODE] = deployment_mode
    if deployment_mode != MODELMESH:
        res = resources_block(cpu, memory)
        if res:
            model["resources"] = res
        if min_replicas is not None:
            predictor["minReplicas"] = int(min_replicas)
        if max_replicas is not None:       # KServe writes it as Knative's max-scale (0: unlimited)
            predictor["maxReplicas"] = int(max_replicas)
        if container_concurrency is not None:
            predictor["containerConcurrency"] = int(container_concurrency)
        predictor["labels"] = dict(labels)   # KServe puts these on the predictor pods
        qp = queue_proxy_annotations(sidecar_cpu, sidecar_memory)
        if qp:
            predictor["annotations"] = qp
    predictor["model"] = model
    meta: Dict[str, Any] = {"name": name, "namespace": namespace, "labels": dict(labels)}
    if ann:
        meta["annotations"] = ann
    return {"apiVersion": ISVC.api_version, "kind": ISVC.kind, "metadata": meta, "spec": {"predictor": predictor}}


def trained_model_manifest(name: str, namespace: str, *, labels: Dict[str, str], inference_service: str,
                           framework: str, storage_uri: str, memory: str) -> dict:
    return {
        "apiVersion": TM.api_version, "kind": TM.kind,
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {"inferenceService": inference_service,
                 "model": {"framework": framework, "storageUri": storage_uri, "memory": str(memory)}},
    }


def manifest_filename(obj: dict) -> str:
    return f"{obj['kind'].lower()}-{obj['metadata']['name']}.yaml"


def write_manifest(obj: dict, directory: Path) -> Path:
    import yaml
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    p = d / manifest_filename(obj)
    tmp = p.with_suffix(".yaml.tmp")
    tmp.write_text(yaml.safe_dump(obj, sort_keys=False))
    tmp.replace(p)
    return p
