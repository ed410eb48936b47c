"""A Kubernetes API server double with KServe's resources, for the unmodified ``kubernetes`` client.

It speaks the REST protocol over HTTP on 127.0.0.1 (a kubeconfig points the client at it):
discovery, namespaces, nodes, pods, events, services, configmaps, apiextensions CRDs, KServe's
InferenceServices / TrainedModels / ServingRuntimes / ClusterServingRuntimes, and metrics.k8s.io
PodMetrics. Verbs: create (with ``dryRun=All``), get, list (label and field selectors,
limit/continue), watch (chunked JSON lines), patch (merge, strategic-as-merge, JSON patch), update,
delete, deletecollection.

Admission (``_admit``) as the API server and KServe's webhooks: ObjectMeta validation; unknown
fields pruned with a ``Warning`` header (``fieldValidation=Strict``: 400); schema errors 422 (the
schemas come from the installed kserve SDK, schema.py); ConfigMaps over 1 MiB refused; KServe's
mutating webhook defaults (default_inference_service) and validating webhook name checks (403).
Finalizers are added by the controllers, not here.

The controllers (``controller.py``) play KServe + Knative + the scheduler; the ingress
(``ingress.py``) answers V2 inference. Knobs for tests: capacity, delays, agent failures, path
template, metrics on/off, forbidden namespaces, default runtimes on/off, injected failures
(``fail_next``), dropped watches (``drop_watches``), and a request log (``requests``).
"""
from __future__ import annotations

import copy
import json
import re
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from . import schema
from .selectors import SelectorError, parse_field_selector, parse_label_selector
from .store import ResourceType, Store, now_iso

CORE = [
    ResourceType("", "v1", "namespaces", "Namespace", namespaced=False, short_names=("ns",),
                 field_labels=("metadata.name", "status.phase")),
    ResourceType("", "v1", "nodes", "Node", namespaced=False, short_names=("no",)),
    ResourceType("", "v1", "pods", "Pod", short_names=("po",),
                 field_labels=("metadata.name", "metadata.namespace", "spec.nodeName", "status.phase")),
    ResourceType("", "v1", "events", "Event", short_names=("ev",),
                 field_labels=("metadata.name", "metadata.namespace", "involvedObject.kind", "involvedObject.name",
                               "involvedObject.namespace", "involvedObject.uid", "reason", "type",
                               "source", "reportingComponent")),
    ResourceType("", "v1", "services", "Service", short_names=("svc",)),
    ResourceType("", "v1", "configmaps", "ConfigMap", short_names=("cm",)),
]
# Knative Serving's Service (what KServe's Serverless mode creates per component); only its presence in
# discovery matters here (KServe checks it: utils.IsCrdAvailable in the InferenceService reconciler).
KNATIVE_SERVICE = ResourceType("serving.knative.dev", "v1", "services", "Service", short_names=("ksvc", "kservice"),
                               custom=True)
# SelfSubjectAccessReview (authorization.k8s.io/v1, create only): "may I <verb> <resource>?", answered
# from the same rules the double enforces on every request (forbidden_namespaces, rbac_denied).
SSAR = ResourceType("authorization.k8s.io", "v1", "selfsubjectaccessreviews", "SelfSubjectAccessReview",
                    namespaced=False, verbs=("create",))
CRD_TYPE = ResourceType("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition",
                        namespaced=False, short_names=("crd", "crds"))
POD_METRICS = ResourceType("metrics.k8s.io", "v1beta1", "pods", "PodMetrics", virtual=True, verbs=("get", "list"))
NODE_METRICS = ResourceType("metrics.k8s.io", "v1beta1", "nodes", "NodeMetrics", namespaced=False, virtual=True,
                            verbs=("get", "list"))

# KServe's resources as its CRDs define them (config/crd/full/serving.kserve.io_*.yaml at kserve/kserve
# aaac4e294dae: names, scope, status subresource), each with the kserve SDK model that carries its schema.
KSERVE = [
    (ResourceType("serving.kserve.io", "v1beta1", "inferenceservices", "InferenceService", True, "inferenceservice",
                  ("isvc",), "InferenceServiceList", status_subresource=True, custom=True), "V1beta1InferenceService"),
    (ResourceType("serving.kserve.io", "v1alpha1", "trainedmodels", "TrainedModel", True, "trainedmodel", ("tm",),
                  "TrainedModelList", status_subresource=True, custom=True), "V1alpha1TrainedModel"),
    (ResourceType("serving.kserve.io", "v1alpha1", "servingruntimes", "ServingRuntime", True, "servingruntime", (),
                  "ServingRuntimeList", status_subresource=True, custom=True), "V1alpha1ServingRuntime"),
    (ResourceType("serving.kserve.io", "v1alpha1", "clusterservingruntimes", "ClusterServingRuntime", False,
                  "clusterservingruntime", (), "ClusterServingRuntimeList", status_subresource=True, custom=True),
     "V1alpha1ClusterServingRuntime"),
]
# KServe's public Triton examples (gs://kfserving-examples/models/triton/ holds several model
# directories beside simple_string, issue #22 names bert/, bert-transformer/, huggingface/): a
# traditional InferenceService pointed at that folder downloads and loads every one of them.
PUBLIC_ARTIFACTS = {
    "gs://kfserving-examples/models/triton/simple_string": "simple_string",
    "gs://kfserving-examples/models/triton/bert": "bert",
    "gs://kfserving-examples/models/triton/huggingface": "huggingface",
}
TM_STORAGE_PROTOCOLS = ("s3://", "gs://", "https://", "http://")   # pkg/agent/storage/provider.go SupportedProtocols
CONFIGMAP_MAX_BYTES = 1 << 20    # k8s.io/kubernetes pkg/apis/core/validation ValidateConfigMap: core.MaxSecretSize

_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")


def declared_name(config_pbtxt: str) -> Optional[str]:
    """The top-level ``name: "..."`` of a Triton config.pbtxt (the double's own reader)."""
    depth = 0
    for line in config_pbtxt.splitlines():
        m = re.match(r'\s*name\s*:\s*"([^"]*)"\s*$', line)
        if depth == 0 and m:
            return m.group(1)
        depth += sum(line.count(c) for c in "{[") - sum(line.count(c) for c in "}]")
    return None


def render_path(template: str, namespace: str, name: str) -> str:
    """pkg/controller/v1beta1/inferenceservice/reconcilers/ingress/path.go GenerateUrlPath: the
    pathTemplate rendered with .Name and .Namespace (a Python-format template is accepted too)."""
    out = re.sub(r"\{\{\s*\.Namespace\s*\}\}", namespace, template)
    out = re.sub(r"\{\{\s*\.Name\s*\}\}", name, out)
    return out.replace("{namespace}", namespace).replace("{ns}", namespace).replace("{name}", name)


def metadata_problems(meta) -> List[Tuple[str, str]]:
    """[(field, message)] as the generic registry's ObjectMeta validation (apimachinery
    pkg/api/validation ValidateObjectMeta: name a DNS-1123 subdomain, label keys and values)."""
    out: List[Tuple[str, str]] = []
    if not isinstance(meta, dict):
        return [("metadata", "Required value")]
    name = meta.get("name")
    if name and (len(name) > 253 or not _DNS1123_SUBDOMAIN.match(name)):
        out.append(("metadata.name", f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist of lower '
                                     "case alphanumeric characters, '-' or '.', and must start and end with an "
                                     "alphanumeric character"))
    for key in ("labels", "annotations"):
        vals = meta.get(key)
        if vals is None:
            continue
        if not isinstance(vals, dict):
            out.append((f"metadata.{key}", "Invalid value: must be an object"))
            continue
        for k, v in vals.items():
            prefix, _, nm = str(k).rpartition("/")
            if (prefix and not _DNS1123_SUBDOMAIN.match(prefix)) or len(nm) > 63 or not _LABEL_NAME.match(nm):
                out.append((f"metadata.{key}", f'Invalid value: "{k}": name part must consist of alphanumeric '
                                               "characters, '-', '_' or '.'"))
            if not isinstance(v, str):
                out.append((f"metadata.{key}.{k}", f"Invalid value: {json.dumps(v)}: must be a string"))
            elif key == "labels" and (len(v) > 63 or not _LABEL_VALUE.match(v)):
                out.append(("metadata.labels", f'Invalid value: "{v}": a valid label must be an empty string or '
                                               "consist of alphanumeric characters, '-', '_' or '.'"))
    return out


ANN_DEPLOYMENT_MODE = "serving.kserve.io/deploymentMode"


def deployment_mode(isvc: dict, default: str = "Serverless") -> str:
    """The normalised mode: pkg/constants/constants.go ParseDeploymentMode (RawDeployment -> Standard,
    Serverless -> Knative) of the annotation, else the deploy config's defaultDeploymentMode
    (pkg/controller/v1beta1/inferenceservice/utils GetDeploymentMode)."""
    mode = ((isvc.get("metadata") or {}).get("annotations") or {}).get(ANN_DEPLOYMENT_MODE) or default
    return {"RawDeployment": "Standard", "Serverless": "Knative"}.get(mode, mode)


def default_inference_service(isvc: dict, config) -> None:
    """KServe's mutating webhook, pkg/apis/serving/v1beta1/inference_service_defaults.go
    DefaultInferenceService: legacy deploymentMode values normalised (RawDeployment -> Standard,
    Serverless -> Knative); without the annotation it is set only when the deploy config's default is
    ModelMesh or Standard; non-ModelMesh predictors get setResourceRequirementDefaults (the
    inferenceservice-config resource defaults: cpu 1, memory 2Gi, requests and limits)."""
    meta = isvc.setdefault("metadata", {})
    ann = meta.get("annotations") or {}
    mode = ann.get(ANN_DEPLOYMENT_MODE)
    if mode in ("RawDeployment", "Serverless"):
        meta.setdefault("annotations", {})[ANN_DEPLOYMENT_MODE] = {"RawDeployment": "Standard",
                                                                  "Serverless": "Knative"}[mode]
    elif mode is None and config.default_deployment_mode in ("ModelMesh", "Standard"):
        meta.setdefault("annotations", {})[ANN_DEPLOYMENT_MODE] = config.default_deployment_mode
    if deployment_mode(isvc, config.default_deployment_mode) == "ModelMesh":
        return
    pred = (isvc.get("spec") or {}).get("predictor") or {}
    model = pred.get("model")
    if not isinstance(model, dict):
        return
    res = model.setdefault("resources", {})
    cpu, mem = config.default_predictor
    for kind in ("requests", "limits"):
        block = res.setdefault(kind, {})
        block.setdefault("cpu", cpu)
        block.setdefault("memory", mem)


GROUP_PRIORITY = {"apiextensions.k8s.io": 1, "serving.kserve.io": 2, "metrics.k8s.io": 3}


@dataclass
class Fault:
    verb: str            # create get list watch patch update delete deletecollection, or "*"
    resource: str        # plural, or "*"
    status: int
    remaining: int
    message: str = ""
    name: Optional[str] = None

    def matches(self, verb: str, resource: str, name: Optional[str]) -> bool:
        return (self.remaining > 0 and self.verb in ("*", verb) and self.resource in ("*", resource)
                and (self.name is None or self.name == name))


@dataclass
class WatchDrop:
    after_events: int
    remaining: int
    resource: str = "*"


REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
           409: "AlreadyExists", 410: "Expired", 415: "UnsupportedMediaType", 422: "Invalid",
           429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout"}


class ApiError(Exception):
    def __init__(self, code: int, message: str, reason: Optional[str] = None, details: Optional[dict] = None):
        super().__init__(message)
        self.code, self.message, self.reason, self.details = code, message, reason or REASONS.get(code, "Unknown"), details

    def status(self) -> dict:
        d = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": self.message,
             "reason": self.reason, "code": self.code}
        if self.details:
            d["details"] = self.details
        return d


def _node_info(i: int) -> dict:
    """status.nodeInfo as a kubelet reports it (every field is required by the client's model)."""
    return {"architecture": "amd64", "bootID": f"boot-{i}", "containerRuntimeVersion": "containerd://1.7.0",
            "kernelVersion": "6.1.0", "kubeProxyVersion": "v1.31.0-mmslib-double",
            "kubeletVersion": "v1.31.0-mmslib-double", "machineID": f"machine-{i}", "operatingSystem": "linux",
            "osImage": "mmslib double", "systemUUID": f"00000000-0000-0000-0000-{i:012d}"}


@dataclass
class Capacity:
    nodes: int = 3
    cpu: str = "16"            # allocatable per node
    memory: str = "64Gi"
    pods: int = 110
    gpus: int = 0              # nvidia.com/gpu allocatable per node (the device plugin's resource)


@dataclass
class Config:
    """Behaviour of the simulated cluster (attributes can be changed while it runs)."""

    isvc_ready_delay_s: float = 0.05     # scheduled pod -> Running/Ready, ISVC Ready
    kubelet_sync_period_s: float = 60.0  # the kubelet rewrites a pod's mounted ConfigMap (the ..data symlink
    #   swap the agent's watcher acts on) only on its periodic pod sync: KubeletConfiguration syncFrequency,
    #   1 min by default; tests/k8s_fixtures.py makes it 0.05 s unless a test asks for the real one
    agent_sync_delay_s: float = 0.02     # the refreshed file -> the agent has parsed it (fsnotify, parseConfig)
    agent_load_delay_s: float = 0.02     # the agent's pull + load of one model (pkg/agent/puller.go)
    agent_fail_models: Tuple[str, ...] = ()   # models whose load fails (the agent only logs it)
    path_template: str = ""              # inferenceservice-config ingress.pathTemplate (Go template, as KServe:
    #   "/serving/{{ .Namespace }}/{{ .Name }}"; {namespace}/{name} accepted too); Serverless only
    ingress_domain: str = "example.com"  # inferenceservice-config ingress.ingressDomain
    artifacts: Dict[str, str] = field(default_factory=lambda: dict(PUBLIC_ARTIFACTS))
    # ^ the (simulated) object store: {model directory URI: the name its config.pbtxt declares}. A Triton
    #   server loads every model directory under its repository root; Triton's agent download of a
    #   TrainedModel fails for a URI not here, and its load fails when the declared name is not the
    #   TrainedModel's (K8sDouble.upload adds a local folder's model directories)
    strict_storage: bool = True          # False: a TrainedModel on a Triton host loads whatever its URI
    delete_delay_s: float = 0.02         # finalizers: deletionTimestamp -> gone
    modelmesh_capacity: Optional[int] = None   # ModelMesh models held loaded at once (None: all); LRU eviction
    quota_inferenceservices: Optional[int] = None   # a ResourceQuota count/inferenceservices.serving.kserve.io
    modelconfig_write_s: float = 0.0     # one rewrite of a host's model-config ConfigMap (up to 1 MiB) on a
    #   TrainedModel's deletion: they go one at a time per host
    report_unschedulable: bool = True    # Knative: ISVC Ready=False reason Unschedulable
    queue_proxy: Tuple[str, Optional[str]] = ("25m", None)     # Knative default when no annotation
    agent: Tuple[str, str] = ("100m", "100Mi")                  # KServe agent (MMS hosts)
    default_predictor: Tuple[str, str] = ("1", "2Gi")           # KServe's default resources
    modelmesh_containers: Tuple[Tuple[str, str, str], ...] = (
        ("mm", "300m", "448Mi"), ("triton", "500m", "1Gi"), ("triton-adapter", "10m", "64Mi"),
        ("rest-proxy", "50m", "96Mi"))
    domain: str = "example.com"
    kserve_webhooks: bool = True         # KServe's webhooks: defaults (mutating), name checks (validating, 403)
    default_deployment_mode: str = "Serverless"   # inferenceservice-config deploy.defaultDeploymentMode


class K8sDouble:
    """Start with :meth:`start`; use :meth:`write_kubeconfig` to point a client at it."""

    def __init__(self, *, kserve: bool = True, metrics: bool = True, crds_dir=None,
                 capacity: Optional[Capacity] = None, config: Optional[Config] = None,
                 namespaces=("default", "kube-system", "kserve"), forbidden_namespaces=(),
                 token: Optional[str] = "double-token", user: str = "double-user",
                 workload: str = "simple_string", ingress: bool = True, runtimes: bool = True,
                 knative: bool = True, rbac_denied=()):
        self.store = Store()
        self.config = config or Config()
        self.capacity = capacity or Capacity()
        self.metrics_enabled = metrics
        self.kserve = kserve
        self.forbidden_namespaces = set(forbidden_namespaces)
        # RBAC: (verb, API group, resource) this user may not do in any namespace, e.g.
        # ("delete", "serving.kserve.io", "trainedmodels"); answered 403 as the API server's authorizer
        self.rbac_denied = {tuple(x) for x in rbac_denied}
        self.token = token
        self.user = user
        self.workload = workload
        self.faults: List[Fault] = []
        self.watch_drops: List[WatchDrop] = []
        self.requests: List[Tuple[str, str]] = []
        self._req_lock = threading.Lock()
        self.types: Dict[Tuple[str, str], ResourceType] = {}
        self.by_gv: Dict[Tuple[str, str], List[ResourceType]] = {}
        self.knative = knative       # False: a cluster without Knative Serving (KServe in raw mode only)
        for rt in CORE + [CRD_TYPE, POD_METRICS, NODE_METRICS, SSAR] + ([KNATIVE_SERVICE] if knative else []):
            self._register(rt)
        if kserve:
            self._install_kserve(crds_dir)
            if runtimes:
                self._install_runtimes()
        for ns in namespaces:
            self.add_namespace(ns)
        self.set_capacity(self.capacity)
        from .controller import Controller
        self.controller = Controller(self)
        self._httpd: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None
        self.ingress = None
        if ingress:
            from .ingress import Ingress
            self.ingress = Ingress(self)

    # -- setup ----------------------------------------------------------------
    def _register(self, rt: ResourceType) -> None:
        self.types[(rt.group, rt.plural)] = rt
        self.by_gv.setdefault((rt.group, rt.version), []).append(rt)

    def _install_kserve(self, crds_dir) -> None:
        """KServe's four resources, validated with schemas from the installed kserve SDK (schema.py).

        ``crds_dir`` is ignored: the double needs nothing outside the repository."""
        warm = schema.validator("V1beta1InferenceService")   # build the schemas now, not in a timed create
        warm.admit({"spec": {"predictor": {"model": {"modelFormat": {"name": "x"}, "storageUri": "gs://x",
                                                     "resources": {"limits": {"cpu": "1"}}}}}})
        for rt, model in KSERVE:
            rt = ResourceType(**{**rt.__dict__, "validator": schema.validator(model)})
            self._register(rt)
            name = f"{rt.plural}.{rt.group}"
            self.store.create(CRD_TYPE, {
                "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": name},
                "spec": {"group": rt.group, "scope": "Namespaced" if rt.namespaced else "Cluster",
                         "names": {"plural": rt.plural, "singular": rt.singular, "kind": rt.kind,
                                   "listKind": rt.list_kind, "shortNames": list(rt.short_names)},
                         "versions": [{"name": rt.version, "served": True, "storage": True,
                                       "subresources": {"status": {}} if rt.status_subresource else {},
                                       "schema": {"openAPIV3Schema": {"type": "object",
                                                                      "x-kubernetes-preserve-unknown-fields": True}}}]},
                "status": {"conditions": [{"type": "Established", "status": "True"}],
                           "acceptedNames": {"plural": rt.plural, "kind": rt.kind}}})

    def _install_runtimes(self) -> None:
        """The ClusterServingRuntimes a KServe install brings (config/runtimes/*.yaml at aaac4e294dae; the
        ones this double's tests use): names, supportedModelFormats, protocolVersions."""
        rt = self.types[("serving.kserve.io", "clusterservingruntimes")]
        for name, formats, protocols in (
                ("kserve-tritonserver", ("tensorrt", "tensorflow", "onnx", "pytorch", "triton"), ("v2", "grpc-v2")),
                ("kserve-sklearnserver", ("sklearn",), ("v1", "v2")),
                ("kserve-mlserver", ("sklearn", "xgboost", "lightgbm", "mlflow"), ("v2",))):
            self.store.create(rt, {"apiVersion": "serving.kserve.io/v1alpha1", "kind": "ClusterServingRuntime",
                                   "metadata": {"name": name},
                                   "spec": {"supportedModelFormats": [{"name": f, "autoSelect": f != "pytorch"}
                                                                      for f in formats],
                                            "protocolVersions": list(protocols),
                                            "containers": [{"name": "kserve-container",
                                                            "image": f"{name}:double"}]}})

    def add_namespace(self, name: str) -> dict:
        rt = self.types[("", "namespaces")]
        existing = self.store.get(rt, "", name)
        if existing:
            return existing
        return self.store.create(rt, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name},
                                      "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})

    def set_capacity(self, cap: Capacity) -> None:
        """(Re)create the nodes: ``cap.nodes`` × (cpu, memory, pods) allocatable."""
        self.capacity = cap
        rt = self.types[("", "nodes")]
        with self.store.lock:
            for n in self.store.items(rt):
                self.store.remove(rt, "", n["metadata"]["name"])
            for i in range(cap.nodes):
                alloc = {"cpu": str(cap.cpu), "memory": str(cap.memory), "pods": str(cap.pods)}
                if cap.gpus:
                    alloc["nvidia.com/gpu"] = str(cap.gpus)
                self.store.create(rt, {"apiVersion": "v1", "kind": "Node",
                                       "metadata": {"name": f"node-{i}", "labels": {"kubernetes.io/hostname": f"node-{i}"}},
                                       "spec": {}, "status": {"capacity": dict(alloc), "allocatable": dict(alloc),
                                                              "conditions": [{"type": "Ready", "status": "True"}],
                                                              "nodeInfo": _node_info(i)}})
            ctl = getattr(self, "controller", None)
            if ctl is not None:
                ctl.kick_scheduler()

    def type_for(self, group: str, plural: str) -> Optional[ResourceType]:
        return self.types.get((group, plural))

    # -- knobs ------------------------------------------------------------------
    def fail_next(self, verb: str = "*", resource: str = "*", status: int = 500, times: int = 1,
                  message: Optional[str] = None, name: Optional[str] = None) -> Fault:
        """The next ``times`` matching requests fail with ``status`` (a Status body like the apiserver's)."""
        f = Fault(verb, resource, status, times, message or f"injected {status} failure", name)
        with self._req_lock:
            self.faults.append(f)
        return f

    def drop_watches(self, after_events: int = 1, times: int = 1, resource: str = "*") -> WatchDrop:
        """The next ``times`` watch streams are cut (no terminating chunk) after ``after_events`` events."""
        d = WatchDrop(after_events, times, resource)
        with self._req_lock:
            self.watch_drops.append(d)
        return d

    def clear_faults(self) -> None:
        with self._req_lock:
            self.faults.clear()
            self.watch_drops.clear()

    @property
    def request_count(self) -> int:
        return len(self.requests)

    def requests_matching(self, method: Optional[str] = None, contains: str = "") -> List[Tuple[str, str]]:
        with self._req_lock:
            return [r for r in self.requests if (method is None or r[0] == method) and contains in r[1]]

    def _take_fault(self, verb: str, resource: str, name: Optional[str]) -> Optional[Fault]:
        with self._req_lock:
            for f in self.faults:
                if f.matches(verb, resource, name):
                    f.remaining -= 1
                    return f
        return None

    def _take_drop(self, resource: str) -> Optional[int]:
        with self._req_lock:
            for d in self.watch_drops:
                if d.remaining > 0 and d.resource in ("*", resource):
                    d.remaining -= 1
                    return d.after_events
        return None

    # -- lifecycle ----------------------------------------------------------------
    def start(self) -> "K8sDouble":
        double = self

        class Handler(_Handler):
            pass
        Handler.double = double
        self._httpd = _Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="k8s-double-api", daemon=True)
        self._thread.start()
        self.controller.start()
        if self.ingress is not None:
            self.ingress.start()
        return self

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def write_kubeconfig(self, path, namespace: str = "default", context: str = "double") -> Path:
        import yaml
        user: Dict[str, str] = {"token": self.token} if self.token else {}
        cfg = {"apiVersion": "v1", "kind": "Config", "current-context": context,
               "clusters": [{"name": "double", "cluster": {"server": self.url}}],
               "users": [{"name": self.user, "user": user}],
               "contexts": [{"name": context, "context": {"cluster": "double", "user": self.user,
                                                          "namespace": namespace}}]}
        p = Path(path)
        p.write_text(yaml.safe_dump(cfg))
        return p

    def stop(self) -> None:
        self.store.close()
        self.controller.stop()
        if self.ingress is not None:
            self.ingress.stop()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- helpers for tests ----------------------------------------------------------
    def objects(self, plural: str, namespace: Optional[str] = None, group: Optional[str] = None,
                label_selector: str = "") -> List[dict]:
        rt = self._find_plural(plural, group)
        pred = parse_label_selector(label_selector)
        return [o for o in self.store.items(rt, namespace) if pred(o["metadata"].get("labels") or {})]

    def _find_plural(self, plural: str, group: Optional[str]) -> ResourceType:
        if group is not None:
            return self.types[(group, plural)]
        for (g, p), rt in self.types.items():
            if p == plural and not rt.virtual:
                return rt
        raise KeyError(plural)

    def upload(self, prefix: str, local_dir) -> Dict[str, str]:
        """"Upload" a local folder to the simulated object store at ``prefix`` (as ``gsutil cp -r``):
        every directory holding a config.pbtxt becomes a model directory URI with the name that file
        declares (its directory's name where it declares none, as Triton). Returns what was added."""
        root = Path(local_dir)
        added = {}
        for cfg in sorted(root.rglob("config.pbtxt")):
            rel = cfg.parent.relative_to(root).as_posix()
            uri = prefix.rstrip("/") + ("/" + rel if rel != "." else "")
            added[uri] = declared_name(cfg.read_text()) or cfg.parent.name
        self.config.artifacts.update(added)
        return added

    def allowed(self, verb: str, group: str, resource: str, namespace: Optional[str]) -> bool:
        """The double's authorizer (RBAC): forbidden_namespaces deny everything there, rbac_denied
        denies a (verb, group, resource) everywhere."""
        if namespace is not None and namespace in self.forbidden_namespaces:
            return False
        return (verb, group, resource) not in self.rbac_denied

    def create_object(self, obj: dict) -> dict:
        """Create directly (no admission): seeding state for tests."""
        group, _, version = obj["apiVersion"].rpartition("/")
        for rt in self.by_gv.get((group, version), []):
            if rt.kind == obj["kind"]:
                return self.store.create(rt, obj)
        raise KeyError(obj["apiVersion"], obj["kind"])


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def _split_path(path: str):
    return [p for p in path.split("/") if p]


def merge_patch(target, patch):
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def _ptr(path: str) -> List[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise ApiError(422, f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def json_patch(doc, ops):
    """RFC 6902 (add, remove, replace, test, move, copy)."""
    doc = copy.deepcopy(doc)

    def parent(parts):
        cur = doc
        for p in parts[:-1]:
            cur = cur[int(p)] if isinstance(cur, list) else cur[p]
        return cur

    def get(parts):
        cur = doc
        for p in parts:
            cur = cur[int(p)] if isinstance(cur, list) else cur[p]
        return cur

    for op in ops:
        kind, parts = op.get("op"), _ptr(op.get("path", ""))
        try:
            if kind in ("add", "replace"):
                par, last = parent(parts), parts[-1]
                if isinstance(par, list):
                    if last == "-":
                        par.append(copy.deepcopy(op["value"]))
                    elif kind == "add":
                        par.insert(int(last), copy.deepcopy(op["value"]))
                    else:
                        par[int(last)] = copy.deepcopy(op["value"])
                else:
                    if kind == "replace" and last not in par:
                        raise KeyError(last)
                    par[last] = copy.deepcopy(op["value"])
            elif kind == "remove":
                par, last = parent(parts), parts[-1]
                if isinstance(par, list):
                    del par[int(last)]
                else:
                    del par[last]
            elif kind == "test":
                if get(parts) != op.get("value"):
                    raise ApiError(422, f"the server rejected our request due to an error in our request: "
                                        f"test operation failed at {op.get('path')}")
            elif kind in ("move", "copy"):
                src = _ptr(op["from"])
                val = copy.deepcopy(get(src))
                if kind == "move":
                    sp = parent(src)
                    if isinstance(sp, list):
                        del sp[int(src[-1])]
                    else:
                        del sp[src[-1]]
                par = parent(parts)
                if isinstance(par, list):
                    par.insert(int(parts[-1]), val)
                else:
                    par[parts[-1]] = val
            else:
                raise ApiError(422, f"unknown JSON patch op {kind!r}")
        except (KeyError, IndexError, ValueError, TypeError) as e:
            raise ApiError(422, f"the server rejected our request due to an error in our request: "
                                f"JSON patch {kind} {op.get('path')}: {e}") from None
    return doc


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True     # headers and body are separate writes: no 40 ms delayed-ACK stalls
    double: K8sDouble = None
    server_version = "k8s-double/1.0"

    def log_message(self, *args):  # quiet
        pass

    # -- plumbing -----------------------------------------------------------------
    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError as e:
            raise ApiError(400, f"couldn't get version/kind; json parse error: {e}")

    _warnings: List[str] = []

    def _send(self, code: int, body, headers: Optional[Dict[str, str]] = None) -> None:
        data = json.dumps(body).encode() if not isinstance(body, (bytes, str)) else (
            body.encode() if isinstance(body, str) else body)
        self.send_response(code)
        self.send_header("Content-Type", "application/json" if not isinstance(body, str) else "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Audit-Id", str(self.double.request_count))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        for w in self._warnings:      # apiserver: "Warning: 299 - <text>" per warning
            self.send_header("Warning", '299 - "' + w.replace('"', '\\"') + '"')
        self._warnings = []
        self.end_headers()
        self.wfile.write(data)

    def _error(self, e: ApiError) -> None:
        self._send(e.code, e.status())

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_PATCH(self):
        self._dispatch("PATCH")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        d = self.double
        url = urllib.parse.urlsplit(self.path)
        q = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query, keep_blank_values=True).items()}
        with d._req_lock:
            d.requests.append((method, self.path))
        self._warnings = []
        try:
            body = self._body() if method in ("POST", "PUT", "PATCH", "DELETE") else None
            if d.token:
                auth = self.headers.get("Authorization", "")
                if auth != f"Bearer {d.token}":
                    raise ApiError(401, "Unauthorized")
            self._route(method, _split_path(url.path), q, body)
        except ApiError as e:
            self._error(e)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as e:  # a bug in the double: say so like an apiserver would
            import traceback
            traceback.print_exc()
            try:
                self._error(ApiError(500, f"k8s double internal error: {type(e).__name__}: {e}"))
            except OSError:
                pass

    # -- routing ------------------------------------------------------------------
    def _route(self, method: str, parts: List[str], q: Dict[str, str], body) -> None:
        d = self.double
        if not parts:
            return self._send(200, {"paths": ["/api", "/api/v1", "/apis", "/version"]})
        if parts == ["version"]:
            return self._send(200, {"major": "1", "minor": "31", "gitVersion": "v1.31.0-mmslib-double",
                                    "gitCommit": "0" * 40, "gitTreeState": "clean",
                                    "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.22.0",
                                    "compiler": "gc", "platform": "linux/amd64"})
        if parts in (["healthz"], ["readyz"], ["livez"]):
            return self._send(200, "ok")
        if parts[0] == "api":
            if len(parts) == 1:
                return self._send(200, {"kind": "APIVersions", "versions": ["v1"],
                                        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                                                        "serverAddress": f"127.0.0.1:{d.port}"}]})
            group, version, rest = "", parts[1], parts[2:]
        elif parts[0] == "apis":
            if len(parts) == 1:
                return self._send(200, self._group_list())
            group = parts[1]
            if len(parts) == 2:
                g = self._group(group)
                if g is None:
                    raise ApiError(404, "the server could not find the requested resource")
                return self._send(200, g)
            version, rest = parts[2], parts[3:]
        else:
            raise ApiError(404, "the server could not find the requested resource")
        if not self._gv_served(group, version):
            raise ApiError(404, "the server could not find the requested resource")
        if not rest:
            return self._send(200, {"kind": "APIResourceList", "apiVersion": "v1",
                                    "groupVersion": f"{group}/{version}" if group else version,
                                    "resources": [rt.discovery() for rt in d.by_gv[(group, version)]]
                                    + [{"name": f"{rt.plural}/status", "singularName": "", "namespaced": rt.namespaced,
                                        "kind": rt.kind, "verbs": ["get", "patch", "update"]}
                                       for rt in d.by_gv[(group, version)] if rt.status_subresource]})
        ns = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            ns, rest = rest[1], rest[2:]
        plural = rest[0]
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        rt = d.type_for(group, plural)
        if rt is None or rt.version != version:
            raise ApiError(404, "the server could not find the requested resource")
        if rt.namespaced is False and ns is not None:
            raise ApiError(404, "the server could not find the requested resource")
        if rt.namespaced and ns is None and name is not None:
            raise ApiError(404, "the server could not find the requested resource")
        if rt.key == ("", "namespaces") and name:
            ns_target = name
        else:
            ns_target = ns
        verb = {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method)
        if method == "GET":
            verb = "get" if name else ("watch" if q.get("watch") in ("true", "1") else "list")
        elif method == "DELETE":
            verb = "delete" if name else "deletecollection"
        if verb not in rt.verbs:
            raise ApiError(405, f"the server does not allow this method on the requested resource")
        if rt is SSAR and verb == "create":
            return self._access_review(body)
        if not d.allowed(verb, group, plural, ns_target):
            what = f'{rt.qualified} "{name}"' if name else rt.qualified
            grp = f'in API group "{group}"'
            raise ApiError(403, f'{what} is forbidden: User "{d.user}" cannot {verb} resource "{plural}" {grp} '
                                f'in the namespace "{ns_target}"',
                           details={"name": name or "", "group": group, "kind": plural})
        fault = d._take_fault(verb, plural, name)
        if fault is not None:
            reason = REASONS.get(fault.status, "Unknown")
            details = {"name": name or "", "group": group, "kind": plural}
            if fault.status == 422:
                details["causes"] = [{"reason": "FieldValueInvalid", "message": fault.message, "field": "spec"}]
            if fault.status == 409:
                reason = "AlreadyExists" if verb == "create" else "Conflict"
            raise ApiError(fault.status, fault.message, reason, details)
        if rt.virtual:
            return self._metrics(rt, ns, name, q)
        if ns is not None and rt.namespaced and method == "POST":
            if d.store.get(d.types[("", "namespaces")], "", ns) is None:
                raise ApiError(404, f'namespaces "{ns}" not found', details={"name": ns, "kind": "namespaces"})
        if verb == "create":
            return self._create(rt, ns, body, q)
        if verb == "get":
            return self._send(200, self._get_or_404(rt, ns, name))
        if verb == "list":
            return self._list(rt, ns, q)
        if verb == "watch":
            return self._watch(rt, ns, q)
        if verb == "patch":
            return self._patch(rt, ns, name, sub, body)
        if verb == "update":
            return self._update(rt, ns, name, sub, body)
        if verb == "delete":
            return self._delete(rt, ns, name)
        if verb == "deletecollection":
            return self._delete_collection(rt, ns, q)
        raise ApiError(405, "method not allowed")

    # -- discovery --------------------------------------------------------------------
    def _gv_served(self, group: str, version: str) -> bool:
        d = self.double
        if (group, version) not in d.by_gv:
            return False
        if group == "metrics.k8s.io" and not d.metrics_enabled:
            return False
        return True

    def _group(self, group: str) -> Optional[dict]:
        d = self.double
        versions = [v for (g, v) in d.by_gv if g == group and self._gv_served(g, v)]
        if not versions or group == "":
            return None
        versions.sort(reverse=True)   # v1beta1 before v1alpha1
        gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": gvs, "preferredVersion": gvs[0]}

    def _group_list(self) -> dict:
        groups = sorted({g for (g, _) in self.double.by_gv if g}, key=lambda g: (GROUP_PRIORITY.get(g, 9), g))
        return {"kind": "APIGroupList", "apiVersion": "v1",
                "groups": [x for x in (self._group(g) for g in groups) if x]}

    # -- verbs ---------------------------------------------------------------------
    def _get_or_404(self, rt: ResourceType, ns: Optional[str], name: str) -> dict:
        obj = self.double.store.get(rt, ns or "", name)
        if obj is None:
            raise ApiError(404, f'{rt.qualified} "{name}" not found',
                           details={"name": name, "group": rt.group, "kind": rt.plural})
        return obj

    def _admit(self, rt: ResourceType, obj: dict, q: Dict[str, str], old: Optional[dict] = None) -> None:
        """What the API server does before storing: metadata validation, pruning of unknown fields
        (a Warning header each; 400 with fieldValidation=Strict), schema validation (422), KServe's
        mutating webhook defaults and validating webhooks (403)."""
        d = self.double
        name = obj.get("metadata", {}).get("name", "")
        errs = metadata_problems(obj.get("metadata"))
        unknown: List[str] = []
        if rt.validator is not None:
            unknown, serrs = rt.validator.admit(obj)
            errs += serrs
        if unknown:
            mode = q.get("fieldValidation") or "Warn"
            if mode == "Strict":
                raise ApiError(400, "strict decoding error: " + ", ".join(f'unknown field "{u}"' for u in unknown))
            if mode != "Ignore":
                self._warnings += [f'unknown field "{u}"' for u in unknown]
        if errs:
            gk = f"{rt.kind}.{rt.group}" if rt.group else rt.kind
            msgs = [f"{f}: {m}" for f, m in errs]
            msg = f'{gk} "{name}" is invalid: ' + (f"[{', '.join(msgs)}]" if len(msgs) > 1 else msgs[0])
            raise ApiError(422, msg, "Invalid", {
                "name": name, "group": rt.group, "kind": rt.kind,
                "causes": [{"reason": "FieldValueInvalid", "message": m, "field": f} for f, m in errs]})
        if rt.kind == "ConfigMap":
            size = sum(len(str(k)) + len(str(v)) for k, v in (obj.get("data") or {}).items())
            if size > CONFIGMAP_MAX_BYTES:   # ValidateConfigMap: field.TooLong(..., core.MaxSecretSize)
                raise ApiError(422, f'ConfigMap "{name}" is invalid: []: Too long: must have at most '
                                    f"{CONFIGMAP_MAX_BYTES} bytes", "Invalid",
                               {"name": name, "kind": "configmaps", "causes": [
                                   {"reason": "FieldValueTooLong", "field": "[]",
                                    "message": f"Too long: must have at most {CONFIGMAP_MAX_BYTES} bytes"}]})
        if rt.kind == "InferenceService" and old is None and d.config.quota_inferenceservices is not None:
            used = len(d.store.items(rt, obj["metadata"].get("namespace", "")))
            if used >= d.config.quota_inferenceservices:   # the ResourceQuota admission plugin (object count)
                res, n = "count/inferenceservices.serving.kserve.io", d.config.quota_inferenceservices
                raise ApiError(403, f'inferenceservices.serving.kserve.io "{name}" is forbidden: exceeded quota: '
                                    f"mmslib-quota, requested: {res}=1, used: {res}={used}, limited: {res}={n}")
        if rt.kind == "InferenceService" and d.config.kserve_webhooks:
            default_inference_service(obj, d.config)
        if rt.group == "serving.kserve.io" and d.config.kserve_webhooks and rt.kind in ("InferenceService", "TrainedModel"):
            import re
            if not re.match(r"^[a-z]([-a-z0-9]*[a-z0-9])?$", name):
                label = "InferenceService" if rt.kind == "InferenceService" else "Trained Model"
                hook = "inferenceservice" if rt.kind == "InferenceService" else "trainedmodel"
                raise ApiError(403, f'admission webhook "{hook}.kserve-webhook-server.validator" denied the request: '
                                    f'the {label} "{name}" is invalid: a {label} name must consist of lower case '
                                    "alphanumeric characters or '-', and must start with alphabetical character. "
                                    "(e.g. \"my-name\" or \"abc-123\", regex used for validation is "
                                    "'[a-z]([-a-z0-9]*[a-z0-9])?')")
            uri = ((obj.get("spec") or {}).get("model") or {}).get("storageUri", "")
            if rt.kind == "TrainedModel" and not any(uri.startswith(p) for p in TM_STORAGE_PROTOCOLS):
                # pkg/apis/serving/v1alpha1/trainedmodel_webhook.go validateStorageURI (the agent's
                # pkg/agent/storage/provider.go SupportedProtocols)
                raise ApiError(403, 'admission webhook "trainedmodel.kserve-webhook-server.validator" denied the '
                                    f'request: the Trained Model "{name}" storageUri field is invalid. The storage uri '
                                    f"must start with one of the prefixes: {', '.join(TM_STORAGE_PROTOCOLS)}. (the "
                                    f'storage uri given is "{uri}")')
            if rt.kind == "TrainedModel" and old is not None:
                if old["spec"]["model"].get("memory") != obj.get("spec", {}).get("model", {}).get("memory"):
                    raise ApiError(403, f'admission webhook "trainedmodel.kserve-webhook-server.validator" denied the '
                                        f'request: failed to update trained model "{name}" in validator because '
                                        "memory was changed")

    def _access_review(self, body) -> None:
        """POST selfsubjectaccessreviews: status.allowed for spec.resourceAttributes (k8s.io/api
        authorization/v1 SelfSubjectAccessReview), decided by the double's authorizer."""
        if not isinstance(body, dict) or body.get("kind") not in (None, "SelfSubjectAccessReview"):
            raise ApiError(400, "the body of the request was in an unknown format")
        ra = (body.get("spec") or {}).get("resourceAttributes") or {}
        ok = self.double.allowed(ra.get("verb", ""), ra.get("group", ""), ra.get("resource", ""),
                                 ra.get("namespace") or None)
        out = dict(body, status={"allowed": ok, **({} if ok else {"reason": "no RBAC policy matched"})})
        out.setdefault("metadata", {})["creationTimestamp"] = None
        self._send(201, out)

    def _create(self, rt: ResourceType, ns: Optional[str], body, q) -> None:
        d = self.double
        if not isinstance(body, dict):
            raise ApiError(400, "the body of the request was in an unknown format")
        if body.get("kind") != rt.kind or body.get("apiVersion") != rt.api_version:
            raise ApiError(400, f"the API version in the data ({body.get('apiVersion')}) does not match the expected "
                                f"API version ({rt.api_version})" if body.get("apiVersion") != rt.api_version else
                           f"the kind in the data ({body.get('kind')}) does not match the expected kind ({rt.kind})")
        meta = body.setdefault("metadata", {})
        if rt.namespaced:
            if meta.get("namespace") not in (None, ns):
                raise ApiError(400, "the namespace of the provided object does not match the namespace sent on the "
                                    "request")
            meta["namespace"] = ns
        if not meta.get("name"):
            if meta.get("generateName"):
                import secrets
                meta["name"] = meta["generateName"] + secrets.token_hex(3)[:5]
            else:
                raise ApiError(422, f'{rt.kind} "" is invalid: metadata.name: Required value: name or generateName '
                                    "is required", details={"causes": [{"reason": "FieldValueRequired",
                                                                        "message": "Required value",
                                                                        "field": "metadata.name"}]})
        if rt.status_subresource:
            body.pop("status", None)
        self._admit(rt, body, q)
        if q.get("dryRun") == "All":
            return self._send(201, body)
        with d.store.lock:
            if d.store.get(rt, ns or "", meta["name"]) is not None:
                raise ApiError(409, f'{rt.qualified} "{meta["name"]}" already exists', "AlreadyExists",
                               {"name": meta["name"], "group": rt.group, "kind": rt.plural})
            for k in ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp", "generation"):
                meta.pop(k, None)
            obj = d.store.create(rt, body)
        self._send(201, obj)

    def _list(self, rt: ResourceType, ns: Optional[str], q) -> None:
        items, rv = self._select(rt, ns, q)
        limit = int(q.get("limit") or 0)
        start = int(q.get("continue") or 0) if (q.get("continue") or "").isdigit() else 0
        meta: Dict[str, object] = {"resourceVersion": str(rv)}
        if limit and start + limit < len(items):
            meta["continue"] = str(start + limit)
            meta["remainingItemCount"] = len(items) - start - limit
        items = items[start:start + limit] if limit else items[start:]
        self._send(200, {"kind": rt.list_kind or rt.kind + "List", "apiVersion": rt.api_version,
                         "metadata": meta, "items": items})

    def _select(self, rt: ResourceType, ns: Optional[str], q) -> Tuple[List[dict], int]:
        try:
            lp = parse_label_selector(q.get("labelSelector"))
            fp = parse_field_selector(q.get("fieldSelector"), rt.field_labels)
        except SelectorError as e:
            raise ApiError(400, str(e))
        store = self.double.store
        with store.lock:
            items = [o for o in store.items(rt, ns) if lp(o["metadata"].get("labels") or {}) and fp(o)]
            return items, store.rv

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _watch(self, rt: ResourceType, ns: Optional[str], q) -> None:
        d = self.double
        store = d.store
        try:
            lp = parse_label_selector(q.get("labelSelector"))
            fp = parse_field_selector(q.get("fieldSelector"), rt.field_labels)
        except SelectorError as e:
            raise ApiError(400, str(e))
        timeout = float(q.get("timeoutSeconds") or 1800)
        rv_q = q.get("resourceVersion") or ""
        drop_after = d._take_drop(rt.plural)
        initial: List[Tuple[str, dict]] = []
        with store.lock:
            if rv_q in ("", "0"):
                initial = [("ADDED", o) for o in store.items(rt, ns)
                           if lp(o["metadata"].get("labels") or {}) and fp(o)]
                cursor = store.rv
            else:
                try:
                    cursor = int(rv_q)
                except ValueError:
                    raise ApiError(400, f"invalid resourceVersion {rv_q!r}")
                if cursor < store.oldest_rv:
                    gone = True
                else:
                    gone = False
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        sent = 0
        if rv_q not in ("", "0") and gone:
            err = ApiError(410, f"too old resource version: {rv_q} ({store.oldest_rv})", "Expired").status()
            self._write_chunk(json.dumps({"type": "ERROR", "object": err}).encode() + b"\n")
            self._write_chunk(b"")
            return

        def drop() -> bool:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return False

        def send(typ: str, obj: dict) -> bool:
            nonlocal sent
            self._write_chunk(json.dumps({"type": typ, "object": obj}).encode() + b"\n")
            sent += 1
            if drop_after is not None and sent >= drop_after:
                return drop()     # cut right after the K-th event, without the terminating chunk
            return True

        if drop_after == 0:
            drop()
            return
        for typ, obj in initial:
            if not send(typ, obj):
                return
        deadline = time.monotonic() + timeout
        while True:
            with store.cond:
                while store.rv <= cursor and not store.closing:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    store.cond.wait(min(left, 1.0))
                if store.closing or time.monotonic() >= deadline and store.rv <= cursor:
                    break
                events = store.events_after(cursor, rt.key)
                cursor = store.rv
            for ev in events:
                if ns is not None and ev.namespace != ns:
                    continue
                if not (lp(ev.obj["metadata"].get("labels") or {}) and fp(ev.obj)):
                    continue
                if not send(ev.type, ev.obj):
                    return
        self._write_chunk(b"")

    def _apply_patch(self, obj: dict, body, ctype: str) -> dict:
        if ctype.startswith("application/json-patch+json"):
            if not isinstance(body, list):
                raise ApiError(400, "json patch must be a list of operations")
            return json_patch(obj, body)
        if ctype.startswith("application/merge-patch+json") or ctype.startswith("application/strategic-merge-patch+json"):
            if not isinstance(body, dict):
                raise ApiError(400, "merge patch must be an object")
            return merge_patch(obj, body)
        raise ApiError(415, f"the body of the request was in an unknown format - accepted media types include: "
                            "application/json-patch+json, application/merge-patch+json, "
                            f"application/strategic-merge-patch+json (got {ctype!r})")

    def _store_update(self, rt: ResourceType, ns: Optional[str], name: str, sub: Optional[str], new: dict,
                      old: dict, q) -> dict:
        d = self.double
        # fields the client may not change
        for k in ("uid", "creationTimestamp", "generation", "deletionTimestamp", "namespace", "name"):
            if k in old["metadata"]:
                new["metadata"][k] = old["metadata"][k]
            else:
                new["metadata"].pop(k, None)
        new["apiVersion"], new["kind"] = old.get("apiVersion", rt.api_version), old.get("kind", rt.kind)
        if rt.status_subresource:
            if sub == "status":
                st = new.get("status")
                new = copy.deepcopy(old)
                if st is None:
                    new.pop("status", None)
                else:
                    new["status"] = st
            elif "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)
        self._admit(rt, new, q, old)
        spec_changed = {k: v for k, v in new.items() if k not in ("metadata", "status")} != \
            {k: v for k, v in old.items() if k not in ("metadata", "status")}
        if new == old:
            return old
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        stored = d.store.replace(rt, new, bump_generation=spec_changed and rt.custom)
        if old["metadata"].get("deletionTimestamp") and not stored["metadata"].get("finalizers"):
            d.store.remove(rt, ns or "", name)
        return stored

    def _patch(self, rt: ResourceType, ns: Optional[str], name: str, sub: Optional[str], body) -> None:
        d = self.double
        q = {k: v[-1] for k, v in urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query).items()}
        with d.store.lock:
            old = self._get_or_404(rt, ns, name)
            new = self._apply_patch(copy.deepcopy(old), body, self.headers.get("Content-Type", ""))
            if not isinstance(new, dict) or not isinstance(new.get("metadata"), dict):
                raise ApiError(422, "patch removed the object's metadata")
            obj = self._store_update(rt, ns, name, sub, new, old, q)
        self._send(200, obj)

    def _update(self, rt: ResourceType, ns: Optional[str], name: str, sub: Optional[str], body) -> None:
        d = self.double
        q = {k: v[-1] for k, v in urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query).items()}
        if not isinstance(body, dict) or not isinstance(body.get("metadata"), dict):
            raise ApiError(400, "the body of the request was in an unknown format")
        with d.store.lock:
            old = self._get_or_404(rt, ns, name)
            rv = body["metadata"].get("resourceVersion")
            if rv and rv != old["metadata"]["resourceVersion"]:
                raise ApiError(409, f'Operation cannot be fulfilled on {rt.qualified} "{name}": the object has been '
                                    "modified; please apply your changes to the latest version and try again",
                               "Conflict", {"name": name, "group": rt.group, "kind": rt.plural})
            obj = self._store_update(rt, ns, name, sub, copy.deepcopy(body), old, q)
        self._send(200, obj)

    def _delete_one(self, rt: ResourceType, ns: Optional[str], name: str) -> Optional[dict]:
        d = self.double
        store = d.store
        with store.lock:
            old = store.get(rt, ns or "", name)
            if old is None:
                return None
            if old["metadata"].get("finalizers"):
                if old["metadata"].get("deletionTimestamp"):
                    return old

                def mark(o):
                    o["metadata"]["deletionTimestamp"] = now_iso()
                    o["metadata"]["deletionGracePeriodSeconds"] = 0
                return store.update(rt, ns or "", name, mark)
            return store.remove(rt, ns or "", name)

    def _delete(self, rt: ResourceType, ns: Optional[str], name: str) -> None:
        obj = self._delete_one(rt, ns, name)
        if obj is None:
            raise ApiError(404, f'{rt.qualified} "{name}" not found',
                           details={"name": name, "group": rt.group, "kind": rt.plural})
        self._send(200, obj)

    def _delete_collection(self, rt: ResourceType, ns: Optional[str], q) -> None:
        items, _ = self._select(rt, ns, q)
        out = []
        for o in items:
            r = self._delete_one(rt, o["metadata"].get("namespace"), o["metadata"]["name"])
            if r is not None:
                out.append(r)
        self._send(200, {"kind": rt.list_kind or rt.kind + "List", "apiVersion": rt.api_version,
                         "metadata": {"resourceVersion": str(self.double.store.rv)}, "items": out})

    # -- metrics.k8s.io -------------------------------------------------------------------
    def _metrics(self, rt: ResourceType, ns: Optional[str], name: Optional[str], q) -> None:
        d = self.double
        if q.get("watch") in ("true", "1"):
            raise ApiError(405, "the server does not allow this method on the requested resource")
        if rt.plural == "nodes":
            items = d.controller.node_metrics()
            kind = "NodeMetrics"
        else:
            pods_rt = d.types[("", "pods")]
            try:
                lp = parse_label_selector(q.get("labelSelector"))
            except SelectorError as e:
                raise ApiError(400, str(e))
            pods = [p for p in d.store.items(pods_rt, ns) if lp(p["metadata"].get("labels") or {})
                    and p.get("status", {}).get("phase") == "Running"]
            items = [d.controller.pod_metrics(p) for p in pods]
            kind = "PodMetrics"
        if name is not None:
            for it in items:
                if it["metadata"]["name"] == name:
                    return self._send(200, it)
            raise ApiError(404, f'{rt.qualified} "{name}" not found')
        self._send(200, {"kind": kind + "List", "apiVersion": rt.api_version,
                         "metadata": {"resourceVersion": ""}, "items": items})
