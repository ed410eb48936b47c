"""KServe backend: the seed's benchmark on a real Kubernetes cluster with KServe.

How the seed (KServe's MMS benchmark, docs/samples/multimodelserving/benchmark/BENCHMARK.md in
kserve/kserve) maps onto this backend, and what it does because real KServe does it (KServe's code
at commit aaac4e294dae; the test double in tests/k8s_double imitates it, citing file and function):

- traditional serving = one ``serving.kserve.io/v1beta1`` InferenceService per
  model: ``spec.predictor.model`` with ``modelFormat`` (the workload's
  framework, or ``model_format``; the seed's TrainedModels said
  ``tensorflow``), ``runtime`` (the seed's Triton: ``kserve-tritonserver``),
  ``storageUri``: ``storage_uri_prefix`` names the model *directory* (``{model}`` replaced by the
  model name, ``{source_model}`` by the user's model it copies: workload repository's facts; without
  them every model loads the same artifact, as the seed); a Triton runtime loads a repository, so a
  traditional ISVC's storageUri is that directory's parent and the model is served under the
  directory's name (``Endpoint.served_name``); a TrainedModel's storageUri is the model directory,
  served under the TrainedModel's name; predictor requests = limits from
  ``traditional_spec`` (seed: 100m / 100Mi), ``minReplicas: 1`` and
  ``containerConcurrency: 1`` as the seed; the queue-proxy sidecar's resources
  (seed: 1 CPU / 500Mi) go in Knative's per-revision annotations
  ``queue.sidecar.serving.knative.dev/{cpu,memory}-resource-{request,limit}``.
- multi-model serving = ``hosts`` InferenceServices without a storageUri
  (predictor from ``mms_spec``, seed: 10 CPU / 10Gi), then one
  ``serving.kserve.io/v1alpha1`` TrainedModel per model
  (``spec.inferenceService``, ``spec.model.framework/storageUri/memory``),
  each placed on the host with the least declared memory. KServe admits a
  TrainedModel while the declared memory of its host's models fits the
  host's memory limit; a refusal (condition MemoryResourceAvailable=False,
  reason MemoryResourceNotAvailable) is the seed's MMS limit.
  ``mms_engine="modelmesh"`` instead creates one InferenceService per model
  with ``serving.kserve.io/deploymentMode: ModelMesh``, served by the
  namespace's shared ModelMesh ServingRuntime named ``runtime``.
- every object carries labels ``mmslib.io/run-id``, ``mmslib.io/mode``,
  ``mmslib.io/role`` and ``app.kubernetes.io/managed-by: mmslib`` (also put on
  the predictor pods via ``spec.predictor.labels``); close() deletes them,
  ``python -m mmslib.k8s cleanup --run-id X`` deletes what a crashed run left.
- ``deployment_mode`` (Serverless, the seed's; RawDeployment/Standard) is written explicitly in
  ``serving.kserve.io/deploymentMode`` (KServe's own default is Standard); raw mode has no
  queue-proxy annotations (nothing reserved for a sidecar).
- readiness is watched (not polled): status condition Ready=True is *admission*
  (``DeployEvent.admitted_s``); a model counts as deployed when it answers through the
  ingress: ``GET /v2/models/<name>/ready`` then a correct inference (``DeployEvent.seconds``;
  a TrainedModel is Ready before its host's agent has loaded it, and a failed load is only
  logged). Each host's model-config ConfigMap (``models.json``, at most 1 MiB) is counted as
  KServe writes it; a model that would not fit stops with ``host model config full``. A pod the
  scheduler refuses (PodScheduled=False) fails its model at once. A model fails
  (``ok=False``) when the API refuses it (4xx; 409 for an object that is not
  this run's), when a condition turns False with a terminal reason
  (MemoryResourceNotAvailable, RevisionFailed as Knative reports an
  unschedulable pod, RuntimeNotRecognized, ...), or after ``deploy_timeout_s``;
  the error says why: the conditions, the pods' state and their Warning
  events (FailedScheduling "0/6 nodes are available: 6 Insufficient cpu").
  Errors start with ``admission:`` (refused: memory, webhook, quota),
  ``timeout:``, or ``failed:`` / ``api:``. With ``deploy_concurrency`` > 1
  a failure is yielded after the models in flight with it have settled (no
  new ones start meanwhile), so the models deployed before the first failure
  are all counted. API calls are retried on 5xx/429/connection errors with
  backoff (``api_retries``, ``retry_backoff_s``); a dropped watch resumes
  from its last resourceVersion.
- usage() -> :class:`Usage`: servers = the run's pods, reserved = the container requests of those
  bound to a node, sidecars included (queue-proxy, agent), pending = the others; memory_mib /
  cpu_cores = metrics.k8s.io PodMetrics (working set) when the cluster serves them, else None.
- endpoints(): V2 REST through the ingress: ``rest_url =
  http://ingress_host:ingress_port`` and ``Host: <hostname of status.url>``
  (the seed's ``curl -H "Host: ${SERVICE_HOSTNAME}"``); with ``ingress_path_template``
  (KServe's ingress ``pathTemplate``) the rendered path and ``Host: ingress_domain``. ModelMesh
  has no ingress route: ``grpc_addr`` is the ``modelmesh-serving`` Service (:8033) with the
  ``mm-vmodel-id`` header, ``rest_url`` its REST proxy when ``modelmesh_rest_url`` is given.
- ``dry_run=True`` (client): nothing is sent to any API server; every manifest is
  written as YAML into ``dry_run_dir`` (one file per object) and validated
  against KServe's CRD files when ``$MMSLIB_KSERVE_CRDS`` names them; events are ok with
  seconds=0 and error "dry-run". ``dry_run="server"``: the preflight checks run and every
  manifest is also POSTed with ``dryRun=All`` and ``fieldValidation=Strict`` (the API server's
  schemas and KServe's webhooks judge it; nothing is created).

Load generation from inside the cluster (k6 as a Kubernetes Job) is not part
of this backend.

Layout: one noun, the KServe backend (~1,100 lines): its deploy loop, probes, diagnosis and usage
all act on the same in-flight items, watchers and settings of one :class:`KServeBackend`, so
splitting it would only pass that state around. Its parts that are nouns of their own live in
:mod:`mmslib.k8s` (names, manifests, CRD schema, API client, clean-up, object status, watches).
"""
from __future__ import annotations

import concurrent.futures as cf
import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple


from .. import k8s, planner, specs
from ..errors import DeployError, MmsError, ParamError
from ..k8s.status import TERMINAL_REASONS  # noqa: F401 (re-exported: kserve.TERMINAL_REASONS)
from ..k8s.status import ADMISSION_REASONS, conditions, describe_conditions, host_of, readiness
from ..k8s.watch import Watcher
from ..resources import ServerSpec
from .base import Backend, DeployEvent, Endpoint, Usage, VerifyResult, sample_inferences
from .kserve_options import DEPLOYMENT_MODES, KServeOptions  # noqa: F401 (its options: kserve_options.py)

log = logging.getLogger(__name__)

DEFAULT_STORAGE_URI = "gs://kfserving-examples/models/triton/simple_string"
SEED_TRADITIONAL = specs.SEED["traditional"]   # the seed's specs (mmslib.seed, via mmslib.specs)
SEED_MMS = specs.SEED["mms"]
MMS_ENGINES = ("trainedmodel", "modelmesh")
MODEL_CONFIG_LIMIT = 1 << 20     # a ConfigMap's data: at most 1 MiB (Kubernetes ValidateConfigMap)
CONFIG_FULL = "host model config full"
# Warning events on an InferenceService after which KServe's reconciler does not retry
# (pkg/controller/v1beta1/inferenceservice/controller.go Reconcile: reconcile.TerminalError).
TERMINAL_EVENTS = frozenset({"ServerlessModeRejected"})
SOURCE_MODEL = "{source_model}"  # storage_uri: the user's model a replica copies (workload repository)
PLACEHOLDERS = ("{model}", SOURCE_MODEL)
INGRESS_GRACE_S = 5.0            # an ingress refusing connections this long is a setting to fix, not a wait


# Storage URI schemes KServe accepts: a TrainedModel's (the agent downloads it: pkg/agent/storage/provider.go
# SupportedProtocols, enforced by pkg/apis/serving/v1alpha1/trainedmodel_webhook.go validateStorageURI) and an
# InferenceService's (pkg/controller/v1beta1/inferenceservice/utils/utils.go SupportedStorageURIPrefixList).
TM_STORAGE_SCHEMES = ("gs://", "s3://", "http://", "https://")
ISVC_STORAGE_SCHEMES = ("gs://", "s3://", "pvc://", "file://", "https://", "http://", "hdfs://", "webhdfs://",
                        "oci://", "hf://")


def render_path_template(template: str, namespace: str, name: str) -> str:
    """KServe's ingress pathTemplate rendered as its reconciler does (ingress/path.go GenerateUrlPath,
    a Go template with .Name and .Namespace: ``/serving/{{ .Namespace }}/{{ .Name }}``); the Python-format
    spelling ``/serving/{namespace}/{name}`` is accepted too."""
    import re
    out = re.sub(r"\{\{\s*\.Namespace\s*\}\}", namespace, template)
    out = re.sub(r"\{\{\s*\.Name\s*\}\}", name, out)
    return out.replace("{namespace}", namespace).replace("{name}", name)


def forbidden_kind(message: str) -> str:
    """What a 403 from the API server is, from its message: ``webhook`` (an admission webhook denied it:
    KServe's validators), ``quota`` (a ResourceQuota), ``rbac`` (the authorizer), else ``forbidden``. None
    of them is the multi-model memory limit (that is the TrainedModel's MemoryResourceAvailable
    condition, reported as ``admission:``)."""
    m = message.lower()
    if "admission webhook" in m:
        return "webhook"
    if "exceeded quota" in m or "must specify limits" in m or "must specify requests" in m:
        return "quota"
    if "cannot create resource" in m or ("is forbidden" in m and "user " in m):
        return "rbac"
    return "forbidden"


def repository_format(workload) -> str:
    """The KServe model format of a user's repository (workload repository: every model's format, as
    :mod:`mmslib.repository` names them): triton for Triton's layout, MLServer's sklearn / lightgbm /
    xgboost runtimes, a plain file's library; "" when its models have none, or not one in common."""
    found = set()
    for f in (getattr(workload, "extra", None) or {}).get("formats") or ():
        layout, _, impl = str(f).partition(":")
        if layout == "triton":
            found.add("triton")
        elif layout == "mlserver":
            found.add(next((k for k in ("sklearn", "lightgbm", "xgboost") if f"mlserver_{k}." in impl), ""))
        else:
            found.add(layout)
    return found.pop() if len(found) == 1 and "" not in found else ""


def _spec_parts(spec: ServerSpec, what: str) -> Tuple[str, str, Optional[str], Optional[str]]:
    """(predictor cpu, memory, queue-proxy cpu, memory) from a ServerSpec; ParamError if malformed."""
    if not isinstance(spec, ServerSpec) or not spec.containers:
        raise ParamError(what, spec, "a ServerSpec with a predictor container (and optionally a queue-proxy)")
    by = {c.name: c for c in spec.containers}
    pred = by.get("predictor") or by.get(k8s.PREDICTOR_CONTAINER) or spec.containers[0]
    side = by.get("queue-proxy") or next((c for c in spec.containers if c is not pred), None)
    for c in [pred] + ([side] if side else []):
        for v, kind in ((c.cpu, "cpu"), (c.memory, "memory")):
            try:
                if k8s.parse_quantity(v) <= 0:
                    raise ValueError
            except (ValueError, TypeError):
                raise ParamError(what, f"{c.name}.{kind}={v!r}", f"a positive Kubernetes {kind} quantity") from None
    return pred.cpu, pred.memory, (side.cpu if side else None), (side.memory if side else None)


@dataclass
class _Item:
    name: str
    res: k8s.Res
    manifest: dict
    kind: str                 # "model" | "host"
    model: str
    server: str
    t0: float = 0.0
    future: Optional[cf.Future] = None
    seen: bool = False
    error: str = ""                     # refused before anything was sent (e.g. host model config full)
    admitted: Optional[float] = None    # seconds to Ready (the control plane's word)
    last_probe: float = 0.0
    probe_why: str = ""
    config_bytes: int = 0


class KServeBackend(Backend):
    """Deploys the benchmark's models as KServe objects (see the module docstring)."""

    name = "kserve"
    on_cluster = True
    servers_are = "pods"
    memory_measure = "working set of the pods (PodMetrics)"
    # What params checks generically (mmslib.backends.base.Backend):
    options = KServeOptions
    supports_protocols = ("rest",)          # the ingress is reached over HTTP
    mms_engines = MMS_ENGINES
    runtimes = ("kserve",)
    runtimes_note = "the cluster's ServingRuntime is 'serving_runtime'"

    def __init__(self, workload, *, run_id: str, namespace: str = "default", kubeconfig=None,
                 context: Optional[str] = None, runtime: str = "kserve-tritonserver",
                 model_format: Optional[str] = None, storage_uri_prefix: str = DEFAULT_STORAGE_URI,
                 traditional_spec: Optional[ServerSpec] = None, mms_spec: Optional[ServerSpec] = None,
                 model_memory=None, host_prefix: str = "mms-host", deploy_timeout_s: float = 600.0,
                 deploy_concurrency: int = 8, ingress_host: str = "127.0.0.1", ingress_port: int = 80,
                 mms_engine: str = "trainedmodel", min_replicas: int = 1, container_concurrency: int = 1,
                 dry_run: bool = False, dry_run_dir=None, api_retries: int = 4, retry_backoff_s: float = 0.25,
                 request_timeout_s: float = 30.0, cleanup_timeout_s: float = 300.0,
                 modelmesh_pod_selector: str = "modelmesh-service=modelmesh-serving",
                 deployment_mode: str = "Serverless", ingress_domain: str = "example.com",
                 ingress_path_template: str = "", modelmesh_rest_url: str = "", modelmesh_grpc_addr: str = "",
                 model_config_limit_bytes: int = MODEL_CONFIG_LIMIT, serving_check: bool = True,
                 options: Optional[KServeOptions] = None):
        self.workload = workload
        self.run_id = k8s.check_run_id(run_id)
        self.namespace = k8s.check_namespace(namespace)
        if mms_engine not in MMS_ENGINES:
            raise ParamError("mms_engine", mms_engine, " | ".join(MMS_ENGINES))
        self.mms_engine = mms_engine
        if not isinstance(runtime, str) or not k8s.is_dns1123_subdomain(runtime):
            raise ParamError("runtime", runtime, "the name of a ServingRuntime/ClusterServingRuntime in the cluster")
        self.runtime = runtime
        self.model_format = model_format or repository_format(workload) or getattr(workload, "framework", None) \
            or "custom"
        if not isinstance(self.model_format, str) or not self.model_format:
            raise ParamError("model_format", model_format, "a KServe model format name such as triton or tensorflow")
        if not isinstance(storage_uri_prefix, str) or "://" not in storage_uri_prefix:
            raise ParamError("storage_uri_prefix", storage_uri_prefix,
                             "a storage URI such as gs://bucket/path (use {model} for a per-model path, {source_model} for "
                             "the model of your repository a replica copies)")
        self.storage_uri = storage_uri_prefix
        if options is not None and not isinstance(options, KServeOptions):
            options = KServeOptions.from_mapping(options)
        self.options = options or KServeOptions()
        self.traditional_spec = traditional_spec or SEED_TRADITIONAL
        self.mms_spec = mms_spec or SEED_MMS
        self._trad = _spec_parts(self.traditional_spec, "traditional_spec")
        self._mms = _spec_parts(self.mms_spec, "mms_spec")
        mm = model_memory if model_memory is not None else getattr(workload, "memory_estimate_bytes", 1 << 20)
        self.model_memory = k8s.memory_quantity(mm, "model_memory")
        self.model_memory_bytes = k8s.parse_quantity(self.model_memory)
        self.host_memory_bytes = k8s.parse_quantity(self._mms[1])
        if not isinstance(host_prefix, str) or not k8s.is_dns1123_label(host_prefix + "-0"):
            raise ParamError("host_prefix", host_prefix, "a DNS-1123 name prefix such as mms-host")
        self.host_prefix = host_prefix
        if isinstance(deploy_timeout_s, bool) or not isinstance(deploy_timeout_s, (int, float)) or deploy_timeout_s <= 0:
            raise ParamError("deploy_timeout_s", deploy_timeout_s, "a number of seconds > 0")
        self.deploy_timeout_s = float(deploy_timeout_s)
        if isinstance(deploy_concurrency, bool) or not isinstance(deploy_concurrency, int) or deploy_concurrency < 1:
            raise ParamError("deploy_concurrency", deploy_concurrency, "an integer >= 1")
        self.deploy_concurrency = deploy_concurrency
        if isinstance(ingress_port, bool) or not isinstance(ingress_port, int) or not 1 <= ingress_port <= 65535:
            raise ParamError("ingress_port", ingress_port, "a TCP port (1-65535)")
        if not isinstance(ingress_host, str) or not ingress_host:
            raise ParamError("ingress_host", ingress_host, "the ingress gateway's host name or IP")
        self.ingress_host, self.ingress_port = ingress_host, ingress_port
        self.min_replicas, self.container_concurrency = min_replicas, container_concurrency
        self.api_retries, self.retry_backoff_s = int(api_retries), float(retry_backoff_s)
        self.request_timeout_s, self.cleanup_timeout_s = float(request_timeout_s), float(cleanup_timeout_s)
        self.modelmesh_pod_selector = modelmesh_pod_selector
        if deployment_mode not in DEPLOYMENT_MODES:
            raise ParamError("deployment_mode", deployment_mode, " | ".join(DEPLOYMENT_MODES))
        self.deployment_mode = deployment_mode
        self._set_mode(deployment_mode if deployment_mode != "auto" else "Serverless")
        if not isinstance(ingress_path_template, str) or (ingress_path_template
                                                          and not ingress_path_template.startswith("/")):
            raise ParamError("ingress_path_template", ingress_path_template,
                             "'' (host-based routing, or whatever path KServe puts in status.url) or KServe's "
                             "ingress pathTemplate, e.g. /serving/{{ .Namespace }}/{{ .Name }}")
        self.ingress_domain, self.ingress_path_template = str(ingress_domain), ingress_path_template
        self.modelmesh_rest_url, self.modelmesh_grpc_addr = str(modelmesh_rest_url or ""), str(modelmesh_grpc_addr or "")
        if isinstance(model_config_limit_bytes, bool) or not isinstance(model_config_limit_bytes, int) \
                or model_config_limit_bytes < 64:
            raise ParamError("model_config_limit_bytes", model_config_limit_bytes, "an integer number of bytes >= 64")
        self.model_config_limit_bytes = model_config_limit_bytes
        self.serving_check = bool(serving_check)
        self.triton = "triton" in self.runtime or self.model_format == "triton"
        schemes = ISVC_STORAGE_SCHEMES if mms_engine == "modelmesh" else TM_STORAGE_SCHEMES
        if not self.storage_uri.startswith(schemes):
            raise ParamError("storage_uri", self.storage_uri, (
                f"a URI KServe can download: {' | '.join(schemes)}" + (
                    " (a TrainedModel's storageUri is downloaded by KServe's model agent, which knows only these; "
                    "its webhook refuses the others)" if mms_engine != "modelmesh" else "")))
        if "YOUR-BUCKET" in self.storage_uri:
            raise ParamError("storage_uri", self.storage_uri, (
                "your bucket in place of YOUR-BUCKET, after `python -m mmslib.k8s artifacts --source <a Triton model "
                "directory> --out OUT --models N` and uploading OUT there (docs/kserve-first-contact.md, item 1)"))
        self._check_placeholders()
        if self.triton and self.options.check_artifact_layout:
            problem = k8s.per_model_layout_problem(self.storage_uri)
            if problem and SOURCE_MODEL in self.storage_uri:
                raise ParamError("storage_uri", self.storage_uri, (
                    "with a Triton runtime, one model directory per replica, named as the replica: "
                    f"gs://BUCKET/PATH/{{model}}/{{model}} ({problem}). Write copies of your repository with "
                    "`python -m mmslib.k8s artifacts --repository <your model_repository> --out OUT --models N` "
                    "(OUT/m00000/m00000 copies your first model, m00001 the next, round-robin as a run serves "
                    "them, each config.pbtxt naming its replica), upload OUT (gsutil -m cp -r OUT/* "
                    "gs://BUCKET/PATH/), and pass gs://BUCKET/PATH/{model}/{model}"))
            if problem:
                raise ParamError("storage_uri", self.storage_uri, (
                    "one Triton model directory per model, named as the model: gs://BUCKET/PATH/{model}/{model} "
                    f"({problem}). Write them with `python -m mmslib.k8s artifacts --source <a Triton model "
                    "directory, e.g. gsutil cp -r gs://kfserving-examples/models/triton/simple_string .> --out "
                    "OUT --models N`, upload OUT (gsutil -m cp -r OUT/* gs://BUCKET/PATH/), and pass that URI"))
        self._config_bytes: Dict[str, int] = {}     # host -> bytes of its models.json (as KServe writes it)
        self._config_entries: Dict[str, int] = {}
        modes = {False: "", None: "", True: "client", "false": "", "true": "client", "client": "client",
                 "server": "server"}
        if not isinstance(dry_run, (bool, str, type(None))) or dry_run not in modes:
            raise ParamError("dry_run", dry_run, "false | true (= client: write the manifests, no cluster) | server "
                                                 "(send each to the API server as a dry run with strict field "
                                                 "validation, KServe's webhooks included; nothing is created)")
        self.dry_run_mode = modes[dry_run]
        self.dry_run = bool(self.dry_run_mode)
        self.dry_run_dir = Path(dry_run_dir) if dry_run_dir is not None else None
        self.api = None
        self._environment: Optional[Dict[str, Any]] = None
        self._watchers: Dict[str, Watcher] = {}
        self._hosts: List[str] = []
        self._declared: Dict[str, float] = {}
        self._ok: Dict[str, Tuple[str, str]] = {}       # model -> (server, plural) deployed ok
        self._modes: set = set()
        self._written: List[Path] = []
        self._manifests: List[dict] = []
        self._lock = threading.Lock()
        self._closed = False
        self.cleanup_result: Dict[str, int] = {}
        self.cleanup_error = ""
        self._kserve_checked: set = set()
        self._session = None
        self._last_pod_check = 0.0
        self._runtime_checked = False
        self._refused_since: Dict[str, float] = {}
        self._unsched_since: Dict[str, float] = {}
        self._unsched_logged: Dict[str, float] = {}
        self._tm_served: List[Tuple[float, float]] = []   # (when a TrainedModel answered, seconds after Ready)
        if self.dry_run:
            if self.dry_run_dir is None:
                raise ParamError("dry_run_dir", None, "a directory for the manifests when dry_run is true")
            self.dry_run_dir.mkdir(parents=True, exist_ok=True)
            self._crds = k8s.crd_dir(required=False)
            if self.dry_run_mode == "client":
                if self._crds is None:
                    log.warning("KServe CRDs not found (MMSLIB_KSERVE_CRDS): dry-run manifests are not validated "
                                "(dry_run: server checks them against the cluster)")
                return
            self._crds = None          # the API server checks them
        self.api = k8s.api_client(kubeconfig, context)
        try:
            k8s.check_reachable(self.api)
            self._need(k8s.ISVC)
            k8s.check_namespace_access(self.api, self.namespace)
            self._check_knative(deployment_mode)
            self._check_access()
            self._check_modelmesh()
        except BaseException:
            self.api.close()
            self.api = None
            raise

    def _set_mode(self, mode: str) -> None:
        self.deployment_mode = mode
        self.raw = mode in ("RawDeployment", "Standard")
        if self.raw:     # no Knative, no queue-proxy: nothing reserved for a sidecar
            self._trad = self._trad[:2] + (None, None)
            self._mms = self._mms[:2] + (None, None)

    def _check_knative(self, asked: str) -> None:
        """Serverless needs Knative Serving (serving.knative.dev/v1 services): without it KServe's
        reconciler emits ServerlessModeRejected and stops, and nothing else ever happens. ``auto``
        picks Serverless when Knative is served, else RawDeployment."""
        if asked not in ("Serverless", "auto"):
            return
        served = k8s.knative_served(self.api)
        if asked == "auto":
            self._set_mode("Serverless" if served is not False else "RawDeployment")
            log.info("deployment_mode auto: %s (Knative Serving %s)", self.deployment_mode,
                     "served" if served else "not served" if served is False else "not readable")
            return
        if served is False:
            raise ParamError("deployment_mode", asked, (
                f"RawDeployment (or Standard, or auto) on this cluster: it does not serve serving.knative.dev/v1 "
                f"(Knative Serving is not installed at {k8s.server_of(self.api)}), and KServe rejects a Serverless "
                "InferenceService there (Warning event ServerlessModeRejected; nothing is ever deployed). "
                "Or install Knative Serving"))

    def _check_modelmesh(self) -> None:
        """ModelMesh: the namespace must carry ``modelmesh-enabled=true`` (modelmesh-serving reconciles only
        such namespaces), and a model must be verifiable as loaded: ModelMesh sets Ready while the model is
        still Loading and keeps it after evicting it, so without ``modelmesh_rest_url`` every registration
        would count as deployed and a stress run would never find a limit; ``modelmesh_count: registered``
        accepts that, said so in :meth:`deploy_notes`."""
        if self.mms_engine != "modelmesh":
            return
        if not self.modelmesh_rest_url and self.options.modelmesh_count == "loaded":
            raise ParamError("modelmesh_rest_url", "", (
                "the modelmesh-serving Service's REST proxy, to verify each model is loaded (kubectl port-forward "
                "svc/modelmesh-serving 8008 -n " + self.namespace + ", then http://127.0.0.1:8008): ModelMesh says "
                "Ready while a model is still Loading and after evicting it; or the kserve option "
                "modelmesh_count: registered, to count registrations (and say so)"))
        from kubernetes import client
        try:
            ns = k8s.call(f"GET namespace {self.namespace}", client.CoreV1Api(self.api).read_namespace,
                          self.namespace, retries=1)
        except k8s.KubeApiError as e:
            if e.status == 403:
                log.info("cannot read namespace %s: its modelmesh-enabled label is not checked", self.namespace)
                return
            raise
        if ((ns.metadata.labels or {}).get("modelmesh-enabled")) != "true":
            raise ParamError("namespace", self.namespace, (
                "a namespace labelled modelmesh-enabled=true for ModelMesh (modelmesh-serving ignores the others: "
                f"its models would never be served): kubectl label namespace {self.namespace} modelmesh-enabled=true"))

    def needed_access(self) -> List[Tuple[str, str, str]]:
        """(verb, API group, resource) the run needs in its namespace: create/get/list/watch/delete of
        InferenceServices (and TrainedModels with the trainedmodel engine), get/list of ServingRuntimes,
        list of pods and events (readiness, diagnosis, usage)."""
        kserve = "serving.kserve.io"
        out = [(v, kserve, "inferenceservices") for v in ("create", "get", "list", "watch", "delete")]
        if self.mms_engine == "trainedmodel":
            out += [(v, kserve, "trainedmodels") for v in ("create", "get", "list", "watch", "delete")]
        out += [(v, kserve, "servingruntimes") for v in ("get", "list")]
        out += [("list", "", "pods"), ("get", "", "pods"), ("list", "", "events")]
        return out

    def _check_access(self) -> None:
        """One SelfSubjectAccessReview per needed verb and resource, before anything is created; a
        ParamError listing every one missing, with a Role that grants them."""
        if not self.options.check_permissions or self.dry_run_mode == "client":
            return
        needs = self.needed_access()
        missing = k8s.missing_access(self.api, self.namespace, needs)
        if missing:
            what = ", ".join(f"{v} {r}" + (f".{g}" if g else "") for v, g, r in missing)
            raise ParamError("namespace", self.namespace, (
                f"a namespace where this user may do what the run needs; missing ({len(missing)}): {what}. "
                "Grant them with a Role and a RoleBinding to the user, e.g. (kubectl apply -f):\n"
                + k8s.rbac_role(self.namespace, needs)))

    # -- small helpers ----------------------------------------------------------
    def _call(self, what: str, fn, *args, **kw):
        kw.setdefault("retries", self.api_retries)
        kw.setdefault("backoff_s", self.retry_backoff_s)
        kw.setdefault("request_timeout", self.request_timeout_s)
        return k8s.call(what, fn, *args, **kw)

    def _need(self, *res: k8s.Res) -> None:
        todo = [r for r in res if r not in self._kserve_checked]
        if todo and self.dry_run_mode != "client":
            k8s.check_kserve(self.api, todo)
            self._kserve_checked.update(todo)

    def _check_runtime(self) -> None:
        """The ServingRuntime ``runtime`` exists (namespaced, else cluster-wide), is enabled and supports
        ``model_format``: else ParamError naming what this cluster has. Once per backend."""
        if self._runtime_checked or self.dry_run_mode == "client":
            return
        co = self._co()
        sr = None
        have: List[str] = []
        from functools import partial
        g, sv, cv = k8s.SR.group, k8s.SR.version, k8s.CSR.version
        for res, get, lst in (
                (k8s.SR, partial(co.get_namespaced_custom_object, g, sv, self.namespace, k8s.SR.plural, self.runtime),
                 partial(co.list_namespaced_custom_object, g, sv, self.namespace, k8s.SR.plural)),
                (k8s.CSR, partial(co.get_cluster_custom_object, g, cv, k8s.CSR.plural, self.runtime),
                 partial(co.list_cluster_custom_object, g, cv, k8s.CSR.plural))):
            try:
                sr = self._call(f"get {res.kind} {self.runtime}", get, retries=1)
                break
            except k8s.KubeApiError as e:
                if e.status == 403:     # may not read cluster-scoped runtimes: the webhook will tell
                    log.info("cannot read %ss (%s): runtime %s not checked", res.kind, e.message, self.runtime)
                    self._runtime_checked = True
                    return
                if e.status != 404:
                    raise
            try:
                have += [o["metadata"]["name"] for o in self._call(f"list {res.kind}s", lst, retries=1).get("items", [])]
            except k8s.KubeApiError:
                pass
        if sr is None:
            listed = ", ".join(sorted(set(have))) or "none (install KServe's runtimes: kserve-cluster-resources)"
            raise ParamError("serving_runtime", self.runtime,
                             f"a ServingRuntime in namespace {self.namespace} or a ClusterServingRuntime "
                             f"(kubectl get servingruntimes,clusterservingruntimes); this cluster has: {listed}")
        spec = sr.get("spec") or {}
        formats = sorted({f.get("name") for f in spec.get("supportedModelFormats") or []})
        if spec.get("disabled"):
            raise ParamError("serving_runtime", self.runtime, "an enabled ServingRuntime (this one has disabled: true)")
        if formats and self.model_format not in formats:
            raise ParamError("model_format", self.model_format,
                             f"a format ServingRuntime {self.runtime} supports: {', '.join(formats)}")
        self._runtime_checked = True

    def _co(self):
        from kubernetes import client
        return client.CustomObjectsApi(self.api)

    def _core(self):
        from kubernetes import client
        return client.CoreV1Api(self.api)

    def _watcher(self, res: k8s.Res) -> Watcher:
        w = self._watchers.get(res.plural)
        if w is None:
            w = Watcher(self, res, k8s.run_selector(self.run_id)).start()
            self._watchers[res.plural] = w
        return w

    def _source_model(self, model: str) -> str:
        """The user's model replica ``model`` copies (the workload's facts: workload repository); '' if none."""
        facts = getattr(self.workload, "facts", None)
        return str((facts(model) if callable(facts) else {}).get("source_model") or "")

    def _check_placeholders(self) -> None:
        """storage_uri's placeholders are {model} and {source_model}. {source_model} needs a workload whose
        models copy the user's (workload repository); with TrainedModels and models whose model-settings.json
        names them, a model directory named as the TrainedModel (MLServer finds a model by that name, and
        KServe's agent asks it to load the TrainedModel's: Ready, never loaded). Triton's own rule is
        :func:`mmslib.k8s.per_model_layout_problem`'s. A ParamError, before anything is created."""
        import re
        uri = self.storage_uri
        unknown = sorted(set(re.findall(r"\{[^{}/]*\}", uri)) - set(PLACEHOLDERS))
        if unknown:
            raise ParamError("storage_uri", uri, (
                "a URI whose placeholders are {model} (the replica's name: m00000, ...) and {source_model} (the "
                f"model of your repository the replica copies, workload repository); not {', '.join(unknown)}"))
        if SOURCE_MODEL not in uri:
            if self._source_model("m00000") and "{model}" not in uri:
                raise ParamError("storage_uri", uri, (
                    "your models' location, one directory per replica: gs://BUCKET/PATH/{source_model} (the "
                    "model of your repository each replica copies) or, for copies written by `python -m mmslib.k8s "
                    "artifacts --repository <your model_repository> --out OUT --models N`, gs://BUCKET/PATH/{model}/"
                    "{model}; with model_repository the cluster loads your models from storage_uri, and this URI "
                    "names neither"))
            return
        if not self._source_model("m00000"):
            raise ParamError("storage_uri", uri, (
                f"{{model}} (the replica's name) with workload {getattr(self.workload, 'name', '?')!r}: "
                "{source_model} is the model of your repository a replica copies, which only workload "
                "'repository' (model_repository: your folder) has"))
        formats = (getattr(self.workload, "extra", None) or {}).get("formats") or ()
        last = uri.rstrip("/").rpartition("/")[2]
        if (self.mms_engine == "trainedmodel" and not self.triton and self.options.check_artifact_layout
                and last != "{model}" and any(str(f).startswith("mlserver:") for f in formats)):
            raise ParamError("storage_uri", uri, (
                "a model directory named as the TrainedModel, gs://BUCKET/PATH/{model}/{model}: your models' "
                f"model-settings.json name them (e.g. {self._source_model('m00000')!r}), MLServer finds a model by "
                "that name, and KServe's agent asks it to load the TrainedModel's (m00000, ...): every TrainedModel "
                "would be Ready and never load. Write copies named as the replicas with `python -m mmslib.k8s "
                "artifacts --repository <your model_repository> --out OUT --models N`, upload OUT (gsutil -m cp -r "
                "OUT/* gs://BUCKET/PATH/), and pass that URI"))

    def _uri(self, model: str) -> str:
        """The model's directory (a TrainedModel's storageUri): ``{model}`` the model's name,
        ``{source_model}`` the user's model it copies (:meth:`_source_model`)."""
        u = self.storage_uri.replace("{model}", model)
        return u.replace(SOURCE_MODEL, self._source_model(model)) if SOURCE_MODEL in u else u

    def _trad_uri(self, model: str) -> str:
        """A traditional InferenceService's storageUri: Triton loads a repository root (the model
        directory's parent); other runtimes load the model directory."""
        u = self._uri(model).rstrip("/")
        return u.rsplit("/", 1)[0] if self.triton else u

    def served_name(self, model: str, kind: str = "traditional") -> str:
        """The name the server answers to: Triton's repository directory for a traditional ISVC,
        else the InferenceService's / TrainedModel's name."""
        if kind == "traditional" and self.triton:
            return self._uri(model).rstrip("/").rsplit("/", 1)[-1]
        return model

    def _check_names(self, names: Sequence[str], what: str, param: str = "models",
                     max_len: int = k8s.ISVC_NAME_MAX) -> List[str]:
        if isinstance(names, str):
            raise ParamError(param, names, "a list of names")
        names = list(names)
        for n in names:
            k8s.check_object_name(n, what, param, max_len)
        seen = set()
        for n in names:
            if n in seen:
                raise ParamError(param, n, f"distinct {what}s ({n!r} appears twice)")
            seen.add(n)
        return names

    def _check_raw_hosts(self, names: Sequence[str], param: str) -> None:
        """Raw mode: the ingress host is ``<isvc>-<namespace>.<ingressDomain>`` (ingress/domain.go
        GenerateDomainName), whose first label must fit 63 characters."""
        if not self.raw:
            return
        for n in names:
            if len(f"{n}-{self.namespace}") > 63:
                raise ParamError(param, n, (
                    f"names that fit KServe's raw-mode host <name>-<namespace> in 63 characters (with namespace "
                    f"{self.namespace!r}: at most {62 - len(self.namespace)} characters)"))

    def _labels(self, mode: str, role: str) -> Dict[str, str]:
        return k8s.run_labels(self.run_id, mode, role)

    def _isvc(self, name: str, mode: str, role: str, spec: Tuple, storage_uri: Optional[str],
              deployment_mode: Optional[str] = None) -> dict:
        cpu, mem, scpu, smem = spec
        deployment_mode = deployment_mode or self.deployment_mode   # explicit: KServe's default is Standard
        return k8s.isvc_manifest(name, self.namespace, labels=self._labels(mode, role), model_format=self.model_format,
                                 runtime=self.runtime, storage_uri=storage_uri, cpu=cpu, memory=mem,
                                 sidecar_cpu=scpu, sidecar_memory=smem, min_replicas=self.min_replicas,
                                 container_concurrency=self.container_concurrency, deployment_mode=deployment_mode,
                                 # pinned (min = max) unless asked: containerConcurrency 1 and no maxReplicas let
                                 # Knative scale out under the readiness probes, and each replica reserves a host
                                 max_replicas=None if self.options.autoscale else self.min_replicas)

    # -- deployment loop -----------------------------------------------------------
    def _create(self, it: _Item) -> str:
        co = self._co()
        r = it.res
        what = f"create {r.kind} {self.namespace}/{it.name}"
        for _ in range(2):
            try:
                self._call(what, co.create_namespaced_custom_object, r.group, r.version, self.namespace, r.plural,
                           it.manifest, field_validation="Strict")
                return "created"
            except k8s.KubeApiError as e:
                if e.status == 409:
                    try:
                        cur = self._call(f"get {r.kind} {it.name}", co.get_namespaced_custom_object, r.group,
                                         r.version, self.namespace, r.plural, it.name)
                    except k8s.KubeApiError as e2:
                        if e2.status == 404:      # deleted in between: create again
                            continue
                        raise DeployError(f"api: {what}: {e2}") from None
                    labels = (cur.get("metadata") or {}).get("labels") or {}
                    mine = {k: it.manifest["metadata"]["labels"][k] for k in (k8s.LABEL_RUN, k8s.LABEL_MODE, k8s.LABEL_ROLE)}
                    if all(labels.get(k) == v for k, v in mine.items()) and not cur["metadata"].get("deletionTimestamp"):
                        log.info("%s: already exists (this run's): adopted", what)
                        return "exists"
                    owner = labels.get(k8s.LABEL_RUN)
                    hint = (f"it belongs to run {owner!r} ({k8s.LABEL_MODE}={labels.get(k8s.LABEL_MODE)}); delete it with "
                            f"`python -m mmslib.k8s cleanup --run-id {owner} --namespace {self.namespace}`"
                            if owner else "it was not created by mmslib; delete it or use another namespace")
                    if cur["metadata"].get("deletionTimestamp"):
                        hint = "it is being deleted; wait until it is gone"
                    raise DeployError(f"api: {r.kind} {self.namespace}/{it.name} already exists (HTTP 409): {hint}") from None
                if e.status == 403:
                    raise DeployError(f"{forbidden_kind(e.message)}: {r.kind} {self.namespace}/{it.name} refused by "
                                      f"the API server (HTTP 403): {e.message}") from None
                if e.status in (400, 422):
                    raise DeployError(f"api: the API server rejected {r.kind} {self.namespace}/{it.name} "
                                      f"(HTTP {e.status}): {e.message}") from None
                raise DeployError(f"api: {e}") from None
        raise DeployError(f"api: {what}: conflicting with a deletion in progress")

    def _probe(self, obj: dict) -> Tuple[bool, str]:
        """(serving, why not): GET /v2/models/<name>/ready through the ingress, then one correct inference."""
        ep = self._endpoint_of(obj)
        if ep is None:
            return False, "no URL in its status yet"
        if not ep.rest_url:
            return True, ""            # ModelMesh without modelmesh_rest_url: nothing this machine can reach
        import numpy as np
        import requests

        from ..v2 import V2Client
        if self._session is None:
            self._session = requests.Session()
        name = ep.served_name or ep.model
        try:
            r = self._session.get(f"{ep.rest_url}/v2/models/{name}/ready", headers=ep.headers, timeout=5)
            if r.status_code != 200:
                return False, f"GET /v2/models/{name}/ready: HTTP {r.status_code}"
            smp = self.workload.make_sample(np.random.default_rng(len(self._ok)))
            self._session.headers.clear()
            self._session.headers.update(ep.headers)
            out = V2Client(ep.rest_url, timeout=10, session=self._session).infer(name, smp.inputs)
            if not self.workload.check(out, smp.expected):
                return False, f"{name}: wrong answer"
            return True, ""
        except requests.ConnectionError as e:
            return False, f"unreachable: {type(e).__name__}: {e}"[:300]
        except (requests.RequestException, ValueError, KeyError) as e:
            return False, f"{type(e).__name__}: {e}"[:300]

    def _endpoint_of(self, o: dict) -> Optional[Endpoint]:
        """Where a Ready model is reached: the ingress (by Host, or by path with a path template), or for
        ModelMesh the ``modelmesh-serving`` Service (KServe makes no ingress route for it)."""
        name = o["metadata"]["name"]
        ns = o["metadata"].get("namespace", self.namespace)
        st = o.get("status") or {}
        ann = o["metadata"].get("annotations") or {}
        if o["kind"] == "InferenceService" and ann.get(k8s.ANN_DEPLOYMENT_MODE) == k8s.MODELMESH:
            return Endpoint(name, "modelmesh-serving", self.modelmesh_rest_url,
                            self.modelmesh_grpc_addr or f"modelmesh-serving.{ns}:8033", {"mm-vmodel-id": name})
        if o["kind"] == "TrainedModel":
            server, served = (o.get("spec") or {}).get("inferenceService") or name, name
        else:
            server, served = name, self.served_name(name)
        import re
        import urllib.parse
        u = urllib.parse.urlsplit(st.get("url") or "")
        host = u.hostname or ""
        if not host:
            return None
        path = u.path
        if o["kind"] == "TrainedModel":   # the host's URL + constants.PredictPath (trainedmodel controller updateStatus)
            path = re.sub(r"/v2/models/[^/]+/infer$|/v1/models/[^/]+:predict$", "", path)
        rest = f"http://{self.ingress_host}:{self.ingress_port}"
        if path.strip("/"):
            # path-based ingress: KServe put the rendered pathTemplate in status.url (ingress_reconciler.go
            # getPathBasedServiceUrl: http://<ingressDomain><path>); follow it as it is
            rest += path.rstrip("/")
        elif self.ingress_path_template and not self.raw:
            # an older KServe without the path in status.url: the template as given (Go or Python syntax)
            rest += render_path_template(self.ingress_path_template, ns, server).rstrip("/")
            host = self.ingress_domain
        return Endpoint(name, server, rest, "", {"Host": host}, served_name=served if served != name else "")

    def _unschedulable(self, inflight: Dict[str, "_Item"]) -> Dict[str, str]:
        """{InferenceService: error} for in-flight ones whose predictor pod the scheduler refused
        (PodScheduled=False, reason Unschedulable; a FailedScheduling event). In RawDeployment/Standard mode
        nothing terminal ever reaches the InferenceService (its Deployment just lacks availability), and
        Knative may only say RevisionMissing: the pod is where a capacity stop shows. Listed at most once
        a second, for items waiting more than half a second."""
        now = time.monotonic()
        if now - self._last_pod_check < 1.0 or not any(now - it.t0 > 0.5 for it in inflight.values()):
            return {}
        self._last_pod_check = now
        try:
            pods = self._raw("list pods", self._core().list_namespaced_pod, self.namespace,
                             label_selector=k8s.run_selector(self.run_id)).get("items", [])
        except MmsError:
            return {}
        out = self._isvc_rejections(inflight)
        for p in pods:
            isvc = (p["metadata"].get("labels") or {}).get(k8s.LABEL_ISVC)
            if isvc not in inflight or (p.get("spec") or {}).get("nodeName"):
                continue
            for c in (p.get("status") or {}).get("conditions") or []:
                if c.get("type") == "PodScheduled" and c.get("status") == "False" and c.get("reason") == "Unschedulable":
                    # not final where a node autoscaler may add a node: wait unschedulable_wait_s, event shown
                    since = self._unsched_since.setdefault(isvc, now)
                    if now - since < self.options.unschedulable_wait_s:
                        if now - self._unsched_logged.get(isvc, 0.0) > 30:
                            self._unsched_logged[isvc] = now
                            log.info("InferenceService %s: pod %s unschedulable for %.0f s (waiting up to %g s for a "
                                     "node autoscaler): %s", isvc, p["metadata"]["name"], now - since,
                                     self.options.unschedulable_wait_s, c.get("message", ""))
                        continue
                    out[isvc] = (f"failed: InferenceService {isvc}: pod {p['metadata']['name']} cannot be scheduled "
                                 f"(PodScheduled=False, Unschedulable): {c.get('message', '')}")
        return out

    def _isvc_warnings(self, name: Optional[str] = None) -> List[dict]:
        """Warning events on InferenceServices (KServe's reconciler reports there what stops it, e.g.
        ServerlessModeRejected, InternalError), oldest first; of one InferenceService with ``name``."""
        sel = "involvedObject.kind=InferenceService,type=Warning"
        if name:
            sel += f",involvedObject.name={name}"
        evs = self._raw("list InferenceService events", self._core().list_namespaced_event, self.namespace,
                        field_selector=sel).get("items", [])
        return sorted(evs, key=lambda e: e.get("lastTimestamp") or "")

    def _isvc_rejections(self, inflight: Dict[str, "_Item"]) -> Dict[str, str]:
        """{InferenceService: error} for in-flight ones KServe's reconciler gave up on (an event reason in
        TERMINAL_EVENTS): a Serverless InferenceService without Knative stays Ready=Unknown for ever."""
        try:
            evs = self._isvc_warnings()
        except MmsError:
            return {}
        out = {}
        for e in evs:
            n = (e.get("involvedObject") or {}).get("name")
            if n in inflight and e.get("reason") in TERMINAL_EVENTS:
                out[n] = (f"failed: InferenceService {n} rejected by KServe: event {e.get('reason')}: "
                          f"{e.get('message', '')}" + (" (Knative Serving is not installed: use deployment_mode "
                                                       "RawDeployment or auto)" if e.get("reason") ==
                                                       "ServerlessModeRejected" else ""))
        return out

    def _fail(self, it: _Item, error: str) -> DeployEvent:
        return DeployEvent(it.model, it.server, False, time.monotonic() - it.t0, time.time(), error=error, kind=it.kind)

    def _check(self, it: _Item, w: Watcher) -> Optional[DeployEvent]:
        waited = time.monotonic() - it.t0
        if it.future is not None and not it.future.done():
            if waited > self.deploy_timeout_s + self.request_timeout_s * (self.api_retries + 2):
                return self._fail(it, f"timeout: the API server did not answer the create of {it.res.kind} {it.name}")
            return None
        exc = it.future.exception() if it.future is not None else None
        if exc is not None:
            return self._fail(it, str(exc) if isinstance(exc, MmsError) else f"api: {type(exc).__name__}: {exc}")
        obj = w.get(it.name)
        if obj is None:
            if it.seen:
                return self._fail(it, f"failed: {it.res.kind} {it.name} was deleted while deploying")
            if w.error:
                return self._fail(it, w.error)
        else:
            it.seen = True
            state, why = readiness(obj)
            if state == "ready" and (it.kind != "model" or not self.serving_check):
                return DeployEvent(it.model, it.server, True, waited, time.time(), kind=it.kind)
            if state == "ready":
                # Ready only says the control plane accepted it (a TrainedModel is Ready before its host's
                # agent has even seen it): serving = the model answers through the ingress.
                if it.admitted is None:
                    it.admitted = waited
                now = time.monotonic()
                # probe often at first, then less (hundreds of TrainedModels may wait for the next kubelet refresh)
                if now - it.last_probe >= min(1.0, max(0.05, (waited - it.admitted) / 10)):
                    it.last_probe = now
                    ok, it.probe_why = self._probe(obj)
                    if not ok and it.probe_why.startswith("unreachable:"):
                        since = self._refused_since.setdefault("ingress", now)
                        if now - since > INGRESS_GRACE_S:
                            return self._fail(it, (
                                f"failed: ingress unreachable: {it.res.kind} {it.name} is Ready but nothing answers at "
                                f"http://{self.ingress_host}:{self.ingress_port} for {now - since:.0f} s "
                                f"({it.probe_why[len('unreachable: '):]}). Set ingress_host/ingress_port to the "
                                "ingress gateway's address (e.g. `kubectl port-forward -n istio-system "
                                "svc/istio-ingressgateway 8080:80` and ingress_port 8080)"))
                    elif ok or not it.probe_why.startswith("unreachable:"):
                        self._refused_since.pop("ingress", None)
                    if ok:
                        return DeployEvent(it.model, it.server, True, time.monotonic() - it.t0, time.time(),
                                           kind=it.kind, admitted_s=it.admitted)
            if state == "failed":
                reasons = {c.get("reason") for c in conditions(obj) if c.get("status") == "False"}
                prefix = "admission" if reasons & ADMISSION_REASONS else "failed"
                extra = self._diagnose(it, obj)
                verb = "refused" if prefix == "admission" else "failed"
                return self._fail(it, f"{prefix}: {it.res.kind} {it.name} {verb}: {why}" + (f"; {extra}" if extra else ""))
        if waited > self.deploy_timeout_s and it.admitted is not None:
            return self._fail(it, f"timeout: {it.res.kind} {it.name} was Ready (admitted) after {it.admitted:.2f} s "
                                  f"but the model did not answer through the ingress within {self.deploy_timeout_s:g} s "
                                  f"({it.probe_why}); the model agent/server logs say why (it does not report to the API)")
        if waited > self.deploy_timeout_s:
            why = describe_conditions(obj) if obj else "no status yet"
            extra = self._diagnose(it, obj)
            return self._fail(it, f"timeout: {it.res.kind} {it.name} not ready within {self.deploy_timeout_s:g} s: "
                                  f"{why}" + (f"; {extra}" if extra else ""))
        return None

    def _run(self, items: List[_Item], res: k8s.Res) -> Iterator[DeployEvent]:
        w = self._watcher(res)
        source = iter(items)
        exhausted = False
        inflight: Dict[str, _Item] = {}
        pool = cf.ThreadPoolExecutor(max(1, min(self.deploy_concurrency, 16)), thread_name_prefix="kserve-create")
        held: List[DeployEvent] = []     # failures wait until the models in flight with them are settled
        try:
            while not exhausted or inflight or held:
                if held and not inflight:
                    for ev in held:
                        yield ev
                    held = []
                    continue
                # TrainedModels: a batch in flight, so that many land in the same kubelet ConfigMap refresh
                limit = self.options.tm_batch if res is k8s.TM else self.deploy_concurrency
                while not held and not exhausted and len(inflight) < limit:
                    it = next(source, None)
                    if it is None:
                        exhausted = True
                        break
                    it.t0 = time.monotonic()
                    if it.error:          # refused before sending anything
                        held.append(self._fail(it, it.error))
                        break
                    it.future = pool.submit(self._create, it)
                    inflight[it.name] = it
                done = []
                unschedulable = self._unschedulable(inflight) if res is k8s.ISVC else {}
                for it in list(inflight.values()):
                    ev = self._check(it, w)
                    if ev is None and it.name in unschedulable:
                        ev = self._fail(it, unschedulable[it.name])
                    if ev is not None:
                        del inflight[it.name]
                        done.append((it, ev))
                for it, ev in done:
                    if ev.ok:
                        if it.kind == "model":
                            with self._lock:
                                self._ok[it.model] = (it.server, it.res.plural)
                                if it.res is k8s.TM and ev.admitted_s is not None:
                                    self._tm_served.append((time.monotonic(), ev.seconds - ev.admitted_s))
                    else:
                        if it.kind == "model" and it.res is k8s.TM and it.server:
                            with self._lock:
                                self._declared[it.server] = self._declared.get(it.server, 0.0) - self.model_memory_bytes
                                self._config_bytes[it.server] = self._config_bytes.get(it.server, 0) - it.config_bytes
                                self._config_entries[it.server] = self._config_entries.get(it.server, 1) - 1
                        held.append(ev)
                        continue
                    yield ev
                if not done:
                    w.wait(0.1)
        finally:
            for it in inflight.values():
                if it.future is not None:
                    it.future.cancel()
            pool.shutdown(wait=True)   # a create in flight must finish before close() deletes

    def _dry(self, items: List[_Item]) -> Iterator[DeployEvent]:
        for it in items:
            if it.error:
                yield self._fail(it, it.error)
                continue
            t0 = time.monotonic()
            if self._crds is not None:
                errs = k8s.validate_manifest(it.manifest, self._crds)
                if errs:
                    raise DeployError(f"dry-run: {it.res.kind} {it.name} does not validate against KServe's CRDs: "
                                      + "; ".join(errs))
            if self.dry_run_mode == "server":
                self._server_dry_run(it)
            self._written.append(k8s.write_manifest(it.manifest, self.dry_run_dir))
            self._manifests.append(it.manifest)
            if it.kind == "model":
                self._ok[it.model] = (it.server, it.res.plural)
            yield DeployEvent(it.model, it.server, True, time.monotonic() - t0 if self.dry_run_mode == "server" else 0.0,
                              time.time(), error=f"dry-run: {self.dry_run_mode}" if self.dry_run_mode == "server"
                              else "dry-run", kind=it.kind)

    def _server_dry_run(self, it: _Item) -> None:
        """POST the manifest with ``dryRun=All`` and ``fieldValidation=Strict``: the API server validates it
        against the installed CRDs and runs KServe's admission webhooks, and stores nothing."""
        r = it.res
        try:
            self._call(f"dry-run create {r.kind} {self.namespace}/{it.name}", self._co().create_namespaced_custom_object,
                       r.group, r.version, self.namespace, r.plural, it.manifest, dry_run="All",
                       field_validation="Strict")
        except k8s.KubeApiError as e:
            if e.status == 403 and forbidden_kind(e.message) == "rbac":
                raise DeployError(
                    f"dry-run (server): RBAC forbids creating {r.kind}s in namespace {self.namespace} (HTTP 403: "
                    f"{e.message}); grant this user create/get/list/watch/delete on {r.plural}.{r.group} there "
                    "(a Role + RoleBinding), or use another namespace") from None
            if e.status == 409:
                return               # it exists already: valid, and the run will adopt or refuse it
            raise DeployError(f"dry-run (server): the API server refused {r.kind} {self.namespace}/{it.name} "
                              f"(HTTP {e.status}): {e.message}") from None

    def _go(self, items: List[_Item], res: k8s.Res) -> Iterator[DeployEvent]:
        return self._dry(items) if self.dry_run else self._run(items, res)

    # -- Backend API ---------------------------------------------------------------
    def deploy_traditional(self, models: List[str]) -> Iterator[DeployEvent]:
        names = self._check_names(models, "model name")
        self._check_raw_hosts(names, "models")
        self._modes.add("traditional")
        self._check_runtime()
        items = [_Item(m, k8s.ISVC, self._isvc(m, "traditional", "model", self._trad, self._trad_uri(m)), "model", m, m)
                 for m in names]
        return self._go(items, k8s.ISVC)

    def start_hosts(self, n: int) -> List[DeployEvent]:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ParamError("hosts", n, "an integer >= 1")
        self._modes.add("mms")
        if self.mms_engine == "modelmesh":
            return [self._modelmesh_runtime()]
        self._need(k8s.TM)
        self._check_runtime()
        first = len(self._hosts)
        names = [f"{self.host_prefix}-{i}" for i in range(first, first + n)]
        self._check_names(names, "host name", "host_prefix")
        self._check_raw_hosts(names, "host_prefix")
        items = [_Item(h, k8s.ISVC, self._isvc(h, "mms", "host", self._mms, None), "host", "", h) for h in names]
        order = {h: i for i, h in enumerate(names)}
        events = sorted(self._go(items, k8s.ISVC), key=lambda ev: order.get(ev.server, 0))
        for ev in events:
            if ev.ok:
                self._hosts.append(ev.server)
                self._declared.setdefault(ev.server, 0.0)
        bad = [ev for ev in events if not ev.ok]
        if bad:
            raise DeployError(f"{len(bad)} of {n} multi-model hosts did not start: {bad[0].error}")
        return events

    def _modelmesh_runtime(self) -> DeployEvent:
        """ModelMesh hosts are the ServingRuntime's pods: check it exists and is multi-model."""
        t0 = time.monotonic()
        if self.dry_run_mode == "client":
            self._hosts = [self.runtime]
            return DeployEvent("", self.runtime, True, 0.0, time.time(), error="dry-run", kind="host")
        self._need(k8s.SR)
        co = self._co()
        sr = None
        try:
            sr = self._call(f"get ServingRuntime {self.runtime}", co.get_namespaced_custom_object, k8s.SR.group,
                            k8s.SR.version, self.namespace, k8s.SR.plural, self.runtime)
        except k8s.KubeApiError as e:
            if e.status != 404:
                raise
            try:
                sr = self._call(f"get ClusterServingRuntime {self.runtime}", co.get_cluster_custom_object,
                                k8s.CSR.group, k8s.CSR.version, k8s.CSR.plural, self.runtime)
            except k8s.KubeApiError as e2:
                if e2.status not in (403, 404):
                    raise
        if sr is None:
            raise ParamError("runtime", self.runtime, f"a ServingRuntime in namespace {self.namespace} (or a "
                                                      "ClusterServingRuntime) with multiModel: true, for ModelMesh")
        if not (sr.get("spec") or {}).get("multiModel"):
            raise ParamError("runtime", self.runtime, "a ServingRuntime with multiModel: true (ModelMesh); this one "
                                                      "is single-model")
        self._hosts = [self.runtime]
        return DeployEvent("", self.runtime, True, time.monotonic() - t0, time.time(), kind="host")

    def _place(self, entry_bytes: int = 0) -> Optional[str]:
        """The host with the least declared memory whose model-config ConfigMap still has room."""
        overhead = len(planner.CONFIGMAP_KEY) + 1
        with self._lock:
            room = [h for h in self._hosts
                    if self._config_bytes.get(h, overhead) + entry_bytes <= self.model_config_limit_bytes]
            if not room:
                return None
            h = min(room, key=lambda h: (self._declared.get(h, 0.0), self._hosts.index(h)))
            self._declared[h] = self._declared.get(h, 0.0) + self.model_memory_bytes
            self._config_bytes[h] = self._config_bytes.get(h, overhead) + entry_bytes
            self._config_entries[h] = self._config_entries.get(h, 0) + 1
            return h

    def deploy_mms(self, models: List[str]) -> Iterator[DeployEvent]:
        # TrainedModel names only need to be DNS labels; ModelMesh ISVCs have no Knative revision either
        names = self._check_names(models, "model name", max_len=63)
        if not self._hosts:
            raise DeployError("deploy_mms: start_hosts() first")
        clash = set(names) & set(self._hosts)
        if clash:
            raise ParamError("models", sorted(clash)[0], "model names that differ from the host names")
        if self.mms_engine == "modelmesh":
            items = [_Item(m, k8s.ISVC, self._isvc(m, "mms", "model", (None, None, None, None), self._uri(m),
                                                    deployment_mode=k8s.MODELMESH), "model", m, "modelmesh-serving")
                     for m in names]
            return self._go(items, k8s.ISVC)
        return self._deploy_tms(names)

    def _deploy_tms(self, names: List[str]) -> Iterator[DeployEvent]:
        def items():
            for m in names:
                eb = planner.configmap_entry_bytes(m, self._uri(m), self.model_format, self.model_memory)
                host = self._place(eb)
                if host is None:
                    per = planner.configmap_entries_per_host(eb, self.model_config_limit_bytes)
                    yield _Item(m, k8s.TM, {}, "model", m, "", error=(
                        f"admission: {CONFIG_FULL}: every host's model-config ConfigMap (modelconfig-<host>-0) "
                        f"would exceed {self.model_config_limit_bytes} bytes with TrainedModel {m} ({eb} bytes; "
                        f"{per} such entries fit one host; now "
                        + ", ".join(f"{h}: {self._config_entries.get(h, 0)} entries, {self._config_bytes.get(h, 0)} B"
                                    for h in self._hosts[:4]) + "); add hosts"))
                    continue
                man = k8s.trained_model_manifest(m, self.namespace, labels=self._labels("mms", "model"),
                                                 inference_service=host, framework=self.model_format,
                                                 storage_uri=self._uri(m), memory=self.model_memory)
                yield _Item(m, k8s.TM, man, "model", m, host, config_bytes=eb)
        # placed lazily, in deployment order, so a refused model frees its share
        return self._go(_Lazy(items(), len(names)), k8s.TM)

    def deploy_notes(self, mode: str = "mms") -> Dict[str, Any]:
        """What bounds the multi-model deploy rate, for the stress summary: on a real cluster a TrainedModel
        is loaded only after the kubelet next refreshes its host's mounted model-config ConfigMap (the
        agent acts on that ``..data`` swap: kserve pkg/agent/watcher.go; the kubelet's syncFrequency,
        ``kubelet_sync_s``), so models answer in waves, one per refresh, however fast KServe admits them.

        ``deploy_bound_by`` is ``kubelet ConfigMap refresh`` when the median wait from Ready to answering
        is at least a quarter of ``kubelet_sync_s`` (an agent load alone takes seconds); then
        ``refresh_waves`` (groups of answers), ``models_per_refresh`` and ``deploy_note`` say it. {} for
        traditional serving or before two TrainedModels answered."""
        if mode == "mms" and self.mms_engine == "modelmesh" and not self.modelmesh_rest_url:
            return {"deploy_counted": "registrations", "deploy_note": (
                "ModelMesh: counted registrations (InferenceServices ModelMesh accepted, Ready), not loaded models: "
                "ModelMesh says Ready while a model is Loading and after evicting it; set modelmesh_rest_url to "
                "count loaded models")}
        if mode != "mms" or self.mms_engine != "trainedmodel":
            return {}
        with self._lock:
            done = sorted(self._tm_served)
        if len(done) < 2:
            return {}
        period = self.options.kubelet_sync_s
        gap = max(0.2, period / 4)
        waves = 1 + sum(1 for a, b in zip(done, done[1:]) if b[0] - a[0] > gap)
        waits = sorted(w for _, w in done)
        p50 = waits[len(waits) // 2]
        per = len(done) / waves
        out: Dict[str, Any] = {"refresh_waves": waves, "models_per_refresh": round(per, 2),
                               "ready_to_serving_p50_s": round(p50, 3), "kubelet_sync_s": period,
                               "deploy_bound_by": "", "deploy_note": ""}
        if period > 0 and p50 >= period / 4:
            out["deploy_bound_by"] = "kubelet ConfigMap refresh"
            out["deploy_note"] = (
                f"deploy rate bound by the kubelet's ConfigMap refresh, not by KServe: {len(done)} TrainedModels "
                f"answered in {waves} waves (~{per:.0f} per refresh, one refresh per ~{period:g} s, the kubelet's "
                f"syncFrequency), {p50:.1f} s median from Ready to answering; ~{per / period:.2f} models/s at "
                "best with this batch (tm_batch); more models per refresh need more TrainedModels in flight")
        return out

    def config_usage(self) -> Dict[str, Tuple[int, int]]:
        """{host: (TrainedModel entries, bytes of its model-config ConfigMap data)} as KServe writes them
        (pkg/modelconfig/configmap.go: compact JSON of [{"modelName", "modelSpec"}], key models.json)."""
        with self._lock:
            return {h: (self._config_entries.get(h, 0), self._config_bytes.get(h, 0)) for h in self._hosts}

    # -- diagnosis ------------------------------------------------------------------
    def _diagnose(self, it: _Item, obj: Optional[dict]) -> str:
        """Pods and Warning events behind an object that is not ready (best effort)."""
        try:
            if it.res is k8s.TM:
                host = self._watchers.get(k8s.ISVC.plural)
                hobj = host.get(it.server) if host else None
                if hobj is not None and readiness(hobj)[0] != "ready":
                    return f"host {it.server}: {describe_conditions(hobj) or 'not ready'}; " + \
                        self._pod_story(it.server)
                return ""
            return self._pod_story(it.name)
        except Exception as e:  # diagnosis must never hide the failure itself
            return f"(could not list pods/events: {e})"

    def _pod_story(self, isvc: str) -> str:
        core = self._core()
        seen_isvc = set()
        head = []
        for e in self._isvc_warnings(isvc):          # the reconciler's own words come first
            if (e.get("reason"), e.get("message")) not in seen_isvc:
                seen_isvc.add((e.get("reason"), e.get("message")))
                head.append(f"InferenceService event {e.get('reason')}: {e.get('message')}")
        pods = self._raw(f"list pods of {isvc}", core.list_namespaced_pod, self.namespace,
                         label_selector=f"{k8s.LABEL_ISVC}={isvc}").get("items", [])
        out = []
        for p in pods[:3]:
            pn = p["metadata"]["name"]
            st = p.get("status") or {}
            bits = [f"pod {pn} {st.get('phase', '?')}"]
            for c in st.get("conditions") or []:
                if c.get("status") == "False" and c.get("message"):
                    bits.append(f"{c.get('type')}: {c.get('reason', '')} {c.get('message')}".strip())
            for cs in st.get("containerStatuses") or []:
                wt = (cs.get("state") or {}).get("waiting")
                if wt:
                    bits.append(f"{cs.get('name')} waiting: {wt.get('reason')} {wt.get('message', '')}".strip())
            evs = self._raw(f"list events of {pn}", core.list_namespaced_event, self.namespace,
                            field_selector=f"involvedObject.name={pn}").get("items", [])
            seen = set()
            for e in sorted(evs, key=lambda e: e.get("lastTimestamp") or ""):
                if e.get("type") != "Warning" or (e.get("reason"), e.get("message")) in seen:
                    continue
                seen.add((e.get("reason"), e.get("message")))
                n = e.get("count") or 1
                bits.append(f"event {e.get('reason')}: {e.get('message')}" + (f" (x{n})" if n > 1 else ""))
            out.append(", ".join(bits))
        return "; ".join(head + out) if (head or out) else f"no pods for {isvc} yet"

    def _raw(self, what: str, fn, *args, **kw) -> dict:
        resp = self._call(what, fn, *args, _preload_content=False, retries=1, **kw)
        try:
            return json.loads(resp.data)
        finally:
            try:
                resp.release_conn()
            except Exception:
                pass

    # -- after deployment --------------------------------------------------------------
    def _live(self, res: k8s.Res) -> List[dict]:
        w = self._watchers.get(res.plural)
        if w is not None and not w.error:
            objs = list(w.snapshot().values())
        else:
            lst = self._call(f"list {res.kind}s", self._co().list_namespaced_custom_object, res.group, res.version,
                             self.namespace, res.plural, label_selector=k8s.run_selector(self.run_id))
            objs = lst.get("items", [])
        return [o for o in objs if ((o["metadata"].get("labels") or {}).get(k8s.LABEL_MODE) in self._modes)]

    def servers(self) -> List[str]:
        if self.dry_run:
            return sorted({m["metadata"]["name"] for m in self._manifests if m["kind"] == "InferenceService"})
        return sorted(o["metadata"]["name"] for o in self._live(k8s.ISVC))

    def endpoints(self) -> List[Endpoint]:
        if self.dry_run:
            return []
        out = []
        objs = self._live(k8s.ISVC)
        if k8s.TM.plural in self._watchers:
            objs += self._live(k8s.TM)
        for o in objs:
            labels = o["metadata"].get("labels") or {}
            if labels.get(k8s.LABEL_ROLE) != "model" or readiness(o)[0] != "ready":
                continue
            ep = self._endpoint_of(o)
            if ep is not None:
                out.append(ep)
        return sorted(out, key=lambda e: e.model)

    def verify(self, sample: int = 100, seed: int = 0) -> VerifyResult:
        expected = len(self._ok)
        if self.dry_run:
            return VerifyResult(expected, 0, 0, 0, ["dry-run: nothing was deployed"])
        import requests

        from ..v2 import V2Client
        eps = [e for e in self.endpoints() if e.model in self._ok]
        listed = len(eps)
        failures = []
        if any(not e.rest_url for e in eps):
            eps = [e for e in eps if e.rest_url]
            failures.append("ModelMesh models are reached through the modelmesh-serving Service: set "
                            "modelmesh_rest_url (e.g. after kubectl port-forward svc/modelmesh-serving 8008) to check them")
        if listed < expected:
            missing = sorted(set(self._ok) - {e.model for e in eps})
            failures.append(f"{len(missing)} deployed models are no longer Ready, e.g. {missing[:3]}")
        session = requests.Session()

        def infer(ep, inputs):
            session.headers.clear()
            session.headers.update(ep.headers)  # the ingress routes by Host
            return V2Client(ep.rest_url, timeout=30, session=session).infer(ep.served_name or ep.model, inputs)
        try:
            sampled, correct, bad = sample_inferences(self.workload, eps, infer, sample, seed)
        finally:
            session.close()
        return VerifyResult(expected, listed, sampled, correct, (failures + bad)[:20])

    def _reserved_from_manifests(self) -> Dict[str, Any]:
        cpu = mem = scpu = smem = 0.0
        n = 0
        for m in self._manifests:
            if m["kind"] != "InferenceService":
                continue
            n += 1
            pred = m["spec"]["predictor"]
            req = ((pred.get("model") or {}).get("resources") or {}).get("requests") or {}
            ann = pred.get("annotations") or {}
            c = k8s.parse_quantity(req.get("cpu", 0))
            b = k8s.parse_quantity(req.get("memory", 0))
            sc = k8s.parse_quantity(ann.get(k8s.ANN_QP[("requests", "cpu")], 0))
            sb = k8s.parse_quantity(ann.get(k8s.ANN_QP[("requests", "memory")], 0))
            cpu, mem, scpu, smem = cpu + c + sc, mem + b + sb, scpu + sc, smem + sb
        return {"pods": n, "reserved_cpu": round(cpu, 6), "reserved_memory_mib": mem / 2 ** 20,
                "reserved_sidecar_cpu": round(scpu, 6), "reserved_sidecar_memory_mib": smem / 2 ** 20}

    def _usage_dict(self) -> Dict[str, Any]:
        """Reserved and measured resources of this run's pods, now, as a flat dict (see :meth:`usage`).

        reserved_*: container requests (limits where no request) of the pods
        bound to a node, sidecars included; pods_pending counts the others.
        cpu_cores / memory_mib: PodMetrics (metrics.k8s.io), when served.
        """
        if self.dry_run:
            u = self._reserved_from_manifests()
            u.update(servers=u["pods"], models=len(self._ok), metrics_available=False, dry_run=True,
                     reserved_cpu_k8s=u["reserved_cpu"], reserved_memory_mib_k8s=u["reserved_memory_mib"])
            return u
        if not self._modes:
            return {"pods": 0, "reserved_cpu": 0.0, "reserved_memory_mib": 0.0, "servers": 0, "models": 0,
                    "metrics_available": False}
        modes = ",".join(sorted(self._modes))
        selectors = [f"{k8s.LABEL_RUN}={self.run_id},{k8s.LABEL_MODE} in ({modes})"]
        if self.mms_engine == "modelmesh" and "mms" in self._modes and self.modelmesh_pod_selector:
            selectors.append(self.modelmesh_pod_selector)
        pods: Dict[str, dict] = {}
        for sel in selectors:
            for p in self._raw("list pods", self._core().list_namespaced_pod, self.namespace,
                               label_selector=sel).get("items", []):
                pods[p["metadata"]["name"]] = p
        cpu = mem = scpu = smem = 0.0
        phases: Dict[str, int] = {}
        for p in pods.values():
            phase = (p.get("status") or {}).get("phase", "Unknown")
            phases[phase] = phases.get(phase, 0) + 1
            if phase in ("Succeeded", "Failed") or not (p.get("spec") or {}).get("nodeName"):
                continue          # only pods bound to a node hold their requests
            for c in (p.get("spec") or {}).get("containers") or []:
                res = c.get("resources") or {}
                req, lim = res.get("requests") or {}, res.get("limits") or {}
                cc = _q(req.get("cpu", lim.get("cpu")))
                cm = _q(req.get("memory", lim.get("memory")))
                cpu, mem = cpu + cc, mem + cm
                if c.get("name") != k8s.PREDICTOR_CONTAINER:
                    scpu, smem = scpu + cc, smem + cm
        u: Dict[str, Any] = {
            "pods": len(pods), "pods_running": phases.get("Running", 0), "pods_pending": phases.get("Pending", 0),
            "reserved_cpu": round(cpu, 6), "reserved_memory_mib": mem / 2 ** 20,
            "reserved_sidecar_cpu": round(scpu, 6), "reserved_sidecar_memory_mib": smem / 2 ** 20,
            "servers": len(self.servers()), "models": len(self._ok),
        }
        u["reserved_cpu_k8s"], u["reserved_memory_mib_k8s"] = u["reserved_cpu"], u["reserved_memory_mib"]
        u.update(self._measured(selectors))
        return u

    def environment(self) -> Dict[str, Any]:
        """The cluster: API server, Kubernetes version, node count and allocatable CPU, memory, pods,
        GPUs (:func:`mmslib.k8s.cluster_shape`) and the namespace; read once per backend."""
        if self._environment is None:
            env: Dict[str, Any] = {"backend": self.name, "namespace": self.namespace}
            if self.api is None:
                env["cluster"] = f"not contacted (dry_run: {self.dry_run_mode})"
            else:
                env.update(k8s.cluster_shape(self.api))
            self._environment = env
        return dict(self._environment)

    def usage(self) -> Usage:
        """What this run's pods use now, typed: ``servers`` = pods, ``memory_mib`` / ``cpu_cores`` =
        PodMetrics (metrics.k8s.io) working set / CPU when the cluster serves them (None otherwise),
        ``reserved_*`` = requests of the pods bound to a node (sidecars included), ``pending`` = pods
        not bound. ``extra``: pods_running, the sidecars' share, models, metrics availability."""
        u = self._usage_dict()
        typed = {"pods", "memory_mib", "cpu_cores", "reserved_cpu", "reserved_memory_mib", "pods_pending", "servers"}
        return Usage(servers=int(u.get("pods", 0)), memory_mib=u.get("memory_mib"), cpu_cores=u.get("cpu_cores"),
                     reserved_cpu=u.get("reserved_cpu"), reserved_memory_mib=u.get("reserved_memory_mib"),
                     pending=int(u.get("pods_pending", 0)),
                     extra={**{k: v for k, v in u.items() if k not in typed}, "isvcs": u.get("servers", 0)})

    def _measured(self, selectors: List[str]) -> Dict[str, Any]:
        co = self._co()
        g, v = k8s.POD_METRICS.group, k8s.POD_METRICS.version
        items: Dict[str, dict] = {}
        try:
            for sel in selectors:
                lst = self._call("list PodMetrics", co.list_namespaced_custom_object, g, v, self.namespace,
                                 k8s.POD_METRICS.plural, label_selector=sel, retries=1)
                for it in lst.get("items", []):
                    items[it["metadata"]["name"]] = it
        except k8s.KubeApiError as e:
            if e.status in (404, 503, 403):
                return {"metrics_available": False, "metrics_error": f"HTTP {e.status}: {e.message}"[:300]}
            raise
        cores = mib = 0.0
        for it in items.values():
            for c in it.get("containers") or []:
                cores += _q(c.get("usage", {}).get("cpu"))
                mib += _q(c.get("usage", {}).get("memory")) / 2 ** 20
        return {"metrics_available": True, "cpu_cores": cores, "memory_mib": mib, "metrics_pods": len(items)}

    def kill_server(self, server: str) -> None:
        """Delete the predictor pod(s) of an InferenceService (Knative starts a new one)."""
        core = self._core()
        pods = self._raw("list pods", core.list_namespaced_pod, self.namespace,
                         label_selector=f"{k8s.LABEL_ISVC}={server}").get("items", [])
        if not pods:
            raise DeployError(f"no pods for InferenceService {server}")
        for p in pods:
            self._call(f"delete pod {p['metadata']['name']}", core.delete_namespaced_pod, p["metadata"]["name"],
                       self.namespace)

    def manifests(self) -> List[dict]:
        """The manifests written by a dry run."""
        return list(self._manifests)

    def close(self) -> None:
        """Delete every object of this run's modes and wait for them to go: TrainedModels first (KServe
        takes each out of its host's ConfigMap before its finalizer goes), each kind with its own
        deadline (``cleanup_timeout_s``); a host any TrainedModel still names is kept, and
        ``cleanup_error`` says what is left and what to run (:func:`mmslib.k8s.delete_labelled`)."""
        if self._closed:
            return
        self._closed = True
        for w in list(self._watchers.values()):
            w.stop()
        if self._session is not None:
            self._session.close()
        if self.api is None:
            return
        if self.dry_run:            # a server-side dry run created nothing
            self.api.close()
            return
        try:
            if self._modes:
                sel = f"{k8s.LABEL_RUN}={self.run_id},{k8s.LABEL_MODE} in ({','.join(sorted(self._modes))})"
                kinds = [k8s.TM, k8s.ISVC] if k8s.TM in self._kserve_checked else [k8s.ISVC]
                self.cleanup_result = k8s.delete_labelled(self.api, self.namespace, sel, kinds=kinds,
                                                          timeout_s=self.cleanup_timeout_s,
                                                          retries=self.api_retries)
                if self.cleanup_result.get("remaining"):
                    self.cleanup_error = (f"{self.cleanup_result['remaining']} objects left after "
                                          f"{self.cleanup_timeout_s:g} s per kind: "
                                          + self.cleanup_result["advice"].replace("<run id>", self.run_id))
                    log.warning("close(): %s", self.cleanup_error)
        except MmsError as e:
            self.cleanup_error = str(e)
            log.warning("close(): clean-up failed: %s (run `python -m mmslib.k8s cleanup --run-id %s "
                        "--namespace %s`)", e, self.run_id, self.namespace)
        finally:
            self.api.close()


def _q(v) -> float:
    if v in (None, ""):
        return 0.0
    try:
        return k8s.parse_quantity(v)
    except ValueError:
        return 0.0


class _Lazy:
    """An iterator of items with a length (placement happens as items are taken)."""

    def __init__(self, it, n: int):
        self._it, self._n = iter(it), n

    def __iter__(self):
        return self._it

    def __len__(self):
        return self._n


def from_params(p, workload, workdir, supervisor, run_id: str) -> KServeBackend:
    """The backend for validated experiment params ``p`` (``mmslib.backends.make_backend``)."""
    from . import model_memory
    both = specs.for_params(p)      # (raw deployment: no queue-proxy in them)
    # the backend's own options (KServeOptions: the params' fields of its names, p.kserve_options over them)
    o = KServeOptions.from_params(p)
    trad, mms = both["traditional"], both["mms"]
    return KServeBackend(workload, run_id=run_id, namespace=o.namespace, kubeconfig=o.kubeconfig,
                         runtime=o.serving_runtime, storage_uri_prefix=o.storage_uri,
                         traditional_spec=trad, mms_spec=mms, model_memory=model_memory(p, workload),
                         deploy_timeout_s=p.deploy_timeout_s, deploy_concurrency=p.deploy_concurrency,
                         ingress_host=o.ingress_host, ingress_port=o.ingress_port,
                         mms_engine=p.mms_engine, dry_run=o.dry_run, deployment_mode=o.deployment_mode,
                         ingress_path_template=o.ingress_path_template, ingress_domain=o.ingress_domain,
                         modelmesh_rest_url=o.modelmesh_rest_url, dry_run_dir=Path(p.output_dir) / "manifests",
                         options=o)
