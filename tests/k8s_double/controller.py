"""The double's control plane: KServe's controllers (+ Knative, the kube-scheduler), from KServe's code.

Derived from kserve/kserve at commit aaac4e294dae (the commit of the CRDs it was checked against);
each method cites the file and function it imitates. In short:

- InferenceService (pkg/controller/v1beta1/inferenceservice/controller.go Reconcile): the controller
  adds the finalizer ``inferenceservice.finalizers``; the mode is the ``serving.kserve.io/deploymentMode``
  annotation (normalised by the mutating webhook, server.default_inference_service) or the deploy
  config's default (Serverless, as config/configmap/inferenceservice.yaml). Knative: one revision pod
  ``<isvc>-predictor-00001-deployment-xxxxx`` with kserve-container, queue-proxy (Knative's
  per-revision annotations or its default) and, for a multi-model host (no storageUri), KServe's
  agent; an unschedulable revision: Ready=False RevisionFailed (or Unknown with
  ``report_unschedulable=False``). Standard/RawDeployment: a Deployment pod ``<isvc>-predictor-xxx``
  without queue-proxy; unschedulable: PredictorReady/Ready=False MinimumReplicasUnavailable
  (inference_service_status.go PropagateRawStatus), never terminal. Ready URLs per mode: Knative
  ``http://<isvc>.<ns>.<domain>``, raw ``http://<isvc>-<ns>.<ingressDomain>`` (ingress/domain.go).
  A multi-model host gets an empty ``modelconfig-<isvc>-0`` ConfigMap (pkg/modelconfig
  CreateEmptyModelConfig).
- TrainedModel (pkg/controller/v1alpha1/trainedmodel/controller.go Reconcile): only the conditions
  InferenceServiceReady, IsMMSPredictor and MemoryResourceAvailable, Ready following them; the
  finalizer ``trainedmodel.finalizer``; then the ModelConfig reconciler writes the host's
  ``models.json`` (refused past 1 MiB as the API server refuses such a ConfigMap: the reconcile
  errors, the TrainedModel stays Ready).
- The model agent (pkg/agent/watcher.go, puller.go, read at the commit above): sees the ConfigMap after
  the kubelet's sync (``Watcher.Start`` acts on the ``..data`` symlink's CREATE event), adds new names,
  replaces a name whose spec changed (remove + add) and removes names gone from ``models.json``
  (``Watcher.parseConfig``); each name gets its own worker, so names load in parallel, each name's
  operations in order (``Puller.enqueueModelOp``, ``modelProcessor``); a load is a download then
  ``POST /v2/repository/models/<name>/load``, and a failure is only logged (``processOp``): nothing
  in the API changes, so only the ingress shows what is loaded.
- ModelMesh InferenceServices: Ready once their ServingRuntime (multiModel: true) has its shared
  ``modelmesh-serving-<runtime>`` pods running; reached only through the ``modelmesh-serving`` Service.
- Deletion: objects with finalizers get a deletionTimestamp and go after ``delete_delay_s``; an
  ISVC's pods, model-config ConfigMap and TrainedModels go with it.
"""
from __future__ import annotations

import hashlib
import heapq
import json
import secrets
import threading
import time
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

from .server import ANN_DEPLOYMENT_MODE, deployment_mode
from .store import now_iso

# Names KServe uses (pkg/constants/constants.go at kserve/kserve aaac4e294dae).
LABEL_ISVC = "serving.kserve.io/inferenceservice"            # ParentInferenceServiceLabel / InferenceServicePodLabelKey
LABEL_TM_ALLOCATED = "serving.kserve.io/trainedmodel-allocated"  # TrainedModelAllocated
PREDICTOR_CONTAINER = "kserve-container"                     # InferenceServiceContainerName
MODELMESH = "ModelMesh"
MODEL_CONFIG_FILE = "models.json"                            # ModelConfigFileName
ISVC_FINALIZER = "inferenceservice.finalizers"   # pkg/controller/v1beta1/inferenceservice/controller.go Reconcile
TM_FINALIZER = "trainedmodel.finalizer"          # pkg/controller/v1alpha1/trainedmodel/controller.go Reconcile
# Knative's per-revision queue-proxy resource annotations (knative.dev/serving queue sidecar).
ANN_QP = {
    ("requests", "cpu"): "queue.sidecar.serving.knative.dev/cpu-resource-request",
    ("requests", "memory"): "queue.sidecar.serving.knative.dev/memory-resource-request",
    ("limits", "cpu"): "queue.sidecar.serving.knative.dev/cpu-resource-limit",
    ("limits", "memory"): "queue.sidecar.serving.knative.dev/memory-resource-limit",
}
_SUFFIX = {"n": 1e-9, "u": 1e-6, "m": 1e-3, "": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
           "Ki": 2.0 ** 10, "Mi": 2.0 ** 20, "Gi": 2.0 ** 30, "Ti": 2.0 ** 40, "Pi": 2.0 ** 50, "Ei": 2.0 ** 60}


def parse_qty(v) -> float:
    """A Kubernetes quantity (apimachinery resource.Quantity) as a float; ValueError when malformed.
    The double's own parser (it shares no code with mmslib)."""
    import re
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    m = re.fullmatch(r"\s*([+-]?(?:\d+\.?\d*|\.\d+))(?:[eE]([+-]?\d+))?(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]?)\s*", str(v))
    if not m:
        raise ValueError(f"quantities must match the regular expression: {v!r}")
    return float(m.group(1)) * (10.0 ** int(m.group(2)) if m.group(2) else 1.0) * _SUFFIX[m.group(3)]


def model_config_name(isvc: str, shard: int = 0) -> str:
    """pkg/constants/constants.go ModelConfigName."""
    return f"modelconfig-{isvc}-{shard}"

Key = Tuple


def _h(*parts) -> int:
    return int(hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:8], 16)


def qty(v, default: float = 0.0) -> float:
    if v in (None, ""):
        return default
    try:
        return parse_qty(v)
    except ValueError:
        return default


def pod_requests(pod: dict) -> Tuple[float, float]:
    cpu = mem = 0.0
    for c in pod.get("spec", {}).get("containers", []):
        res = c.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        cpu += qty(req.get("cpu", lim.get("cpu")))
        mem += qty(req.get("memory", lim.get("memory")))
    return cpu, mem


def conditions_with(old: List[dict], new: List[dict]) -> List[dict]:
    """New conditions, keeping lastTransitionTime where a condition's status did not change."""
    prev = {c.get("type"): c for c in old or []}
    out = []
    for c in new:
        c = dict(c)
        p = prev.get(c["type"])
        c["lastTransitionTime"] = p["lastTransitionTime"] if (p and p.get("status") == c["status"]
                                                               and p.get("lastTransitionTime")) else now_iso()
        out.append(c)
    return out


def is_modelmesh(isvc: dict) -> bool:
    return (isvc["metadata"].get("annotations") or {}).get(ANN_DEPLOYMENT_MODE) == MODELMESH


def predictor_model(isvc: dict) -> dict:
    p = isvc.get("spec", {}).get("predictor", {}) or {}
    if p.get("model"):
        return p["model"]
    for k in ("triton", "tensorflow", "sklearn", "xgboost", "pytorch", "onnx", "lightgbm", "pmml", "paddle",
              "huggingface"):
        if p.get(k):
            return dict(p[k], modelFormat={"name": k})
    return {}


def is_mms_host(isvc: dict) -> bool:
    m = predictor_model(isvc)
    return bool(m) and not m.get("storageUri") and not m.get("storage")


def is_ready(obj: Optional[dict]) -> bool:
    if not obj:
        return False
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


TRITON_FORMATS = {"triton", "tensorflow", "onnx", "pytorch", "tensorrt"}


def is_triton(isvc: dict) -> bool:
    m = predictor_model(isvc)
    return "triton" in (m.get("runtime") or "") or (m.get("modelFormat") or {}).get("name") == "triton"


def predict_path(name: str, isvc: dict) -> str:
    """pkg/constants/constants.go PredictPath for the predictor's protocol (Triton's runtime speaks v2)."""
    proto = predictor_model(isvc).get("protocolVersion") or ("v2" if is_triton(isvc) else "v1")
    return f"/v2/models/{name}/infer" if proto == "v2" else f"/v1/models/{name}:predict"


class Controller:
    def __init__(self, double):
        self.d = double
        self.store = double.store
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._queue: "OrderedDict[Key, None]" = OrderedDict()
        self._timers: List[Tuple[float, int, Key]] = []
        self._seq = 0
        self._stop = False
        self._thread: Optional[threading.Thread] = None
        self.isvc_pods: Dict[Tuple[str, str], str] = {}
        self.mm_pods: Dict[Tuple[str, str], List[str]] = {}
        self.scheduled_at: Dict[Tuple[str, str], float] = {}
        self.deleting: Dict[Key, float] = {}
        self.agent_models: Dict[Tuple[str, str], Dict[str, Optional[float]]] = {}
        self.agent_specs: Dict[Tuple[str, str], Dict[str, str]] = {}   # the spec each model was loaded with
        self.agent_failures: List[Tuple[str, str, str]] = []
        self.agent_errors: Dict[Tuple[str, str, str], str] = {}
        self.agent_started: Dict[Tuple[str, str], float] = {}   # host pod Running (its kubelet sync clock)
        self._cm_busy: Dict[Tuple[str, str], float] = {}        # a host's model-config ConfigMap being rewritten
        self.mm_loaded_at: Dict[Tuple[str, str], float] = {}    # ModelMesh model -> when it is loaded
        self.modelconfig_errors: Dict[Tuple[str, str], str] = {}
        self.modelconfig_failures = 0
        self.reconciles = 0
        self.store.listeners.append(self._on_event)

    # -- types ------------------------------------------------------------------
    def rt(self, group: str, plural: str):
        return self.d.types.get((group, plural))

    @property
    def ISVC(self):
        return self.rt("serving.kserve.io", "inferenceservices")

    @property
    def TM(self):
        return self.rt("serving.kserve.io", "trainedmodels")

    @property
    def SR(self):
        return self.rt("serving.kserve.io", "servingruntimes")

    @property
    def POD(self):
        return self.rt("", "pods")

    @property
    def EVENT(self):
        return self.rt("", "events")

    # -- queue ------------------------------------------------------------------
    def enqueue(self, key: Key) -> None:
        with self._lock:
            self._queue[key] = None
            self._wake.notify()

    def after(self, delay: float, key: Key) -> None:
        with self._lock:
            self._seq += 1
            heapq.heappush(self._timers, (time.monotonic() + max(0.0, delay), self._seq, key))
            self._wake.notify()

    def kick_scheduler(self) -> None:
        self.enqueue(("sched",))

    def _on_event(self, typ: str, rt, obj: dict) -> None:
        meta = obj["metadata"]
        ns, name = meta.get("namespace", ""), meta["name"]
        key = rt.key
        if key == ("serving.kserve.io", "inferenceservices"):
            self.enqueue(("isvc", ns, name))
            self.enqueue(("host-tms", ns, name))
        elif key == ("serving.kserve.io", "trainedmodels"):
            self.enqueue(("tm", ns, name))
            if typ == "DELETED":
                self.enqueue(("host-tms", ns, (obj.get("spec") or {}).get("inferenceService", "")))
        elif key == ("", "configmaps") and name.startswith("modelconfig-"):
            host = name[len("modelconfig-"):].rsplit("-", 1)[0]
            self.after(self.until_kubelet_sync(ns, host), ("agent", ns, host))
        elif key == ("serving.kserve.io", "servingruntimes"):
            self.enqueue(("sr", ns, name))
        elif key == ("", "pods") and typ == "DELETED":
            self.enqueue(("pod-gone", ns, name, (meta.get("labels") or {}).get(LABEL_ISVC, "")))
            self.enqueue(("sched",))
        elif key == ("", "nodes"):
            self.enqueue(("sched",))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="k8s-double-controller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._lock:
            self._stop = True
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._stop:
                    now = time.monotonic()
                    while self._timers and self._timers[0][0] <= now:
                        _, _, k = heapq.heappop(self._timers)
                        self._queue[k] = None
                    if self._queue:
                        break
                    wait = self._timers[0][0] - now if self._timers else 1.0
                    self._wake.wait(min(max(wait, 0.001), 1.0))
                if self._stop:
                    return
                batch = list(self._queue)
                self._queue.clear()
            for key in batch:
                try:
                    with self.store.lock:
                        self.reconciles += 1
                        self._reconcile(key)
                except Exception:  # keep the control plane alive; a test will see the symptom
                    import traceback
                    traceback.print_exc()

    def _reconcile(self, key: Key) -> None:
        kind = key[0]
        if kind == "isvc":
            self._isvc(key[1], key[2])
        elif kind == "tm":
            self._tm(key[1], key[2])
        elif kind == "host-tms":
            if self.TM is None:
                return
            for tm in self.store.items(self.TM, key[1]):
                if (tm.get("spec") or {}).get("inferenceService") == key[2]:
                    self._tm(key[1], tm["metadata"]["name"])
        elif kind == "sr":
            self._sr(key[1], key[2])
        elif kind == "agent":
            self._agent(key[1], key[2])
        elif kind == "sched":
            self._retry_pending()
        elif kind == "pod-gone":
            ns, pod, isvc = key[1], key[2], key[3]
            self.scheduled_at.pop((ns, pod), None)
            if self.isvc_pods.get((ns, isvc)) == pod:
                del self.isvc_pods[(ns, isvc)]
                self.agent_started.pop((ns, isvc), None)   # a new pod mounts the ConfigMap afresh
                self.agent_models.pop((ns, isvc), None)
                self._isvc(ns, isvc)
            for k, pods in self.mm_pods.items():
                if pod in pods:
                    pods.remove(pod)
                    self._sr(k[0], k[1])

    # -- finalizers -----------------------------------------------------------------
    def _finalize(self, rt, obj: dict, key: Key) -> bool:
        """True when the object is being deleted (and handled)."""
        meta = obj["metadata"]
        if not meta.get("deletionTimestamp"):
            return False
        due = self.deleting.setdefault(key, time.monotonic() + self.d.config.delete_delay_s)
        if time.monotonic() >= due:
            self.deleting.pop(key, None)
            self.store.remove(rt, meta.get("namespace", ""), meta["name"])
        else:
            self.after(due - time.monotonic(), key)
        return True

    # -- pods and scheduling ------------------------------------------------------------
    def _nodes(self) -> List[dict]:
        return self.store.items(self.rt("", "nodes"))

    def _node_usage(self) -> Dict[str, List[float]]:
        use = {n["metadata"]["name"]: [0.0, 0.0, 0] for n in self._nodes()}
        for p in self.store.items(self.POD):
            node = p.get("spec", {}).get("nodeName")
            if node in use and p.get("status", {}).get("phase") not in ("Succeeded", "Failed"):
                c, m = pod_requests(p)
                use[node][0] += c
                use[node][1] += m
                use[node][2] += 1
        return use

    def _try_schedule(self, pod: dict) -> bool:
        ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        if pod.get("spec", {}).get("nodeName"):
            return True
        cpu, mem = pod_requests(pod)
        use = self._node_usage()
        fits, reasons = [], {}
        for n in self._nodes():
            nn = n["metadata"]["name"]
            alloc = n["status"]["allocatable"]
            u = use[nn]
            why = []
            if u[0] + cpu > qty(alloc.get("cpu")) + 1e-9:
                why.append("Insufficient cpu")
            if u[1] + mem > qty(alloc.get("memory")) + 0.5:
                why.append("Insufficient memory")
            if u[2] + 1 > qty(alloc.get("pods"), 110):
                why.append("Too many pods")
            if why:
                for w in why:
                    reasons[w] = reasons.get(w, 0) + 1
            else:
                fits.append((qty(alloc.get("cpu")) - u[0], nn))
        if fits:
            node = max(fits)[1]

            def bind(p):
                p["spec"]["nodeName"] = node
                p["status"]["conditions"] = conditions_with(p["status"].get("conditions"), [
                    {"type": "PodScheduled", "status": "True"}])
                p["status"]["hostIP"] = f"10.0.{int(node.split('-')[-1])}.1"
            self.store.update(self.POD, ns, name, bind)
            self.scheduled_at[(ns, name)] = time.monotonic()
            self._event(pod, "Normal", "Scheduled", f"Successfully assigned {ns}/{name} to {node}",
                        "default-scheduler")
            return True
        n_nodes = len(self._nodes())
        detail = ", ".join(f"{c} {r}" for r, c in sorted(reasons.items())) or f"{n_nodes} node(s) unavailable"
        msg = (f"0/{n_nodes} nodes are available: {detail}. preemption: 0/{n_nodes} nodes are available: "
               f"{n_nodes} No preemption victims found for incoming pod.")

        def pending(p):
            p["status"]["conditions"] = conditions_with(p["status"].get("conditions"), [
                {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": msg}])
        before = self.store.get(self.POD, ns, name)
        after = self.store.update(self.POD, ns, name, pending)
        if after is not before:   # first failure, or a new reason: record it
            self._event(pod, "Warning", "FailedScheduling", msg, "default-scheduler")
        return False

    def _retry_pending(self) -> None:
        for p in self.store.items(self.POD):
            if not p.get("spec", {}).get("nodeName") and p.get("status", {}).get("phase") == "Pending":
                if self._try_schedule(p):
                    labels = p["metadata"].get("labels") or {}
                    ns = p["metadata"]["namespace"]
                    if labels.get(LABEL_ISVC):
                        self.enqueue(("isvc", ns, labels[LABEL_ISVC]))
                    if labels.get("modelmesh-service"):
                        self.enqueue(("sr", ns, labels.get("mmslib-double/runtime", "")))

    def _event(self, obj: dict, typ: str, reason: str, message: str, component: str) -> None:
        ns, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        ev_name = f"{name}.{_h(name, reason, message) :08x}"
        existing = self.store.get(self.EVENT, ns, ev_name)
        now = now_iso()
        if existing is not None:
            def bump(e):
                e["count"] = int(e.get("count", 1)) + 1
                e["lastTimestamp"] = now
            self.store.update(self.EVENT, ns, ev_name, bump)
            return
        self.store.create(self.EVENT, {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": ev_name, "namespace": ns},
            "involvedObject": {"kind": obj.get("kind", "Pod"), "namespace": ns, "name": name,
                               "uid": obj["metadata"].get("uid", ""), "apiVersion": "v1"},
            "reason": reason, "message": message, "type": typ, "count": 1,
            "source": {"component": component}, "reportingComponent": component,
            "firstTimestamp": now, "lastTimestamp": now})

    def _container(self, name: str, image: str, cpu: Optional[str], mem: Optional[str],
                   lim_cpu: Optional[str] = None, lim_mem: Optional[str] = None) -> dict:
        req = {k: v for k, v in (("cpu", cpu), ("memory", mem)) if v}
        lim = {k: v for k, v in (("cpu", lim_cpu), ("memory", lim_mem)) if v}
        res = {}
        if req:
            res["requests"] = req
        if lim:
            res["limits"] = lim
        return {"name": name, "image": image, "resources": res}

    def _new_pod(self, ns: str, name: str, labels: Dict[str, str], containers: List[dict], owner: dict,
                 annotations: Optional[Dict[str, str]] = None) -> dict:
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": name, "namespace": ns, "labels": labels, "annotations": dict(annotations or {}),
                            "ownerReferences": [{"apiVersion": owner.get("apiVersion", ""), "kind": owner.get("kind", ""),
                                                 "name": owner["metadata"]["name"],
                                                 "uid": owner["metadata"].get("uid", ""), "controller": True}]},
               "spec": {"containers": containers, "restartPolicy": "Always", "schedulerName": "default-scheduler"},
               "status": {"phase": "Pending", "conditions": [], "qosClass": "Burstable"}}
        pod = self.store.create(self.POD, pod)
        self._try_schedule(pod)
        return self.store.get(self.POD, ns, name)

    def _isvc_pod(self, isvc: dict, raw: bool = False) -> dict:
        ns, name = isvc["metadata"]["namespace"], isvc["metadata"]["name"]
        cfg = self.d.config
        pred = isvc["spec"].get("predictor") or {}
        model = predictor_model(isvc)
        res = model.get("resources") or pred.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        if not req and not lim:
            req = lim = {"cpu": cfg.default_predictor[0], "memory": cfg.default_predictor[1]}
        ann = dict(isvc["metadata"].get("annotations") or {})
        ann.update(pred.get("annotations") or {})
        qp_cpu = ann.get(ANN_QP[("requests", "cpu")], cfg.queue_proxy[0])
        qp_mem = ann.get(ANN_QP[("requests", "memory")], cfg.queue_proxy[1])
        containers = [
            self._container(PREDICTOR_CONTAINER, "kserve/runtime:double", req.get("cpu", lim.get("cpu")),
                            req.get("memory", lim.get("memory")), lim.get("cpu"), lim.get("memory"))]
        if not raw:   # Knative injects queue-proxy; a raw Deployment has no sidecar of its own
            containers.append(self._container("queue-proxy", "knative/queue:double", qp_cpu, qp_mem,
                                              ann.get(ANN_QP[("limits", "cpu")]), ann.get(ANN_QP[("limits", "memory")])))
        if is_mms_host(isvc):
            containers.append(self._container("agent", "kserve/agent:double", cfg.agent[0], cfg.agent[1]))
        labels = dict(pred.get("labels") or {})
        if raw:
            labels.update({LABEL_ISVC: name, "component": "predictor", "app": f"isvc.{name}-predictor"})
            pod_name = f"{name}-predictor-{secrets.token_hex(5)[:10]}-{secrets.token_hex(3)[:5]}"
        else:
            rev = f"{name}-predictor-00001"
            labels.update({LABEL_ISVC: name, "component": "predictor", "app": rev,
                           "serving.knative.dev/revision": rev, "serving.knative.dev/service": f"{name}-predictor"})
            pod_name = f"{rev}-deployment-{secrets.token_hex(4)[:5]}"
        pod_ann = {}
        if not raw:
            # pkg/controller/v1alpha1/utils/utils.go SetAutoScalingAnnotations: min-scale from minReplicas (default
            # 1), max-scale only when maxReplicas != 0; without it Knative's autoscaler may add replicas up to
            # its global max-scale whenever requests exceed containerConcurrency (readiness probes included)
            pod_ann["autoscaling.knative.dev/min-scale"] = str(pred.get("minReplicas", 1))
            if pred.get("maxReplicas"):
                pod_ann["autoscaling.knative.dev/max-scale"] = str(pred["maxReplicas"])
        self.isvc_pods[(ns, name)] = pod_name
        return self._new_pod(ns, pod_name, labels, containers, isvc, pod_ann)

    def _pod_running(self, pod: dict, delay: float, key: Key) -> bool:
        """Advance a scheduled pod to Running after ``delay``; True when Running."""
        ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        if pod["status"].get("phase") == "Running":
            return True
        if not pod["spec"].get("nodeName"):
            return False
        t = self.scheduled_at.setdefault((ns, name), time.monotonic())
        left = t + delay - time.monotonic()
        if left > 0:
            self.after(left, key)
            return False

        def run(p):
            p["status"]["phase"] = "Running"
            p["status"]["startTime"] = now_iso()
            p["status"]["podIP"] = f"10.1.{_h(name) % 250}.{_h(name, 'ip') % 250 + 1}"
            p["status"]["conditions"] = conditions_with(p["status"].get("conditions"), [
                {"type": "PodScheduled", "status": "True"}, {"type": "Initialized", "status": "True"},
                {"type": "ContainersReady", "status": "True"}, {"type": "Ready", "status": "True"}])
            p["status"]["containerStatuses"] = [
                {"name": c["name"], "ready": True, "restartCount": 0, "started": True, "image": c["image"],
                 "imageID": "", "state": {"running": {"startedAt": now_iso()}}} for c in p["spec"]["containers"]]
        self.store.update(self.POD, ns, name, run)
        return True

    # -- InferenceService -------------------------------------------------------------------
    def _gc_isvc(self, ns: str, name: str) -> None:
        pod = self.isvc_pods.pop((ns, name), None)
        if pod:
            self.store.remove(self.POD, ns, pod)
        for p in self.store.items(self.POD, ns):     # anything else labelled for it
            if (p["metadata"].get("labels") or {}).get(LABEL_ISVC) == name:
                self.store.remove(self.POD, ns, p["metadata"]["name"])
        cm = self.store.get(self.rt("", "configmaps"), ns, model_config_name(name))
        if cm is not None:     # owned by the InferenceService: garbage-collected with it
            self.store.remove(self.rt("", "configmaps"), ns, model_config_name(name))
        self.agent_models.pop((ns, name), None)
        self.agent_specs.pop((ns, name), None)
        self.agent_started.pop((ns, name), None)
        if self.TM is not None:
            for tm in self.store.items(self.TM, ns):
                if (tm.get("spec") or {}).get("inferenceService") == name and not tm["metadata"].get("deletionTimestamp"):
                    self.store.update(self.TM, ns, tm["metadata"]["name"],
                                      lambda o: o["metadata"].__setitem__("deletionTimestamp", now_iso()))

    def _set_status(self, rt, ns: str, name: str, status: dict) -> None:
        def fn(o):
            old = o.get("status") or {}
            st = dict(status)
            st["conditions"] = conditions_with(old.get("conditions"), status.get("conditions", []))
            o["status"] = st
        self.store.update(rt, ns, name, fn)

    def _isvc(self, ns: str, name: str) -> None:
        """pkg/controller/v1beta1/inferenceservice/controller.go Reconcile: the finalizer
        "inferenceservice.finalizers" is added by the controller (a merge patch), not at create; the
        mode is GetDeploymentMode (annotation, else the deploy config's default). Knative (Serverless):
        a Knative revision "<isvc>-predictor-00001" with the queue-proxy sidecar; an unschedulable
        revision fails (Ready=False RevisionFailed). Standard (RawDeployment): a Deployment
        "<isvc>-predictor" without queue-proxy; an unschedulable pod only leaves the Deployment short
        of minimum availability (nothing terminal). A multi-model predictor (no storageUri) gets the
        agent sidecar and an empty model-config ConfigMap (pkg/modelconfig CreateEmptyModelConfig)."""
        if self.ISVC is None:
            return
        isvc = self.store.get(self.ISVC, ns, name)
        key = ("isvc", ns, name)
        if isvc is None:
            self._gc_isvc(ns, name)
            self.mm_loaded_at.pop((ns, name), None)
            return
        if self._finalize(self.ISVC, isvc, key):
            return
        if ISVC_FINALIZER not in (isvc["metadata"].get("finalizers") or []):
            isvc = self.store.update(self.ISVC, ns, name, lambda o: o["metadata"].setdefault(
                "finalizers", []).append(ISVC_FINALIZER))
        if is_modelmesh(isvc):
            return self._modelmesh_isvc(isvc)
        cfg = self.d.config
        mode = deployment_mode(isvc, cfg.default_deployment_mode)
        raw = mode == "Standard"
        if mode == "Knative" and not self.d.knative:
            # controller.go Reconcile: "Abort early if the resolved deployment mode is Knative, but Knative
            # Services are not available": a Warning event, the initialised conditions, a TerminalError
            # (no requeue); nothing is created
            self._event(isvc, "Warning", "ServerlessModeRejected", "It is not possible to use Knative deployment "
                        "mode when Knative Services are not available", "v1beta1Controllers")
            unknown = [{"type": t, "status": "Unknown"} for t in ("IngressReady", "PredictorReady", "Ready")]
            self._set_status(self.ISVC, ns, name, {"observedGeneration": isvc["metadata"].get("generation", 1),
                                                   "deploymentMode": "Serverless", "conditions": unknown})
            return
        if is_mms_host(isvc):
            cm_t = self.rt("", "configmaps")
            if self.store.get(cm_t, ns, model_config_name(name)) is None:
                self.store.create(cm_t, {"apiVersion": "v1", "kind": "ConfigMap",
                                         "metadata": {"name": model_config_name(name), "namespace": ns,
                                                      "labels": dict(isvc["metadata"].get("labels") or {})},
                                         "data": {MODEL_CONFIG_FILE: "[]"}})
        pod_name = self.isvc_pods.get((ns, name))
        pod = self.store.get(self.POD, ns, pod_name) if pod_name else None
        if pod is None:
            pod = self._isvc_pod(isvc, raw)
        rev = f"{name}-predictor-00001"
        gen = isvc["metadata"].get("generation", 1)
        base = {"observedGeneration": gen, "deploymentMode": "RawDeployment" if raw else "Serverless"}
        if not pod["spec"].get("nodeName"):
            self._try_schedule(pod)
            pod = self.store.get(self.POD, ns, pod["metadata"]["name"])
        if not pod["spec"].get("nodeName"):
            sched = next((c for c in pod["status"].get("conditions", []) if c["type"] == "PodScheduled"), {})
            if raw:   # the Deployment's Available condition, propagated (PropagateRawStatus)
                msg = "Deployment does not have minimum availability."
                conds = [{"type": "PredictorReady", "status": "False", "reason": "MinimumReplicasUnavailable",
                          "message": msg},
                         {"type": "Ready", "status": "False", "reason": "MinimumReplicasUnavailable", "message": msg}]
            elif cfg.report_unschedulable:
                msg = f'Revision "{rev}" failed with message: {sched.get("message", "")}.'
                conds = [{"type": "IngressReady", "status": "Unknown"},
                         {"type": "PredictorReady", "status": "False", "reason": "RevisionFailed", "message": msg},
                         {"type": "Ready", "status": "False", "reason": "RevisionFailed", "message": msg}]
            else:
                conds = [{"type": "PredictorReady", "status": "Unknown", "reason": "RevisionMissing",
                          "message": f'Configuration "{name}-predictor" is waiting for a Revision to become ready.'},
                         {"type": "Ready", "status": "Unknown", "reason": "RevisionMissing",
                          "message": f'Configuration "{name}-predictor" is waiting for a Revision to become ready.'}]
            self._set_status(self.ISVC, ns, name, dict(base, conditions=conds, modelStatus={
                "transitionStatus": "InProgress", "states": {"activeModelState": "", "targetModelState": "Pending"}}))
            return
        if not self._pod_running(pod, cfg.isvc_ready_delay_s, key):
            conds = [{"type": "PredictorReady", "status": "Unknown", "reason": "RevisionMissing",
                      "message": f'Configuration "{name}-predictor" is waiting for a Revision to become ready.'},
                     {"type": "Ready", "status": "Unknown", "reason": "RevisionMissing",
                      "message": f'Configuration "{name}-predictor" is waiting for a Revision to become ready.'}]
            self._set_status(self.ISVC, ns, name, dict(base, conditions=conds, modelStatus={
                "transitionStatus": "InProgress", "states": {"activeModelState": "", "targetModelState": "Loading"}}))
            return
        if raw:   # ingress reconciler domain.go GenerateDomainName with DefaultDomainTemplate "{{ .Name }}-{{ .Namespace }}.{{ .IngressDomain }}"
            url, purl = f"http://{name}-{ns}.{cfg.ingress_domain}", f"http://{name}-predictor-{ns}.{cfg.ingress_domain}"
            comp = {"url": purl}
        else:     # Knative's domain template "{{.Name}}.{{.Namespace}}.{{.Domain}}"
            url, purl = f"http://{name}.{ns}.{cfg.domain}", f"http://{name}-predictor.{ns}.{cfg.domain}"
            if cfg.path_template:   # ingress_reconciler.go getServiceUrl -> getPathBasedServiceUrl (Istio/Serverless)
                from .server import render_path
                url = f"http://{cfg.ingress_domain}{render_path(cfg.path_template, ns, name).rstrip('/')}"
            comp = {"latestCreatedRevision": rev, "latestReadyRevision": rev, "latestRolledoutRevision": rev,
                    "url": purl, "traffic": [{"latestRevision": True, "percent": 100, "revisionName": rev}]}
        # inference_service_status.go: Ready = the living set (PredictorReady, IngressReady); Knative's
        # PropagateStatus also copies the service's RoutesReady/ConfigurationsReady; PropagateRawStatus
        # sets PredictorReady from the Deployment's Available condition (MinimumReplicasAvailable).
        conds = [{"type": "IngressReady", "status": "True"}] + (
            [{"type": "PredictorReady", "status": "True", "reason": "MinimumReplicasAvailable",
              "message": "Deployment has minimum availability."}] if raw else
            [{"type": "PredictorConfigurationReady", "status": "True"}, {"type": "PredictorReady", "status": "True"},
             {"type": "PredictorRouteReady", "status": "True"}]) + [{"type": "Ready", "status": "True"}]
        self._set_status(self.ISVC, ns, name, dict(
            base, url=url, address={"url": f"http://{name}-predictor.{ns}.svc.cluster.local"},
            components={"predictor": comp}, conditions=conds,
            modelStatus={"transitionStatus": "UpToDate", "copies": {"failedCopies": 0, "totalCopies": 1},
                         "states": {"activeModelState": "Loaded", "targetModelState": "Loaded"}}))
        if is_mms_host(isvc) and (ns, name) not in self.agent_started:
            # the pod starts with the ConfigMap as it is now; later changes wait for the kubelet's sync
            self.agent_started[(ns, name)] = time.monotonic()
            self._agent(ns, name)

    # -- ModelMesh ---------------------------------------------------------------------------
    def _runtime_for(self, isvc: dict) -> Optional[dict]:
        ns = isvc["metadata"]["namespace"]
        if self.SR is None:
            return None
        model = predictor_model(isvc)
        want = model.get("runtime")
        fmt = (model.get("modelFormat") or {}).get("name")
        for sr in self.store.items(self.SR, ns):
            spec = sr.get("spec") or {}
            if not spec.get("multiModel") or spec.get("disabled"):
                continue
            if want and sr["metadata"]["name"] != want:
                continue
            formats = {f.get("name") for f in spec.get("supportedModelFormats") or []}
            if want or fmt in formats:
                return sr
        return None

    def _sr(self, ns: str, name: str) -> None:
        sr = self.store.get(self.SR, ns, name) if self.SR is not None and name else None
        key = (ns, name)
        pods = self.mm_pods.setdefault(key, [])
        if sr is None or not (sr.get("spec") or {}).get("multiModel"):
            for p in list(pods):
                self.store.remove(self.POD, ns, p)
            self.mm_pods.pop(key, None)
        else:
            want = int((sr.get("spec") or {}).get("replicas") or 1)
            while len(pods) < want:
                labels = {"modelmesh-service": "modelmesh-serving", "name": f"modelmesh-serving-{name}",
                          "mmslib-double/runtime": name}
                cs = [self._container(c, f"{c}:double", cpu, mem, cpu, mem)
                      for c, cpu, mem in self.d.config.modelmesh_containers]
                pname = f"modelmesh-serving-{name}-{secrets.token_hex(5)[:10]}-{secrets.token_hex(3)[:5]}"
                pods.append(pname)
                self._new_pod(ns, pname, labels, cs, sr)
            for p in pods:
                pod = self.store.get(self.POD, ns, p)
                if pod is not None:
                    self._pod_running(pod, self.d.config.isvc_ready_delay_s, ("sr", ns, name))
        for isvc in self.store.items(self.ISVC, ns):
            if is_modelmesh(isvc):
                self.enqueue(("isvc", ns, isvc["metadata"]["name"]))

    def _modelmesh_isvc(self, isvc: dict) -> None:
        """KServe's controller skips a ModelMesh InferenceService (controller.go Reconcile: "Skipping
        reconciliation", conditions only initialised); its status comes from the separate
        modelmesh-serving controller, which this imitates from its documentation only (not its code):
        Ready once a multiModel ServingRuntime's pods run, reached at ``modelmesh-serving:8033`` (gRPC)
        and ``:8008`` (REST proxy). The conditions and reasons here are therefore approximate."""
        ns, name = isvc["metadata"]["namespace"], isvc["metadata"]["name"]
        base = {"observedGeneration": isvc["metadata"].get("generation", 1), "deploymentMode": "ModelMesh"}
        sr = self._runtime_for(isvc)
        if sr is None:
            rt = predictor_model(isvc).get("runtime") or "(auto-select)"
            msg = f"No ServingRuntime {rt!r} with multiModel: true supports this model in namespace {ns}"
            self._set_status(self.ISVC, ns, name, dict(base, conditions=[
                {"type": "Ready", "status": "False", "reason": "RuntimeNotRecognized", "message": msg}],
                modelStatus={"transitionStatus": "InvalidSpec",
                             "lastFailureInfo": {"reason": "RuntimeNotRecognized", "message": msg},
                             "states": {"activeModelState": "FailedToLoad", "targetModelState": ""}}))
            return
        key = (ns, sr["metadata"]["name"])
        if not self.mm_pods.get(key):
            self._sr(*key)
        running = [p for p in self.mm_pods.get(key, [])
                   if (self.store.get(self.POD, ns, p) or {}).get("status", {}).get("phase") == "Running"]
        if not running:
            self._set_status(self.ISVC, ns, name, dict(base, conditions=[
                {"type": "Ready", "status": "False", "reason": "ModelLoading",
                 "message": "Waiting for the runtime pods to be ready"}],
                modelStatus={"transitionStatus": "InProgress",
                             "states": {"activeModelState": "Pending", "targetModelState": "Loading"}}))
            self.after(self.d.config.isvc_ready_delay_s, ("isvc", ns, name))
            return
        host = f"modelmesh-serving.{ns}"
        # Ready as soon as ModelMesh registered the model, while it is still Loading (issue #22 item 6), and it
        # stays Ready after ModelMesh evicts it (least recently used, past modelmesh_capacity)
        due = self.mm_loaded_at.setdefault((ns, name), time.monotonic() + self.d.config.agent_load_delay_s)
        loaded = time.monotonic() >= due
        if not loaded:
            self.after(due - time.monotonic(), ("isvc", ns, name))
        self._set_status(self.ISVC, ns, name, dict(
            base, url=f"grpc://{host}:8033", address={"url": f"grpc://{host}.svc.cluster.local:8033"},
            components={"predictor": {"grpcUrl": f"grpc://{host}:8033", "restUrl": f"http://{host}:8008",
                                      "url": f"grpc://{host}:8033"}},
            conditions=[{"type": "PredictorReady", "status": "True"}, {"type": "Ready", "status": "True"}],
            modelStatus={"transitionStatus": "UpToDate", "copies": {"failedCopies": 0, "totalCopies": len(running)},
                         "states": {"activeModelState": "Loaded" if loaded else "Loading", "targetModelState": ""}}))

    def modelmesh_loaded(self, ns: Optional[str] = None) -> set:
        """ModelMesh models loaded now: past their load, and among the ``modelmesh_capacity`` most recently
        loaded (the rest evicted, least recently used first; their InferenceServices stay Ready)."""
        now = time.monotonic()
        done = sorted((t, k) for k, t in dict(self.mm_loaded_at).items() if t <= now and (ns is None or k[0] == ns))
        cap = self.d.config.modelmesh_capacity
        if cap is not None:
            done = done[-cap:] if cap > 0 else []
        return {k[1] for _, k in done}

    # -- TrainedModel ------------------------------------------------------------------------
    def _tm(self, ns: str, name: str) -> None:
        """pkg/controller/v1alpha1/trainedmodel/controller.go Reconcile, in its order: parent ISVC
        missing -> delete the TM; add the finalizer "trainedmodel.finalizer"; being deleted -> the
        ModelConfig reconciler removes the entry, then the finalizer goes; else updateConditions
        (InferenceServiceReady, IsMMSPredictor, MemoryResourceAvailable: the only three it sets; Ready
        follows them, apis.NewLivingConditionSet in trained_model_status.go), updateStatus (url), and
        only then ModelConfigReconciler.Reconcile writes the host's model-config ConfigMap. A failing
        ConfigMap update (too long) is a returned error: logged and retried, no condition changes,
        so the TrainedModel stays Ready while no agent ever sees the model."""
        if self.TM is None:
            return
        tm = self.store.get(self.TM, ns, name)
        key = ("tm", ns, name)
        if tm is None:
            return
        host_name = (tm.get("spec") or {}).get("inferenceService", "")
        host = self.store.get(self.ISVC, ns, host_name)
        if host is None:
            # "Parent InferenceService does not exists, deleting TrainedModel": r.Delete, then return. With
            # the finalizer on, that only sets deletionTimestamp, and every later reconcile returns here
            # too: the finalizer is never removed (stuck Terminating until someone removes it by hand)
            if not tm["metadata"].get("deletionTimestamp"):
                if tm["metadata"].get("finalizers"):
                    self.store.update(self.TM, ns, name, lambda o: o["metadata"].__setitem__(
                        "deletionTimestamp", now_iso()))
                else:
                    self.store.remove(self.TM, ns, name)
            return
        if tm["metadata"].get("deletionTimestamp"):
            if TM_FINALIZER in (tm["metadata"].get("finalizers") or []):
                # ModelConfigReconciler.Reconcile removes the entry (a rewrite of the whole ConfigMap, up to
                # 1 MiB); only when that update succeeded does the finalizer go; an error requeues
                wait = self._cm_busy.get((ns, host_name), 0.0) - time.monotonic()
                if wait > 0:
                    self.after(wait, key)
                    return
                if not self._model_config(ns, host_name, tm, delete=True):
                    self.after(1.0, key)
                    return
                self._cm_busy[(ns, host_name)] = time.monotonic() + self.d.config.modelconfig_write_s
                self.store.update(self.TM, ns, name, lambda o: o["metadata"].__setitem__(
                    "finalizers", [f for f in o["metadata"].get("finalizers") or [] if f != TM_FINALIZER]))
            cur = self.store.get(self.TM, ns, name)
            if cur is not None and not cur["metadata"].get("finalizers"):
                self.store.remove(self.TM, ns, name)
            return

        def label_and_finalize(o):
            o["metadata"].setdefault("labels", {})[LABEL_ISVC] = host_name
            fins = o["metadata"].setdefault("finalizers", [])
            if TM_FINALIZER not in fins:
                fins.append(TM_FINALIZER)
        tm = self.store.update(self.TM, ns, name, label_and_finalize)
        labels = tm["metadata"]["labels"]
        model = tm["spec"]["model"]
        conds = []
        if is_ready(host):
            conds.append({"type": "InferenceServiceReady", "status": "True"})
        else:
            conds.append({"type": "InferenceServiceReady", "status": "False", "reason": "InferenceServiceNotReady",
                          "message": "Inference Service needs to be ready before Trained Model can be ready"})
        if is_mms_host(host) and not is_modelmesh(host):     # v1beta1utils.IsMMSPredictor
            conds.append({"type": "IsMMSPredictor", "status": "True"})
        else:
            conds.append({"type": "IsMMSPredictor", "status": "False", "reason": "IsNotMMSPredictor",
                          "message": "Inference Service predictor is not configured for multi-model serving"})
        # TotalRequestedMemory of the TMs labelled allocated to this host (+ this one if not yet),
        # against the predictor container's memory limit (utils.IsMemoryResourceAvailable).
        allocated = labels.get(LABEL_TM_ALLOCATED) == host_name
        total = qty(model.get("memory"))
        for other in self.store.items(self.TM, ns):
            ol = other["metadata"].get("labels") or {}
            if ol.get(LABEL_TM_ALLOCATED) == host_name and ol.get(LABEL_ISVC) == host_name \
                    and other["metadata"]["name"] != name:
                total += qty(other["spec"]["model"].get("memory"))
        limit = qty(((predictor_model(host).get("resources") or {}).get("limits") or {}).get("memory"))
        if limit >= total:
            if not allocated:
                self.store.update(self.TM, ns, name, lambda o: o["metadata"]["labels"].__setitem__(
                    LABEL_TM_ALLOCATED, host_name))
            conds.append({"type": "MemoryResourceAvailable", "status": "True"})
        else:
            conds.append({"type": "MemoryResourceAvailable", "status": "False", "reason": "MemoryResourceNotAvailable",
                          "message": "Inference Service does not have enough memory resources for Trained Model"})
        bad = [c for c in conds if c["status"] != "True"]
        status: Dict[str, object] = dict((tm.get("status") or {}))
        status.pop("conditions", None)
        if bad:   # the living condition set: Ready mirrors the (last) failing dependent condition
            conds.append({"type": "Ready", "status": "False", "reason": bad[-1]["reason"],
                          "message": bad[-1]["message"]})
            self._set_status(self.TM, ns, name, dict(status, conditions=conds))
            self.after(2.0, key)   # updateConditions returned conditionErr: requeued; no status url, no ModelConfig
            return
        conds.append({"type": "Ready", "status": "True"})
        hst = host.get("status") or {}
        path = predict_path(name, host)
        if hst.get("url"):
            status["url"] = f"{hst['url']}{path}"
        if (hst.get("address") or {}).get("url"):
            status["address"] = {"url": f"{hst['address']['url']}{path}"}
        self._set_status(self.TM, ns, name, dict(status, conditions=conds))
        if not self._model_config(ns, host_name, tm):
            self.after(1.0, key)      # Reconcile returned the error: controller-runtime requeues (with backoff)

    def _model_config(self, ns: str, host: str, tm: dict, delete: bool = False) -> bool:
        """pkg/controller/v1alpha1/trainedmodel/reconcilers/modelconfig ModelConfigReconciler.Reconcile with
        pkg/modelconfig/configmap.go ConfigsDelta.Process: shard 0 (sharding/memory GetOrAssignShard),
        models.json = [{"modelName": ..., "modelSpec": {"storageUri", "framework", "memory"}}]."""
        cm_t = self.rt("", "configmaps")
        cm_name = model_config_name(host, 0)
        cm = self.store.get(cm_t, ns, cm_name)
        if cm is None:
            self.modelconfig_errors[(ns, host)] = f'configmaps "{cm_name}" not found'
            return False
        try:
            entries = json.loads((cm.get("data") or {}).get(MODEL_CONFIG_FILE) or "[]")
        except ValueError as e:
            self.modelconfig_errors[(ns, host)] = f"while updating {cm_name} err {e}"
            return False
        by_name = {e["modelName"]: e for e in entries}
        name = tm["metadata"]["name"]
        if delete:
            by_name.pop(name, None)
        else:
            m = tm["spec"]["model"]
            by_name[name] = {"modelName": name, "modelSpec": {"storageUri": m.get("storageUri", ""),
                                                              "framework": m.get("framework", ""),
                                                              "memory": m.get("memory", "0")}}
        text = json.dumps(list(by_name.values()), separators=(",", ":"))
        data = dict(cm.get("data") or {}, **{MODEL_CONFIG_FILE: text})
        size = sum(len(k) + len(v) for k, v in data.items())
        from .server import CONFIGMAP_MAX_BYTES
        if size > CONFIGMAP_MAX_BYTES:   # the apiserver refuses the update (422): the reconcile errors
            self.modelconfig_errors[(ns, host)] = (f'ConfigMap "{cm_name}" is invalid: []: Too long: must have at '
                                                   f"most {CONFIGMAP_MAX_BYTES} bytes")
            self.modelconfig_failures += 1
            return False
        if data != cm.get("data"):
            self.store.update(cm_t, ns, cm_name, lambda o: o.__setitem__("data", data))
        return True

    # -- the model agent in the host pod --------------------------------------------------------
    def _agent(self, ns: str, host: str) -> None:
        """pkg/agent/watcher.go (the mounted ConfigMap's models.json, seen after the kubelet's sync) and
        pkg/agent/puller.go (download, then load through the server's repository API, one model at a
        time per name). Outcomes are only logged: nothing in the API changes when a load fails."""
        cm = self.store.get(self.rt("", "configmaps"), ns, model_config_name(host, 0))
        pod_name = self.isvc_pods.get((ns, host))
        pod = self.store.get(self.POD, ns, pod_name) if pod_name else None
        state = self.agent_models.setdefault((ns, host), {})
        if cm is None or pod is None or (pod.get("status") or {}).get("phase") != "Running":
            state.clear()
            if pod is None:
                self.agent_started.pop((ns, host), None)
            return
        try:
            want = {e["modelName"]: json.dumps(e.get("modelSpec"), sort_keys=True)
                    for e in json.loads((cm.get("data") or {}).get(MODEL_CONFIG_FILE) or "[]")}
        except ValueError:
            return
        cfg = self.d.config
        now = time.monotonic()
        specs = self.agent_specs.setdefault((ns, host), {})
        for m in list(state):
            if m not in want or specs.get(m) != want[m]:
                del state[m]                       # removed (parseConfig: stale), or changed: remove + add
        isvc = self.store.get(self.ISVC, ns, host) or {}
        for m in set(want) - set(state):
            specs[m] = want[m]
            why = "injected failure" if m in cfg.agent_fail_models else (
                self.triton_load_error(m, json.loads(want[m]).get("storageUri", "")) if is_triton(isvc) else "")
            if why:
                state[m] = None                    # "Failed to load model": logged by the agent only
                self.agent_failures.append((ns, host, m))
                self.agent_errors[(ns, host, m)] = why
            else:
                state[m] = now + cfg.agent_sync_delay_s + cfg.agent_load_delay_s

    def triton_load_error(self, name: str, uri: str) -> str:
        """Why Triton cannot load TrainedModel ``name`` from ``uri`` through the agent, "" when it can.
        pkg/agent/downloader.go Downloader.DownloadModel puts the download in <modelDir>/<name> and
        puller.go asks the server to load <name>; a URI missing from the object store fails the download
        (storage provider DownloadModel), and Triton refuses a config.pbtxt whose name is not the
        directory's ("The TrainModel resource name must be the same as the model name specified in
        triton model configuration", docs/samples/multimodelserving/triton/README.md)."""
        cfg = self.d.config
        if not cfg.strict_storage:
            return ""
        declared = cfg.artifacts.get(uri.rstrip("/"))
        if declared is None:
            return f"failed to download model: {uri} holds no model directory (config.pbtxt)"
        if declared != name:
            return (f"failed to load '{name}': the model configuration in {uri}/config.pbtxt names "
                    f"'{declared}', not the directory '{name}'")
        return ""

    def triton_repository(self, root: str) -> Tuple[set, Dict[str, str]]:
        """(loaded, {refused: why}) for a single-model Triton server whose storageUri (its repository,
        downloaded whole by the storage initializer) is ``root``: every model directory directly under
        it is loaded (the runtime's default model control mode loads the whole repository); one whose
        config.pbtxt names another model is refused."""
        root = root.rstrip("/")
        loaded, refused = set(), {}
        for uri, declared in self.d.config.artifacts.items():
            parent, _, dirname = uri.rstrip("/").rpartition("/")
            if parent != root:
                continue
            if declared == dirname:
                loaded.add(dirname)
            else:
                refused[dirname] = f"config.pbtxt names '{declared}', not the directory '{dirname}'"
        return loaded, refused

    def until_kubelet_sync(self, ns: str, host: str) -> float:
        """Seconds until the kubelet next refreshes the host pod's mounted ConfigMap: its periodic pod
        sync (KubeletConfiguration syncFrequency, 1 min by default) counted from the pod's start; the
        agent (pkg/agent/watcher.go Watcher.Start) acts only on the ..data symlink that refresh swaps."""
        period = self.d.config.kubelet_sync_period_s
        started = self.agent_started.get((ns, host))
        if started is None or period <= 0:
            return 0.0
        import math
        now = time.monotonic()
        return started + math.ceil(max(now - started, 1e-9) / period) * period - now

    def loaded_models(self, ns: str, host: str) -> set:
        """Models the agent of ``host`` has loaded by now."""
        now = time.monotonic()
        return {m for m, t in dict(self.agent_models.get((ns, host), {})).items() if t is not None and t <= now}

    # -- metrics -----------------------------------------------------------------------------
    def _models_on(self, ns: str, isvc: str) -> int:
        if self.TM is None:
            return 0
        return len(self.loaded_models(ns, isvc))

    def container_usage(self, pod: dict, c: dict) -> Tuple[int, int]:
        """(nanocores, bytes): small, plausible, stable per pod; an MMS host grows with its models."""
        name, cname = pod["metadata"]["name"], c["name"]
        base = {"kserve-container": (2_000_000, 48 << 20), "queue-proxy": (1_000_000, 14 << 20),
                "agent": (500_000, 20 << 20)}.get(cname, (3_000_000, 64 << 20))
        cpu = base[0] + _h(name, cname, "cpu") % 1_000_000
        mem = base[1] + (_h(name, cname, "mem") % (4 << 20))
        if cname == PREDICTOR_CONTAINER:
            isvc = (pod["metadata"].get("labels") or {}).get(LABEL_ISVC)
            if isvc:
                mem += self._models_on(pod["metadata"]["namespace"], isvc) * (512 << 10)
                obj = self.store.get(self.ISVC, pod["metadata"]["namespace"], isvc) if self.ISVC else None
                if obj is not None and is_triton(obj) and not is_mms_host(obj):   # the whole repository
                    loaded, _ = self.triton_repository(predictor_model(obj).get("storageUri") or "")
                    mem += max(0, len(loaded) - 1) * (64 << 20)
        return cpu, mem

    def pod_metrics(self, pod: dict) -> dict:
        return {"kind": "PodMetrics", "apiVersion": "metrics.k8s.io/v1beta1",
                "metadata": {"name": pod["metadata"]["name"], "namespace": pod["metadata"]["namespace"],
                             "labels": dict(pod["metadata"].get("labels") or {}),
                             "creationTimestamp": now_iso()},
                "timestamp": now_iso(), "window": "15s",
                "containers": [{"name": c["name"], "usage": {"cpu": f"{cpu}n", "memory": f"{mem // 1024}Ki"}}
                               for c in pod["spec"]["containers"] for cpu, mem in [self.container_usage(pod, c)]]}

    def node_metrics(self) -> List[dict]:
        out = []
        for n in self._nodes():
            nn = n["metadata"]["name"]
            cpu = mem = 0
            for p in self.store.items(self.POD):
                if p["spec"].get("nodeName") == nn and p["status"].get("phase") == "Running":
                    for c in p["spec"]["containers"]:
                        a, b = self.container_usage(p, c)
                        cpu += a
                        mem += b
            out.append({"kind": "NodeMetrics", "apiVersion": "metrics.k8s.io/v1beta1",
                        "metadata": {"name": nn, "creationTimestamp": now_iso()}, "timestamp": now_iso(),
                        "window": "15s", "usage": {"cpu": f"{cpu}n", "memory": f"{mem // 1024}Ki"}})
        return out
