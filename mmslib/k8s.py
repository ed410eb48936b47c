"""Kubernetes helpers for the KServe backend (no notebook or experiment logic).

- names and labels: DNS-1123/1035 checks, the run labels every object carries
  (``mmslib.io/run-id``, ``mmslib.io/mode``, ``mmslib.io/role``);
- manifest builders: InferenceService (``serving.kserve.io/v1beta1``),
  TrainedModel (``serving.kserve.io/v1alpha1``), written as plain dicts;
- CRD schema validation: KServe's real CRDs (``openAPIV3Schema``) turned into
  JSON Schema, with Kubernetes' ``x-kubernetes-*`` extensions honoured
  (int-or-string, preserve-unknown-fields) and apiserver-style messages;
- the API client from a kubeconfig (or in-cluster config), preflight checks
  (API reachable, KServe installed, namespace usable), error formatting;
- clean-up by run id: ``python -m mmslib.k8s cleanup --run-id X [--namespace N]
  [--kubeconfig F] [--context C]`` deletes what a crashed run left behind
  (TrainedModels first, then InferenceServices) and waits for them to go.

Nothing outside the repository is needed: on a cluster the API server itself checks every
manifest (``dry_run: server``: a server-side dry run with strict field validation, KServe's
webhooks included), and :func:`cluster_crds` reads the installed CRDs through the API. For an
offline dry run, KServe's CRD YAML files are used when ``$MMSLIB_KSERVE_CRDS`` (or an explicit
folder) names them; without them the manifests are written unvalidated, with a warning.
"""
from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from .errors import MmsError, ParamError
from .planner import parse_quantity as _parse_quantity

log = logging.getLogger(__name__)

# -- resources -------------------------------------------------------------


@dataclass(frozen=True)
class Res:
    """A custom resource type."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"


ISVC = Res("serving.kserve.io", "v1beta1", "inferenceservices", "InferenceService")
TM = Res("serving.kserve.io", "v1alpha1", "trainedmodels", "TrainedModel")
SR = Res("serving.kserve.io", "v1alpha1", "servingruntimes", "ServingRuntime")
CSR = Res("serving.kserve.io", "v1alpha1", "clusterservingruntimes", "ClusterServingRuntime", namespaced=False)
POD_METRICS = Res("metrics.k8s.io", "v1beta1", "pods", "PodMetrics")

# -- labels and annotations ------------------------------------------------

LABEL_RUN = "mmslib.io/run-id"
LABEL_MODE = "mmslib.io/mode"          # traditional | mms
LABEL_ROLE = "mmslib.io/role"          # model | host
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "mmslib"
LABEL_ISVC = "serving.kserve.io/inferenceservice"        # set by KServe on pods (and TrainedModels)
LABEL_TM_ALLOCATED = "serving.kserve.io/trainedmodel-allocated"
ANN_DEPLOYMENT_MODE = "serving.kserve.io/deploymentMode"
MODELMESH = "ModelMesh"
# Knative per-revision queue-proxy resources (KServe passes predictor annotations to the revision).
ANN_QP = {
    ("requests", "cpu"): "queue.sidecar.serving.knative.dev/cpu-resource-request",
    ("requests", "memory"): "queue.sidecar.serving.knative.dev/memory-resource-request",
    ("limits", "cpu"): "queue.sidecar.serving.knative.dev/cpu-resource-limit",
    ("limits", "memory"): "queue.sidecar.serving.knative.dev/memory-resource-limit",
}
PREDICTOR_CONTAINER = "kserve-container"

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")

# Knative names the revision "<isvc>-predictor-00001", which must be a DNS label (63).
ISVC_NAME_MAX = 63 - len("-predictor-00001")


def is_dns1123_label(s: Any) -> bool:
    return isinstance(s, str) and len(s) <= 63 and bool(_DNS1123_LABEL.match(s))


def is_dns1123_subdomain(s: Any) -> bool:
    return isinstance(s, str) and len(s) <= 253 and bool(_DNS1123_SUBDOMAIN.match(s))


def is_label_value(s: Any) -> bool:
    return isinstance(s, str) and len(s) <= 63 and bool(_LABEL_VALUE.match(s))


def is_label_key(s: Any) -> bool:
    if not isinstance(s, str) or not s:
        return False
    prefix, _, name = s.rpartition("/")
    if prefix and not is_dns1123_subdomain(prefix):
        return False
    return len(name) <= 63 and bool(_LABEL_NAME.match(name))


def check_object_name(name: Any, what: str = "model name", param: str = "models",
                      max_len: int = ISVC_NAME_MAX) -> str:
    """A name KServe accepts for an InferenceService/TrainedModel, else ParamError.

    KServe's webhooks require ``[a-z]([-a-z0-9]*[a-z0-9])?`` (a DNS-1035 label);
    Knative needs ``<name>-predictor-00001`` to fit a DNS label.
    """
    if not isinstance(name, str) or not _DNS1035_LABEL.match(name) or len(name) > max_len:
        raise ParamError(param, name,
                         f"{what}s that are valid Kubernetes DNS-1035 names: lowercase letters, digits and '-', "
                         f"starting with a letter, ending with a letter or digit, at most {max_len} characters")
    return name


def check_namespace(ns: Any) -> str:
    if not is_dns1123_label(ns):
        raise ParamError("namespace", ns, "a DNS-1123 label (lowercase letters, digits, '-'; at most 63 characters)")
    return ns


def check_run_id(run_id: Any) -> str:
    if not run_id or not is_label_value(run_id):
        raise ParamError("run_id", run_id, "a non-empty Kubernetes label value (at most 63 characters: letters, "
                                           "digits, '-', '_', '.', starting and ending with a letter or digit)")
    return run_id


def run_labels(run_id: str, mode: Optional[str] = None, role: Optional[str] = None) -> Dict[str, str]:
    out = {LABEL_RUN: run_id, LABEL_MANAGED_BY: MANAGED_BY}
    if mode:
        out[LABEL_MODE] = mode
    if role:
        out[LABEL_ROLE] = role
    return out


def selector(labels: Dict[str, str]) -> str:
    """Equality label selector for a dict of labels."""
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def run_selector(run_id: str) -> str:
    return f"{LABEL_RUN}={run_id}"


# -- quantities ------------------------------------------------------------

def parse_quantity(q: Any) -> float:
    """A Kubernetes quantity as a float (cores for CPU, bytes for memory); ValueError if malformed
    (the planner's exact parser; ParamError is a ValueError)."""
    return _parse_quantity(q, "quantity")


def format_memory(n_bytes: int) -> str:
    """Bytes as the shortest exact binary quantity: 1048576 -> "1Mi"."""
    n = int(n_bytes)
    for suf, mul in (("Ti", 1 << 40), ("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)):
        if n and n % mul == 0:
            return f"{n // mul}{suf}"
    return str(n)


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
                  deployment_mode: Optional[str] = None, annotations: Optional[Dict[str, str]] = None) -> dict:
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


# -- CRDs and schema validation ---------------------------------------------


def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


def crd_dir(explicit: Optional[os.PathLike] = None, required: bool = True) -> Optional[Path]:
    """The folder of KServe's CRD YAML files: ``explicit``, else ``$MMSLIB_KSERVE_CRDS``; None (or
    MmsError when ``required``) without one. Nothing beside the repository is looked at."""
    cand = Path(explicit) if explicit else (Path(os.environ["MMSLIB_KSERVE_CRDS"])
                                            if os.environ.get("MMSLIB_KSERVE_CRDS") else None)
    if cand is not None and cand.is_dir() and any(cand.glob("*.yaml")):
        return cand
    if required:
        where = f"{cand} has no CRD YAML files" if cand is not None else "MMSLIB_KSERVE_CRDS is not set"
        raise MmsError(f"KServe CRDs not found ({where}): set MMSLIB_KSERVE_CRDS to a folder with KServe's CRD "
                       "YAML files (kserve/kserve config/crd/full), or validate against a cluster with "
                       "dry_run: server")
    return None


@dataclass
class CrdInfo:
    res: Res
    crd: dict                 # the CustomResourceDefinition object
    schema: dict              # openAPIV3Schema
    status_subresource: bool
    short_names: Tuple[str, ...] = ()
    singular: str = ""
    list_kind: str = ""


def _yaml_docs(f: Path) -> List[Any]:
    """YAML documents of a file, through a JSON cache (parsing the 2 MB InferenceService CRD takes seconds)."""
    import hashlib
    st = f.stat()
    key = hashlib.sha256(f"{f.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:24]
    cache_root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mmslib" / "crds"
    cached = cache_root / f"{f.stem}-{key}.json"
    try:
        return json.loads(cached.read_text())
    except (OSError, ValueError):
        pass
    import yaml
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(f) as fh:
        docs = list(yaml.load_all(fh, Loader=loader))
    try:
        cache_root.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(docs))
        tmp.replace(cached)
    except (OSError, TypeError, ValueError):
        pass
    return docs


@functools.lru_cache(maxsize=8)
def _load_crds(path: str) -> Dict[Tuple[str, str], CrdInfo]:
    out: Dict[Tuple[str, str], CrdInfo] = {}
    for f in sorted(Path(path).glob("*.yaml")):
        if True:
            for doc in _yaml_docs(f):
                if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
                    continue
                spec = doc["spec"]
                names = spec["names"]
                for v in spec.get("versions", []):
                    if not v.get("served", True):
                        continue
                    res = Res(spec["group"], v["name"], names["plural"], names["kind"],
                              spec.get("scope", "Namespaced") == "Namespaced")
                    out[(res.api_version, res.kind)] = CrdInfo(
                        res, doc, v.get("schema", {}).get("openAPIV3Schema", {"type": "object"}),
                        "status" in (v.get("subresources") or {}), tuple(names.get("shortNames", [])),
                        names.get("singular", ""), names.get("listKind", names["kind"] + "List"))
    return out


def load_crds(directory: Optional[os.PathLike] = None) -> Dict[Tuple[str, str], CrdInfo]:
    """{(apiVersion, kind): CrdInfo} for every served version in the CRD folder (cached)."""
    return _load_crds(str(crd_dir(directory)))


_DROP = {"description", "default", "example", "externalDocs", "format", "nullable"}


def to_jsonschema(s: Any, strict: bool = True) -> Any:
    """A structural openAPIV3Schema as a JSON Schema (draft 4 keywords).

    ``strict``: objects with declared properties refuse unknown fields (the
    apiserver would prune them, or refuse them with fieldValidation=Strict),
    unless ``x-kubernetes-preserve-unknown-fields`` says otherwise.
    """
    if not isinstance(s, dict):
        return s
    out: Dict[str, Any] = {}
    for k, v in s.items():
        if k in _DROP or k.startswith("x-kubernetes-"):
            continue
        if k == "properties":
            out[k] = {pk: to_jsonschema(pv, strict) for pk, pv in v.items()}
        elif k in ("items", "additionalProperties", "not"):
            out[k] = to_jsonschema(v, strict) if isinstance(v, dict) else v
        elif k in ("anyOf", "allOf", "oneOf"):
            out[k] = [to_jsonschema(x, strict) for x in v]
        else:
            out[k] = v
    if s.get("x-kubernetes-int-or-string") and "anyOf" not in out:
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if s.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if (strict and out.get("type") == "object" and "properties" in out and "additionalProperties" not in out
            and not s.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


@dataclass
class FieldError:
    field: str
    reason: str       # FieldValueInvalid | FieldValueRequired | FieldValueNotSupported | FieldValueForbidden ...
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


def _path(parts: Iterable) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _go_type(v: Any) -> str:
    return {bool: "boolean", int: "integer", float: "number", str: "string", dict: "object",
            list: "array", type(None): "null"}.get(type(v), type(v).__name__)


def _jv(v: Any) -> str:
    return json.dumps(v) if not isinstance(v, (dict, list)) else ("object" if isinstance(v, dict) else "array")


class SchemaValidator:
    """Validates objects of one CRD version like the apiserver's structural schema checks."""

    def __init__(self, info: CrdInfo, strict: bool = True):
        import jsonschema
        self.info = info
        self.strict = strict
        self.schema = to_jsonschema(info.schema, strict)
        self._v = jsonschema.Draft4Validator(self.schema)

    def errors(self, obj: dict) -> List[FieldError]:
        out: List[FieldError] = []
        for e in sorted(self._v.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path))):
            out.extend(self._translate(e))
        out.extend(metadata_errors(obj.get("metadata")))
        return out

    @staticmethod
    def _translate(e) -> List[FieldError]:
        path = _path(e.absolute_path)
        v = e.validator
        if v == "required":
            missing = [r for r in e.validator_value if isinstance(e.instance, dict) and r not in e.instance]
            return [FieldError(_path(list(e.absolute_path) + [m]), "FieldValueRequired", "Required value")
                    for m in missing] or [FieldError(path, "FieldValueRequired", e.message)]
        if v == "additionalProperties" and e.validator_value is False:
            known = set((e.schema.get("properties") or {}).keys())
            extra = [k for k in e.instance if k not in known] if isinstance(e.instance, dict) else []
            return [FieldError(_path(list(e.absolute_path) + [k]), "FieldValueForbidden",
                               "Forbidden: field not declared in schema") for k in extra]
        if v == "type":
            t = e.validator_value
            t = " or ".join(t) if isinstance(t, list) else t
            return [FieldError(path, "FieldValueTypeInvalid",
                               f"Invalid value: {_jv(e.instance)}: {path} in body must be of type {t}: "
                               f"\"{_go_type(e.instance)}\"")]
        if v == "anyOf" and all(isinstance(x, dict) and "type" in x for x in e.validator_value):
            ts = " or ".join(x["type"] for x in e.validator_value)
            return [FieldError(path, "FieldValueTypeInvalid",
                               f"Invalid value: {_jv(e.instance)}: {path} in body must be of type {ts}")]
        if v == "enum":
            allowed = ", ".join(json.dumps(x) for x in e.validator_value)
            return [FieldError(path, "FieldValueNotSupported",
                               f"Unsupported value: {_jv(e.instance)}: supported values: {allowed}")]
        if v == "pattern":
            return [FieldError(path, "FieldValueInvalid",
                               f"Invalid value: {_jv(e.instance)}: {path} in body should match '{e.validator_value}'")]
        return [FieldError(path, "FieldValueInvalid", f"Invalid value: {_jv(e.instance)}: {e.message}")]


def metadata_errors(meta: Any) -> List[FieldError]:
    """What the apiserver checks in metadata for a custom object."""
    if meta is None:
        return [FieldError("metadata", "FieldValueRequired", "Required value")]
    if not isinstance(meta, dict):
        return [FieldError("metadata", "FieldValueTypeInvalid", "Invalid value: metadata must be an object")]
    out = []
    name = meta.get("name")
    if name is not None and not is_dns1123_subdomain(name):
        out.append(FieldError("metadata.name", "FieldValueInvalid",
                              f"Invalid value: {json.dumps(name)}: a lowercase RFC 1123 subdomain must consist of "
                              "lower case alphanumeric characters, '-' or '.', and must start and end with an "
                              "alphanumeric character"))
    for key in ("labels", "annotations"):
        m = meta.get(key)
        if m is None:
            continue
        if not isinstance(m, dict):
            out.append(FieldError(f"metadata.{key}", "FieldValueTypeInvalid", "Invalid value: must be a map"))
            continue
        for k, v in m.items():
            if not is_label_key(k):
                out.append(FieldError(f"metadata.{key}", "FieldValueInvalid",
                                      f"Invalid value: {json.dumps(k)}: name part must consist of alphanumeric "
                                      "characters, '-', '_' or '.'"))
            if not isinstance(v, str):
                out.append(FieldError(f"metadata.{key}.{k}", "FieldValueTypeInvalid",
                                      f"Invalid value: {_jv(v)}: must be a string"))
            elif key == "labels" and not is_label_value(v):
                out.append(FieldError(f"metadata.labels", "FieldValueInvalid",
                                      f"Invalid value: {json.dumps(v)}: a valid label must be an empty string or "
                                      "consist of alphanumeric characters, '-', '_' or '.', at most 63 characters"))
    return out


@functools.lru_cache(maxsize=32)
def _validator(path: str, api_version: str, kind: str, strict: bool) -> Optional[SchemaValidator]:
    info = _load_crds(path).get((api_version, kind))
    return SchemaValidator(info, strict) if info else None


def validator_for(api_version: str, kind: str, directory: Optional[os.PathLike] = None,
                  strict: bool = True) -> Optional[SchemaValidator]:
    return _validator(str(crd_dir(directory)), api_version, kind, strict)


def validate_manifest(obj: dict, directory: Optional[os.PathLike] = None, strict: bool = True) -> List[str]:
    """Problems with a manifest against KServe's CRDs ([] when valid)."""
    if not isinstance(obj, dict):
        return ["not an object"]
    v = validator_for(str(obj.get("apiVersion")), str(obj.get("kind")), directory, strict)
    if v is None:
        return [f"no CRD for apiVersion={obj.get('apiVersion')!r} kind={obj.get('kind')!r}"]
    return [str(e) for e in v.errors(obj)]


# -- API client, errors, preflight --------------------------------------------


def _k8s():
    try:
        import kubernetes  # noqa: F401
        from kubernetes import client, config, watch  # noqa: F401
    except ImportError:  # pragma: no cover - a declared dependency
        from .errors import DependencyError
        raise DependencyError("the kubernetes Python client is needed: pip install kubernetes") from None
    return kubernetes


def api_client(kubeconfig: Optional[os.PathLike] = None, context: Optional[str] = None):
    """An ApiClient from a kubeconfig file, $KUBECONFIG, ~/.kube/config, or the in-cluster config."""
    _k8s()
    from kubernetes import client, config
    if kubeconfig is None and context is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        cfg = client.Configuration()
        try:
            config.load_incluster_config(client_configuration=cfg)
        except config.ConfigException as e:
            raise ParamError("kubeconfig", None, f"a kubeconfig file (the in-cluster config failed: {e})") from None
        return client.ApiClient(cfg)
    path = kubeconfig or os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    paths = [os.path.expanduser(p) for p in str(path).split(os.pathsep) if p]
    if not any(os.path.isfile(p) for p in paths):
        raise ParamError("kubeconfig", kubeconfig,
                         f"a readable kubeconfig file ({path} does not exist), or run inside a cluster")
    try:
        return config.new_client_from_config(config_file=os.pathsep.join(paths), context=context)
    except (config.ConfigException, ValueError, KeyError, TypeError) as e:
        which = "context" if context and "context" in str(e).lower() else "kubeconfig"
        raise ParamError(which, context if which == "context" else kubeconfig,
                         f"a usable kubeconfig/context ({type(e).__name__}: {e})") from None


def status_of(e: Exception) -> int:
    return int(getattr(e, "status", 0) or 0)


def api_message(e: Exception) -> str:
    """The apiserver's message from an ApiException (Status body), else str(e)."""
    body = getattr(e, "body", None)
    if body:
        try:
            d = json.loads(body)
            if isinstance(d, dict) and d.get("message"):
                reason = d.get("reason") or ""
                return f"{reason + ': ' if reason else ''}{d['message']}"
        except (ValueError, TypeError):
            text = body.decode() if isinstance(body, bytes) else str(body)
            return text.strip()[:500]
    reason = getattr(e, "reason", None)
    return str(reason) if reason else str(e)


class KubeApiError(MmsError):
    """An API call failed (after retries where they make sense)."""

    def __init__(self, what: str, status: int, message: str, attempts: int = 1):
        self.what, self.status, self.message, self.attempts = what, status, message, attempts
        tries = f" (gave up after {attempts} attempts)" if attempts > 1 else ""
        code = f"HTTP {status}" if status else "connection error"
        super().__init__(f"{what}: {code}: {message}{tries}")


RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


def _transport_errors() -> tuple:
    import urllib3
    return (urllib3.exceptions.HTTPError, OSError)


def call(what: str, fn, *args, retries: int = 4, backoff_s: float = 0.25, request_timeout=30.0,
         retry_status: frozenset = RETRY_STATUS, **kwargs):
    """Call a kubernetes client function; retry 5xx/429/connection errors with backoff.

    Raises KubeApiError with the server's message otherwise.
    """
    from kubernetes.client.exceptions import ApiException
    transport = _transport_errors()
    delay = backoff_s
    last: Optional[Exception] = None
    for attempt in range(1, retries + 2):
        try:
            if request_timeout:
                kwargs.setdefault("_request_timeout", request_timeout)
            return fn(*args, **kwargs)
        except ApiException as e:
            last = e
            st = status_of(e)
            if st in retry_status and attempt <= retries:
                log.info("%s: HTTP %s, retrying in %.2f s", what, st, delay)
                time.sleep(delay)
                delay *= 2
                continue
            raise KubeApiError(what, st, api_message(e), attempt) from None
        except transport as e:
            last = e
            if attempt <= retries:
                log.info("%s: %s, retrying in %.2f s", what, e, delay)
                time.sleep(delay)
                delay *= 2
                continue
            raise KubeApiError(what, 0, f"{type(e).__name__}: {e}", attempt) from None
    raise KubeApiError(what, status_of(last), str(last), retries + 1)  # pragma: no cover


def server_of(api) -> str:
    return getattr(api.configuration, "host", "?")


def check_reachable(api, timeout_s: float = 10.0) -> dict:
    """GET /version; ParamError naming the server when it cannot be reached."""
    from kubernetes import client
    try:
        v = call("GET /version", client.VersionApi(api).get_code, retries=0,
                 request_timeout=(min(5.0, timeout_s), timeout_s))
    except KubeApiError as e:
        if e.status in (401,):
            raise ParamError("kubeconfig", server_of(api),
                             f"credentials the API server accepts (it answered 401 Unauthorized: {e.message})") from None
        if e.status == 0:
            raise ParamError("kubeconfig", server_of(api),
                             f"a kubeconfig whose API server can be reached: cannot reach the Kubernetes API server "
                             f"at {server_of(api)} ({e.message})") from None
        if e.status == 403:
            return {}
        raise
    return v.to_dict() if hasattr(v, "to_dict") else dict(v or {})


def check_kserve(api, needed: Sequence[Res]) -> None:
    """MmsError when a KServe API group/version or resource is not served (KServe not installed)."""
    from kubernetes import client
    co = client.CustomObjectsApi(api)
    for gv in sorted({(r.group, r.version) for r in needed}):
        try:
            lst = call(f"GET /apis/{gv[0]}/{gv[1]}", co.get_api_resources, *gv, retries=2)
        except KubeApiError as e:
            if e.status == 404:
                raise MmsError(
                    f"KServe is not installed in the cluster at {server_of(api)}: the API {gv[0]}/{gv[1]} is not "
                    f"served (no {', '.join(r.kind for r in needed if (r.group, r.version) == gv)} CRD). Install "
                    "KServe (https://kserve.github.io/website/) or point kubeconfig/context at a cluster that has it."
                ) from None
            raise
        served = {r.name for r in (lst.resources or [])} if hasattr(lst, "resources") else \
            {r["name"] for r in (lst or {}).get("resources", [])}
        for r in needed:
            if (r.group, r.version) == gv and r.plural not in served:
                raise MmsError(f"KServe is installed without the {r.kind} resource ({r.api_version}/{r.plural} "
                               f"is not served by {server_of(api)}); this KServe version cannot run this mode")


def check_namespace_access(api, namespace: str) -> None:
    """ParamError when the namespace does not exist or this user may not use it."""
    from kubernetes import client
    try:
        call(f"GET namespace {namespace}", client.CoreV1Api(api).read_namespace, namespace, retries=2)
    except KubeApiError as e:
        if e.status == 404:
            raise ParamError("namespace", namespace, f"an existing namespace ({e.message})") from None
        if e.status != 403:   # a namespaced user may not read the Namespace object itself: test below
            raise
    try:
        call(f"list InferenceServices in {namespace}", client.CustomObjectsApi(api).list_namespaced_custom_object,
             ISVC.group, ISVC.version, namespace, ISVC.plural, limit=1, retries=2)
    except KubeApiError as e:
        if e.status == 403:
            raise ParamError("namespace", namespace,
                             f"a namespace this kubeconfig's user may use (the API server said 403 Forbidden: "
                             f"{e.message})") from None
        raise


# -- clean-up --------------------------------------------------------------


def _list(api, res: Res, namespace: str, label_selector: str, **kw) -> List[dict]:
    from kubernetes import client
    out = call(f"list {res.kind}s in {namespace}", client.CustomObjectsApi(api).list_namespaced_custom_object,
               res.group, res.version, namespace, res.plural, label_selector=label_selector, **kw)
    return list(out.get("items", []))


def delete_labelled(api, namespace: str, label_selector: str, *, kinds: Sequence[Res] = (TM, ISVC),
                    timeout_s: float = 300.0, poll_s: float = 0.2, wait: bool = True,
                    retries: int = 4) -> Dict[str, int]:
    """Delete every object of ``kinds`` matching the selector, in that order, waiting for each kind to go.

    Returns {plural: objects found}; the key ``remaining`` counts what was still there at the timeout.
    """
    from kubernetes import client
    co = client.CustomObjectsApi(api)
    counts: Dict[str, int] = {}
    remaining = 0
    deadline = time.monotonic() + timeout_s
    for res in kinds:
        try:
            items = _list(api, res, namespace, label_selector, retries=retries)
        except KubeApiError as e:
            if e.status == 404:       # this kind is not installed: nothing to delete
                counts[res.plural] = 0
                continue
            raise
        counts[res.plural] = len(items)
        if not items:
            continue
        try:
            call(f"delete {res.kind}s ({label_selector}) in {namespace}",
                 co.delete_collection_namespaced_custom_object, res.group, res.version, namespace, res.plural,
                 label_selector=label_selector, propagation_policy="Background", retries=retries)
        except KubeApiError as e:
            if e.status not in (403, 405):
                raise
            for it in items:      # no deletecollection permission: one by one
                try:
                    call(f"delete {res.kind} {it['metadata']['name']}", co.delete_namespaced_custom_object,
                         res.group, res.version, namespace, res.plural, it["metadata"]["name"],
                         propagation_policy="Background", retries=retries)
                except KubeApiError as e2:
                    if e2.status != 404:
                        raise
        if not wait:
            continue
        while True:
            left = _list(api, res, namespace, label_selector, retries=retries)
            if not left:
                break
            if time.monotonic() > deadline:
                remaining += len(left)
                break
            time.sleep(poll_s)
    counts["remaining"] = remaining
    return counts


def cleanup(run_id: str, namespace: str = "default", kubeconfig: Optional[os.PathLike] = None,
            context: Optional[str] = None, timeout_s: float = 300.0) -> Dict[str, int]:
    """Delete what a run left in the cluster (by its run-id label), TrainedModels first; wait for them to go."""
    check_run_id(run_id)
    check_namespace(namespace)
    api = api_client(kubeconfig, context)
    try:
        check_reachable(api)
        return delete_labelled(api, namespace, run_selector(run_id), timeout_s=timeout_s)
    finally:
        api.close()


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mmslib.k8s", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("cleanup", help="delete the KServe objects a run left behind (by run id)")
    c.add_argument("--run-id", required=True)
    c.add_argument("--namespace", default="default")
    c.add_argument("--kubeconfig", default=None)
    c.add_argument("--context", default=None)
    c.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the objects to go")
    v = sub.add_parser("validate", help="validate manifest YAML files against KServe's CRDs")
    v.add_argument("files", nargs="+")
    a = ap.parse_args(argv)
    try:
        if a.cmd == "cleanup":
            counts = cleanup(a.run_id, a.namespace, a.kubeconfig, a.context, a.timeout)
            found = {k: n for k, n in counts.items() if k != "remaining"}
            print(f"run {a.run_id} in namespace {a.namespace}: deleted "
                  + ", ".join(f"{n} {k}" for k, n in found.items()))
            if counts.get("remaining"):
                print(f"{counts['remaining']} objects still there after {a.timeout:g} s", file=sys.stderr)
                return 1
            return 0
        import yaml
        bad = 0
        for f in a.files:
            for doc in yaml.safe_load_all(Path(f).read_text()):
                errs = validate_manifest(doc)
                for e in errs:
                    print(f"{f}: {e}")
                bad += bool(errs)
        return 1 if bad else 0
    except MmsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
