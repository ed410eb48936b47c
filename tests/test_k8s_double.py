"""The Kubernetes API double, through the unmodified ``kubernetes`` client over HTTP."""
from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

from k8s_double import Capacity  # noqa: E402
from k8s_fixtures import k8s_cluster, make_k8s_cluster, shared_crds  # noqa: E402,F401

from mmslib import k8s as mk  # noqa: E402

kubernetes = pytest.importorskip("kubernetes")
from kubernetes import client, watch  # noqa: E402
from kubernetes.client.exceptions import ApiException  # noqa: E402

G, V1B1, V1A1 = "serving.kserve.io", "v1beta1", "v1alpha1"
NS = "default"


def isvc(name, labels=None, cpu="100m", memory="100Mi", storage_uri="gs://b/m", **kw):
    return mk.isvc_manifest(name, NS, labels=labels or {}, model_format="triton", runtime="kserve-tritonserver",
                            storage_uri=storage_uri, cpu=cpu, memory=memory, sidecar_cpu="1", sidecar_memory="500Mi",
                            **kw)


def sr(name, labels=None, multi=False):
    return {"apiVersion": f"{G}/{V1A1}", "kind": "ServingRuntime", "metadata": {"name": name, "labels": labels or {}},
            "spec": {"multiModel": multi, "supportedModelFormats": [{"name": "triton"}],
                     "containers": [{"name": "kserve-container", "image": "triton:1"}]}}


def body(e: ApiException) -> dict:
    return json.loads(e.body)


def wait_for(fn, timeout=15.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def ready(obj) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in (obj.get("status") or {}).get("conditions", []))


@pytest.fixture
def api(k8s_cluster):
    a = k8s_cluster.api_client()
    yield a
    a.close()


def test_discovery_version_and_crds(k8s_cluster, api):
    assert client.VersionApi(api).get_code().git_version.startswith("v1.31")
    groups = {g.name: [v.version for v in g.versions] for g in client.ApisApi(api).get_api_versions().groups}
    assert groups[G] == ["v1beta1", "v1alpha1"] and "metrics.k8s.io" in groups
    res = client.CustomObjectsApi(api).get_api_resources(G, V1B1)
    assert "inferenceservices" in {r.name for r in res.resources}
    assert "trainedmodels" in {r.name for r in client.CustomObjectsApi(api).get_api_resources(G, V1A1).resources}
    crd = client.ApiextensionsV1Api(api).read_custom_resource_definition("inferenceservices.serving.kserve.io")
    assert crd.spec.names.kind == "InferenceService"
    names = {c.metadata.name for c in client.ApiextensionsV1Api(api).list_custom_resource_definition().items}
    assert {"trainedmodels.serving.kserve.io", "servingruntimes.serving.kserve.io"} <= names
    assert client.CoreV1Api(api).read_namespace(NS).status.phase == "Active"


def test_crud_metadata_patch_update_delete(k8s_cluster, api):
    co = client.CustomObjectsApi(api)
    o = co.create_namespaced_custom_object(G, V1A1, NS, "servingruntimes", sr("rt-a", {"tier": "a"}))
    m = o["metadata"]
    assert m["uid"] and m["generation"] == 1 and m["creationTimestamp"].endswith("Z")
    rv0 = int(m["resourceVersion"])
    got = co.get_namespaced_custom_object(G, V1A1, NS, "servingruntimes", "rt-a")
    assert got["metadata"]["uid"] == m["uid"]
    # merge patch of metadata: rv moves, generation does not
    p1 = co.patch_namespaced_custom_object(G, V1A1, NS, "servingruntimes", "rt-a", {"metadata": {"labels": {"x": "1"}}})
    assert int(p1["metadata"]["resourceVersion"]) > rv0 and p1["metadata"]["generation"] == 1
    assert p1["metadata"]["labels"] == {"tier": "a", "x": "1"}
    # spec change: generation 2; JSON patch (a list body)
    p2 = co.patch_namespaced_custom_object(G, V1A1, NS, "servingruntimes", "rt-a", {"spec": {"multiModel": True}})
    assert p2["metadata"]["generation"] == 2 and p2["spec"]["multiModel"] is True
    p3 = co.patch_namespaced_custom_object(G, V1A1, NS, "servingruntimes", "rt-a",
                                           [{"op": "replace", "path": "/spec/multiModel", "value": False},
                                            {"op": "add", "path": "/metadata/labels/y", "value": "2"}],
                                           _content_type="application/json-patch+json")
    assert p3["spec"]["multiModel"] is False and p3["metadata"]["labels"]["y"] == "2"
    # update with a stale resourceVersion: 409 Conflict
    stale = dict(got)
    with pytest.raises(ApiException) as ei:
        co.replace_namespaced_custom_object(G, V1A1, NS, "servingruntimes", "rt-a", stale)
    assert ei.value.status == 409 and body(ei.value)["reason"] == "Conflict"
    fresh = co.get_namespaced_custom_object(G, V1A1, NS, "servingruntimes", "rt-a")
    fresh["spec"]["replicas"] = 2
    assert co.replace_namespaced_custom_object(G, V1A1, NS, "servingruntimes", "rt-a", fresh)["spec"]["replicas"] == 2
    co.delete_namespaced_custom_object(G, V1A1, NS, "servingruntimes", "rt-a")
    with pytest.raises(ApiException) as ei:
        co.get_namespaced_custom_object(G, V1A1, NS, "servingruntimes", "rt-a")
    assert ei.value.status == 404 and body(ei.value)["reason"] == "NotFound"
    # an InferenceService gets its finalizer from the controller's first reconcile (not at create, as in
    # KServe); once it has it, a delete sets deletionTimestamp first, then the object goes
    co.create_namespaced_custom_object(G, V1B1, NS, "inferenceservices", isvc("del-me"))
    wait_for(lambda: "inferenceservice.finalizers" in (co.get_namespaced_custom_object(
        G, V1B1, NS, "inferenceservices", "del-me")["metadata"].get("finalizers") or []), what="ISVC finalizer")
    d = co.delete_namespaced_custom_object(G, V1B1, NS, "inferenceservices", "del-me")
    assert d["metadata"].get("deletionTimestamp")
    wait_for(lambda: not k8s_cluster.double.objects("inferenceservices"), what="ISVC gone")


def test_label_and_field_selectors(k8s_cluster, api):
    co = client.CustomObjectsApi(api)
    for name, labels in [("s1", {"tier": "a", "run": "r1"}), ("s2", {"tier": "b", "run": "r1"}),
                         ("s3", {"tier": "c"}), ("s4", {})]:
        co.create_namespaced_custom_object(G, V1A1, NS, "servingruntimes", sr(name, labels))

    def names(sel):
        return sorted(o["metadata"]["name"] for o in
                      co.list_namespaced_custom_object(G, V1A1, NS, "servingruntimes", label_selector=sel)["items"])
    assert names("tier=a") == ["s1"]
    assert names("tier==b") == ["s2"]
    assert names("tier!=a") == ["s2", "s3", "s4"]
    assert names("tier in (a,c)") == ["s1", "s3"]
    assert names("tier notin (a,c)") == ["s2", "s4"]
    assert names("run") == ["s1", "s2"]
    assert names("!run") == ["s3", "s4"]
    assert names("run=r1,tier in (b, c)") == ["s2"]
    assert names("") == ["s1", "s2", "s3", "s4"]
    lst = co.list_namespaced_custom_object(G, V1A1, NS, "servingruntimes", limit=3)
    assert len(lst["items"]) == 3 and lst["metadata"]["continue"]
    rest = co.list_namespaced_custom_object(G, V1A1, NS, "servingruntimes", limit=3, _continue=lst["metadata"]["continue"])
    assert [o["metadata"]["name"] for o in rest["items"]] == ["s4"]
    with pytest.raises(ApiException) as ei:
        co.list_namespaced_custom_object(G, V1A1, NS, "servingruntimes", label_selector="tier in (a")
    assert ei.value.status == 400
    # collection delete by label
    co.delete_collection_namespaced_custom_object(G, V1A1, NS, "servingruntimes", label_selector="run=r1")
    assert names("") == ["s3", "s4"]
    # field selectors on core objects
    ns = client.CoreV1Api(api).list_namespace(field_selector="metadata.name=default")
    assert [n.metadata.name for n in ns.items] == ["default"]


def test_errors_409_404_422_400_403(k8s_cluster, api):
    co = client.CustomObjectsApi(api)
    co.create_namespaced_custom_object(G, V1B1, NS, "inferenceservices", isvc("dup"))
    with pytest.raises(ApiException) as ei:
        co.create_namespaced_custom_object(G, V1B1, NS, "inferenceservices", isvc("dup"))
    b = body(ei.value)
    assert ei.value.status == 409 and b["reason"] == "AlreadyExists" and b["kind"] == "Status"
    assert b["details"]["name"] == "dup" and 'inferenceservices.serving.kserve.io "dup" already exists' == b["message"]
    with pytest.raises(ApiException) as ei:
        co.get_namespaced_custom_object(G, V1B1, NS, "inferenceservices", "nope")
    assert ei.value.status == 404
    # a wrong-typed field, refused by the real CRD schema
    bad = isvc("typo")
    bad["spec"]["predictor"]["minReplicas"] = "one"
    with pytest.raises(ApiException) as ei:
        co.create_namespaced_custom_object(G, V1B1, NS, "inferenceservices", bad)
    b = body(ei.value)
    assert ei.value.status == 422 and b["reason"] == "Invalid"
    assert b["details"]["causes"][0]["field"] == "spec.predictor.minReplicas"
    assert "must be of type integer" in b["message"]
    # a required field missing (TrainedModel spec.model.memory)
    tm = mk.trained_model_manifest("t1", NS, labels={}, inference_service="h", framework="triton",
                                   storage_uri="gs://b/m", memory="1Mi")
    del tm["spec"]["model"]["memory"]
    with pytest.raises(ApiException) as ei:
        co.create_namespaced_custom_object(G, V1A1, NS, "trainedmodels", tm)
    assert ei.value.status == 422 and "spec.model.memory: Required value" in body(ei.value)["message"]
    # a memory that is not a quantity (pattern of an int-or-string)
    tm["spec"]["model"]["memory"] = "lots"
    with pytest.raises(ApiException) as ei:
        co.create_namespaced_custom_object(G, V1A1, NS, "trainedmodels", tm)
    assert ei.value.status == 422 and "spec.model.memory" in body(ei.value)["message"]
    # unknown field: pruned with a Warning header by default (the apiserver's fieldValidation=Warn for a
    # structural schema); 400 with fieldValidation=Strict
    unk = isvc("unknown")
    unk["spec"]["predictor"]["model"]["storageURI"] = "gs://typo"
    resp = co.create_namespaced_custom_object(G, V1B1, NS, "inferenceservices", unk, _preload_content=False)
    assert resp.status == 201
    assert 'unknown field \\"spec.predictor.model.storageURI\\"' in resp.headers.get("Warning", "")
    stored = co.get_namespaced_custom_object(G, V1B1, NS, "inferenceservices", "unknown")
    assert "storageURI" not in stored["spec"]["predictor"]["model"]
    unk["metadata"]["name"] = "unknown-strict"
    with pytest.raises(ApiException) as ei:
        co.create_namespaced_custom_object(G, V1B1, NS, "inferenceservices", unk, field_validation="Strict")
    assert ei.value.status == 400 and "strict decoding error" in body(ei.value)["message"]
    # invalid metadata.name (422) and a name KServe's webhook refuses (403)
    with pytest.raises(ApiException) as ei:
        co.create_namespaced_custom_object(G, V1B1, NS, "inferenceservices", isvc("Bad_Name"))
    assert ei.value.status == 422 and "metadata.name" in body(ei.value)["message"]
    with pytest.raises(ApiException) as ei:
        co.create_namespaced_custom_object(G, V1B1, NS, "inferenceservices", isvc("1abc"))
    assert ei.value.status == 403 and "admission webhook" in body(ei.value)["message"]
    # a namespace that does not exist
    with pytest.raises(ApiException) as ei:
        co.create_namespaced_custom_object(G, V1B1, "ghost", "inferenceservices", isvc("x", ) | {"metadata": {"name": "x"}})
    assert ei.value.status == 404 and 'namespaces "ghost" not found' in body(ei.value)["message"]


def test_watch_stream_added_modified_deleted_and_resume(k8s_cluster, api):
    co = client.CustomObjectsApi(api)
    events = []
    started = threading.Event()

    def run():
        w = watch.Watch()
        started.set()
        for ev in w.stream(co.list_namespaced_custom_object, G, V1B1, NS, "inferenceservices",
                           label_selector="app=w", timeout_seconds=3):
            obj = ev["raw_object"]
            events.append((ev["type"], obj["metadata"]["name"], ready(obj), int(obj["metadata"]["resourceVersion"])))
            if ev["type"] == "DELETED":
                w.stop()
    t = threading.Thread(target=run)
    t.start()
    started.wait()
    time.sleep(0.2)
    co.create_namespaced_custom_object(G, V1B1, NS, "inferenceservices", isvc("other"))     # not selected
    co.create_namespaced_custom_object(G, V1B1, NS, "inferenceservices", isvc("w1", {"app": "w"}))
    wait_for(lambda: any(e[2] for e in events), what="MODIFIED to Ready")
    co.delete_namespaced_custom_object(G, V1B1, NS, "inferenceservices", "w1")
    t.join(10)
    types = [e[0] for e in events]
    assert types[0] == "ADDED" and "MODIFIED" in types and types[-1] == "DELETED"
    assert {e[1] for e in events} == {"w1"}
    rvs = [e[3] for e in events]
    assert rvs == sorted(rvs)
    # resume from a resourceVersion: only later events, no initial ADDED replay
    mid = rvs[1]
    later = [ev["type"] for ev in watch.Watch().stream(
        co.list_namespaced_custom_object, G, V1B1, NS, "inferenceservices", label_selector="app=w",
        resource_version=str(mid), timeout_seconds=1)]
    assert later and later[-1] == "DELETED" and len(later) == len([r for r in rvs if r > mid])


def test_controller_ready_status_validates_and_pod_like_knative(k8s_cluster, api):
    co = client.CustomObjectsApi(api)
    co.create_namespaced_custom_object(G, V1B1, NS, "inferenceservices", isvc("m1", {"run": "x"}))
    obj = wait_for(lambda: (lambda o: o if ready(o) else None)(
        co.get_namespaced_custom_object(G, V1B1, NS, "inferenceservices", "m1")), what="Ready")
    assert obj["status"]["url"] == "http://m1.default.example.com"
    if shared_crds():      # the status the double writes fits the real schema (extra check, when present)
        assert mk.validate_manifest(obj, shared_crds()) == []
    pods = client.CoreV1Api(api).list_namespaced_pod(NS, label_selector="serving.kserve.io/inferenceservice=m1").items
    assert len(pods) == 1 and pods[0].status.phase == "Running"
    cs = {c.name: c.resources.requests for c in pods[0].spec.containers}
    assert cs == {"kserve-container": {"cpu": "100m", "memory": "100Mi"},
                  "queue-proxy": {"cpu": "1", "memory": "500Mi"}}
    assert pods[0].metadata.labels["run"] == "x"     # predictor.labels reach the pod


def test_capacity_failed_scheduling_then_room(make_k8s_cluster):
    c = make_k8s_cluster(capacity=Capacity(nodes=1, cpu="2", memory="8Gi", pods=110))
    api = c.api_client()
    co, core = client.CustomObjectsApi(api), client.CoreV1Api(api)
    co.create_namespaced_custom_object(G, V1B1, NS, "inferenceservices", isvc("a1"))
    co.create_namespaced_custom_object(G, V1B1, NS, "inferenceservices", isvc("a2"))   # 2 x 1.1 CPU > 2
    wait_for(lambda: ready(co.get_namespaced_custom_object(G, V1B1, NS, "inferenceservices", "a1")))
    a2 = wait_for(lambda: (lambda o: o if (o.get("status") or {}).get("conditions") and
                           any(x.get("reason") == "RevisionFailed" for x in o["status"]["conditions"]) else None)(
        co.get_namespaced_custom_object(G, V1B1, NS, "inferenceservices", "a2")), what="RevisionFailed")
    msg = next(x["message"] for x in a2["status"]["conditions"] if x["type"] == "Ready")
    assert "0/1 nodes are available: 1 Insufficient cpu" in msg
    pod = core.list_namespaced_pod(NS, label_selector="serving.kserve.io/inferenceservice=a2").items[0]
    assert pod.status.phase == "Pending" and pod.spec.node_name is None
    evs = core.list_namespaced_event(NS, field_selector=f"involvedObject.name={pod.metadata.name},type=Warning").items
    assert [e.reason for e in evs] == ["FailedScheduling"] and "Insufficient cpu" in evs[0].message
    # room again: a2 is scheduled and becomes Ready
    co.delete_namespaced_custom_object(G, V1B1, NS, "inferenceservices", "a1")
    wait_for(lambda: ready(co.get_namespaced_custom_object(G, V1B1, NS, "inferenceservices", "a2")), what="a2 Ready")
    api.close()


def test_pods_per_node_limit(make_k8s_cluster):
    c = make_k8s_cluster(capacity=Capacity(nodes=2, cpu="100", memory="100Gi", pods=1))
    api = c.api_client()
    co = client.CustomObjectsApi(api)
    for n in ("p1", "p2", "p3"):
        co.create_namespaced_custom_object(G, V1B1, NS, "inferenceservices", isvc(n))
    p3 = wait_for(lambda: (lambda o: o if any(x.get("reason") == "RevisionFailed"
                                              for x in (o.get("status") or {}).get("conditions", [])) else None)(
        co.get_namespaced_custom_object(G, V1B1, NS, "inferenceservices", "p3")))
    assert "2 Too many pods" in json.dumps(p3["status"])
    api.close()


def test_trainedmodel_memory_admission(k8s_cluster, api):
    co = client.CustomObjectsApi(api)
    host = isvc("host", storage_uri=None, cpu="1", memory="2Mi")
    co.create_namespaced_custom_object(G, V1B1, NS, "inferenceservices", host)
    for i in range(3):
        co.create_namespaced_custom_object(G, V1A1, NS, "trainedmodels", mk.trained_model_manifest(
            f"t{i}", NS, labels={}, inference_service="host", framework="triton", storage_uri="gs://b/m", memory="1Mi"))

    def tm(n):
        return co.get_namespaced_custom_object(G, V1A1, NS, "trainedmodels", n)
    wait_for(lambda: ready(tm("t0")) and ready(tm("t1")), what="t0, t1 Ready")
    t2 = wait_for(lambda: (lambda o: o if (o.get("status") or {}).get("conditions") else None)(tm("t2")))
    conds = {x["type"]: x for x in t2["status"]["conditions"]}
    assert conds["MemoryResourceAvailable"]["status"] == "False"
    assert conds["MemoryResourceAvailable"]["reason"] == "MemoryResourceNotAvailable"
    assert conds["Ready"]["status"] == "False"
    assert tm("t0")["status"]["url"] == "http://host.default.example.com/v2/models/t0/infer"
    if shared_crds():
        assert mk.validate_manifest(tm("t0"), shared_crds()) == []
    # the host pod carries KServe's agent sidecar
    pods = client.CoreV1Api(api).list_namespaced_pod(NS, label_selector="serving.kserve.io/inferenceservice=host").items
    assert [c.name for c in pods[0].spec.containers] == ["kserve-container", "queue-proxy", "agent"]
    # deleting the host first takes its pod with it, and strands its TrainedModels: KServe marks them deleted
    # ("Parent InferenceService does not exists") but never removes their finalizer (issue #22 item 5)
    co.delete_namespaced_custom_object(G, V1B1, NS, "inferenceservices", "host")
    wait_for(lambda: not k8s_cluster.double.objects("pods") and not k8s_cluster.double.objects("inferenceservices"))
    time.sleep(0.5)
    left = k8s_cluster.double.objects("trainedmodels")
    assert sorted(o["metadata"]["name"] for o in left) == ["t0", "t1", "t2"]
    assert all(o["metadata"].get("deletionTimestamp") and o["metadata"]["finalizers"] == ["trainedmodel.finalizer"]
               for o in left if o["metadata"]["name"] != "t2")


def test_pod_metrics_and_switch_off(k8s_cluster, api):
    co = client.CustomObjectsApi(api)
    co.create_namespaced_custom_object(G, V1B1, NS, "inferenceservices", isvc("mx", {"k": "v"}))
    wait_for(lambda: ready(co.get_namespaced_custom_object(G, V1B1, NS, "inferenceservices", "mx")))
    pm = co.list_namespaced_custom_object("metrics.k8s.io", "v1beta1", NS, "pods", label_selector="k=v")
    assert len(pm["items"]) == 1
    usage = {c["name"]: c["usage"] for c in pm["items"][0]["containers"]}
    assert set(usage) == {"kserve-container", "queue-proxy"}
    assert 0 < mk.parse_quantity(usage["kserve-container"]["cpu"]) < 0.1
    assert 10 << 20 < mk.parse_quantity(usage["kserve-container"]["memory"]) < 200 << 20
    k8s_cluster.double.metrics_enabled = False
    with pytest.raises(ApiException) as ei:
        co.list_namespaced_custom_object("metrics.k8s.io", "v1beta1", NS, "pods")
    assert ei.value.status == 404
    assert "metrics.k8s.io" not in {g.name for g in client.ApisApi(api).get_api_versions().groups}


def test_fault_injection_and_dropped_watch(k8s_cluster, api):
    d = k8s_cluster.double
    co = client.CustomObjectsApi(api)
    d.fail_next("create", "inferenceservices", 500, times=1, message="etcd is sad")
    with pytest.raises(ApiException) as ei:
        co.create_namespaced_custom_object(G, V1B1, NS, "inferenceservices", isvc("f1"))
    assert ei.value.status == 500 and body(ei.value)["message"] == "etcd is sad"
    co.create_namespaced_custom_object(G, V1B1, NS, "inferenceservices", isvc("f1"))   # next one passes
    d.fail_next("get", "inferenceservices", 403, name="f1")
    with pytest.raises(ApiException) as ei:
        co.get_namespaced_custom_object(G, V1B1, NS, "inferenceservices", "f1")
    assert ei.value.status == 403
    d.fail_next("create", "*", 422, message="spec: Invalid value")
    with pytest.raises(ApiException) as ei:
        co.create_namespaced_custom_object(G, V1B1, NS, "inferenceservices", isvc("f2"))
    assert ei.value.status == 422 and body(ei.value)["details"]["causes"]
    d.fail_next("create", "*", 409)
    with pytest.raises(ApiException) as ei:
        co.create_namespaced_custom_object(G, V1B1, NS, "inferenceservices", isvc("f3"))
    assert ei.value.status == 409 and body(ei.value)["reason"] == "AlreadyExists"
    # a dropped watch: the stream ends without its terminating chunk after 1 event
    d.drop_watches(after_events=1)
    got = []
    with pytest.raises(Exception) as ei:
        for ev in watch.Watch().stream(co.list_namespaced_custom_object, G, V1B1, NS, "inferenceservices",
                                       timeout_seconds=5):
            got.append(ev["type"])
    assert got == ["ADDED"]
    assert "ProtocolError" in type(ei.value).__name__ or "ended" in str(ei.value).lower() or \
        "incomplete" in str(ei.value).lower() or "connection" in str(ei.value).lower()


def test_forbidden_namespace_and_auth(make_k8s_cluster, tmp_path):
    c = make_k8s_cluster(namespaces=("default", "locked"), forbidden_namespaces=("locked",))
    api = c.api_client()
    with pytest.raises(ApiException) as ei:
        client.CustomObjectsApi(api).list_namespaced_custom_object(G, V1B1, "locked", "inferenceservices")
    b = body(ei.value)
    assert ei.value.status == 403 and b["reason"] == "Forbidden"
    assert 'cannot list resource "inferenceservices"' in b["message"] and '"locked"' in b["message"]
    api.close()
    r = requests.get(f"{c.api_url}/api/v1/namespaces", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401


def test_without_kserve(make_k8s_cluster):
    c = make_k8s_cluster(kserve=False)
    api = c.api_client()
    with pytest.raises(ApiException) as ei:
        client.CustomObjectsApi(api).get_api_resources(G, V1B1)
    assert ei.value.status == 404
    assert client.ApiextensionsV1Api(api).list_custom_resource_definition().items == []
    assert G not in {g.name for g in client.ApisApi(api).get_api_versions().groups}
    api.close()


def test_ingress_v2_by_host_and_throughput(k8s_cluster, api):
    import numpy as np

    from mmslib import v2
    from mmslib.workloads import get_workload
    co = client.CustomObjectsApi(api)
    co.create_namespaced_custom_object(G, V1B1, NS, "inferenceservices", isvc("ing1", storage_uri="gs://kfserving-examples/models/triton"))
    wait_for(lambda: ready(co.get_namespaced_custom_object(G, V1B1, NS, "inferenceservices", "ing1")))
    base = f"http://{k8s_cluster.ingress_host}:{k8s_cluster.ingress_port}"
    h = {"Host": "ing1.default.example.com"}
    # Triton serves the model directories of its repository (the storageUri), not the ISVC's name
    s = requests.Session()
    assert s.get(f"{base}/v2/models/ing1/ready", headers=h).status_code == 404
    assert s.get(f"{base}/v2/models/simple_string/ready", headers=h).status_code == 200
    meta = s.get(f"{base}/v2/models/simple_string", headers=h).json()
    assert [t["name"] for t in meta["inputs"]] == ["INPUT0", "INPUT1"]
    w = get_workload("simple_string")
    smp = w.make_sample(np.random.default_rng(1))
    r = s.post(f"{base}/v2/models/simple_string/infer", json=v2.request_body(smp.inputs), headers=h)
    assert r.status_code == 200 and w.check(v2.decode_outputs(r.json()), smp.expected)
    assert s.get(f"{base}/v2/models/other/ready", headers=h).status_code == 404
    assert s.get(f"{base}/v2/models/simple_string/ready", headers={"Host": "nope.default.example.com"}).status_code == 404
    # a few hundred requests per second, keep-alive, 4 client threads
    payload = json.dumps(v2.request_body(smp.inputs))
    n, errors = 400, []

    def worker(k):
        ss = requests.Session()
        for _ in range(k):
            rr = ss.post(f"{base}/v2/models/simple_string/infer", data=payload,
                         headers={**h, "Content-Type": "application/json"})
            if rr.status_code != 200:
                errors.append(rr.status_code)
    t0 = time.perf_counter()
    ts = [threading.Thread(target=worker, args=(n // 4,)) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    rate = n / (time.perf_counter() - t0)
    print(f"ingress: {rate:.0f} requests/s (client in the same process)")
    assert not errors and rate > 50      # ~700/s on an idle 2-core machine


def test_the_agent_adds_replaces_and_removes_as_kserves_watcher_does(k8s_cluster, api):
    """pkg/agent/watcher.go Watcher.parseConfig: a new name in models.json is loaded, a name whose spec
    changed is removed and loaded again, a name gone from models.json is unloaded; loads take the
    sync + load delay (Puller.modelProcessor), and a failed load changes nothing in the API."""
    d = k8s_cluster.double
    d.config.agent_load_delay_s = 1.5
    co = client.CustomObjectsApi(api)
    co.create_namespaced_custom_object(G, V1B1, NS, "inferenceservices", isvc("ah", storage_uri=None, cpu="1",
                                                                              memory="1Gi"))

    k8s_cluster.upload_models(["a1", "a2", "a3"], bucket="gs://b")          # gs://b/<name>/<name>
    k8s_cluster.upload_models(["a2"], bucket="gs://b/v2")

    def tm(name, uri=None):
        return mk.trained_model_manifest(name, NS, labels={}, inference_service="ah", framework="triton",
                                         storage_uri=uri or f"gs://b/{name}/{name}", memory="1Mi")
    loaded = lambda: d.controller.loaded_models(NS, "ah")  # noqa: E731
    co.create_namespaced_custom_object(G, V1A1, NS, "trainedmodels", tm("a1"))
    co.create_namespaced_custom_object(G, V1A1, NS, "trainedmodels", tm("a2"))
    wait_for(lambda: loaded() == {"a1", "a2"}, what="a1, a2 loaded")
    # a changed spec: remove + add, so a2 is not loaded for the load delay, then loaded again
    cur = co.get_namespaced_custom_object(G, V1A1, NS, "trainedmodels", "a2")
    cur["spec"]["model"]["storageUri"] = "gs://b/v2/a2/a2"
    co.replace_namespaced_custom_object(G, V1A1, NS, "trainedmodels", "a2", cur)
    wait_for(lambda: loaded() == {"a1"}, what="a2 reloading")
    wait_for(lambda: loaded() == {"a1", "a2"}, what="a2 loaded again")
    # a name gone from models.json is unloaded
    co.delete_namespaced_custom_object(G, V1A1, NS, "trainedmodels", "a1")
    wait_for(lambda: loaded() == {"a2"}, what="a1 unloaded")
    # a load that fails is only logged: the TrainedModel is Ready, the model never loads
    d.config.agent_fail_models = {"a3"}
    co.create_namespaced_custom_object(G, V1A1, NS, "trainedmodels", tm("a3"))
    wait_for(lambda: ready(co.get_namespaced_custom_object(G, V1A1, NS, "trainedmodels", "a3")), what="a3 Ready")
    wait_for(lambda: (NS, "ah", "a3") in d.controller.agent_failures, what="a3 failed")
    assert "a3" not in loaded()
