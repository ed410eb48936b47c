"""The five ways a real KServe would break the backend (issue 14), each shown against the double.

The double's behaviour here is KServe's (tests/k8s_double cites the controller code it imitates):
a TrainedModel is Ready before its host's agent has loaded it; a host's model-config ConfigMap is
refused past 1 MiB while the TrainedModel stays Ready; RawDeployment pods have no queue-proxy and an
unschedulable one never fails the InferenceService; Triton serves its repository's model
directories; ModelMesh has no ingress route.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

from k8s_double import Capacity, Config  # noqa: E402
from k8s_fixtures import make_k8s_cluster  # noqa: E402,F401
from k8s_fixtures import server_spec as spec  # noqa: E402
from k8s_fixtures import TEST_STORAGE_URI  # noqa: E402
from k8s_fixtures import answers  # noqa: E402

from mmslib import planner, stress  # noqa: E402
from mmslib.backends.kserve import CONFIG_FULL, KServeBackend  # noqa: E402
from mmslib.workloads import get_workload  # noqa: E402

pytest.importorskip("kubernetes")

W = get_workload("simple_string")
FAST = dict(retry_backoff_s=0.01, cleanup_timeout_s=20, deploy_timeout_s=20)


def backend(cluster, run_id="risk", **kw) -> KServeBackend:
    return cluster.backend(W, run_id, **{**FAST, **kw})


def test_risk1_trainedmodel_ready_is_not_loaded(make_k8s_cluster):
    """Deploy time = the model answering through the ingress; the agent loads after Ready, or never."""
    c = make_k8s_cluster(config=Config(agent_load_delay_s=0.6, agent_fail_models=("m00002",)))
    b = backend(c)
    assert all(h.ok for h in b.start_hosts(1))
    b.deploy_timeout_s = 3.0
    evs = {e.model: e for e in b.deploy_mms(["m00000", "m00001", "m00002"])}
    for m in ("m00000", "m00001"):
        e = evs[m]
        assert e.ok, e.error
        # admitted (Ready) well before serving: the agent's load delay lies between the two
        assert e.admitted_s is not None and e.seconds >= 0.6 and e.seconds - e.admitted_s >= 0.5
    bad = evs["m00002"]
    tm = next(o for o in c.double.objects("trainedmodels") if o["metadata"]["name"] == "m00002")
    assert any(x["type"] == "Ready" and x["status"] == "True" for x in tm["status"]["conditions"])  # Ready ...
    assert not bad.ok and bad.error.startswith("timeout:") and "did not answer through the ingress" in bad.error
    assert bad.admitted_s is None or bad.admitted_s < 3
    # only the conditions KServe sets (no invented FrameworkSupported/ModelLoading)
    assert {x["type"] for x in tm["status"]["conditions"]} == {
        "InferenceServiceReady", "IsMMSPredictor", "MemoryResourceAvailable", "Ready"}
    assert "trainedmodel.finalizer" in tm["metadata"]["finalizers"]       # added by the controller


def test_risk2_host_model_config_full(make_k8s_cluster):
    """Each host's models.json ConfigMap holds at most 1 MiB: counted, stopped, and modelled by the planner."""
    c = make_k8s_cluster()
    bucket = "gs://b/" + "p" * 200_000
    long_uri = bucket + "/{model}/{model}"                  # ~200 kB entries: 5 fit one ConfigMap
    c.upload_models([f"m{i:05d}" for i in range(7)] + [f"n{i:05d}" for i in range(6)], bucket=bucket)
    b = backend(c, storage_uri_prefix=long_uri, model_memory="1Mi")
    assert all(h.ok for h in b.start_hosts(1))
    eb = planner.configmap_entry_bytes("m00000", long_uri.replace("{model}", "m00000"), b.model_format, "1Mi")
    fit = planner.configmap_entries_per_host(eb)
    assert fit == 5
    evs = list(b.deploy_mms([f"m{i:05d}" for i in range(fit + 2)]))
    ok = [e for e in evs if e.ok]
    assert len(ok) == fit and not evs[fit].ok
    assert evs[fit].error.startswith("admission:") and CONFIG_FULL in evs[fit].error
    assert stress._classify(evs[fit].error) == stress.STOP_CONFIG_FULL == "host model config full"
    assert len(c.double.objects("trainedmodels")) == fit          # refused before anything was sent
    (entries, size), = b.config_usage().values()
    cm = c.double.objects("configmaps", label_selector="mmslib.io/run-id=risk")[0]
    assert entries == fit and size == sum(len(k) + len(v) for k, v in cm["data"].items()) <= 1 << 20

    # what happens without the count: KServe's update of the ConfigMap fails, the TrainedModel is Ready anyway,
    # and the model never answers (the double refuses the update as the API server does)
    b2 = backend(c, run_id="risk-nocount", storage_uri_prefix=long_uri, model_memory="1Mi",
                 model_config_limit_bytes=4 << 20, deploy_timeout_s=2, host_prefix="h2")
    assert all(h.ok for h in b2.start_hosts(1))
    evs = list(b2.deploy_mms([f"n{i:05d}" for i in range(fit + 1)]))
    assert [e.ok for e in evs] == [True] * fit + [False]
    assert "was Ready (admitted)" in evs[fit].error and c.double.controller.modelconfig_failures >= 1


def test_risk3_deployment_mode_raw(make_k8s_cluster):
    """RawDeployment: explicit annotation, no queue-proxy, raw host names; unschedulable pods stop it early."""
    c = make_k8s_cluster(capacity=Capacity(nodes=1, cpu="1", memory="8Gi", pods=110))
    b = backend(c, deployment_mode="RawDeployment", traditional_spec=spec("400m", "100Mi"), deploy_timeout_s=60,
                deploy_concurrency=1)
    evs = list(b.deploy_traditional(["m00000", "m00001", "m00002", "m00003"]))
    assert [e.ok for e in evs[:2]] == [True, True]
    bad = evs[2]
    assert not bad.ok and "PodScheduled=False" in bad.error and "Insufficient cpu" in bad.error
    assert bad.seconds < 20            # found from the pod, not by waiting for deploy_timeout_s (60 s)
    isvc = next(o for o in c.double.objects("inferenceservices") if o["metadata"]["name"] == "m00000")
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Standard"   # webhook-normalised
    assert "annotations" not in isvc["spec"]["predictor"]                     # no queue-proxy annotations
    pods = c.double.objects("pods", label_selector="serving.kserve.io/inferenceservice=m00000")
    assert [x["name"] for x in pods[0]["spec"]["containers"]] == ["kserve-container"]
    eps = b.endpoints()
    assert eps[0].headers["Host"] == "m00000-default.example.com" and answers(eps[0])
    u = b.usage()
    assert u.extra["reserved_sidecar_cpu"] == 0 and u.reserved_cpu == pytest.approx(0.8)   # no queue-proxy
    # ... and the planner's / stress summary's reserved resources leave the sidecar out in raw mode
    from mmslib import params
    from mmslib.backends import specs
    raw = specs(params.stress(backend="kserve", storage_uri=TEST_STORAGE_URI, runtime="kserve", deployment_mode="RawDeployment"))
    assert all(not c.sidecar for sp in raw for c in sp.containers)
    assert any(c.sidecar for c in specs(params.stress(backend="kserve", storage_uri=TEST_STORAGE_URI, runtime="kserve"))[0].containers)
    # Serverless (the seed's) is written explicitly too: KServe's own default is Standard
    s = KServeBackend(W, run_id="r", dry_run=True, dry_run_dir=Path(c.kubeconfig).parent / "dry",
                      storage_uri_prefix=TEST_STORAGE_URI)
    list(s.deploy_traditional(["m00000"]))
    assert s.manifests()[0]["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Serverless"


def test_risk4_triton_served_name_and_storage(make_k8s_cluster, tmp_path):
    """Triton: traditional storageUri = repository root, served name = its model directory; a TrainedModel's
    storageUri = the model directory, served as the TrainedModel; other runtimes: the ISVC's name."""
    c = make_k8s_cluster()
    b = backend(c)            # storage_uri gs://mmslib-test/simple_string/{model}/{model} (k8s_fixtures)
    (ev,) = list(b.deploy_traditional(["m00000"]))
    assert ev.ok, ev.error
    isvc = c.double.objects("inferenceservices")[0]
    assert isvc["spec"]["predictor"]["model"]["storageUri"] == "gs://mmslib-test/simple_string/m00000"
    (ep,) = b.endpoints()
    assert ep.model == "m00000" and ep.served_name == "" and answers(ep)   # the directory is the model's name
    assert ep.infer_url.endswith("/v2/models/m00000/infer")
    assert all(h.ok for h in b.start_hosts(1))
    assert all(e.ok for e in b.deploy_mms(["m00001"]))
    tm = c.double.objects("trainedmodels")[0]
    assert tm["spec"]["model"]["storageUri"] == "gs://mmslib-test/simple_string/m00001/m00001"
    tm_ep = next(e for e in b.endpoints() if e.model == "m00001")
    assert tm_ep.served_name == "" and answers(tm_ep)
    sk = KServeBackend(W, run_id="r", dry_run=True, dry_run_dir=tmp_path, runtime="kserve-sklearnserver",
                       model_format="sklearn", storage_uri_prefix="gs://b/{model}")
    list(sk.deploy_traditional(["m00000"]))
    assert sk.manifests()[0]["spec"]["predictor"]["model"]["storageUri"] == "gs://b/m00000"
    assert sk.served_name("m00000") == "m00000"


def test_risk5_path_based_ingress_template(make_k8s_cluster):
    """A path template (inferenceservice-config ingress.pathTemplate) is honoured: Host = ingress domain."""
    c = make_k8s_cluster(config=Config(path_template="/serving/{namespace}/{name}"))
    b = backend(c, ingress_path_template="/serving/{namespace}/{name}")
    assert all(e.ok for e in b.deploy_traditional(["m00000"]))
    (ep,) = b.endpoints()
    assert ep.rest_url.endswith("/serving/default/m00000") and ep.headers == {"Host": "example.com"}
    assert answers(ep) and b.verify().ok
    # no route the controller would not create: the path under another name is unknown
    r = requests.get(f"http://{c.ingress_host}:{c.ingress_port}/serving/default/nope/v2/models/simple_string/ready",
                     headers={"Host": "example.com"})
    assert r.status_code == 404


def test_risk5_path_template_from_the_experiment_params(make_k8s_cluster, tmp_path):
    """The same through the notebooks' parameters (ingress_path_template, ingress_domain)."""
    from mmslib import params
    from mmslib.backends import make_backend
    c = make_k8s_cluster(config=Config(path_template="/serving/{namespace}/{name}", ingress_domain="models.test"))
    p = params.stress(backend="kserve", storage_uri=TEST_STORAGE_URI, runtime="kserve", kubeconfig=c.kubeconfig, ingress_port=c.ingress_port,
                      ingress_path_template="/serving/{namespace}/{name}", ingress_domain="models.test",
                      models=1, output_dir=str(tmp_path / "o"), deploy_timeout_s=20)
    b = c.closing(make_backend(p, W, tmp_path, None, "risk-params"))
    assert all(e.ok for e in b.deploy_traditional(["m00000"]))
    (ep,) = b.endpoints()
    assert ep.headers == {"Host": "models.test"} and answers(ep)
    with pytest.raises(Exception, match="ingress_path_template"):
        params.stress(backend="kserve", storage_uri=TEST_STORAGE_URI, runtime="kserve", ingress_path_template="serving/{name}")


def test_risk2_stress_summary_says_host_model_config_full(make_k8s_cluster, tmp_path):
    from mmslib import params
    c = make_k8s_cluster()
    c.upload_models([f"m{i:05d}" for i in range(8)], bucket="gs://b/" + "p" * 200_000)
    p = params.stress(backend="kserve", runtime="kserve", kubeconfig=c.kubeconfig, ingress_port=c.ingress_port,
                      models=8, hosts=1, modes=["mms"], output_dir=str(tmp_path / "o"), model_memory="1Mi",
                      storage_uri="gs://b/" + "p" * 200_000 + "/{model}/{model}", deploy_timeout_s=20, verify_sample=2)
    s = stress.run(p, progress=False).summary.set_index("mode")
    assert s.loc["mms", "stop_reason"] == "host model config full" and s.loc["mms", "models_deployed"] == 5
    assert "add hosts" in s.loc["mms", "stop_detail"] and bool(s.loc["mms", "verify_ok"])
