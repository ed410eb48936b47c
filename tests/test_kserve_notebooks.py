"""Both notebooks end to end with backend kserve, against the Kubernetes API test double.

The double speaks the real REST protocol to the unmodified kubernetes client,
validates objects with schemas from the installed kserve SDK, simulates KServe's controllers
and routes V2 inference through a loopback ingress (see tests/k8s_double).
"""

import yaml

from conftest import papermill as _papermill
from k8s_fixtures import TEST_STORAGE_URI, k8s_cluster, make_k8s_cluster, shared_crds  # noqa: F401  (fixtures)



def _k8s_args(c):
    return ["-p", "backend", "kserve", "-p", "kubeconfig", c.kubeconfig, "-p", "namespace", c.namespace,
            "-p", "ingress_host", c.ingress_host, "-p", "ingress_port", str(c.ingress_port),
            "-p", "storage_uri", TEST_STORAGE_URI]     # per-model artifacts (KServe's own never loads: #22)


def test_stress_notebook_on_kserve(k8s_cluster, tmp_path, no_leftovers):  # noqa: F811
    import scrapbook as sb
    out = tmp_path / "stress.ipynb"
    r = _papermill("stress.ipynb", out, *_k8s_args(k8s_cluster), "-p", "models", "6", "-p", "hosts", "1",
                   "-p", "verify_sample", "3", "-p", "deploy_timeout_s", "60", "-p", "output_dir", str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr[-3000:]
    s = sb.read_notebook(str(out)).scraps["stress_summary"].data.set_index("mode")
    assert (s["backend"] == "kserve").all()
    assert s.loc["mms", "models_deployed"] == 6 and s.loc["traditional", "models_deployed"] == 6
    assert s.loc["mms", "verify_ok"] and s.loc["traditional", "verify_ok"]
    # Reserved from the seed's specs: traditional 6 x 1.1 CPU; one host 11 CPU.
    assert abs(s.loc["traditional", "reserved_cpu"] - 6.6) < 1e-6
    assert abs(s.loc["mms", "reserved_cpu"] - 11.0) < 1e-6
    # The run cleaned up after itself: no object with an mmslib label remains.
    d = k8s_cluster.double
    left = [o for plural in ("inferenceservices", "trainedmodels")
            for o in d.objects(plural, label_selector="app.kubernetes.io/managed-by=mmslib")]
    assert left == []


def test_performance_notebook_on_kserve(k8s_cluster, tmp_path, no_leftovers):  # noqa: F811
    import scrapbook as sb
    out = tmp_path / "perf.ipynb"
    r = _papermill("performance.ipynb", out, *_k8s_args(k8s_cluster), "-p", "models", "2", "-p", "qps", "[20]",
                   "-p", "duration_s", "2", "-p", "warmup_s", "1", "-p", "output_dir", str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr[-3000:]
    summ = sb.read_notebook(str(out)).scraps["perf_summary"].data
    assert len(summ) == 2 and (summ["errors"] == 0).all() and (summ["n"] >= 38).all()


def test_dry_run_manifests_validate(tmp_path, no_leftovers):
    """dry_run writes manifests (no cluster needed) that validate against KServe's CRDs."""
    from mmslib import k8s
    out = tmp_path / "nb.ipynb"
    r = _papermill("stress.ipynb", out, "-p", "backend", "kserve", "-p", "dry_run", "True", "-p", "models", "3",
                   "-p", "storage_uri", TEST_STORAGE_URI,
                   "-p", "verify_sample", "0", "-p", "output_dir", str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr[-3000:]
    files = sorted((tmp_path / "o" / "manifests").rglob("*.yaml"))
    kinds = [yaml.safe_load(f.read_text())["kind"] for f in files]
    assert kinds.count("InferenceService") == 3 + 1 and kinds.count("TrainedModel") == 3
    crds = shared_crds()      # KServe's CRD files: an extra check, only when present
    for f in files:
        if crds is not None:
            assert k8s.validate_manifest(yaml.safe_load(f.read_text()), crds) == [], f
