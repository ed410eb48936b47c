"""Bring your own model repository (mmslib.repository): the layouts, the runtime each model
needs, generated inputs and inputs files, every bad input's message; the two tiny
repositories in tests/data served as they are (Triton layout by Triton, MLServer layout by
MLServer) with generated inputs and with an inputs file."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from mmslib import repository
from mmslib.errors import ParamError
from mmslib.procs import Supervisor
from mmslib.v2 import decode_outputs

DATA = Path(__file__).parent / "data"
TRITON_REPO = DATA / "repo-triton"
MLSERVER_REPO = DATA / "repo-mlserver"


def test_triton_layout():
    [m] = repository.scan(TRITON_REPO)
    assert (m.name, m.layout, m.format, m.runtimes) == ("double", "triton", "triton:python", ("triton",))
    assert [t.to_dict() for t in m.inputs] == [{"name": "x", "datatype": "FP32", "shape": [-1, 3]}]
    assert [t.to_dict() for t in m.outputs] == [{"name": "y", "datatype": "FP32", "shape": [-1, 3]}]
    repository.check_runtime([m], "triton")
    with pytest.raises(ParamError, match=r"runtime.*'kserve'.*triton \(model 'double', triton:python, is served by "
                                         r"triton only\)"):
        repository.check_runtime([m], "kserve")


def test_mlserver_layout():
    [m] = repository.scan(MLSERVER_REPO)
    assert (m.name, m.layout, m.format) == ("trees", "mlserver", "mlserver:mlserver_lightgbm.LightGBMModel")
    assert m.inputs[0].shape == [-1, 4] and m.outputs[0].name == "predict"
    with pytest.raises(ParamError, match="mlserver .model 'trees'"):
        repository.check_runtime([m], "triton")


def test_plain_files_map_to_runtimes(tmp_path):
    from mmslib.workloads import lightgbm_trees, onnx_mlp, sklearn_forest
    for mod, knobs, fname in ((sklearn_forest, dict(n_estimators=2, n_samples=10, n_features=3), "forest.joblib"),
                              (lightgbm_trees, dict(n_trees=2, depth=2, n_samples=50, n_features=5), "gbm.txt"),
                              (onnx_mlp, dict(width=4, depth=1, n_features=6), "mlp.onnx")):
        d = mod.make_workload(**knobs).write_artifact(tmp_path / "w" / fname, fname)
        shutil.copy(d / mod.FAMILY.model_file, tmp_path / fname)
    (tmp_path / "boost.json").write_text("{}")
    shutil.rmtree(tmp_path / "w")
    models = {m.name: m for m in repository.scan(tmp_path)}
    assert {n: (m.format, m.inputs[0].shape[-1]) for n, m in models.items() if m.inputs} == \
        {"forest": ("sklearn", 3), "gbm": ("lightgbm", 5), "mlp": ("onnx", 6)}
    for rt in ("kserve", "triton", "mlserver"):
        repository.check_runtime([models[n] for n in ("forest", "gbm", "mlp")], rt)
    with pytest.raises(ParamError, match="none can serve model 'boost' .xgboost.: XGBoost models need the xgboost"):
        repository.check_runtime(list(models.values()), "kserve")


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "nowhere", "does not exist"),
    (lambda p: (p / "f.onnx").write_text("x") and p / "f.onnx", "this is a file"),
    (lambda p: p, "found none of these"),
    (lambda p: (p / "a.onnx").write_bytes(b"not onnx") and p, "a readable onnx model"),
    (lambda p: [shutil.copytree(TRITON_REPO / "double", p / "double"),
                shutil.copytree(MLSERVER_REPO / "trees", p / "trees")] and p, "mixes Triton"),
], ids=["missing", "file", "empty", "unreadable", "mixed"])
def test_bad_repositories_name_what_is_wrong(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(ParamError, match="model_repository") as e:
        repository.scan(path)
    assert message in str(e.value) and str(path) in str(e.value)


def test_triton_backend_this_triton_lacks(tmp_path):
    shutil.copytree(TRITON_REPO / "double", tmp_path / "double")
    cfg = tmp_path / "double" / "config.pbtxt"
    cfg.write_text(cfg.read_text().replace('backend: "python"', 'backend: "onnxruntime"'))
    [m] = repository.scan(tmp_path)
    with pytest.raises(ParamError, match="none can serve model 'double'.*python backend only"):
        repository.check_runtime([m], "triton")


def test_generated_inputs_follow_the_metadata():
    [m] = repository.scan(TRITON_REPO)
    body = repository.generated_inputs(m.inputs, np.random.default_rng(0))
    assert [(t["name"], t["datatype"], t["shape"]) for t in body["inputs"]] == [("x", "FP32", [1, 3])]
    body = repository.generated_inputs(m.inputs, np.random.default_rng(0), shape={"x": [4, 3]})
    assert body["inputs"][0]["shape"] == [4, 3] and len(np.ravel(body["inputs"][0]["data"])) == 12
    with pytest.raises(ParamError, match=r"shape.*fits \[-1, 3\]"):
        repository.generated_inputs(m.inputs, np.random.default_rng(0), shape={"x": [4, 2]})


def test_inputs_files_are_checked_against_the_model(tmp_path):
    [m] = repository.scan(MLSERVER_REPO)
    assert len(repository.read_inputs_file(MLSERVER_REPO / "inputs.json", m)) == 2
    good = {"name": "input", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}
    for change, message in ((dict(name="x"), r"inputs \['x'\], the model's are \['input'\]"),
                            (dict(datatype="INT64"), "input 'input' is INT64, the model's is FP32"),
                            (dict(shape=[1, 3], data=[1, 2, 3]), r"input 'input' has shape \[1, 3\], the model's is \[-1, 4\]"),
                            (dict(data=[1, 2]), r"input 'input' has 2 values for shape \[1, 4\]")):
        f = tmp_path / "in.json"
        f.write_text(json.dumps([{"inputs": [{**good, **change}]}]))
        with pytest.raises(ParamError, match="inputs_file.*'trees': request 0: " + message):
            repository.read_inputs_file(f, m)
    with pytest.raises(ParamError, match="inputs_file.*an existing file"):
        repository.read_inputs_file(tmp_path / "none.json", m)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ParamError, match="inputs_file.*JSON"):
        repository.read_inputs_file(tmp_path / "bad.json", m)


# ---------------------------------------------------------------- served as they are

@pytest.mark.slow
@pytest.mark.parametrize("runtime, repo", [("triton", TRITON_REPO), ("mlserver", MLSERVER_REPO)])
def test_repository_served_as_it_is(runtime, repo, tmp_path, no_leftovers):
    """The user's folder is the server's store, untouched; generated requests and the inputs
    file's are answered with the declared outputs; a deterministic model answers the same
    request the same way (checked against its first answer)."""
    from test_runtimes import ensure_env, start_server
    rt = ensure_env(runtime)
    [m] = repository.scan(repo)
    repository.check_runtime([m], runtime)
    store = tmp_path / "store"
    shutil.copytree(repo, store, ignore=shutil.ignore_patterns("inputs.json"))
    bodies = [repository.generated_inputs(m.inputs, np.random.default_rng(i)) for i in range(2)]
    bodies += repository.read_inputs_file(repo / "inputs.json", m)
    with Supervisor(log_dir=tmp_path / "logs") as sup:
        srv = start_server(rt, sup, store, tmp_path / "srv", "user", [m.name])
        c = srv["client"]
        url = f"{srv['url']}/v2/models/{m.name}/infer"
        for body in bodies:
            r1 = c.session.post(url, json=body, timeout=60)
            assert r1.status_code == 200, r1.text
            out = r1.json()["outputs"]
            rows = body["inputs"][0]["shape"][0]
            want = {t.name: (t.datatype, [rows] + t.shape[1:]) for t in m.outputs}
            assert {o["name"]: (o["datatype"], o["shape"]) for o in out} == want
            again = decode_outputs(c.session.post(url, json=body, timeout=60).json())
            first = decode_outputs(r1.json())
            assert all(np.array_equal(first[k], again[k]) for k in first)
            if runtime == "triton":  # the user's model: y = 2 x
                x = np.asarray(body["inputs"][0]["data"], dtype=np.float32).reshape(body["inputs"][0]["shape"])
                assert np.allclose(first["y"], 2 * x)
        c.session.close()


# ---------------------------------------------------------------- the 'repository' workload (#23 part 2)

def _two_triton_models(root: Path) -> Path:
    """double (y = 2x, [-1, 3]) and its copy 'twice' (a top-level name the folder must win over)."""
    shutil.copytree(TRITON_REPO / "double", root / "double")
    shutil.copytree(TRITON_REPO / "double", root / "twice")
    cfg = root / "twice" / "config.pbtxt"
    cfg.write_text(cfg.read_text().replace('name: "double"', 'name: "twice"'))
    return root


def _workload(repo, runtime, **kw):
    from types import SimpleNamespace
    from mmslib.workloads import get_workload
    return get_workload("repository", SimpleNamespace(model_repository=str(repo), runtime=runtime,
                                                      inputs_file=kw.get("inputs_file"), shape=kw.get("shape"), seed=0))


def test_replicas_round_robin_in_each_native_layout(tmp_path):
    from mmslib.runtimes import get_runtime
    repo = _two_triton_models(tmp_path / "repo")
    w = _workload(repo, "triton")
    store = tmp_path / "store"
    for i in range(4):
        get_runtime("triton").write_model(store, w, f"m{i:05d}")
    for i, src in enumerate(["double", "twice", "double", "twice"]):
        d = store / f"m{i:05d}"
        cfg = (d / "config.pbtxt").read_text()
        assert repository._pbtxt_field(cfg, "name") == f"m{i:05d}"         # Triton wants the folder's name
        assert cfg.replace(f'"m{i:05d}"', '"x"') == (repo / src / "config.pbtxt").read_text().replace(f'"{src}"', '"x"')
        assert (d / "1" / "model.py").read_bytes() == (repo / src / "1" / "model.py").read_bytes()
        assert w.facts(f"m{i:05d}") == {"family": "triton:python", "artifact_bytes": repository.folder_bytes(
            repo / src), "source_model": src}
    assert sorted(p.name for p in store.iterdir()) == [f"m{i:05d}" for i in range(4)]   # no temporary left
    # MLServer layout: a copy named for the replica, its model file beside
    w = _workload(MLSERVER_REPO, "mlserver")
    get_runtime("mlserver").write_model(tmp_path / "mls", w, "cycle3")
    settings = json.loads((tmp_path / "mls" / "cycle3" / "model-settings.json").read_text())
    assert settings["name"] == "cycle3" and settings["implementation"] == "mlserver_lightgbm.LightGBMModel"
    assert (tmp_path / "mls" / "cycle3" / "model.txt").read_bytes() == (MLSERVER_REPO / "trees" / "model.txt").read_bytes()


def test_renamed_config_touches_the_model_name_only():
    text = 'input [\n  {\n    name: "x"\n  }\n]\nname: "old"  # the model\nbackend: "python"\n'
    assert repository.renamed_config(text, "m1") == text.replace('"old"', '"m1"')
    assert repository.renamed_config('backend: "python"\ninput [ { name: "x" } ]\n', "m1").startswith('name: "m1"\n')
    assert repository._pbtxt_field(text, "name") == "old"


def test_plain_files_laid_out_by_each_runtime(tmp_path):
    from mmslib.runtimes import get_runtime
    from mmslib.workloads import load_artifact
    from mmslib.workloads import lightgbm_trees as lgbm
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(MLSERVER_REPO / "trees" / "model.txt", repo / "gbm.txt")
    d = lgbm.make_workload(n_trees=2, depth=2, n_samples=50, n_features=5).write_artifact(tmp_path / "w", "w")
    shutil.copy(d / "model.txt", repo / "wide.txt")
    for rt in ("kserve", "triton", "mlserver"):
        w = _workload(repo, rt)
        store = tmp_path / rt
        for m in ("m00000", "m00001"):
            get_runtime(rt).write_model(store, w, m)
        art = store / "m00001" / ("1/artifact" if rt == "triton" else "")
        assert json.loads((art / "mmslib-repository.json").read_text())["source_model"] == "wide"
        assert json.loads((art / "model-settings.json").read_text())["implementation"] == "mlserver_lightgbm.LightGBMModel"
        if rt == "triton":  # config.pbtxt carries each replica's own tensors
            assert "dims: [ -1, 4 ]" in (store / "m00000" / "config.pbtxt").read_text()
            assert "dims: [ -1, 5 ]" in (store / "m00001" / "config.pbtxt").read_text()
        pred = load_artifact(art)    # what kserve and Triton's stub load
        s = w.sample("m00001", np.random.default_rng(0))
        x = s.inputs["input"]
        import lightgbm as lgb
        want = lgb.Booster(model_file=str(repo / "wide.txt")).predict(x).reshape(-1, 1)
        got = pred.predict(s.inputs)["predict"]
        assert got.dtype == np.float64 and np.array_equal(got, want)
        assert w.check({"predict": got}, s.expected)
    assert _workload(repo, "kserve").sample("m00000", np.random.default_rng(0)).inputs["input"].shape == (1, 4)


def test_answers_checked_against_the_metadata_and_the_first_answer():
    w = _workload(TRITON_REPO, "triton")
    s = w.sample("m00000", np.random.default_rng(0))
    y = {"y": (2 * s.inputs["x"]).astype(np.float32)}
    assert not w.check({"y": y["y"].astype(np.float64)}, s.expected)         # datatype
    assert not w.check({"y": y["y"][:, :2]}, s.expected)                      # a fixed dimension
    assert not w.check({"z": y["y"]}, s.expected)                             # names
    assert w.check(y, s.expected)                                             # first answer: recorded
    assert w.check({"y": y["y"].copy()}, s.expected)
    again = w.sample("m00004", np.random.default_rng(0))                       # another replica, same request
    assert again.expected.key == s.expected.key and w.check(y, again.expected)
    assert not w.check({"y": y["y"] + 1}, again.expected)                     # answers differently: wrong
    assert not w.check(y, {})                                                  # not a repository's request


@pytest.mark.parametrize("kw, message", [
    (dict(model_repository="NOWHERE"), "model_repository.*does not exist"),
    (dict(model_repository="EMPTY"), "model_repository.*found none of these"),
    (dict(model_repository=TRITON_REPO, runtime="kserve"),
     r"runtime.*'kserve'.*triton \(model 'double', triton:python, is served by triton only\)"),
    (dict(model_repository=MLSERVER_REPO, runtime="mlserver", inputs_file=TRITON_REPO / "inputs.json"),
     r"inputs_file.*'trees': request 0: inputs \['x'\], the model's are \['input'\]"),
    (dict(model_repository=TRITON_REPO, runtime="triton", shape="y:2,3"), r"shape.*shapes of the models' inputs: x"),
    (dict(model_repository=TRITON_REPO, runtime="triton", shape="x:4,2"), r"shape.*fits \[-1, 3\]"),
    (dict(model_repository=TRITON_REPO, runtime="triton", shape="x=4"), "shape.*perf_analyzer"),
    (dict(model_repository=TRITON_REPO, runtime="triton", shape="x:4,3", inputs_file=TRITON_REPO / "inputs.json"),
     "shape.*None with inputs_file"),
    (dict(model_repository=TRITON_REPO, runtime="triton", workload="simple_string"),
     "model_repository.*None with workload 'simple_string', or workload '?repository'? to serve"),
    (dict(model_repository=None), "model_repository.*a folder of your models"),
    (dict(model_repository=None, workload="simple_string", inputs_file=TRITON_REPO / "inputs.json"),
     "inputs_file.*None without model_repository"),
    (dict(model_repository="NO_INPUTS", runtime="mlserver"), "inputs_file.*model 'trees' declares no inputs"),
], ids=["missing", "unknown-layout", "runtime", "inputs-file", "shape-name", "shape-fit", "shape-form",
        "shape-and-file", "other-workload", "no-folder", "file-without-folder", "no-metadata"])
def test_each_bad_input_refused_before_anything_starts(tmp_path, kw, message):
    from mmslib import params
    repo = kw.get("model_repository")
    if repo == "NOWHERE":
        kw["model_repository"] = tmp_path / "nowhere"
    elif repo == "EMPTY":
        kw["model_repository"] = tmp_path
    elif repo == "NO_INPUTS":
        shutil.copytree(MLSERVER_REPO, tmp_path / "r")
        f = tmp_path / "r" / "trees" / "model-settings.json"
        f.write_text(json.dumps({k: v for k, v in json.loads(f.read_text()).items() if k != "inputs"}))
        kw["model_repository"] = tmp_path / "r"
    kw = {"workload": "repository", **{k: (str(v) if isinstance(v, Path) else v) for k, v in kw.items()}}
    with pytest.raises(ParamError, match=message):
        params.stress(output_dir=str(tmp_path / "out"), **kw)
    assert not (tmp_path / "out").exists()


def test_coldstart_checks_each_runtime_it_uses(tmp_path):
    from mmslib import params
    kw = dict(workload="repository", model_repository=str(MLSERVER_REPO), output_dir=str(tmp_path / "o"))
    p = params.coldstart(sections=["load_unload"], runtimes=["mlserver"], **kw)
    assert p.cycles_count() == 1000 and p.model_memory_bytes() == 2 << 20      # 1 MiB + the 4.7 KB model
    with pytest.raises(ParamError, match=r"runtimes.*'kserve'.*model 'trees'"):
        params.coldstart(sections=["load_unload"], runtimes=["mlserver", "kserve"], **kw)
    # lazy: the runtime that loads on first request must serve every model
    kw.update(sections=["lazy"], runtime="mlserver")
    with pytest.raises(ParamError, match="no lazy loading"):
        params.coldstart(**kw)


def _mixed_repository(tmp_path) -> Path:
    """Two LightGBM models taking different inputs: the test data's (4 features) and a 5-feature one."""
    from mmslib.workloads import lightgbm_trees as lgbm
    (tmp_path / "r").mkdir()
    shutil.copy(MLSERVER_REPO / "trees" / "model.txt", tmp_path / "r" / "gbm.txt")
    d = lgbm.make_workload(n_trees=2, depth=2, n_samples=50, n_features=5).write_artifact(tmp_path / "w", "w")
    shutil.copy(d / "model.txt", tmp_path / "r" / "wide.txt")
    return tmp_path / "r"


@pytest.mark.slow
def test_coldstart_lazy_sends_each_model_its_own_inputs(tmp_path, no_leftovers):
    """Models with different inputs behind one lazy host: each gets a request of its own shape
    and its answer is checked; every request of every cell answered (a single body for all
    models, as before, fails every request to the other model)."""
    from mmslib import coldstart, params
    repo = _mixed_repository(tmp_path)
    widths = sorted(m.inputs[0].shape[-1] for m in repository.scan(repo))
    assert widths == [4, 5]
    p = params.coldstart(workload="repository", model_repository=str(repo), sections=["lazy"], runtime="kserve",
                         models=4, capacity="[2, 4]", zipf_alpha="[0.5]", qps=10, duration_s=3, warmup_s=1,
                         output_dir=str(tmp_path / "o"))
    r = coldstart.run(p, progress=False)
    recs = r.lazy_records
    assert len(recs) >= 2 * 30 and recs["ok"].all(), recs.loc[~recs["ok"], ["name", "model", "status"]].head()
    assert set(recs["model"]) == {"m00000", "m00001", "m00002", "m00003"}   # both source models asked
    lz = r.lazy_summary()
    assert (lz["errors"] == 0).all() and lz["counts_agree"].all()


@pytest.mark.slow
@pytest.mark.parametrize("runtime, repo, stress_inputs, modes", [
    ("triton", TRITON_REPO, False, ["traditional", "mms"]), ("mlserver", MLSERVER_REPO, True, ["mms"])],
    ids=["triton-layout", "mlserver-layout"])
def test_stress_and_performance_serve_the_repository(runtime, repo, stress_inputs, modes, tmp_path, no_leftovers):
    """Each layout through stress and performance, once with generated inputs and once with its
    inputs file: three replicas of the user's one model deployed and verified (outputs, datatypes,
    shapes, first answers), every step recording the model's family and size; k6's requests all
    answered."""
    from mmslib import params, performance, stress
    from test_runtimes import ensure_env
    ensure_env(runtime)
    [m] = repository.scan(repo)
    kw = dict(workload="repository", model_repository=str(repo), runtime=runtime)
    inputs = dict(inputs_file=str(repo / "inputs.json"))
    p = params.stress(models=3, modes=modes, verify_sample=3, output_dir=str(tmp_path / "s"),
                      **kw, **(inputs if stress_inputs else {}))
    r = stress.run(p, progress=False)
    s = r.summary.set_index("mode")
    assert (s["models_deployed"] == 3).all() and s["verify_ok"].all() and (s["verified_correct"] == 3).all(), \
        s[["models_deployed", "verify_failures"]]
    assert (s["family"] == m.format).all() and (s["artifact_bytes"] == m.bytes).all()
    assert set(r.steps["source_model"]) == {m.name} and r.steps["artifact_bytes"].eq(m.bytes).all()
    q = params.performance(models=2, modes=["mms"], qps=[10], duration_s=2, warmup_s=0.5,
                           output_dir=str(tmp_path / "p"), **kw, **({} if stress_inputs else inputs))
    res = performance.run(q, progress=False)
    row = res.summary.iloc[0]
    assert row["errors"] == 0 and row["n"] >= 10 and res.records["ok"].all(), row.to_dict()


@pytest.mark.slow
def test_notebooks_with_a_tiny_repository(tmp_path, no_leftovers):
    """The four experiment notebooks through papermill on the tiny repositories (both layouts,
    generated inputs, an inputs file, a shape), then the report notebook over their runs: models
    per host and cold start vs size for the user's model, the seed's simple_string beside it."""
    import pandas as pd
    import scrapbook as sb
    from conftest import papermill
    from test_runtimes import ensure_env
    ensure_env("mlserver")
    ensure_env("triton")
    runs = tmp_path / "runs"
    mls = ["-p", "workload", "repository", "-p", "model_repository", MLSERVER_REPO]
    tri = ["-p", "workload", "repository", "-p", "model_repository", TRITON_REPO, "-p", "runtime", "triton"]
    todo = {
        "stress": mls + ["-p", "runtime", "mlserver", "-p", "models", "2", "-p", "modes", "mms",
                         "-p", "verify_sample", "2", "-p", "inputs_file", MLSERVER_REPO / "inputs.json"],
        "coldstart": mls + ["-p", "runtimes", "[mlserver]", "-p", "sections", "[load_unload]", "-p", "cycles", "4"],
        "performance": tri + ["-p", "models", "2", "-p", "modes", "mms", "-p", "qps", "[10]", "-p", "duration_s", "2",
                              "-p", "warmup_s", "0.5", "-p", "inputs_file", TRITON_REPO / "inputs.json"],
        "traffic": tri + ["-p", "shape", "x:2,3", "-p", "models", "[2]", "-p", "modes", "[mms]", "-p", "rates", "[10]",
                          "-p", "cv", "[1]", "-p", "duration_s", "2", "-p", "warmup_s", "0.5", "-p", "slo_ms", "500"],
    }
    for nb, args in todo.items():
        r = papermill(f"{nb}.ipynb", tmp_path / f"{nb}.ipynb", *args, "-p", "output_dir", runs / nb, timeout=300)
        assert r.returncode == 0, (nb, r.stderr[-3000:])
    s = sb.read_notebook(str(tmp_path / "stress.ipynb")).scraps["stress_summary"].data.iloc[0]
    assert s["models_deployed"] == 2 and s["verify_ok"] and s["workload"] == "repository"
    perf = sb.read_notebook(str(tmp_path / "performance.ipynb")).scraps["perf_summary"].data.iloc[0]
    assert perf["errors"] == 0 and perf["n"] >= 10
    traffic = sb.read_notebook(str(tmp_path / "traffic.ipynb")).scraps["traffic_summary"].data.iloc[0]
    assert traffic["n"] >= 10
    r = papermill("report.ipynb", tmp_path / "report.ipynb", "-p", "input_dir", runs, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    mph = pd.read_csv(runs / "report" / "report_models_per_host.csv")
    cs = pd.read_csv(runs / "report" / "report_cold_start_vs_size.csv")
    [m] = repository.scan(MLSERVER_REPO)
    ours = mph[mph["source_model"] == "trees"].set_index("source")
    assert set(ours.index) == {"stress mms", "coldstart load/unload"}
    assert (ours["artifact_bytes"] == m.bytes).all() and (ours["models_per_host"] > 0).all()
    assert mph.loc[mph["source"] == "seed", "deployed_per_host"].iloc[0] == pytest.approx(10_000 / 6)
    cold = cs[cs["source"] == "coldstart load/unload"].iloc[0]
    assert cold["family"] == m.format and cold["loads"] == 3 and 0 < cold["load_ms_p50"] < cold["first_load_ms"]
