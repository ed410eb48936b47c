"""mmslib.report and notebooks/report.ipynb, on real executed notebooks.

A session fixture executes notebooks/stress.ipynb and notebooks/performance.ipynb
once (small parameters, ~75 s); every test reads those.  Variants (kserve backend,
triton/mlserver runtimes, bert, a GPU machine, repeats) are the real notebooks with
their glued scraps edited, so the report's tolerance is tested without running them.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest

from mmslib import report, seed

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def _papermill(src, dst, *params, cwd=ROOT):
    args = [PY, "-m", "papermill", str(src), str(dst), "--no-progress-bar"]
    for name, value in params:
        args += ["-p", name, str(value)]
    return subprocess.Popen(args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait(proc, what, timeout=300):
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"{what} failed:\n{out[-3000:]}"


@pytest.fixture(scope="session")
def executed(tmp_path_factory):
    """A folder with one executed stress and one executed performance notebook, plus files to skip."""
    d = tmp_path_factory.mktemp("executed")
    _wait(_papermill(ROOT / "notebooks/stress.ipynb", d / "stress.ipynb", ("models", 20), ("memory_budget", "400Mi"),
                     ("verify_sample", 5), ("output_dir", d / "out_stress")), "stress notebook")
    sub = d / "perf"
    sub.mkdir()
    _wait(_papermill(ROOT / "notebooks/performance.ipynb", sub / "performance.ipynb", ("models", 2),
                     ("qps", "[20, 40]"), ("duration_s", 2), ("warmup_s", 1), ("output_dir", d / "out_perf")),
          "performance notebook")
    # things collect() must skip
    shutil.copy(ROOT / "notebooks/stress.ipynb", d / "not_executed.ipynb")
    (d / "garbage.ipynb").write_text("this is not a notebook")
    (d / ".ipynb_checkpoints").mkdir()
    shutil.copy(d / "stress.ipynb", d / ".ipynb_checkpoints" / "stress-checkpoint.ipynb")
    return d


@pytest.fixture(scope="session")
def runs(executed):
    return report.collect(executed)


# ---------------------------------------------------------------- variants

def _scrap_outputs(nb):
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            for mime, payload in o.get("data", {}).items():
                if mime.startswith("application/scrapbook.scrap."):
                    yield o, mime, payload


def _variant(src: Path, dst: Path, params=None, machine=None, frames=None, run_id=None):
    """Copy an executed notebook, editing glued scraps: ``params``/``machine`` dict updates,
    ``frames`` {scrap name: function(DataFrame) -> DataFrame}."""
    from scrapbook.encoders import registry
    from scrapbook.scraps import Scrap, scrap_to_payload

    nb = nbformat.read(str(src), as_version=4)
    for o, mime, payload in _scrap_outputs(nb):
        name = payload["name"]
        if name == "params" and params:
            payload["data"].update(params)
        elif name == "machine" and machine:
            payload["data"].update(machine)
        elif name == "run_id" and run_id:
            payload["data"] = run_id
        elif frames and name in frames:
            df = registry.decode(Scrap(name, payload["data"], payload["encoder"])).data
            new = scrap_to_payload(registry.encode(Scrap(name, frames[name](df), "pandas")))
            o["data"][mime] = new
    dst.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(dst))


def _two_repeats(df):
    b = df.copy()
    b["repeat"] = 1
    b["p99"] = b["p99"] * 2
    return pd.concat([df, b], ignore_index=True)


@pytest.fixture(scope="session")
def variety(executed, tmp_path_factory):
    d = tmp_path_factory.mktemp("variety")
    st, pf = executed / "stress.ipynb", executed / "perf" / "performance.ipynb"
    shutil.copy(st, d / "local_kserve_stress.ipynb")
    shutil.copy(pf, d / "local_kserve_perf.ipynb")
    _variant(st, d / "k8s" / "stress.ipynb", run_id="k8s-stress",
             params={"backend": "kserve", "runtime": "kserve", "serving_runtime": "kserve-tritonserver",
                     "namespace": "bench"})
    _variant(pf, d / "k8s" / "perf.ipynb", run_id="k8s-perf",
             params={"backend": "kserve", "serving_runtime": "kserve-mlserver"})
    _variant(st, d / "triton" / "stress.ipynb", run_id="triton-stress", params={"runtime": "triton"})
    _variant(pf, d / "mlserver" / "perf.ipynb", run_id="mlserver-perf", params={"runtime": "mlserver", "repeats": 2},
             frames={"perf_summary": _two_repeats})
    gpu = {"gpu": "NVIDIA H200, 143771 MiB", "hostname": "gpubox", "cpus_usable": 16}
    _variant(pf, d / "bert" / "perf.ipynb", run_id="bert-perf", machine=gpu,
             params={"workload": "bert", "device": "cuda", "model_memory": None})
    _variant(st, d / "bert" / "stress.ipynb", run_id="bert-stress", machine=gpu,
             params={"workload": "bert", "device": "cuda"})
    return d


# ---------------------------------------------------------------- collect

def test_collect_reads_the_executed_notebooks(runs, executed):
    assert len(runs) == 2 and not runs.empty
    assert sorted(runs.runs["experiment"]) == ["performance", "stress"]
    assert set(runs.runs["run"]) == {"stress", "perf/performance"}
    r = runs.runs.set_index("experiment")
    assert r.loc["stress", "backend"] == "local" and r.loc["stress", "runtime"] == "kserve"
    assert r.loc["stress", "workload"] == "simple_string"
    assert r.loc["stress", "status"] == "complete"
    assert r.loc["stress", "cpus"] >= 1 and r.loc["stress", "memory_gib"] > 0
    assert "kserve" in r.loc["stress", "versions"] and "k6" in r.loc["performance", "versions"]
    assert r.loc["performance", "qps"] == "20, 40"
    for table in (runs.stress, runs.performance, runs.saturation, runs.deploy):
        assert set(report.RUN_KEYS) <= set(table.columns)
    assert sorted(runs.stress["mode"]) == ["mms", "traditional"]
    assert len(runs.performance) == 4 and set(runs.performance["qps"]) == {20.0, 40.0}
    assert len(runs.saturation) == 2
    # skipped: the unexecuted notebook and the garbage file; the checkpoint is ignored
    reasons = dict(zip(runs.skipped["path"].map(lambda p: Path(p).name), runs.skipped["reason"]))
    assert set(reasons) == {"not_executed.ipynb", "garbage.ipynb"}
    assert "experiment" in reasons["not_executed.ipynb"]
    assert "not readable" in reasons["garbage.ipynb"]
    assert runs.get("stress").experiment == "stress"
    assert runs.get(runs.runs["run_id"].iloc[0]).key == runs.runs["run"].iloc[0]
    with pytest.raises(KeyError):
        runs.get("nope")


def test_collect_missing_folder_is_empty(tmp_path):
    r = report.collect(tmp_path / "missing")
    assert r.empty and len(r) == 0 and list(r) == []
    assert report.stress_side_by_side(r).empty
    assert report.performance_side_by_side(r).empty
    assert report.performance_tables(r) == []
    assert "No runs found" in report.headline(r)


# ---------------------------------------------------------------- side by side

def test_stress_side_by_side(runs):
    t = report.stress_side_by_side(runs)
    assert list(t["mode"]) == ["traditional", "mms"]
    s = runs.get("stress").stress.set_index("mode")
    tt = t.set_index("mode")
    assert tt.loc["mms", "models_deployed"] == s.loc["mms", "models_deployed"] == 20
    assert tt.loc["mms", "pss_per_model_mib"] == pytest.approx(s.loc["mms", "pss_mib"] / 20)
    assert tt.loc["mms", "mms_over_traditional"] == pytest.approx(20 / s.loc["traditional", "models_deployed"])
    assert np.isnan(tt.loc["traditional", "mms_over_traditional"])
    assert tt.loc["traditional", "reserved_cpu_per_model"] == pytest.approx(1.1)
    assert {"deploy_rate_per_s", "machine", "runtime", "backend", "workload"} <= set(t.columns)


def test_performance_side_by_side_and_tables(runs):
    t = report.performance_side_by_side(runs)
    assert len(t) == 4 and list(t["mode"]) == ["traditional", "traditional", "mms", "mms"]
    assert set(t["max_ok_qps"].dropna()) <= {20.0, 40.0}
    perf = runs.performance.set_index(["mode", "qps"])
    for r in t.itertuples():
        assert r.p99 == pytest.approx(perf.loc[(r.mode, r.qps), "p99"])
    assert (t.loc[t["mode"] == "traditional", "qps_per_isvc"] == t.loc[t["mode"] == "traditional", "qps"] / 2).all()
    tables = report.performance_tables(runs)
    assert [x["mode"] for x in tables] == ["traditional", "mms"]
    for x in tables:
        assert list(x["ours"]["Client side QPS"]) == [20.0, 40.0]
        assert x["seed"] is not None and "Client side QPS" in x["seed"]
    assert "QPS per TrainedModel" in tables[1]["seed"] and len(tables[1]["seed"]) == 7
    assert all(x["seed"] is None for x in report.performance_tables(runs, include_seed=False))
    sat = report.saturation_side_by_side(runs)
    assert list(sat["mode"]) == ["traditional", "mms"] and (sat["slo_p99_ms"] == 100).all()


def test_with_seed(runs):
    st = report.with_seed(runs, "stress")
    seed_rows = st[st["source"] == "seed"].set_index("mode")
    ours = st[st["source"] == "ours"]
    assert len(ours) == 2 and len(seed_rows) == 2
    assert seed_rows.loc["traditional", "models_deployed"] == 352
    assert seed_rows.loc["mms", "models_deployed"] == 10_000 and seed_rows.loc["mms", "servers"] == 6
    assert seed_rows.loc["traditional", "reserved_cpu"] == pytest.approx(387.2)
    assert seed_rows.loc["traditional", "reserved_memory_mib"] == pytest.approx(211_200)
    assert seed_rows.loc["mms", "reserved_memory_mib"] == pytest.approx(64_440)
    assert "211 GB" in seed_rows.loc["traditional", "published"]
    setting = seed_rows.loc["mms", "setting"]
    assert "Triton" in setting and "6 worker nodes" in setting
    assert "kfserving v0.5.1" in seed_rows.loc["mms", "versions"]
    assert ours["setting"].str.contains(runs.runs["hostname"].iloc[0]).all()
    assert ours["versions"].str.contains("kserve").all()

    lat = report.with_seed(runs, "latency")
    assert set(lat["workload"]) == {"simple_string"}  # the seed's bert rows only when we ran bert
    assert (lat["source"] == "seed").sum() == len(seed.seed_latency("simple_string"))
    assert list(lat.columns[:3]) == ["source", "setting", "versions"]
    sat = report.with_seed(runs, "saturation").set_index(["source", "mode"])
    assert sat.loc[("seed", "traditional"), "max_ok_qps"] == 2500
    assert sat.loc[("seed", "mms"), "max_ok_qps"] == 250 and sat.loc[("seed", "mms"), "first_fail_qps"] == 500
    # the table form (labels from runs) and the seed alone
    t = report.with_seed(report.stress_side_by_side(runs), "stress", runs=runs)
    assert t.equals(st)
    empty = report.collect(Path("/nonexistent-report-folder"))
    only = report.with_seed(empty, "latency")
    assert (only["source"] == "seed").all() and set(only["workload"]) == {"simple_string", "bert"}
    with pytest.raises(ValueError):
        report.with_seed(runs, "nope")


# ---------------------------------------------------------------- one run

def test_run_facts_stress(runs):
    run = runs.get("stress")
    f = report.run_facts(run).set_index("fact")
    s = run.stress.set_index("mode")
    assert list(f.columns) == ["traditional", "mms", "note"]
    assert f.loc["models", "mms"] == 20
    assert f.loc["InferenceServices (servers)", "traditional"] == s.loc["traditional", "servers"]
    assert f.loc["IP addresses", "traditional"] == 2 * s.loc["traditional", "servers"]
    assert f.loc["IP addresses", "mms"] == 2  # one host: REST + gRPC
    assert f.loc["pods (processes)", "mms"] == s.loc["mms", "processes"]
    assert f.loc["size of a model (bytes)", "mms"] == 700
    assert f.loc["total GPU", "mms"] == 0
    assert f.loc["total CPU (cores)", "mms"] == run.machine["cpus_usable"]
    assert f.loc["reserved memory per InferenceService (MiB)", "traditional"] == pytest.approx(600)
    assert f.loc["size of an InferenceService (MiB PSS per server)", "mms"] == pytest.approx(s.loc["mms", "pss_mib"])
    assert "loopback" in f.loc["assumptions", "note"]


def test_run_facts_performance_from_deploy(runs):
    run = runs.get("perf/performance")
    f = report.run_facts(run).set_index("fact")
    d = run.deploy.set_index("mode")
    assert f.loc["InferenceServices (servers)", "traditional"] == d.loc["traditional", "servers"] == 2
    assert f.loc["IP addresses", "traditional"] == 4
    assert f.loc["reserved CPU (cores)", "traditional"] == pytest.approx(2.2)
    assert f.loc["reserved memory (MiB)", "mms"] == pytest.approx(10_740)
    # by path too
    assert report.run_facts(run.row["path"]).equals(report.run_facts(run))


def test_differences_in_setting_and_metadata(runs):
    for run in runs:
        d = report.differences_in_setting(run).set_index("aspect")
        assert {"where", "serving stack", "model server", "model", "versions"} <= set(d.index)
        assert "6 worker nodes" in d.loc["where", "seed"] and "one machine" in d.loc["where", "ours"]
        assert d.loc["model server", "seed"] == "Triton" and "kserve" in d.loc["model server", "ours"]
        assert "kfserving v0.5.1" in d.loc["versions", "seed"]
        m = report.run_metadata(run).set_index("key")["value"]
        assert m["run_id"] == run.row["run_id"] and m["experiment"] == run.experiment
        assert "version.python" in m.index and "machine.hostname" in m.index
    perf = report.differences_in_setting(runs.get("perf/performance")).set_index("aspect")
    assert "vegeta" in perf.loc["load", "seed"] and "k6" in perf.loc["load", "ours"]


# ---------------------------------------------------------------- headline

def _sentences(text):
    return [s for s in re.split(r"(?<=[.!?])\s+(?=[A-Z*])", text.strip()) if s]


def test_headline(runs):
    h = report.headline(runs)
    n = len(_sentences(h))
    assert 3 <= n <= 6, h
    mms = int(runs.stress.set_index("mode").loc["mms", "models_deployed"])
    assert f"**{mms} models**" in h
    assert "352" in h and "10,000" in h  # the seed beside ours
    assert "p50/p99" in h and "QPS" in h and "MiB" in h


def test_headline_table(runs):
    t = report.headline_table(runs)
    assert list(t.columns) == ["traditional", "multi-model", "seed traditional", "seed multi-model"]
    assert t.loc["models deployed", "multi-model"] == 20
    assert t.loc["models deployed", "seed traditional"] == 352
    assert t.loc["models deployed", "seed multi-model"] == 10_000
    assert t.loc["reserved memory per model (MiB)", "seed traditional"] == pytest.approx(600)
    perf = runs.performance.set_index(["mode", "qps"])
    valid = perf["valid"].groupby("qps").all()
    rate = max(valid[valid].index) if valid.any() else 40.0  # highest rate valid in both modes
    q = t.loc["latency compared at (client QPS)"]
    assert q["traditional"] == q["multi-model"] == rate
    assert q["seed traditional"] == {20.0: 25, 40.0: 50}[rate]  # the seed's rate nearest ours
    assert t.loc["p99 latency (ms)", "multi-model"] == pytest.approx(perf.loc[("mms", rate), "p99"])
    assert t.loc["p50 latency (ms)", "traditional"] == pytest.approx(perf.loc[("traditional", rate), "p50"])
    assert t.loc["highest rate held (client QPS)", "seed traditional"] == 2500
    assert t.dtypes.map(lambda d: d == float).all()
    f = report.format_table(t)
    assert f.loc["models deployed", "seed multi-model"] == "10,000"
    assert f.loc["measured memory per model (MiB PSS)", "seed multi-model"] == ""
    assert list(report.headline_table(runs, include_seed=False).columns) == ["traditional", "multi-model"]


def test_headline_on_seed_only(tmp_path):
    empty = report.collect(tmp_path)
    t = report.headline_table(empty)
    assert t["traditional"].isna().all()
    assert t.loc["models deployed", "seed multi-model"] == 10_000


# ---------------------------------------------------------------- capacity planner

def test_capacity_section(runs):
    cap = report.capacity_section("params/seed-cluster.yaml", runs)
    p = cap.plans.set_index(["scenario", "mode"])
    pub = p.xs("seed limits as published")
    assert pub.loc["traditional", "binding_limit"] == "services" and pub.loc["traditional", "max_models"] == 500
    assert pub.loc["mms", "binding_limit"] == "etcd" and pub.loc["mms", "isvcs"] == 6
    assert pub.loc["mms", "reserved_memory_mib"] == pytest.approx(64_440)
    assert pub.loc["traditional", "reserved_memory_gb"] == pytest.approx(314.5728)
    inferred = [s for s in p.index.get_level_values(0) if s.startswith("with inferred CPU")]
    assert inferred
    assert p.loc[(inferred[0], "traditional"), "max_models"] == 352
    assert p.loc[(inferred[0], "traditional"), "binding_limit"] == "cpu"
    assert p.loc[(inferred[0], "traditional"), "reserved_memory_mib"] == pytest.approx(211_200)
    e = cap.etcd.set_index(["hosts", "compaction"])["fill_models"]
    assert e[(6, False)] == pub.loc["mms", "max_models"]
    assert e[(6, True)] > e[(6, False)]
    ci = cap.cpu_inference.set_index("packing")
    assert ci.loc["aggregate", "cpu_per_node_lower"] == pytest.approx(64.5333, abs=1e-3)
    assert bool(ci.loc["aggregate", "reproduces_exactly"])
    sc = cap.seed_check.set_index(["scenario", "mode", "quantity"])
    assert sc.loc[(inferred[0], "traditional", "max_models"), "difference"] == 0
    assert sc.loc[("seed limits as published", "traditional", "reserved_memory"), "predicted"] == pytest.approx(211_200)
    # our stress run: reserved predicted for the measured deployment equals its own accounting
    m = cap.measured
    assert set(m["mode"]) == {"traditional", "mms"} and set(m["run"]) == {"stress"}
    res = m[m["quantity"].isin(["reserved_cpu", "reserved_memory"])]
    assert np.allclose(res["difference"].astype(float), 0)
    assert "binds on **services**" in cap.text and "etcd" in cap.text
    # without runs, from anywhere (relative path resolved from the repo root)
    assert report.capacity_section(runs=None).measured.empty


# ---------------------------------------------------------------- other settings

def test_report_tolerates_backends_runtimes_workloads(variety):
    r = report.collect(variety)
    assert len(r) == 8 and r.skipped.empty
    by = r.runs.set_index("run")
    assert by.loc["k8s/stress", "runtime"] == "kserve-tritonserver"
    assert by.loc["k8s/stress", "cluster"] == "Kubernetes cluster"
    assert by.loc["k8s/perf", "runtime"] == "kserve-mlserver"
    assert by.loc["triton/stress", "runtime"] == "triton"
    assert by.loc["mlserver/perf", "runtime"] == "mlserver"
    assert by.loc["bert/perf", "workload"] == "bert" and by.loc["bert/perf", "gpus"] == 1
    assert "gpubox" in by.loc["bert/perf", "machine"]

    st = report.stress_side_by_side(r)
    assert len(st) == 8 and set(st["runtime"]) == {"kserve", "kserve-tritonserver", "triton"}
    perf = report.performance_side_by_side(r)
    ml = perf[perf["run"] == "mlserver/perf"]
    assert len(ml) == 4 and (ml["n_repeats"] == 2).all()
    raw = r.performance[r.performance["run"] == "mlserver/perf"]
    assert ml.set_index(["mode", "qps"])["p99"].to_dict() == pytest.approx(
        raw.groupby(["mode", "qps"])["p99"].median().to_dict())
    lat = report.with_seed(r, "latency")
    assert set(lat.loc[lat["source"] == "seed", "workload"]) == {"simple_string", "bert"}
    assert len(report.performance_tables(r)) == 8

    k8s = report.run_facts(r.get("k8s/stress")).set_index("fact")
    servers = r.get("k8s/stress").stress.set_index("mode")["servers"]
    assert k8s.loc["IP addresses", "traditional"] == 3 * servers["traditional"]
    assert "ClusterIP" in k8s.loc["IP addresses", "note"]
    assert "Kubernetes" in report.differences_in_setting(r.get("k8s/stress")).set_index("aspect").loc["where", "ours"]
    bert = report.run_facts(r.get("bert/stress")).set_index("fact")
    assert bert.loc["size of a model (bytes)", "mms"] == 87 * 2**20
    assert bert.loc["total GPU", "mms"] == 1
    assert bert.loc["declared memory per model", "mms"] == "128Mi"
    assert "bert" in report.differences_in_setting(r.get("bert/perf")).set_index("aspect").loc["model", "ours"]
    for run in r:
        report.run_facts(run)
        report.differences_in_setting(run)
        report.run_metadata(run)
    h = report.headline(r)
    assert 3 <= len(_sentences(h)) <= 6 and "more run(s)" in h
    t = report.headline_table(r)
    assert t.loc["models deployed", "seed multi-model"] == 10_000
    cap = report.capacity_section(runs=r)
    assert cap.measured["run"].nunique() == 4


# ---------------------------------------------------------------- the notebook

def test_report_notebook_builder():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import make_notebooks as make_report_notebook
    finally:
        sys.path.pop(0)
    nb = make_report_notebook.report_nb()
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1
    src = params[0].source
    assert 'input_dir = "outputs"' in src and "include_seed = True" in src
    assert 'limits_file = "params/seed-cluster.yaml"' in src
    committed = nbformat.read(str(ROOT / "notebooks/report.ipynb"), as_version=4)
    assert [c.source for c in committed.cells] == [c.source for c in nb.cells], \
        "notebooks/report.ipynb is stale: run python scripts/make_notebooks.py"


def test_report_notebook_papermill_and_html(executed, tmp_path, no_leftovers):
    import scrapbook as sb

    out, empty_out = tmp_path / "report.ipynb", tmp_path / "empty-report.ipynb"
    (tmp_path / "nothing").mkdir()
    main = _papermill(ROOT / "notebooks/report.ipynb", out, ("input_dir", executed))
    none = _papermill(ROOT / "notebooks/report.ipynb", empty_out, ("input_dir", tmp_path / "nothing"))
    _wait(main, "report notebook")
    _wait(none, "report notebook on an empty folder")

    nb = sb.read_notebook(str(out))
    assert nb.scraps["experiment"].data == "report"
    assert nb.scraps["runs_found"].data == 2
    glued = nb.scraps["headline_table"].data.set_index("quantity")
    assert glued.loc["models deployed", "multi-model"] == 20
    assert glued.loc["models deployed", "seed traditional"] == 352
    e = sb.read_notebook(str(empty_out))
    assert e.scraps["runs_found"].data == 0
    assert "No runs found" in e.scraps["headline"].data

    # a report notebook next to the runs is skipped, not read as a run
    shutil.copy(out, executed / "report-copy.ipynb")
    try:
        again = report.collect(executed)
        assert len(again) == 2 and "a report notebook" in set(again.skipped["reason"])
    finally:
        (executed / "report-copy.ipynb").unlink()

    for nbpath in (out, empty_out):
        subprocess.run([PY, "-m", "jupyter", "nbconvert", "--to", "html", "--no-input", str(nbpath)],
                       cwd=tmp_path, check=True, capture_output=True, timeout=120)
    html = out.with_suffix(".html").read_text()
    assert "<h2" in html and "Summary" in html
    assert "seed multi-model" in html and "models deployed" in html and "10,000" in html
    assert "highest rate held (client QPS)" in html
    assert "report.collect(" not in html  # --no-input: no code
    assert "Traceback" not in html
    assert "binds on" in html  # capacity planner section
    empty_html = empty_out.with_suffix(".html").read_text()
    assert "No runs found" in empty_html and "seed multi-model" in empty_html
