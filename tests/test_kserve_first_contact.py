"""First contact with a real KServe cluster, round two (issue #22): one test per item, each against the
double behaving as KServe does (tests/k8s_double cites the KServe code it imitates), each failing on
the backend before the fix (commit c7becbf). What a user sees on a real cluster, per item:
docs/kserve-first-contact.md.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from k8s_double import Capacity, Config  # noqa: E402,F401
from k8s_fixtures import TEST_STORAGE_URI, make_k8s_cluster, simple_string_source  # noqa: E402,F401
from k8s_fixtures import answers  # noqa: E402

from mmslib.backends.kserve import KServeBackend  # noqa: E402
from mmslib.errors import ParamError  # noqa: E402
from mmslib.workloads import get_workload  # noqa: E402

pytest.importorskip("kubernetes")

W = get_workload("simple_string")
ROOT = Path(__file__).resolve().parent.parent
FAST = dict(retry_backoff_s=0.01, cleanup_timeout_s=20, deploy_timeout_s=20)
PUBLIC = "gs://kfserving-examples/models/triton/simple_string"


def backend(cluster, run_id="fc", **kw) -> KServeBackend:
    return cluster.backend(W, run_id, **{**FAST, **kw})


# -- 1. the default artifact never loads ------------------------------------------------------------

def test_item1_default_artifact_is_refused_and_per_model_artifacts_load(make_k8s_cluster, tmp_path):
    c = make_k8s_cluster()
    # the seed's artifact: refused before anything is created, saying how to make per-model ones
    for uri in (PUBLIC, "gs://b/{model}/simple_string", "gs://b/mmslib/{model}"):
        with pytest.raises(ParamError, match=r"storage_uri.*\{model\}/\{model\}.*python -m mmslib.k8s artifacts"):
            backend(c, storage_uri_prefix=uri)
    assert c.double.requests_matching("POST", "/serving.kserve.io/") == []
    # what KServe would do with it (the double as KServe): a traditional InferenceService downloads and
    # loads every model under the parent folder; a TrainedModel m00001 is Ready and never loads
    # (config.pbtxt names simple_string)
    b = backend(c, storage_uri_prefix=PUBLIC, options={"check_artifact_layout": False}, deploy_timeout_s=2)
    (ev,) = b.deploy_traditional(["m00000"])
    loaded, _ = c.double.controller.triton_repository("gs://kfserving-examples/models/triton")
    assert ev.ok and loaded >= {"simple_string", "bert", "huggingface"}
    assert all(h.ok for h in b.start_hosts(1))
    (bad,) = b.deploy_mms(["m00001"])
    assert not bad.ok and "did not answer" in bad.error
    assert "names 'simple_string', not the directory 'm00001'" in c.double.controller.agent_errors[
        ("default", "mms-host-0", "m00001")]
    b.close()
    # the fix: `python -m mmslib.k8s artifacts` writes one directory per model, named as it; uploaded,
    # both modes load exactly their model
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "mmslib.k8s", "artifacts", "--source",
                        str(simple_string_source(tmp_path / "simple_string")), "--out", str(out), "--models", "2"],
                       capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert r.returncode == 0, r.stderr
    assert 'name: "m00001"' in (out / "m00001" / "m00001" / "config.pbtxt").read_text()
    assert (out / "m00001" / "m00001" / "1" / "model.graphdef").is_file()
    c.double.upload("gs://my-bucket/mmslib", out)
    g = backend(c, run_id="fc2", storage_uri_prefix="gs://my-bucket/mmslib/{model}/{model}", host_prefix="h")
    (ev,) = g.deploy_traditional(["m00000"])
    assert ev.ok, ev.error
    assert c.double.controller.triton_repository("gs://my-bucket/mmslib/m00000")[0] == {"m00000"}
    assert all(h.ok for h in g.start_hosts(1))
    (ev,) = g.deploy_mms(["m00001"])
    assert ev.ok, ev.error
    assert all(answers(e) for e in g.endpoints())


# -- 2. Serverless without Knative -------------------------------------------------------------------

def test_item2_serverless_without_knative_fails_in_seconds_with_the_reason(make_k8s_cluster):
    c = make_k8s_cluster(knative=False)
    t0 = time.monotonic()
    with pytest.raises(ParamError, match=r"deployment_mode.*serving\.knative\.dev/v1.*ServerlessModeRejected"):
        backend(c, deployment_mode="Serverless", deploy_timeout_s=60)
    assert time.monotonic() - t0 < 10 and c.double.requests_matching("POST", "/serving.kserve.io/") == []
    # auto: RawDeployment where Knative is not served
    b = backend(c, deployment_mode="auto", deploy_timeout_s=60)
    assert b.deployment_mode == "RawDeployment"
    (ev,) = b.deploy_traditional(["m00000"])
    assert ev.ok, ev.error
    # past the preflight (e.g. Knative removed meanwhile), KServe's reconciler emits ServerlessModeRejected and
    # stops: the backend reads the InferenceService's events and fails in seconds, not at deploy_timeout_s
    b._set_mode("Serverless")
    (ev,) = b.deploy_traditional(["m00001"])
    assert not ev.ok and ev.seconds < 10, ev
    assert "ServerlessModeRejected" in ev.error and "RawDeployment" in ev.error
    isvc = next(o for o in c.double.objects("inferenceservices") if o["metadata"]["name"] == "m00001")
    assert {x["status"] for x in isvc["status"]["conditions"]} == {"Unknown"}      # nothing else ever happens


# -- 3. the kubelet's ConfigMap refresh sets the multi-model deploy rate ---------------------------------

def test_item3_kubelet_refresh_bounds_trainedmodel_deploys_and_the_stop_says_so(make_k8s_cluster, tmp_path):
    from mmslib import params, stress
    from mmslib.backends.base import model_names
    c = make_k8s_cluster(config=Config(kubelet_sync_period_s=1.0))     # the double's kubelet: every 1 s
    b = backend(c, deploy_concurrency=4, options={"kubelet_sync_s": 1.0})
    assert all(h.ok for h in b.start_hosts(1))
    t0 = time.monotonic()
    evs = list(b.deploy_mms(model_names(24)))
    took = time.monotonic() - t0
    assert all(e.ok for e in evs), [e.error for e in evs if not e.ok][:2]
    notes = b.deploy_notes()
    # batched: all 24 land in one or two refreshes (4 at a time, as deploy_concurrency, would take 6)
    assert notes["refresh_waves"] <= 2 and took < 3.5, (notes, took)
    assert notes["deploy_bound_by"] == "kubelet ConfigMap refresh" and "not by KServe" in notes["deploy_note"]
    # ... and Ready long before answering: the wait is the refresh, not KServe
    assert all(e.seconds - e.admitted_s > 0.05 for e in evs) and notes["ready_to_serving_p50_s"] >= 0.25
    b.close()
    # a stress run stopped by its time limit says the kubelet refresh bound it
    p = params.stress(backend="kserve", runtime="kserve", kubeconfig=c.kubeconfig, ingress_port=c.ingress_port,
                      storage_uri=TEST_STORAGE_URI, models=60, hosts=1, modes=["mms"], time_limit_s=1.5,
                      output_dir=str(tmp_path / "o"), model_memory="1Mi", deploy_timeout_s=20, verify_sample=0)
    p.kserve_options = {"kubelet_sync_s": 1.0, "tm_batch": 20}
    s = stress.run(p, progress=False).summary.set_index("mode")
    assert s.loc["mms", "stop_reason"] == "time limit (kubelet ConfigMap refresh)", s.loc["mms", "stop_detail"]
    assert "bound by the kubelet's ConfigMap refresh" in s.loc["mms", "stop_detail"]
    assert 20 <= s.loc["mms", "models_deployed"] < 60 and s.loc["mms", "refresh_waves"] >= 1


# -- 5. clean-up order ---------------------------------------------------------------------------------

def test_item5_cleanup_never_strands_trainedmodels(make_k8s_cluster, caplog):
    from mmslib import k8s
    from mmslib.backends.base import model_names
    # each TrainedModel's deletion rewrites its host's ConfigMap: 0.1 s each, one at a time per host
    c = make_k8s_cluster(config=Config(modelconfig_write_s=0.1))
    b = backend(c, run_id="fc5", cleanup_timeout_s=0.5)
    assert all(h.ok for h in b.start_hosts(1))
    assert all(e.ok for e in b.deploy_mms(model_names(15)))
    b.close()                           # 15 x 0.1 s > 0.5 s: the TrainedModels' deadline passes
    assert "TrainedModels" in b.cleanup_error and "Kept 1 host" in b.cleanup_error
    assert "python -m mmslib.k8s cleanup --run-id fc5" in b.cleanup_error
    # the host was not deleted while TrainedModels named it: they all finish, none is stranded
    hosts = c.double.objects("inferenceservices", label_selector="mmslib.io/run-id=fc5")
    assert [h["metadata"]["name"] for h in hosts] == ["mms-host-0"] and not hosts[0]["metadata"].get(
        "deletionTimestamp")
    deadline = time.monotonic() + 10
    while c.double.objects("trainedmodels") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert c.double.objects("trainedmodels") == []
    r = k8s.cleanup("fc5", kubeconfig=c.kubeconfig, timeout_s=10)
    assert r["remaining"] == 0 and c.double.objects("inferenceservices") == []
    # the double's finalizer as KServe's: a TrainedModel whose host is gone is never finalized ...
    b2 = backend(c, run_id="fc5b", host_prefix="h")
    assert all(h.ok for h in b2.start_hosts(1)) and all(e.ok for e in b2.deploy_mms(["n00000"]))
    api = c.api_client()
    from kubernetes import client
    client.CustomObjectsApi(api).delete_namespaced_custom_object("serving.kserve.io", "v1beta1", "default",
                                                                 "inferenceservices", "h-0")
    time.sleep(1.0)
    (tm,) = c.double.objects("trainedmodels")
    assert tm["metadata"]["deletionTimestamp"] and tm["metadata"]["finalizers"] == ["trainedmodel.finalizer"]
    r = k8s.cleanup("fc5b", kubeconfig=c.kubeconfig, timeout_s=0.5)
    assert r["stuck"] == ["n00000"] and "--force-finalizers" in r["advice"]
    r = k8s.cleanup("fc5b", kubeconfig=c.kubeconfig, timeout_s=0.5, force_finalizers=True)
    assert c.double.objects("trainedmodels") == []
    api.close()
    b2._closed = True          # (cleaned up above)
    b2.api.close()


# -- 9. permissions, all at once, before anything is created ----------------------------------------------

def test_item9_missing_permissions_listed_at_once_before_anything_is_created(make_k8s_cluster):
    denied = [("delete", "serving.kserve.io", "trainedmodels"), ("watch", "serving.kserve.io", "inferenceservices"),
              ("list", "", "events")]
    c = make_k8s_cluster(rbac_denied=denied)
    with pytest.raises(ParamError) as e:
        backend(c)
    msg = str(e.value)
    assert "namespace" in msg and "missing (3): watch inferenceservices.serving.kserve.io" in msg
    assert "delete trainedmodels.serving.kserve.io" in msg and "list events" in msg
    assert "kind: Role" in msg and 'resources: ["trainedmodels"]' in msg
    assert c.double.requests_matching("POST", "/serving.kserve.io/") == []
    assert len(c.double.requests_matching("POST", "selfsubjectaccessreviews")) >= 15
    # the double's authorizer is the one it enforces: the same denial on the real request
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException
    api = c.api_client()
    with pytest.raises(ApiException) as a:
        client.CoreV1Api(api).list_namespaced_event("default")
    assert a.value.status == 403
    api.close()
    # ModelMesh needs no TrainedModels: not asked for
    mm = KServeBackend(W, run_id="x", dry_run=True, dry_run_dir=c.tmp / "mm", mms_engine="modelmesh",
                       storage_uri_prefix=TEST_STORAGE_URI)
    assert ("delete", "serving.kserve.io", "trainedmodels") not in mm.needed_access()


# -- 7. a 403 is not always the memory limit; storage URI schemes --------------------------------------------

def test_item7_forbidden_is_told_apart_and_storage_schemes_checked(make_k8s_cluster, tmp_path):
    from mmslib import params, stress
    c = make_k8s_cluster(config=Config(quota_inferenceservices=2))
    # a scheme KServe's agent cannot download (a TrainedModel's: gs, s3, http, https): refused up front
    for uri in ("pvc://models/{model}/{model}", "foo://b/{model}/{model}"):
        with pytest.raises(ParamError, match=r"storage_uri.*gs:// \| s3:// \| http:// \| https://"):
            backend(c, storage_uri_prefix=uri)
    # a ResourceQuota's 403 is a quota stop, not "admission refused" (the multi-model memory limit)
    p = params.stress(backend="kserve", runtime="kserve", kubeconfig=c.kubeconfig, ingress_port=c.ingress_port,
                      storage_uri=TEST_STORAGE_URI, models=4, modes=["traditional"], output_dir=str(tmp_path / "o"),
                      deploy_timeout_s=20, deploy_concurrency=1, verify_sample=0)
    s = stress.run(p, progress=False).summary.set_index("mode")
    assert s.loc["traditional", "models_deployed"] == 2
    assert s.loc["traditional", "stop_reason"] != stress.STOP_ADMISSION
    assert "quota:" in s.loc["traditional", "stop_detail"] and "exceeded quota" in s.loc["traditional", "stop_detail"]
    # a webhook's denial says so (the double's TrainedModel validator, as KServe's)
    b = backend(c, run_id="fc7")
    assert all(h.ok for h in b.start_hosts(1))
    b.storage_uri = "pvc://models/{model}/{model}"        # (past the check above)
    (ev,) = b.deploy_mms(["m00000"])
    assert not ev.ok and ev.error.startswith("webhook:") and "storageUri field is invalid" in ev.error
    assert stress._classify(ev.error) != stress.STOP_ADMISSION
    # RBAC
    from mmslib.backends.kserve import forbidden_kind
    assert forbidden_kind('inferenceservices.serving.kserve.io is forbidden: User "u" cannot create resource '
                          '"inferenceservices"') == "rbac"


# -- 4. path-based ingress as KServe does it --------------------------------------------------------------

def test_item4_path_ingress_follows_the_status_url(make_k8s_cluster):
    c = make_k8s_cluster(config=Config(path_template="/serving/{{ .Namespace }}/{{ .Name }}",
                                       ingress_domain="models.test"))
    b = backend(c)                                     # no ingress_path_template given: the URL says it
    assert all(e.ok for e in b.deploy_traditional(["m00000"]))
    isvc = c.double.objects("inferenceservices")[0]
    assert isvc["status"]["url"] == "http://models.test/serving/default/m00000"   # as KServe writes it
    (ep,) = b.endpoints()
    assert ep.rest_url.endswith("/serving/default/m00000") and ep.headers == {"Host": "models.test"} and answers(ep)
    assert all(h.ok for h in b.start_hosts(1)) and all(e.ok for e in b.deploy_mms(["m00001"]))
    tm_ep = next(e for e in b.endpoints() if e.model == "m00001")
    assert tm_ep.rest_url.endswith("/serving/default/mms-host-0") and answers(tm_ep) and b.verify().ok
    b.close()
    # raw mode ignores pathTemplate (only the Serverless ingress reconciler renders it): by Host, even when the
    # user gave the template in KServe's Go syntax
    r = backend(c, run_id="fc4r", deployment_mode="RawDeployment",
                ingress_path_template="/serving/{{ .Namespace }}/{{ .Name }}")
    assert all(e.ok for e in r.deploy_traditional(["m00002"]))
    (ep,) = r.endpoints()
    assert ep.headers == {"Host": "m00002-default.models.test"} and ep.rest_url.endswith(f":{c.ingress_port}")
    assert answers(ep)


# -- 8. hosts pinned to one replica ---------------------------------------------------------------------------

def test_item8_predictors_pinned_to_one_replica_unless_autoscaling(make_k8s_cluster):
    c = make_k8s_cluster()
    b = backend(c)
    assert all(e.ok for e in b.deploy_traditional(["m00000"])) and all(h.ok for h in b.start_hosts(1))
    for o in c.double.objects("inferenceservices"):
        assert o["spec"]["predictor"]["minReplicas"] == o["spec"]["predictor"]["maxReplicas"] == 1
    # KServe passes them to Knative as min-scale / max-scale (SetAutoScalingAnnotations)
    for p in c.double.objects("pods", label_selector="mmslib.io/run-id=fc"):
        ann = p["metadata"]["annotations"]
        assert ann["autoscaling.knative.dev/min-scale"] == ann["autoscaling.knative.dev/max-scale"] == "1"
    b.close()
    a = backend(c, run_id="fc8", options={"autoscale": True})
    assert all(e.ok for e in a.deploy_traditional(["m00001"]))
    (o,) = c.double.objects("inferenceservices", label_selector="mmslib.io/run-id=fc8")
    assert "maxReplicas" not in o["spec"]["predictor"]


# -- 6. ModelMesh: Ready is not loaded; the namespace label --------------------------------------------------

def test_item6_modelmesh_needs_its_label_and_a_way_to_verify_loaded(make_k8s_cluster):
    c = make_k8s_cluster(config=Config(agent_load_delay_s=0.5, modelmesh_capacity=2))
    mm = f"http://127.0.0.1:{c.double.ingress.modelmesh_port}"
    kw = dict(mms_engine="modelmesh", runtime="triton-mm", deploy_concurrency=1)
    with pytest.raises(ParamError, match=r"modelmesh_rest_url.*port-forward svc/modelmesh-serving.*registered"):
        backend(c, **kw)                                 # every registration would count as deployed
    with pytest.raises(ParamError, match=r"namespace.*kubectl label namespace default modelmesh-enabled=true"):
        backend(c, modelmesh_rest_url=mm, **kw)
    d = c.double
    d.store.update(d.types[("", "namespaces")], "", "default",
                   lambda o: o["metadata"].setdefault("labels", {}).__setitem__("modelmesh-enabled", "true"))
    d.create_object({"apiVersion": "serving.kserve.io/v1alpha1", "kind": "ServingRuntime",
                     "metadata": {"name": "triton-mm", "namespace": "default"},
                     "spec": {"multiModel": True, "supportedModelFormats": [{"name": "triton", "autoSelect": True}],
                              "containers": [{"name": "triton", "image": "tritonserver:double"}]}})
    b = backend(c, modelmesh_rest_url=mm, **kw)
    assert all(h.ok for h in b.start_hosts(1))
    evs = list(b.deploy_mms(["m00000", "m00001", "m00002"]))
    assert all(e.ok for e in evs), [e.error for e in evs]
    # Ready (registered) while Loading: counted only once it answered through the REST proxy
    assert all(e.seconds - e.admitted_s >= 0.3 for e in evs)
    # past its capacity ModelMesh evicts the least recently used: still Ready, no longer loaded
    isvc = next(o for o in d.objects("inferenceservices") if o["metadata"]["name"] == "m00000")
    assert any(x["type"] == "Ready" and x["status"] == "True" for x in isvc["status"]["conditions"])
    v = b.verify()
    assert not v.ok and v.correct == 2 and v.sampled == 3
    b.close()
    # or count registrations, and say so
    r = backend(c, run_id="fc6r", options={"modelmesh_count": "registered"}, **kw)
    assert r.deploy_notes("mms")["deploy_counted"] == "registrations"


# -- 10. smaller (partly): raw host names; an unschedulable pod where a node autoscaler may add a node -------

def test_item10_raw_host_names_and_unschedulable_wait(make_k8s_cluster, caplog):
    import logging
    c = make_k8s_cluster(capacity=Capacity(nodes=1, cpu="1", memory="8Gi", pods=110))
    c.double.add_namespace("n" * 40)
    b = backend(c, namespace="n" * 40, deployment_mode="RawDeployment")
    with pytest.raises(ParamError, match=r"models.*63 characters.*at most 22"):
        list(b.deploy_traditional(["m" + "0" * 29]))          # m000...-nnn... is 71 characters
    # PodScheduled=False waits unschedulable_wait_s (a node autoscaler may add a node), saying why
    caplog.set_level(logging.INFO, logger="mmslib.backends.kserve")
    from k8s_fixtures import server_spec
    w = backend(c, run_id="fc10", deployment_mode="RawDeployment", traditional_spec=server_spec("2", "100Mi"),
                options={"unschedulable_wait_s": 2.0}, deploy_timeout_s=30)
    t0 = time.monotonic()
    (ev,) = w.deploy_traditional(["m00000"])
    assert not ev.ok and "Insufficient cpu" in ev.error and 2.0 <= time.monotonic() - t0 < 15
    assert any("waiting up to 2 s for a node autoscaler" in r.getMessage() for r in caplog.records)
