"""The model families (sklearn_forest, lightgbm_trees, onnx_mlp): built small (a few KiB),
served by each runtime that claims them on real servers on 127.0.0.1, answering correctly;
load and unload times and the PSS a load adds are printed (``-s``), not asserted.

Every build here goes to a per-session cache (``MMSLIB_FAMILY_CACHE``), so the tests do not
depend on (or fill) the user's cache."""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import pytest

from mmslib import params, resources
from mmslib.errors import ParamError
from mmslib.procs import Supervisor, tree_pids
from mmslib.workloads import families, get_workload, load_artifact, lightgbm_trees, onnx_mlp, sized_workloads, \
    sklearn_forest

MODULES = {"sklearn_forest": sklearn_forest, "lightgbm_trees": lightgbm_trees, "onnx_mlp": onnx_mlp}
#: A few KiB each.
TINY = {"sklearn_forest": dict(n_estimators=3, n_samples=20, n_features=4),
        "lightgbm_trees": dict(n_trees=3, depth=3, n_samples=100, n_features=4),
        "onnx_mlp": dict(width=8, depth=2, n_features=4)}


@pytest.fixture(autouse=True, scope="module")
def family_cache(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    path = tmp_path_factory.mktemp("family-cache")
    mp.setenv("MMSLIB_FAMILY_CACHE", str(path))
    yield path
    mp.undo()


def tiny(name):
    return MODULES[name].make_workload(**TINY[name])


def model_bytes(d: Path) -> int:
    return sum(f.stat().st_size for f in Path(d).iterdir() if f.name.startswith("model."))


# ---------------------------------------------------------------- no server

@pytest.mark.parametrize("name", MODULES)
def test_tiny_model_answers_and_weighs_what_it_declares(name, tmp_path):
    w = tiny(name)
    assert w.name == name and w.exact and name in sized_workloads()
    d = w.write_artifact(tmp_path / "m0", "m0")
    real = model_bytes(d)
    assert real < 64 << 10, real                                   # a few KiB
    assert abs(real - w.artifact_bytes) <= 0.3 * real + 2048, (real, w.artifact_bytes)
    pred = load_artifact(d)
    assert [t.to_dict() for t in pred.inputs] == [t.to_dict() for t in w.inputs]
    rng = np.random.default_rng(3)
    answers = set()
    for _ in range(5):
        s = w.make_sample(rng)
        out = pred.predict(s.inputs)
        assert out["predict"].shape == (1, 1) and w.check(out, s.expected)
        wrong = {"predict": out["predict"] + 0.5}
        assert not w.check(wrong, s.expected)                      # the check can fail
        assert not w.check({"predict": out["predict"].reshape(1)}, s.expected)
        answers.add(float(out["predict"][0, 0]))
    assert len(answers) > 1                                         # the input matters
    with pytest.raises(ValueError, match="must be FP32"):
        pred.predict({"input": np.zeros((1, 99), dtype=np.float32)})
    with pytest.raises(ValueError, match="missing input"):
        pred.predict({"x": np.zeros((1, 4), dtype=np.float32)})


@pytest.mark.parametrize("name", MODULES)
def test_same_knobs_same_model_bytes(name, tmp_path, monkeypatch):
    a = tiny(name).write_artifact(tmp_path / "a", "a")
    monkeypatch.setenv("MMSLIB_FAMILY_CACHE", str(tmp_path / "other-cache"))
    families._references.clear()
    b = tiny(name).write_artifact(tmp_path / "b", "b")
    model_file = MODULES[name].FAMILY.model_file
    assert (a / model_file).read_bytes() == (b / model_file).read_bytes()
    assert (a / model_file).stat().st_ino != (b / model_file).stat().st_ino  # each model its own copy


@pytest.mark.parametrize("name", MODULES)
def test_model_size_sets_the_size(name, tmp_path):
    size = 256 << 10
    w = MODULES[name].make_workload(size)
    assert abs(w.artifact_bytes - size) <= 0.05 * size
    real = model_bytes(w.write_artifact(tmp_path / "m", "m"))
    assert abs(real - size) <= 0.15 * size, (real, size)
    assert w.memory_estimate_bytes >= real


def test_mlserver_settings_name_its_own_runtimes(tmp_path):
    for name, impl in (("sklearn_forest", "mlserver_sklearn.SKLearnModel"),
                       ("lightgbm_trees", "mlserver_lightgbm.LightGBMModel"), ("onnx_mlp", None)):
        d = tiny(name).write_artifact(tmp_path / name, name)
        f = d / "model-settings.json"
        if impl is None:
            assert not f.exists()
            continue
        s = json.loads(f.read_text())
        assert s["implementation"] == impl and (d / s["parameters"]["uri"]).is_file()
        assert s["outputs"] == [{"name": "predict", "datatype": "FP64", "shape": [1, 1]}]


def test_bad_knobs_name_the_knob():
    with pytest.raises(ParamError, match="n_estimators"):
        sklearn_forest.make_workload(n_estimators=0)
    with pytest.raises(ParamError, match="depth"):
        lightgbm_trees.make_workload(depth="deep")
    with pytest.raises(ParamError, match="a knob of onnx_mlp"):
        onnx_mlp.make_workload(layers=3)


def test_model_size_parameter(tmp_path):
    p = params.stress(workload="onnx_mlp", model_size="10Mi", output_dir=str(tmp_path / "o"))
    w = get_workload(p.workload, p)
    assert abs(w.artifact_bytes - (10 << 20)) < (1 << 20) * 0.5 and w.extra["knobs"]["width"] > 800
    assert get_workload("onnx_mlp", params.stress(workload="onnx_mlp", output_dir=str(tmp_path / "o"))
                        ).extra["knobs"] == onnx_mlp.DEFAULTS
    with pytest.raises(ParamError, match="model_size.*None .workload 'simple_string' has one size"):
        params.stress(model_size="10Mi", output_dir=str(tmp_path / "o"))
    for bad in ("ten", "0", "8Gi"):
        with pytest.raises(ParamError, match="model_size"):
            params.performance(workload="sklearn_forest", model_size=bad, output_dir=str(tmp_path / "o"))


# ---------------------------------------------------------------- real servers

@pytest.fixture(scope="module", params=("kserve", "triton", "mlserver"))
def family_server(request, tmp_path_factory, family_cache):
    from test_runtimes import ensure_env, start_server
    rt = ensure_env(request.param)
    tmp = tmp_path_factory.mktemp(f"families-{rt.name}")
    store = tmp / "store"
    rt.prepare_store(store)
    ws = {name: tiny(name) for name in MODULES}
    ws["simple_string"] = get_workload("simple_string")
    for name, w in ws.items():
        rt.write_model(store, w, name)
    with Supervisor(log_dir=tmp / "logs") as sup:
        srv = start_server(rt, sup, store, tmp / "servers", "fam", [])
        srv.update(rt=rt, ws=ws)
        yield srv


def _pss(srv) -> float:
    return resources.memory_of(tree_pids(srv["proc"].pid))["pss_mib"]


@pytest.mark.slow
def test_each_family_served_loaded_and_unloaded(family_server):
    srv, c = family_server, family_server["client"]
    rows = []
    for name, w in srv["ws"].items():
        pss0 = _pss(srv)
        t0 = time.monotonic()
        r = c.load(name)
        load_ms = (time.monotonic() - t0) * 1e3
        assert r.status_code == 200, f"{srv['rt'].name} {name}: {r.status_code} {r.text[:300]}"
        assert c.model_ready(name)
        rng = np.random.default_rng(11)
        for _ in range(3):
            s = w.make_sample(rng)
            assert w.check(c.infer(name, s.inputs), s.expected), (srv["rt"].name, name)
        pss1 = _pss(srv)
        if name != "simple_string":  # the V2 metadata says what the workload declares
            meta = c.session.get(f"{srv['url']}/v2/models/{name}", timeout=30).json()
            assert [(i["name"], i["datatype"], list(i["shape"])) for i in meta["inputs"]] == \
                [("input", "FP32", [1, 4])], meta
            body = c.session.post(f"{srv['url']}/v2/models/{name}/infer", json={"inputs": [
                {"name": "input", "datatype": "FP32", "shape": [1, 4], "data": [0.1, 0.2, 0.3, 0.4]}]},
                timeout=30).json()
            out = body["outputs"][0]
            assert out["name"] == "predict" and out["shape"] == [1, 1], body
            native = (out.get("parameters") or {}).get("content_type") == "np"  # MLServer's NumpyCodec
            assert native == (srv["rt"].name == "mlserver" and w.extra["mlserver_implementation"] is not None), body
        t0 = time.monotonic()
        r = c.unload(name)
        unload_ms = (time.monotonic() - t0) * 1e3
        assert r.status_code == 200, r.text
        deadline = time.monotonic() + 20
        while c.model_ready(name) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not c.model_ready(name)
        rows.append(f"{srv['rt'].name:9} {name:15} {w.artifact_bytes / 1024:7.1f} KiB  load {load_ms:7.1f} ms  "
                    f"unload {unload_ms:6.1f} ms  PSS +{pss1 - pss0:6.1f} MiB")
    print("\n" + "\n".join(rows))


@pytest.mark.slow
def test_stress_and_performance_with_a_family(tmp_path, no_leftovers):
    """The experiments run a family as they run simple_string: stress on MLServer (its own sklearn
    runtime), performance on kserve with k6 checking every answer (FP64, exact)."""
    from mmslib import performance, stress
    from test_runtimes import ensure_env
    ensure_env("mlserver")
    p = params.stress(workload="sklearn_forest", model_size="64Ki", models=2, modes=["mms"], runtime="mlserver",
                      verify_sample=2, output_dir=str(tmp_path / "stress"))
    s = stress.run(p, progress=False).summary.iloc[0]
    assert s["models_deployed"] == 2 and s["verify_ok"] and s["verified_correct"] == 2, s.to_dict()
    q = params.performance(workload="lightgbm_trees", model_size="64Ki", models=2, modes=["mms"], qps=[20],
                           duration_s=2, warmup_s=1, output_dir=str(tmp_path / "perf"))
    r = performance.run(q, progress=False)
    row = r.summary.iloc[0]
    assert row["errors"] == 0 and row["n"] >= 30 and r.records["ok"].all(), row.to_dict()


# ---------------------------------------------------------------- what the results say (#23 part 3)

def test_each_family_declares_its_facts_per_model():
    w = get_workload("sklearn_forest", params.stress(workload="sklearn_forest", model_size="64Ki",
                                                     output_dir="/tmp/unused-families-facts"))
    assert w.facts("m00007") == {"family": "sklearn_forest", "artifact_bytes": w.artifact_bytes}
    assert get_workload("simple_string").facts() == {"family": "simple_string", "artifact_bytes": 700}


def _synthetic_runs(root: Path):
    """A stress run of a 64 KiB forest (hosts at 100 MiB, each model +10 MiB, recorded facts) and a
    coldstart run of simple_string (facts not recorded: the declaration's), with known times."""
    import pandas as pd
    from mmslib.rundir import RunDir
    p = {"workload": "sklearn_forest", "model_size": "64Ki", "runtime": "kserve", "backend": "local", "hosts": 1,
         "models": 5, "modes": ["mms"], "mms_predictor_memory": "1Gi", "model_memory": None}
    rd = RunDir(root / "stress", "stress", p, "k1")
    secs = [0.5, 0.02, 0.03, 0.04, 0.05]
    rd.save("steps", pd.DataFrame([{"mode": "mms", "step": i + 1, "model": f"m{i:05d}", "ok": True, "seconds": s,
                                    "measured": True, "servers": 1, "pss_mib": 100.0 + 10 * (i + 1),
                                    "family": "sklearn_forest", "artifact_bytes": 65536} for i, s in enumerate(secs)]))
    rd.save_json("summary", {"modes": [{"mode": "mms", "models_deployed": 5, "pss_hosts_mib": 100.0}]})
    rd.finish("complete")
    p = {"workload": "simple_string", "runtime": "kserve", "backend": "local", "hosts": 1, "mms_predictor_memory": "10Gi"}
    rd = RunDir(root / "cold", "coldstart", p, "k2")
    rd.save("cycles/kserve", pd.DataFrame({
        "runtime": "kserve", "workload": "simple_string", "cycle": range(4), "model": [f"cycle{i}" for i in range(4)],
        "load_s": [0.004, 0.001, 0.002, 0.003], "load_ok": True, "unload_s": [0.001, 0.001, 0.003, 0.001],
        "unload_ok": True, "pss_loaded_mib": [60.0, 60.5, 60.5, 60.5], "pss_after_mib": 60.0}))
    rd.finish("complete")


def test_report_models_per_host_and_cold_start_vs_size(tmp_path):
    """By hand: the forest adds 10 MiB per model (1 GiB host: 102 models; it declares 1 MiB + 64 KiB
    -> 2 MiB, which admits 512), its loads after the first take 20-50 ms; simple_string adds 0.5 MiB
    (20,480 by PSS, but its 1 MiB declaration admits 10,240), its loads after the first 1-3 ms."""
    from mmslib import report
    from mmslib.report import families as fam
    _synthetic_runs(tmp_path)
    S = report.families_section(report.collect(tmp_path))
    mph = S.models_per_host.set_index("family")
    forest, ss = mph.loc["sklearn_forest"], mph.loc["simple_string"]
    assert (forest["pss_added_mib"], forest["loads"], forest["fit_by_pss"], forest["declared_mib"]) == (10.0, 4, 102, 2)
    assert (forest["models_per_host"], forest["bound_by"], forest["deployed_per_host"]) == (102, "measured PSS", 5)
    ss = ss[ss["source"] != "seed"].iloc[0]
    assert (ss["pss_added_mib"], ss["fit_by_pss"], ss["admitted"], ss["models_per_host"]) == (0.5, 20480, 10240, 10240)
    assert ss["bound_by"] == "declared memory (admission)" and ss["artifact_bytes"] == 700 and ss["reference"]
    assert mph.loc["simple_string"].query("source == 'seed'")["deployed_per_host"].iloc[0] == pytest.approx(10_000 / 6)
    cs = S.cold_start.set_index("family")
    assert cs.loc["sklearn_forest", ["loads", "load_ms_p50", "load_ms_max", "first_load_ms", "first_pss_added_mib"]
                  ].tolist() == pytest.approx([4, 35.0, 50.0, 500.0, 10.0])
    assert cs.loc["simple_string", ["loads", "load_ms_p50", "unload_ms_p50", "first_load_ms"]].tolist() == \
        pytest.approx([3, 2.0, 1.0, 4.0])
    assert "from 102 (sklearn_forest 64 KiB, kserve)" in S.text
    assert fam.plot_models_per_host(S.models_per_host) is not None and fam.plot_cold_start(S.cold_start) is not None
    empty = report.families_section(report.collect(tmp_path / "none"))
    assert len(empty.per_model) == 0 and empty.text == "" and fam.plot_cold_start(empty.cold_start) is None


# ---------------------------------------------------------------- performance deploys, per model

@pytest.fixture(scope="module")
def forest_performance(tmp_path_factory, family_cache):
    """A small performance run of a 64 KiB forest, both modes, 3 models on one host (kserve runtime)."""
    from mmslib import performance
    out = tmp_path_factory.mktemp("forest-perf") / "perf"
    p = params.performance(workload="sklearn_forest", model_size="64Ki", models=3, qps=[20], duration_s=1,
                           warmup_s=0.5, output_dir=str(out))
    performance.run(p, progress=False)
    return p, out


def test_performance_records_each_model_deployed(forest_performance, tmp_path):
    import pandas as pd
    p, out = forest_performance
    dm = pd.read_parquet(out / "deploy_models.parquet")
    assert sorted(map(tuple, dm[["mode", "model"]].values.tolist())) == sorted(
        (mode, f"m{i:05d}") for mode in ("traditional", "mms") for i in range(3))
    assert dm["ok"].all() and (dm["seconds"] > 0).all() and (dm["admitted_s"] > 0).all(), dm
    assert (dm["models"] == 3).all() and (dm["deploy_concurrency"] == p.deploy_concurrency).all()
    # what the forest weighs on disk (the same knobs build the same bytes), not what it declares
    real = model_bytes(get_workload("sklearn_forest", p).write_artifact(tmp_path / "m", "m"))
    assert (dm["family"] == "sklearn_forest").all()
    assert dm["artifact_bytes"].nunique() == 1 and abs(dm["artifact_bytes"].iloc[0] - real) <= 0.15 * real, real


def test_report_cold_start_vs_size_from_performance_deploys(forest_performance):
    """Every model a performance run deployed is a load in cold start vs size: the host's first (it
    imports sklearn) kept apart in mms, none in traditional (a server each); the PSS a model added,
    measured once per deploy (deploy.json), on every load but the first ones; models per host from
    the mms deploy."""
    import pandas as pd
    from mmslib import report
    from mmslib.report import families as fam
    _, out = forest_performance
    runs = report.collect(out.parent)
    pm = fam.per_model(runs)
    dm = pd.read_parquet(out / "deploy_models.parquet")
    deploys = {r["mode"]: r for r in json.loads((out / "deploy.json").read_text())}
    for mode in ("mms", "traditional"):
        rows = pm[pm["source"] == f"performance {mode}"].set_index("model").sort_index()
        want = dm[dm["mode"] == mode].set_index("model").sort_index()
        assert list(rows.index) == ["m00000", "m00001", "m00002"]
        assert rows["load_ms"].tolist() == pytest.approx((want["seconds"] * 1e3).tolist())
        assert (rows["family"] == "sklearn_forest").all()
        assert rows["unload_ms"].isna().all() and (rows["experiment"] == "performance").all()
        added = deploys[mode]["pss_added_per_model_mib"]
        assert added > 0, deploys[mode]   # a forest with sklearn loaded weighs something
        assert rows.loc[~rows["first"], "pss_added_mib"].tolist() == pytest.approx([added] * int((~rows["first"]).sum()))
        assert rows.loc[rows["first"], "pss_added_mib"].isna().all()
    assert pm[pm["source"] == "performance mms"]["first"].sum() == 1          # hosts=1
    assert not pm[pm["source"] == "performance traditional"]["first"].any()
    cs = fam.cold_start_vs_size(pm).set_index("source")
    mms, trad = cs.loc["performance mms"], cs.loc["performance traditional"]
    assert (mms["loads"], trad["loads"]) == (2, 3) and mms["family"] == trad["family"] == "sklearn_forest"
    assert mms["artifact_bytes"] == dm["artifact_bytes"].iloc[0]
    m = pm[(pm["source"] == "performance mms")]
    assert mms["first_load_ms"] == pytest.approx(m[m["first"]]["load_ms"].iloc[0])
    assert trad["load_ms_p50"] == pytest.approx(pm[pm["source"] == "performance traditional"]["load_ms"].median())
    mph = fam.models_per_host(pm, runs, include_seed=False).set_index("source")
    assert "performance traditional" not in mph.index        # a server per model is not a host's share
    row = mph.loc["performance mms"]
    assert row["loads"] == 2 and row["pss_added_mib"] == pytest.approx(deploys["mms"]["pss_added_per_model_mib"])
    assert row["fit_by_pss"] == math.floor(row["host_memory_mib"] / row["pss_added_mib"])
    S = fam.families_section(runs, include_seed=False)
    assert "performance" in S.text and fam.plot_cold_start(S.cold_start) is not None
