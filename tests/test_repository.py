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
