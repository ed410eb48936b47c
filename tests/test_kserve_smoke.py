"""The first-contact smoke run (params/k8s-smoke.yaml) against the double, and the errors it gives
when something is missing, each naming what to fix."""
from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from k8s_fixtures import k8s_cluster, make_k8s_cluster  # noqa: E402,F401

from mmslib import params, stress  # noqa: E402
from mmslib.errors import MmsError, ParamError  # noqa: E402

pytest.importorskip("kubernetes")

ROOT = Path(__file__).resolve().parent.parent
SMOKE = params.load_yaml(ROOT / "params" / "k8s-smoke.yaml")


def smoke(c, out: Path, **over):
    c.upload_models(["m00000", "m00001", "m00002"], bucket="gs://my-bucket/mmslib/simple_string")
    d = {**SMOKE, "kubeconfig": c.kubeconfig, "namespace": c.namespace, "ingress_host": c.ingress_host,
         "ingress_port": c.ingress_port, "deploy_timeout_s": 30, "output_dir": str(out),
         "storage_uri": SMOKE["storage_uri"].replace("YOUR-BUCKET", "my-bucket")}
    d.update(over)
    return stress.run(params.stress(**d), progress=False)


def test_smoke_dry_run_server_then_the_real_run(k8s_cluster, tmp_path):
    c = k8s_cluster
    s = smoke(c, tmp_path / "dry", dry_run="server").summary.set_index("mode")
    assert (s["models_deployed"] == 3).all()
    posts = c.double.requests_matching("POST", "/serving.kserve.io/")
    assert len(posts) == 3 + 1 + 3 and all("dryRun=All" in p for _, p in posts)
    assert c.double.objects("inferenceservices") == []          # nothing created
    r = smoke(c, tmp_path / "real")
    s = r.summary.set_index("mode")
    assert (s["models_deployed"] == 3).all() and (s["stop_reason"] == stress.STOP_TARGET).all()
    assert s["verify_ok"].all()
    assert c.double.objects("inferenceservices") == [] and c.double.objects("trainedmodels") == []


def test_no_kserve_crds(make_k8s_cluster, tmp_path):
    c = make_k8s_cluster(kserve=False)
    with pytest.raises(MmsError, match=r"KServe is not installed.*Install KServe"):
        smoke(c, tmp_path / "o")


def test_no_servingruntime(make_k8s_cluster, tmp_path):
    c = make_k8s_cluster(runtimes=False)
    with pytest.raises(ParamError, match=r"serving_runtime.*kserve-tritonserver.*ClusterServingRuntime.*"
                                         r"this cluster has: none"):
        smoke(c, tmp_path / "o", dry_run="server")


def test_rbac_forbidden(make_k8s_cluster, tmp_path):
    c = make_k8s_cluster(forbidden_namespaces=("default",))
    with pytest.raises(ParamError, match=r"namespace.*RBAC forbids it.*Role and RoleBinding"):
        smoke(c, tmp_path / "o")


def test_ingress_unreachable(k8s_cluster, tmp_path, monkeypatch):
    from mmslib.backends import kserve
    monkeypatch.setattr(kserve, "INGRESS_GRACE_S", 1.0)       # (5 s in a real run)
    with socket.socket() as s:          # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = smoke(k8s_cluster, tmp_path / "o", ingress_port=port, modes=["traditional"])
    s = r.summary.set_index("mode")
    detail = s.loc["traditional", "stop_detail"]
    assert s.loc["traditional", "models_deployed"] == 0 and "ingress unreachable" in detail
    assert "ingress_host/ingress_port" in detail and f"127.0.0.1:{port}" in detail
