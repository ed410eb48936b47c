"""KServeBackend against the Kubernetes API double (the real kubernetes client over HTTP)."""
from __future__ import annotations

import functools
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import requests
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from k8s_double import Capacity, Config  # noqa: E402
from k8s_fixtures import k8s_cluster, kserve_crds, make_k8s_cluster, shared_crds  # noqa: E402,F401
from k8s_fixtures import server_spec as spec  # noqa: E402
from k8s_fixtures import TEST_STORAGE_URI  # noqa: E402

from mmslib import k8s as mk  # noqa: E402
from mmslib import v2  # noqa: E402
from mmslib.backends.base import Usage, model_names  # noqa: E402
from mmslib.backends.kserve import KServeBackend  # noqa: E402
from mmslib.errors import DeployError, MmsError, ParamError  # noqa: E402
from mmslib.workloads import get_workload  # noqa: E402

pytest.importorskip("kubernetes")
from kubernetes import client  # noqa: E402

W = get_workload("simple_string")
ROOT = Path(__file__).resolve().parent.parent
FAST = dict(deploy_timeout_s=20, retry_backoff_s=0.01, cleanup_timeout_s=20)


def backend(cluster, run_id="run-1", **kw) -> KServeBackend:
    return cluster.backend(W, run_id, **{**FAST, **kw})


def labelled(cluster, run_id):
    d = cluster.double
    sel = f"{mk.LABEL_RUN}={run_id}"
    return d.objects("inferenceservices", label_selector=sel) + d.objects("trainedmodels", label_selector=sel)


def infer_ok(ep, seed=0) -> bool:
    smp = W.make_sample(np.random.default_rng(seed))
    s = requests.Session()
    s.headers.update(ep.headers)
    out = v2.V2Client(ep.rest_url, timeout=10, session=s).infer(ep.served_name or ep.model, smp.inputs)
    return W.check(out, smp.expected)


def posts(cluster, plural):
    return [p for m, p in cluster.double.requests if m == "POST" and f"/{plural}" in p]


def test_traditional_three_models_usage_endpoints_close(k8s_cluster):
    c = k8s_cluster
    b = backend(c)
    evs = list(b.deploy_traditional(["m00000", "m00001", "m00002"]))
    assert [e.ok for e in evs] == [True] * 3, [e.error for e in evs]
    assert sorted(e.model for e in evs) == ["m00000", "m00001", "m00002"]
    assert all(0 < e.seconds < 10 and e.server == e.model and e.kind == "model" for e in evs)
    # one ISVC per model, as the seed: Triton, minReplicas 1, containerConcurrency 1, labels
    isvcs = {o["metadata"]["name"]: o for o in c.double.objects("inferenceservices")}
    pred = isvcs["m00000"]["spec"]["predictor"]
    assert pred["minReplicas"] == 1 and pred["containerConcurrency"] == 1
    assert pred["model"]["modelFormat"] == {"name": "triton"} and pred["model"]["runtime"] == "kserve-tritonserver"
    assert pred["model"]["resources"]["requests"] == {"cpu": "100m", "memory": "100Mi"}
    assert isvcs["m00000"]["metadata"]["labels"][mk.LABEL_RUN] == "run-1"
    assert isvcs["m00000"]["metadata"]["labels"][mk.LABEL_MODE] == "traditional"
    u = b.usage()
    # reserved = the pods' container requests: 3 x (100m + 1 CPU, 100Mi + 500Mi)
    assert isinstance(u, Usage) and u.servers == 3 and u.pending == 0 and u.reserved_cpu == pytest.approx(3.3)
    assert u.reserved_memory_mib == pytest.approx(1800.0)
    x = u.extra
    assert x["reserved_sidecar_cpu"] == pytest.approx(3.0) and x["reserved_sidecar_memory_mib"] == pytest.approx(1500)
    assert x["isvcs"] == 3 and x["models"] == 3
    assert x["metrics_available"] is True and x["metrics_pods"] == 3
    # measured: PodMetrics working set -> memory_mib (what the stress memory-budget stop reads)
    assert 0 < u.cpu_cores < 1 and 3 * 40 < u.memory_mib < 3 * 200
    assert u.as_row("u_")["u_memory_mib"] == u.memory_mib
    eps = b.endpoints()
    assert [(e.model, e.headers["Host"]) for e in eps] == [(f"m0000{i}", f"m0000{i}.default.example.com")
                                                          for i in range(3)]
    assert all(e.rest_url == f"http://127.0.0.1:{c.ingress_port}" and e.grpc_addr == "" for e in eps)
    assert all(infer_ok(e, i) for i, e in enumerate(eps))
    vr = b.verify(sample=10)
    assert vr.ok and (vr.expected, vr.listed, vr.sampled, vr.correct) == (3, 3, 3, 3)
    assert b.servers() == ["m00000", "m00001", "m00002"]
    b.close()
    assert labelled(c, "run-1") == [] and c.double.objects("pods") == []
    assert b.cleanup_result["inferenceservices"] == 3 and b.cleanup_result["remaining"] == 0
    b.close()   # idempotent


def test_mms_two_hosts_five_trainedmodels(k8s_cluster):
    c = k8s_cluster
    b = backend(c, mms_spec=spec("2", "1Gi"))
    hosts = b.start_hosts(2)
    assert [(h.server, h.ok, h.kind) for h in hosts] == [("mms-host-0", True, "host"), ("mms-host-1", True, "host")]
    host_isvc = c.double.objects("inferenceservices")[0]
    assert "storageUri" not in host_isvc["spec"]["predictor"]["model"]
    assert host_isvc["spec"]["predictor"]["model"]["resources"]["limits"]["memory"] == "1Gi"
    evs = list(b.deploy_mms([f"m{i:05d}" for i in range(5)]))
    assert all(e.ok for e in evs), [e.error for e in evs]
    assert sorted(e.server for e in evs) == ["mms-host-0"] * 3 + ["mms-host-1"] * 2   # least declared memory
    tms = c.double.objects("trainedmodels")
    assert len(tms) == 5 and tms[0]["spec"]["model"] == {
        "framework": "triton", "memory": "1Mi", "storageUri": "gs://mmslib-test/simple_string/m00000/m00000"}
    assert tms[0]["spec"]["inferenceService"] == "mms-host-0"
    eps = b.endpoints()
    assert len(eps) == 5
    assert {e.headers["Host"] for e in eps} == {"mms-host-0.default.example.com", "mms-host-1.default.example.com"}
    assert all(infer_ok(e) for e in eps)
    u = b.usage()
    # 2 host pods: predictor 2 CPU / 1Gi + queue-proxy 1 / 500Mi + KServe's agent 100m / 100Mi
    assert u.servers == 2 and u.reserved_cpu == pytest.approx(2 * 3.1)
    assert u.reserved_memory_mib == pytest.approx(2 * (1024 + 500 + 100))
    assert u.extra["models"] == 5 and u.extra["isvcs"] == 2
    assert b.verify().ok
    n_req = len(c.double.requests)
    b.close()
    deletes = [p for m, p in c.double.requests[n_req:] if m == "DELETE"]
    assert "trainedmodels" in deletes[0] and "inferenceservices" in deletes[-1]     # TrainedModels first
    assert labelled(c, "run-1") == [] and c.double.objects("pods") == []


def test_admission_refusal_when_host_memory_is_full(k8s_cluster):
    b = backend(k8s_cluster, mms_spec=spec("1", "2Mi"), model_memory="1Mi")
    b.start_hosts(1)
    evs = []
    for ev in b.deploy_mms(["m00000", "m00001", "m00002", "m00003"]):
        evs.append(ev)
        if not ev.ok:
            break                      # as the stress runner: stop at the first failure
    assert [e.ok for e in evs] == [True, True, False]
    err = evs[-1].error
    assert err.startswith("admission:") and "MemoryResourceNotAvailable" in err
    assert evs[-1].model in err and {e.model for e in evs} < {"m00000", "m00001", "m00002", "m00003"}
    b.close()
    assert labelled(k8s_cluster, "run-1") == []


def test_capacity_stop_failed_scheduling(make_k8s_cluster):
    # 2 nodes x 3.5 CPU: three 1.1-CPU pods per node; the 7th InferenceService cannot be scheduled
    c = make_k8s_cluster(capacity=Capacity(nodes=2, cpu="3500m", memory="64Gi", pods=110))
    b = backend(c, deploy_concurrency=1)
    evs = []
    for ev in b.deploy_traditional(model_names(10)):
        evs.append(ev)
        if not ev.ok:
            break
    assert [e.ok for e in evs] == [True] * 6 + [False]
    err = evs[-1].error
    assert evs[-1].model == "m00006" and err.startswith("failed:")
    assert "FailedScheduling" in err and "0/2 nodes are available: 2 Insufficient cpu" in err
    assert "Pending" in err
    b.close()
    assert c.double.objects("pods") == []


def test_unschedulable_without_condition_is_found_from_the_pod(make_k8s_cluster):
    """No terminal condition on the InferenceService (Knative saying only RevisionMissing): the pod's
    PodScheduled=False/Unschedulable stops it long before deploy_timeout_s."""
    c = make_k8s_cluster(capacity=Capacity(nodes=1, cpu="1"), config=Config(report_unschedulable=False))
    b = backend(c, deploy_timeout_s=30.0)
    t0 = time.monotonic()
    (ev,) = list(b.deploy_traditional(["m00000"]))
    assert not ev.ok and ev.seconds < 10 and time.monotonic() - t0 < 12
    assert ev.error.startswith("failed:") and "PodScheduled=False" in ev.error and "Insufficient cpu" in ev.error
    b.close()


def test_usage_without_metrics_server(make_k8s_cluster):
    c = make_k8s_cluster(metrics=False)
    b = backend(c)
    assert all(e.ok for e in b.deploy_traditional(["m00000"]))
    u = b.usage()
    assert u.extra["metrics_available"] is False and u.cpu_cores is None and u.memory_mib is None
    assert u.reserved_cpu == pytest.approx(1.1) and u.servers == 1
    b.close()


def test_cleanup_of_a_crashed_run_function_and_cli(k8s_cluster, tmp_path):
    c = k8s_cluster
    b = backend(c, run_id="crashed-1", mms_spec=spec("1", "1Gi"))
    assert all(e.ok for e in b.deploy_traditional(["m00000", "m00001"]))
    b.start_hosts(1)
    assert all(e.ok for e in b.deploy_mms(["m00002", "m00003"]))
    for w in b._watchers.values():        # "crash": no close()
        w.stop()
    other = backend(c, run_id="other-run")
    c.upload_models(["keep-me"])
    assert all(e.ok for e in other.deploy_traditional(["keep-me"]))
    assert len(labelled(c, "crashed-1")) == 5
    n_req = len(c.double.requests)
    counts = mk.cleanup("crashed-1", "default", c.kubeconfig, timeout_s=20)
    assert {k: counts[k] for k in ("trainedmodels", "inferenceservices", "remaining")} == {
        "trainedmodels": 2, "inferenceservices": 3, "remaining": 0} and counts["advice"] == ""
    assert labelled(c, "crashed-1") == []
    deletes = [p for m, p in c.double.requests[n_req:] if m == "DELETE"]
    assert "trainedmodels" in deletes[0] and "inferenceservices" in deletes[-1]
    assert [o["metadata"]["name"] for o in labelled(c, "other-run")] == ["keep-me"]   # another run untouched
    # the CLI, in a fresh process, on another crashed run
    b2 = backend(c, run_id="crashed-2")
    assert all(e.ok for e in b2.deploy_traditional(["m00010"]))
    for w in b2._watchers.values():
        w.stop()
    r = subprocess.run([sys.executable, "-m", "mmslib.k8s", "cleanup", "--run-id", "crashed-2", "--namespace",
                        "default", "--kubeconfig", c.kubeconfig, "--timeout", "20"],
                       capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert "deleted 0 trainedmodels, 1 inferenceservices" in r.stdout
    assert labelled(c, "crashed-2") == []
    other.close()


def test_ctrl_c_during_deploy_leaves_nothing(k8s_cluster):
    b = backend(k8s_cluster, deploy_concurrency=3)
    gen = b.deploy_traditional(model_names(6))
    try:
        try:
            for _ in gen:
                raise KeyboardInterrupt
        finally:
            gen.close()
            b.close()
    except KeyboardInterrupt:
        pass
    assert labelled(k8s_cluster, "run-1") == [] and k8s_cluster.double.objects("pods") == []


@functools.lru_cache(maxsize=1)
def _raw_schemas():
    crds = {}
    for f in shared_crds().glob("*.yaml"):
        for d in yaml.load_all(f.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
            for v in d["spec"]["versions"]:
                crds[(f"{d['spec']['group']}/{v['name']}", d["spec"]["names"]["kind"])] = v["schema"]["openAPIV3Schema"]
    return crds


def _raw_schema_errors(obj):
    """Independent check: jsonschema straight on the CRD's openAPIV3Schema (x-kubernetes-* ignored)."""
    import jsonschema
    schema = _raw_schemas()[(obj["apiVersion"], obj["kind"])]
    return [e.message for e in jsonschema.Draft4Validator(schema).iter_errors(obj)]


def test_dry_run_writes_valid_manifests_and_calls_nothing(k8s_cluster, tmp_path):
    c = k8s_cluster
    n0 = c.double.request_count
    out = tmp_path / "manifests"
    b = backend(c, dry_run=True, dry_run_dir=out)
    evs = list(b.deploy_traditional(["m00000", "m00001", "m00002"]))
    hosts = b.start_hosts(2)
    evs += list(b.deploy_mms(["m00010", "m00011", "m00012"]))
    assert all(e.ok and e.seconds == 0 and e.error == "dry-run" for e in evs + hosts)
    mm = backend(c, dry_run=True, dry_run_dir=tmp_path / "mm", mms_engine="modelmesh", runtime="triton-mm")
    mm.start_hosts(1)
    assert all(e.ok for e in mm.deploy_mms(["m00020"]))
    u = b.usage()
    assert u.extra["dry_run"] and u.servers == 5 and u.reserved_cpu == pytest.approx(3 * 1.1 + 2 * 11)
    b.close()
    mm.close()
    assert c.double.request_count == n0, c.double.requests[n0:]     # no API call at all
    files = sorted(out.glob("*.yaml"))
    assert [f.name for f in files] == sorted(
        [f"inferenceservice-m0000{i}.yaml" for i in range(3)] + [f"inferenceservice-mms-host-{i}.yaml" for i in range(2)]
        + [f"trainedmodel-m0001{i}.yaml" for i in range(3)])
    objs = [yaml.safe_load(f.read_text()) for f in files] + [yaml.safe_load(f.read_text())
                                                             for f in (tmp_path / "mm").glob("*.yaml")]
    assert len(objs) == 9
    crds = shared_crds()      # KServe's CRD files: an extra check, only when present
    for o in objs:
        if crds is not None:
            assert mk.validate_manifest(o, crds) == [], o["metadata"]["name"]
            assert _raw_schema_errors(o) == [], o["metadata"]["name"]
        assert o["metadata"]["labels"][mk.LABEL_RUN] == "run-1"
    mmo = [o for o in objs if o["metadata"]["name"] == "m00020"][0]
    assert mmo["metadata"]["annotations"][mk.ANN_DEPLOYMENT_MODE] == "ModelMesh"
    # and the API server (the double: schemas from the kserve SDK's models, Strict fields) accepts them
    api = c.api_client()
    co = client.CustomObjectsApi(api)
    for o in objs:
        g, v = o["apiVersion"].split("/")
        plural = "inferenceservices" if o["kind"] == "InferenceService" else "trainedmodels"
        co.create_namespaced_custom_object(g, v, "default", plural, o, field_validation="Strict")
    api.close()


def test_dry_run_catches_an_invalid_manifest(tmp_path, kserve_crds):
    b = KServeBackend(W, run_id="r", dry_run=True, dry_run_dir=tmp_path,
                      storage_uri_prefix="gs://b/{model}/{model}")
    assert [e.ok for e in b.deploy_traditional(["m00000"])] == [True]
    # risk 4, Triton: a traditional ISVC's storageUri is the repository root holding the model directory
    assert yaml.safe_load((tmp_path / "inferenceservice-m00000.yaml").read_text())["spec"]["predictor"]["model"][
        "storageUri"] == "gs://b/m00000"
    b._trad = (1, "100Mi", None, None)      # an int where the CRD wants int-or-string is fine ...
    assert all(e.ok for e in b.deploy_traditional(["m00001"]))
    b.model_format = 3                      # ... a number where it wants a string is not
    with pytest.raises(DeployError, match="modelFormat.name"):
        list(b.deploy_traditional(["m00002"]))


def test_bad_input_is_refused_before_anything_is_created(make_k8s_cluster, tmp_path):
    # unreachable API server
    gone = make_k8s_cluster()
    kc = gone.kubeconfig
    gone.double.stop()
    t0 = time.monotonic()
    with pytest.raises(ParamError, match="cannot reach the Kubernetes API server"):
        KServeBackend(W, run_id="r", kubeconfig=kc, retry_backoff_s=0.01, storage_uri_prefix=TEST_STORAGE_URI)
    assert time.monotonic() - t0 < 15
    with pytest.raises(ParamError, match="kubeconfig"):
        KServeBackend(W, run_id="r", kubeconfig=tmp_path / "missing", storage_uri_prefix=TEST_STORAGE_URI)
    # KServe not installed
    bare = make_k8s_cluster(kserve=False)
    with pytest.raises(MmsError, match="KServe is not installed"):
        backend(bare)
    assert posts(bare, "") == []
    # forbidden namespace, and one that does not exist
    c = make_k8s_cluster(namespaces=("default", "locked"), forbidden_namespaces=("locked",))
    with pytest.raises(ParamError, match=r"RBAC forbids it \(403.*Role and RoleBinding") as ei:
        backend(c, namespace="locked")
    assert ei.value.name == "namespace"
    with pytest.raises(ParamError, match="existing namespace"):
        backend(c, namespace="ghost")
    # names
    for bad_ns in ("Bad_NS", "x" * 64):
        with pytest.raises(ParamError):
            backend(c, namespace=bad_ns)
    with pytest.raises(ParamError, match="run_id"):
        backend(c, run_id="bad run id")
    with pytest.raises(ParamError, match="mms_engine"):
        backend(c, mms_engine="nope")
    with pytest.raises(ParamError, match="traditional_spec|predictor.cpu"):  # specs validate when built
        backend(c, traditional_spec=spec("lots", "100Mi"))
    with pytest.raises(ParamError, match="model_memory"):
        backend(c, model_memory="much")
    b = backend(c)
    for names in (["m00000", "Bad_Name"], ["1abc"], ["a" * 48], ["m1", "m1"]):
        with pytest.raises(ParamError) as ei:
            list(b.deploy_traditional(names))
        assert ei.value.name == "models"
    with pytest.raises(DeployError, match="start_hosts"):
        list(b.deploy_mms(["m00000"]))
    assert posts(c, "inferenceservices") == [] and posts(c, "trainedmodels") == []
    b.close()


def test_api_errors_409_403_422_500_are_retried_or_reported(k8s_cluster):
    c = k8s_cluster
    d = c.double
    # 409 for an object that is not this run's: fail clearly
    api = c.api_client()
    co = client.CustomObjectsApi(api)
    foreign = mk.isvc_manifest("m00000", "default", labels={"team": "x"}, model_format="triton",
                               storage_uri="gs://b/m")
    co.create_namespaced_custom_object("serving.kserve.io", "v1beta1", "default", "inferenceservices", foreign)
    b = backend(c, api_retries=2)
    (ev,) = list(b.deploy_traditional(["m00000"]))
    assert not ev.ok and "already exists (HTTP 409)" in ev.error and "not created by mmslib" in ev.error
    # 409 for this run's own object (a create retried after a lost answer): adopted
    mine = b._isvc("m00001", "traditional", "model", b._trad, b._trad_uri("m00001"))
    co.create_namespaced_custom_object("serving.kserve.io", "v1beta1", "default", "inferenceservices", mine)
    evs = list(b.deploy_traditional(["m00001"]))
    assert [e.ok for e in evs] == [True], [e.error for e in evs]
    # 403 (quota, webhook) and 422 (invalid) from the API: reported with the server's message
    d.fail_next("create", "inferenceservices", 403, message='exceeded quota: compute, requested: cpu=1100m')
    (ev,) = list(b.deploy_traditional(["m00002"]))
    assert not ev.ok and ev.error.startswith("quota:") and "exceeded quota" in ev.error   # not the memory limit
    d.fail_next("create", "inferenceservices", 422, message="spec.predictor: Invalid value: bad")
    (ev,) = list(b.deploy_traditional(["m00003"]))
    assert not ev.ok and "rejected" in ev.error and "HTTP 422" in ev.error and "Invalid value: bad" in ev.error
    # 500 twice: retried, then created
    d.fail_next("create", "inferenceservices", 500, times=2)
    (ev,) = list(b.deploy_traditional(["m00004"]))
    assert ev.ok and len([p for p in posts(c, "inferenceservices")]) >= 3
    # 500 for good: reported after the retries
    d.fail_next("create", "inferenceservices", 500, times=10, message="etcdserver: request timed out")
    (ev,) = list(b.deploy_traditional(["m00005"]))
    assert not ev.ok and "HTTP 500" in ev.error and "gave up after 3 attempts" in ev.error
    assert "etcdserver: request timed out" in ev.error
    d.clear_faults()
    b.close()
    api.close()


def test_dropped_and_failing_watches_are_resumed(k8s_cluster):
    c = k8s_cluster
    b = backend(c)
    c.double.drop_watches(after_events=1, times=3, resource="inferenceservices")
    c.double.fail_next("watch", "inferenceservices", 500, times=2)
    evs = list(b.deploy_traditional(model_names(4)))
    assert all(e.ok for e in evs), [e.error for e in evs]
    assert b._watchers["inferenceservices"].restarts >= 2
    b.close()


def test_a_watch_that_keeps_failing_is_reported(k8s_cluster):
    c = k8s_cluster
    c.double.drop_watches(after_events=0, times=1000, resource="inferenceservices")   # every watch is cut
    b = backend(c, deploy_timeout_s=10)
    t0 = time.monotonic()
    evs = list(b.deploy_traditional(["m00000"]))
    assert not evs[0].ok and "watching InferenceServices failed 6 times in a row" in evs[0].error
    assert "Response ended prematurely" in evs[0].error and time.monotonic() - t0 < 8
    c.double.clear_faults()
    b.close()
    assert labelled(c, "run-1") == []


def test_modelmesh_engine(k8s_cluster):
    c = k8s_cluster
    api = c.api_client()
    co = client.CustomObjectsApi(api)
    c.double.store.update(c.double.types[("", "namespaces")], "", "default",
                          lambda o: o["metadata"].setdefault("labels", {}).__setitem__("modelmesh-enabled", "true"))
    b = backend(c, mms_engine="modelmesh", runtime="triton-mm", options={"modelmesh_count": "registered"})
    with pytest.raises(ParamError, match="runtime"):
        b.start_hosts(1)
    co.create_namespaced_custom_object("serving.kserve.io", "v1alpha1", "default", "servingruntimes", {
        "apiVersion": "serving.kserve.io/v1alpha1", "kind": "ServingRuntime", "metadata": {"name": "triton-mm"},
        "spec": {"multiModel": True, "supportedModelFormats": [{"name": "triton", "autoSelect": True}],
                 "containers": [{"name": "triton", "image": "nvcr.io/nvidia/tritonserver:23.05-py3"}]}})
    (h,) = b.start_hosts(1)
    assert h.ok and h.server == "triton-mm" and h.kind == "host"
    evs = list(b.deploy_mms(["m00000", "m00001", "m00002"]))
    assert all(e.ok for e in evs), [e.error for e in evs]
    isvc = c.double.objects("inferenceservices", label_selector=f"{mk.LABEL_RUN}=run-1")[0]
    assert isvc["metadata"]["annotations"][mk.ANN_DEPLOYMENT_MODE] == "ModelMesh"
    # risk 5: KServe makes no ingress route for ModelMesh: reached through the modelmesh-serving Service
    # (gRPC 8033 with the mm-vmodel-id header; its REST proxy once port-forwarded), never through the ingress
    eps = b.endpoints()
    assert len(eps) == 3 and all(e.grpc_addr == "modelmesh-serving.default:8033" and e.rest_url == ""
                                 and e.headers == {"mm-vmodel-id": e.model} for e in eps)
    r = requests.get(f"http://{c.ingress_host}:{c.ingress_port}/v2/models/m00000/ready",
                     headers={"Host": "modelmesh-serving.default"})
    assert r.status_code == 404          # the route the old backend invented does not exist
    assert "modelmesh-serving Service" in b.verify().failures[0]
    b.modelmesh_rest_url = f"http://127.0.0.1:{c.double.ingress.modelmesh_port}"
    time.sleep(0.5)       # counted as registered (Ready), which ModelMesh says before the load is done
    eps = b.endpoints()
    assert all(infer_ok(e) for e in eps) and b.verify().ok
    u = b.usage()
    assert u.servers == 1 and u.reserved_cpu == pytest.approx(0.86)    # the shared runtime pod
    b.close()
    assert labelled(c, "run-1") == []
    api.close()


def test_make_backend_from_params(k8s_cluster, tmp_path):
    """The stress runner's factory builds this backend from validated params."""
    from mmslib import params
    from mmslib.backends import make_backend
    p = params.stress(backend="kserve", storage_uri=TEST_STORAGE_URI, runtime="kserve", kubeconfig=k8s_cluster.kubeconfig,
                      ingress_port=k8s_cluster.ingress_port, models=3, output_dir=str(tmp_path / "out"),
                      modes=["traditional"], deploy_timeout_s=20)
    b = make_backend(p, W, tmp_path, None, "run-params")
    try:
        assert isinstance(b, KServeBackend) and b.model_memory == "1Mi"
        assert all(e.ok for e in b.deploy_traditional(["m00000"]))
        assert all(infer_ok(e) for e in b.endpoints())
    finally:
        b.close()
    assert labelled(k8s_cluster, "run-params") == []


def test_stress_runner_stops_at_the_clusters_limits(make_k8s_cluster, tmp_path):
    """End to end through mmslib.stress: traditional stops at FailedScheduling, MMS at TrainedModel admission."""
    from mmslib import params, stress
    c = make_k8s_cluster(capacity=Capacity(nodes=1, cpu="4500m", memory="64Gi", pods=110))
    p = params.stress(backend="kserve", storage_uri=TEST_STORAGE_URI, runtime="kserve", kubeconfig=c.kubeconfig, ingress_port=c.ingress_port,
                      models=10, hosts=1, output_dir=str(tmp_path / "out"), mms_predictor_cpu="100m",
                      mms_predictor_memory="6Mi", model_memory="1Mi", deploy_timeout_s=20, deploy_concurrency=2,
                      verify_sample=3)
    r = stress.run(p, progress=False)
    s = r.summary.set_index("mode")
    assert s.loc["traditional", "models_deployed"] == 4           # 4 x 1.1 CPU on a 4.5-CPU node
    assert s.loc["traditional", "stop_reason"] == stress.STOP_FAILURE
    assert "FailedScheduling" in s.loc["traditional", "stop_detail"]
    assert s.loc["mms", "models_deployed"] == 6                   # 6 x 1Mi in a 6Mi host
    assert s.loc["mms", "stop_reason"] == stress.STOP_ADMISSION
    assert bool(s.loc["traditional", "verify_ok"]) and bool(s.loc["mms", "verify_ok"])
    assert s.loc["traditional", "reserved_cpu_k8s"] == pytest.approx(4.4)
    assert c.double.objects("inferenceservices") == [] and c.double.objects("pods") == []


def test_stress_memory_budget_stop_from_podmetrics(k8s_cluster, tmp_path):
    """usage() maps PodMetrics' working set to Usage.memory_mib, so the memory-budget stop fires on a cluster."""
    from mmslib import params, stress
    c = k8s_cluster
    p = params.stress(backend="kserve", storage_uri=TEST_STORAGE_URI, runtime="kserve", kubeconfig=c.kubeconfig, ingress_port=c.ingress_port,
                      models=6, modes=["traditional"], output_dir=str(tmp_path / "out"), memory_budget="150Mi",
                      deploy_timeout_s=20, verify_sample=0, deploy_concurrency=1)
    s = stress.run(p, progress=False).summary.set_index("mode")
    # each predictor pod's working set is 62-70 MiB here (kserve-container + queue-proxy): 2 fit in 150 MiB
    assert s.loc["traditional", "stop_reason"] == stress.STOP_BUDGET, s.loc["traditional", "stop_detail"]
    assert s.loc["traditional", "models_deployed"] == 2, s.loc["traditional", "stop_detail"]


def test_dry_run_server_sends_every_manifest_strictly_and_creates_nothing(k8s_cluster, tmp_path):
    """dry_run: server: each manifest POSTed with dryRun=All and fieldValidation=Strict; the server's
    refusals (schema 422, unknown field 400) stop the run with its message; nothing is created."""
    c = k8s_cluster
    n0 = len(c.double.requests_matching("POST", "/serving.kserve.io/"))
    b = backend(c, dry_run="server", dry_run_dir=tmp_path / "m")
    evs = list(b.deploy_traditional(["m00000", "m00001"]))
    hosts = b.start_hosts(1)
    evs += list(b.deploy_mms(["m00010"]))
    assert all(e.ok and e.error == "dry-run: server" for e in evs + hosts), [e.error for e in evs + hosts]
    posts = c.double.requests_matching("POST", "/serving.kserve.io/")[n0:]
    assert len(posts) == 4 and all("dryRun=All" in p and "fieldValidation=Strict" in p for _, p in posts), posts
    assert c.double.objects("inferenceservices") == [] and c.double.objects("trainedmodels") == []
    assert len(list((tmp_path / "m").glob("*.yaml"))) == 4
    b.close()
    # a wrong type: 422 from the schema, with the server's message
    bad = backend(c, run_id="r-bad", dry_run="server", dry_run_dir=tmp_path / "bad")
    bad.model_format = 3                   # modelFormat.name must be a string
    bad._runtime_checked = True            # (the runtime check would refuse it first: the server's schema is tested)
    with pytest.raises(DeployError, match=r"dry-run \(server\).*HTTP 422.*modelFormat.name"):
        list(bad.deploy_traditional(["m00000"]))
    # an unknown field: pruned silently by a plain create, refused here (Strict)
    unk = backend(c, run_id="r-unk", dry_run="server", dry_run_dir=tmp_path / "unk")
    orig = unk._isvc

    def with_typo(*a, **k):
        m = orig(*a, **k)
        m["spec"]["predictor"]["model"]["storageURI"] = "gs://typo"
        return m
    unk._isvc = with_typo
    with pytest.raises(DeployError, match=r"HTTP 400.*unknown field.*storageURI"):
        list(unk.deploy_traditional(["m00000"]))
    assert c.double.objects("inferenceservices") == []
    with pytest.raises(ParamError, match="dry_run"):
        backend(c, dry_run="yes")


def test_schemas_from_the_cluster_and_validate_cli(k8s_cluster, tmp_path):
    """On a cluster the CRDs come through the API; `python -m mmslib.k8s validate --kubeconfig` uses them."""
    api = k8s_cluster.api_client()
    crds = mk.cluster_crds(api)
    api.close()
    assert {k[1] for k in crds} == {"InferenceService", "TrainedModel", "ServingRuntime", "ClusterServingRuntime"}
    m = mk.isvc_manifest("m00000", "default", labels={}, model_format="triton", storage_uri="gs://b/m")
    assert mk.validate_with(m, crds) == [] and mk.validate_with({"kind": "Nope"}, crds)
    f = tmp_path / "isvc.yaml"
    f.write_text(yaml.safe_dump(m))
    r = subprocess.run([sys.executable, "-m", "mmslib.k8s", "validate", str(f), "--kubeconfig", k8s_cluster.kubeconfig],
                       capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_cluster_a_run_ran_on_is_recorded(make_k8s_cluster, tmp_path):
    """environment(): the API server's version and the nodes' allocatable capacity (summed), as the
    kubernetes client reads them from /version and GET /api/v1/nodes; a stress run writes it into
    meta.json, and the notebook's metadata table shows it."""
    from mmslib import params, stress
    from mmslib.notebook import metadata_table
    from mmslib.rundir import Run
    c = make_k8s_cluster(capacity=Capacity(nodes=2, cpu="3500m", memory="48Gi", pods=110, gpus=4))
    b = backend(c)
    env = b.environment()
    b.close()
    assert env["kubernetes_version"] == "v1.31.0-mmslib-double" and env["namespace"] == c.namespace
    assert env["nodes"] == 2 and env["nodes_schedulable"] == 2
    assert env["allocatable_cpu"] == 7.0 and env["allocatable_memory_gib"] == 96.0
    assert env["allocatable_pods"] == 220 and env["allocatable_gpus"] == 8
    assert env["kubelet_versions"] == ["v1.31.0-mmslib-double"]
    # a user who may not list nodes (a namespaced role): the record says so, the run goes on
    c.double.fail_next("list", "nodes", 403, times=1, message='nodes is forbidden: User "u" cannot list resource')
    b = backend(c, run_id="run-2")
    env = b.environment()
    b.close()
    assert env["nodes"].startswith("unreadable (403") and env["kubernetes_version"] == "v1.31.0-mmslib-double"
    p = params.stress(backend="kserve", storage_uri=TEST_STORAGE_URI, kubeconfig=c.kubeconfig, namespace=c.namespace, ingress_host=c.ingress_host,
                      ingress_port=c.ingress_port, models=2, modes=["traditional"], verify_sample=1,
                      deploy_timeout_s=60, output_dir=str(tmp_path / "o"))
    stress.run(p, progress=False)
    run = Run.load(tmp_path / "o")
    assert run.meta["environment"]["nodes"] == 2 and run.meta["environment"]["allocatable_gpus"] == 8
    table = metadata_table(run.meta)["value"]
    assert table["environment.allocatable_cpu"] == 7.0 and table["environment.backend"] == "kserve"
    from mmslib.report.collection import read
    from mmslib.report.facts import row_cluster
    r = read(tmp_path / "o")
    assert r.row["cluster"] == "Kubernetes v1.31.0-mmslib-double, 2 nodes: 7 CPU, 96 GiB, 8 GPU"
    assert row_cluster(r).startswith("Kubernetes v1.31.0-mmslib-double, 2 nodes")
