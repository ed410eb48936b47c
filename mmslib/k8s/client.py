"""The Kubernetes API client from a kubeconfig (or the in-cluster config), calls with retries,
error formatting, and the preflight checks (API reachable, KServe installed, namespace usable)."""
from __future__ import annotations

import json
import logging
import os
import time
from typing import Optional, Sequence

from ..errors import MmsError, ParamError
from .names import ISVC, Res

log = logging.getLogger(__name__)

# -- API client, errors, preflight --------------------------------------------


def _k8s():
    try:
        import kubernetes  # noqa: F401
        from kubernetes import client, config, watch  # noqa: F401
    except ImportError:  # pragma: no cover - a declared dependency
        from ..errors import DependencyError
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


KNATIVE_SERVING = ("serving.knative.dev", "v1")


def knative_served(api) -> Optional[bool]:
    """Whether Knative Serving's ``services`` (serving.knative.dev/v1) is served: KServe's Serverless
    (Knative) mode needs it; without it KServe's InferenceService reconciler emits a Warning event
    ServerlessModeRejected and stops (pkg/controller/v1beta1/inferenceservice/controller.go Reconcile,
    utils.IsCrdAvailable). None when this user may not read the discovery document."""
    from kubernetes import client
    try:
        lst = call("GET /apis/serving.knative.dev/v1", client.CustomObjectsApi(api).get_api_resources,
                   *KNATIVE_SERVING, retries=2)
    except KubeApiError as e:
        if e.status == 404:
            return False
        if e.status in (401, 403):
            return None
        raise
    names = {r.name for r in (lst.resources or [])} if hasattr(lst, "resources") else \
        {r["name"] for r in (lst or {}).get("resources", [])}
    return "services" in names


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
                             f"a namespace this kubeconfig's user may use: RBAC forbids it (403: {e.message}). "
                             "Grant the user get/list/watch/create/delete on inferenceservices and trainedmodels "
                             f"(serving.kserve.io), and get/list on pods and events, in namespace {namespace} "
                             "(a Role and RoleBinding), or use a namespace it may use") from None
        raise


def missing_access(api, namespace: str, needs: Sequence[tuple]) -> Optional[list]:
    """[(verb, group, resource)] of ``needs`` this user may not do in ``namespace``: one
    SelfSubjectAccessReview each (authorization.k8s.io/v1, what ``kubectl auth can-i`` asks). None when
    the reviews themselves cannot be made (an API server without them, or a user who may not)."""
    from kubernetes import client
    authz = client.AuthorizationV1Api(api)
    out = []
    for verb, group, resource in needs:
        body = client.V1SelfSubjectAccessReview(api_version="authorization.k8s.io/v1", kind="SelfSubjectAccessReview",
                                                spec=client.V1SelfSubjectAccessReviewSpec(
            resource_attributes=client.V1ResourceAttributes(namespace=namespace, verb=verb, group=group,
                                                            resource=resource)))
        try:
            r = call(f"SelfSubjectAccessReview {verb} {resource}", authz.create_self_subject_access_review, body,
                     retries=2)
        except KubeApiError as e:
            if e.status in (403, 404, 405):
                log.info("cannot ask the API server what this user may do (%s): permissions not checked", e)
                return None
            raise
        if not (r.status and r.status.allowed):
            out.append((verb, group, resource))
    return out


def rbac_role(namespace: str, needs: Sequence[tuple]) -> str:
    """A Role granting ``needs`` ((verb, group, resource)), as YAML, for the error message."""
    by: dict = {}
    for verb, group, resource in needs:
        by.setdefault((group, resource), []).append(verb)
    rules = "".join(f'  - apiGroups: ["{g}"]\n    resources: ["{r}"]\n    verbs: [{", ".join(repr(v).replace(chr(39), chr(34)) for v in vs)}]\n'
                    for (g, r), vs in by.items())
    return (f"apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: mmslib\n  namespace: {namespace}\n"
            f"rules:\n{rules}")


def cluster_shape(api) -> dict:
    """What a run on this cluster ran on, for ``meta.json``: the API server's version, the nodes
    (count, kubelet versions, allocatable CPU, memory, pods and GPUs summed over the schedulable
    ones). Read once per run; a part this user may not read says so instead of failing the run."""
    from kubernetes import client

    from ..quantity import cpu_exact, memory_exact
    out: dict = {"server": server_of(api)}
    try:
        v = call("GET /version", client.VersionApi(api).get_code, retries=1)
        out["kubernetes_version"] = getattr(v, "git_version", None) or (v or {}).get("gitVersion")
    except KubeApiError as e:
        out["kubernetes_version"] = f"unreadable ({e.status})"
    except Exception as e:  # noqa: BLE001
        out["kubernetes_version"] = f"unreadable ({type(e).__name__})"
    try:
        nodes = call("GET nodes", client.CoreV1Api(api).list_node, retries=1).items or []
    except KubeApiError as e:
        out["nodes"] = f"unreadable ({e.status}: {e.message[:80]})"
        return out
    except Exception as e:  # noqa: BLE001 - a record of the cluster never fails the run
        out["nodes"] = f"unreadable ({type(e).__name__}: {str(e)[:80]})"
        return out
    usable = [n for n in nodes if not (n.spec and n.spec.unschedulable)]
    cpu = mem = pods = gpus = 0
    for n in usable:
        alloc = (n.status.allocatable if n.status else None) or {}
        cpu += cpu_exact(alloc.get("cpu", "0"))
        mem += memory_exact(alloc.get("memory", "0"))
        pods += int(alloc.get("pods", 0) or 0)
        gpus += sum(int(v) for k, v in alloc.items() if k.endswith("/gpu"))
    kubelets = sorted({n.status.node_info.kubelet_version for n in nodes
                       if n.status and n.status.node_info and n.status.node_info.kubelet_version})
    out.update(nodes=len(nodes), nodes_schedulable=len(usable), allocatable_cpu=float(cpu),
               allocatable_memory_gib=round(mem / 2**30, 2), allocatable_pods=pods, allocatable_gpus=gpus,
               kubelet_versions=kubelets)
    return out
