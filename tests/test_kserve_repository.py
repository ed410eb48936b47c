"""Your own repository on the kserve backend (issue #23): ``storage_uri`` with ``{source_model}`` points
each replica (m00000, m00001, ...) at the directory of the user's model it copies, round-robin; where
KServe could not load that (Triton; MLServer's model-settings.json as TrainedModels) the backend
refuses it before anything is created and ``python -m mmslib.k8s artifacts --repository`` writes
per-replica copies that load. Against the KServe double (tests/k8s_double). docs/kserve.md.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from k8s_fixtures import make_k8s_cluster  # noqa: E402,F401

from mmslib.errors import ParamError  # noqa: E402
from mmslib.workloads import get_workload  # noqa: E402

pytest.importorskip("kubernetes")

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
FAST = dict(retry_backoff_s=0.01, cleanup_timeout_s=20, deploy_timeout_s=20)


def workload(repo: Path, runtime: str):
    """The repository workload of ``repo`` (as a run builds it from its parameters)."""
    return get_workload("repository", SimpleNamespace(model_repository=str(repo), runtime=runtime, seed=0,
                                                      inputs_file=None, shape=None))


def sklearn_repository(root: Path) -> Path:
    """Two scikit-learn models, one per folder: alpha/model.joblib, beta/model.joblib."""
    from mmslib.workloads import sklearn_forest
    for name in ("alpha", "beta"):
        d = sklearn_forest.make_workload(n_estimators=2, n_samples=10, n_features=3).write_artifact(
            root / "w" / name, name)
        (root / "repo" / name).mkdir(parents=True)
        shutil.copy(d / "model.joblib", root / "repo" / name / "model.joblib")
    return root / "repo"


def triton_repository(root: Path) -> Path:
    """tests/data's Triton model 'double', and a copy of it declared 'triple' (its model.py marked)."""
    repo = root / "triton-repo"
    shutil.copytree(DATA / "repo-triton" / "double", repo / "double")
    shutil.copytree(DATA / "repo-triton" / "double", repo / "triple")
    cfg = repo / "triple" / "config.pbtxt"
    cfg.write_text(cfg.read_text().replace('name: "double"', 'name: "triple"'))
    (repo / "triple" / "1" / "model.py").write_text("# triple\n" + (repo / "double" / "1" / "model.py").read_text())
    return repo


def mlserver_repository(root: Path) -> Path:
    """tests/data's MLServer model 'trees', and a copy of it named 'leaves'."""
    repo = root / "mlserver-repo"
    shutil.copytree(DATA / "repo-mlserver" / "trees", repo / "trees")
    shutil.copytree(DATA / "repo-mlserver" / "trees", repo / "leaves")
    f = repo / "leaves" / "model-settings.json"
    f.write_text(json.dumps(dict(json.loads(f.read_text()), name="leaves")))
    return repo


def artifacts(repo: Path, out: Path, n: int) -> None:
    r = subprocess.run([sys.executable, "-m", "mmslib.k8s", "artifacts", "--repository", str(repo), "--out", str(out),
                        "--models", str(n)], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr


def storage_uris(c, plural: str) -> dict:
    objs = c.double.objects(plural, "default")
    if plural == "trainedmodels":
        return {o["metadata"]["name"]: o["spec"]["model"]["storageUri"] for o in objs}
    return {o["metadata"]["name"]: o["spec"]["predictor"]["model"].get("storageUri") for o in objs
            if o["spec"]["predictor"]["model"].get("storageUri")}


def until(what, timeout_s: float = 15.0):
    end = time.monotonic() + timeout_s
    while True:
        got = what()
        if got or time.monotonic() > end:
            return got
        time.sleep(0.05)


def test_source_model_points_each_replica_at_its_users_model_round_robin(make_k8s_cluster, tmp_path):
    c = make_k8s_cluster()
    w = workload(sklearn_repository(tmp_path), "kserve")
    b = c.backend(w, "srcm", runtime="kserve-sklearnserver",
                  storage_uri_prefix="gs://my-bucket/repo/{source_model}", serving_check=False, **FAST)
    assert all(ev.ok for ev in b.deploy_traditional(["m00000", "m00001", "m00002"]))
    assert all(h.ok for h in b.start_hosts(1))
    events = list(b.deploy_mms(["m00003", "m00004", "m00005"]))
    assert all(ev.ok for ev in events), [ev.error for ev in events]
    assert storage_uris(c, "inferenceservices") == {"m00000": "gs://my-bucket/repo/alpha",
                                                    "m00001": "gs://my-bucket/repo/beta",
                                                    "m00002": "gs://my-bucket/repo/alpha"}
    assert storage_uris(c, "trainedmodels") == {"m00003": "gs://my-bucket/repo/beta",
                                                "m00004": "gs://my-bucket/repo/alpha",
                                                "m00005": "gs://my-bucket/repo/beta"}
    # the model format is the repository's (its models' library), not 'custom'
    assert {o["spec"]["model"]["framework"] for o in c.double.objects("trainedmodels", "default")} == {"sklearn"}


def test_source_model_needs_a_workload_with_source_models(make_k8s_cluster):
    c = make_k8s_cluster()
    with pytest.raises(ParamError, match=r"storage_uri.*gs://b/\{source_model\}.*\{model\}.*'simple_string'.*"
                                         r"only workload 'repository'"):
        c.backend(get_workload("simple_string"), "nosrc", storage_uri_prefix="gs://b/{source_model}",
                  runtime="kserve-sklearnserver", model_format="sklearn", **FAST)
    with pytest.raises(ParamError, match=r"storage_uri.*placeholders are \{model\}.*\{source_model\}.*"
                                         r"not \{sourcemodel\}"):
        c.backend(get_workload("simple_string"), "typo", storage_uri_prefix="gs://b/{sourcemodel}/{model}/{model}",
                  **FAST)
    assert c.double.requests_matching("POST", "/serving.kserve.io/") == []


def test_triton_refuses_source_model_and_per_replica_copies_load(make_k8s_cluster, tmp_path):
    c = make_k8s_cluster()
    repo = triton_repository(tmp_path)
    w = workload(repo, "triton")
    for uri in ("gs://my-bucket/repo/{source_model}", "gs://my-bucket/repo/{source_model}/{source_model}"):
        with pytest.raises(ParamError, match=r"storage_uri.*Triton.*/mnt/models/<its name>.*no replica would ever "
                                             r"load.*python -m mmslib.k8s artifacts --repository"):
            c.backend(w, "tr", storage_uri_prefix=uri, **FAST)
    assert c.double.requests_matching("POST", "/serving.kserve.io/") == []
    # what KServe would do with it: the TrainedModel is Ready, and Triton refuses the directory (it says
    # 'triple', the agent asks for m00001)
    c.double.upload("gs://my-bucket/repo", repo)
    b = c.backend(w, "tr2", storage_uri_prefix="gs://my-bucket/repo/{source_model}", serving_check=False,
                  options={"check_artifact_layout": False}, **FAST)
    assert all(h.ok for h in b.start_hosts(1))
    (ev,) = b.deploy_mms(["m00001"])
    assert ev.ok and storage_uris(c, "trainedmodels") == {"m00001": "gs://my-bucket/repo/triple"}
    errors = c.double.controller.agent_errors
    assert "names 'triple', not the directory 'm00001'" in until(lambda: errors.get(("default", "mms-host-0",
                                                                                      "m00001")))
    b.close()
    # the fix: one copy per replica, named as it, round-robin over the user's models
    out = tmp_path / "out"
    artifacts(repo, out, 3)
    for name, source in (("m00000", "double"), ("m00001", "triple"), ("m00002", "double")):
        d = out / name / name
        assert f'name: "{name}"' in (d / "config.pbtxt").read_text()
        assert (d / "1" / "model.py").read_text() == (repo / source / "1" / "model.py").read_text()
    c.double.upload("gs://my-bucket/replicas", out)
    g = c.backend(w, "tr3", storage_uri_prefix="gs://my-bucket/replicas/{model}/{model}", serving_check=False,
                  host_prefix="h", **FAST)
    assert all(h.ok for h in g.start_hosts(1))
    assert all(ev.ok for ev in g.deploy_mms(["m00000", "m00001", "m00002"]))
    assert until(lambda: c.double.controller.loaded_models("default", "h-0") == {"m00000", "m00001", "m00002"})
    assert not [k for k in errors if k[1] == "h-0"]


def test_mlserver_trainedmodels_refuse_source_model_and_copies_are_renamed(make_k8s_cluster, tmp_path):
    c = make_k8s_cluster()
    repo = mlserver_repository(tmp_path)
    w = workload(repo, "mlserver")
    with pytest.raises(ParamError, match=r"storage_uri.*gs://my-bucket/repo/\{source_model\}.*model-settings.json "
                                         r"name them \(e.g. 'leaves'\).*MLServer finds a model by that name.*"
                                         r"artifacts --repository"):
        c.backend(w, "ml", runtime="kserve-mlserver",
                  storage_uri_prefix="gs://my-bucket/repo/{source_model}", **FAST)
    assert c.double.requests_matching("POST", "/serving.kserve.io/") == []
    out = tmp_path / "out"
    artifacts(repo, out, 3)
    for name, source in (("m00000", "leaves"), ("m00001", "trees"), ("m00002", "leaves")):
        d = out / name / name
        assert json.loads((d / "model-settings.json").read_text())["name"] == name
        assert (d / "model.txt").read_bytes() == (repo / source / "model.txt").read_bytes()
    # the copies' URI is accepted
    c.backend(w, "ml2", runtime="kserve-mlserver",
              storage_uri_prefix="gs://my-bucket/replicas/{model}/{model}", **FAST)


def test_a_run_on_the_kserve_backend_takes_the_repository_and_needs_its_storage_uri(make_k8s_cluster, tmp_path):
    """From a run's parameters: the folder gives the models' metadata and requests (no local runtime
    is asked to serve it: the cluster's does); a storage_uri naming no replica is refused before
    anything is created."""
    from mmslib import params
    repo = sklearn_repository(tmp_path)
    p = params.stress(workload="repository", model_repository=str(repo), backend="kserve",
                      output_dir=str(tmp_path / "out"))
    w = get_workload("repository", p)
    assert [w.facts(m)["source_model"] for m in ("m00000", "m00001", "m00002")] == ["alpha", "beta", "alpha"]
    c = make_k8s_cluster()
    with pytest.raises(ParamError, match=r"storage_uri.*gs://my-bucket/repo/alpha.*your models' location.*"
                                         r"\{source_model\}.*names neither"):
        c.backend(w, "fixed", runtime="kserve-sklearnserver", storage_uri_prefix="gs://my-bucket/repo/alpha", **FAST)
    assert c.double.requests_matching("POST", "/serving.kserve.io/") == []
