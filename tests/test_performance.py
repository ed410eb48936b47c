"""The performance experiment with real servers and real k6 on loopback."""
import json
import signal
import subprocess
import sys

import pandas as pd
import pytest

from mmslib import params, performance, seed_layout, stats
from mmslib.errors import DeployError
from mmslib.workloads import get_workload

from conftest import default_sigint, papermill



def small(tmp_path, **kw):
    base = dict(models=2, qps=[20, 40], duration_s=2, warmup_s=1, output_dir=str(tmp_path / "out"))
    base.update(kw)
    return params.performance(**base)


def test_two_modes_two_rates(tmp_path, no_leftovers):
    p = small(tmp_path)
    r = performance.run(p, progress=False)
    s = r.summary.set_index(["mode", "qps"])
    assert len(s) == 4
    for mode in ("traditional", "mms"):
        for q in (20.0, 40.0):
            row = s.loc[(mode, q)]
            assert row["n"] == pytest.approx(q * 2, abs=2)           # measured requests
            assert row["n_warmup"] == pytest.approx(q * 1, abs=2)    # warm-up kept, excluded
            assert row["errors"] == 0 and row["valid"]
            assert 0 < row["p50"] <= row["p99"] <= row["max"]
    # Every request is a row on disk, with its level's keys; both models of each mode were hit.
    recs = r.records
    assert set(recs["mode"]) == {"traditional", "mms"} and recs["ok"].all()
    assert recs.groupby("mode")["model"].nunique().to_dict() == {"traditional": 2, "mms": 2}
    assert recs[recs["mode"] == "traditional"]["endpoint"].nunique() == 2  # one server per model
    assert recs[recs["mode"] == "mms"]["endpoint"].nunique() == 1
    files = sorted(x.name for x in (tmp_path / "out" / "requests").iterdir())
    assert len(files) == 4
    # The seed's layout; QPS per InferenceService = client QPS / servers.
    t = seed_layout.seed_table(r.summary, "traditional")
    assert list(t["QPS per InferenceService"]) == [10.0, 20.0]
    m = seed_layout.seed_table(r.summary, "mms")
    assert list(m["QPS per TrainedModel"]) == [10.0, 20.0]
    # Server-side time from KServe's own metrics, less than the client-side latency.
    assert (r.summary["server_requests"] >= r.summary["n"]).all()
    assert (r.summary["server_ms"] < r.summary["p50"]).all()
    # Resource samples during each level, and interleaved order A B / A B at each level.
    assert len(r.samples) >= 4 and (r.samples["pss_mib"] > 0).all()
    order = r.levels.sort_values("index")[["mode", "qps"]].values.tolist()
    assert order == [["traditional", 20.0], ["mms", 20.0], ["traditional", 40.0], ["mms", 40.0]]
    meta = json.loads((tmp_path / "out" / "meta.json").read_text())
    assert meta["status"] == "complete"
    # One deploy row per model per mode (deploy_models), beside deploy.json's one per mode.
    dm = pd.read_parquet(tmp_path / "out" / "deploy_models.parquet")
    assert sorted(map(tuple, dm[["mode", "model"]].values.tolist())) == [
        ("mms", "m00000"), ("mms", "m00001"), ("traditional", "m00000"), ("traditional", "m00001")]
    assert dm["ok"].all() and (dm["seconds"] > 0).all() and (dm["models"] == 2).all()
    assert (dm["deploy_concurrency"] == p.deploy_concurrency).all()
    assert dm[dm["mode"] == "traditional"]["server"].nunique() == 2 and dm[dm["mode"] == "mms"]["server"].nunique() == 1
    config = get_workload("simple_string").write_artifact(tmp_path / "artifact", "m") / "config.json"
    assert (dm["family"] == "simple_string").all() and (dm["artifact_bytes"] == config.stat().st_size).all()
    deploys = {r["mode"]: r for r in json.loads((tmp_path / "out" / "deploy.json").read_text())}
    assert sorted(deploys) == ["mms", "traditional"]
    # What one model costs in memory, as stress measures it: mms over the empty host (a Python
    # server: tens of MiB before any model), traditional a whole server each; an identity model
    # adds little to a host, far less than a server of its own.
    mms, trad = deploys["mms"], deploys["traditional"]
    assert mms["pss_hosts_mib"] > 20 and trad["pss_added_per_model_mib"] > 20, deploys
    assert trad["pss_hosts_mib"] is None or trad["pss_hosts_mib"] != trad["pss_hosts_mib"]  # NaN: no hosts
    assert abs(mms["pss_added_per_model_mib"]) < 0.25 * trad["pss_added_per_model_mib"], deploys
    assert mms["pss_hosts_mib"] < mms["pss_mib"] + 5, deploys


def test_a_refused_model_keeps_the_deploy_rows_measured(tmp_path, no_leftovers):
    """One host with memory for one model of two: the deploy fails (admission) as before, and the
    model that loaded, and the one refused, are in deploy_models all the same; deploy.json has no row."""
    p = small(tmp_path, modes=["mms"], qps=[20], mms_predictor_memory="1Mi", model_memory="600Ki")
    with pytest.raises(DeployError, match="1 of 2 models failed to deploy: admission"):
        performance.run(p, progress=False)
    dm = pd.read_parquet(tmp_path / "out" / "deploy_models.parquet")
    assert sorted(dm["model"]) == ["m00000", "m00001"] and sorted(dm["ok"]) == [False, True]
    loaded = dm[dm["ok"]].iloc[0]
    assert loaded["seconds"] > 0 and loaded["server"] and loaded["family"] == "simple_string"
    assert "admission" in dm[~dm["ok"]].iloc[0]["error"]
    deploy_json = tmp_path / "out" / "deploy.json"
    assert not deploy_json.exists() or json.loads(deploy_json.read_text()) == []


def test_grpc_and_zipf(tmp_path, no_leftovers):
    p = small(tmp_path, modes=["mms"], models=4, qps=[40], protocol="grpc", traffic="zipf", zipf_skew=1.5)
    r = performance.run(p, progress=False)
    assert r.summary.iloc[0]["errors"] == 0 and r.summary.iloc[0]["valid"]
    counts = r.records["model"].value_counts()
    assert counts.index[0] == "m00000" and counts.iloc[0] > counts.iloc[-1]  # a hot model


def test_server_killed_mid_level_run_goes_on(tmp_path, no_leftovers):
    """SIGKILL one server in the middle of the first level: errors recorded, later levels measured."""
    p = small(tmp_path, modes=["traditional"], qps=[20, 30], duration_s=3)
    killed = []

    def fault(cell, backend):
        if not killed:
            backend.kill_server("isvc-m00000", signal.SIGKILL)
            killed.append(cell)
    r = performance.run(p, progress=False, on_level=fault)
    s = r.summary.set_index("qps")
    assert s.loc[20.0, "errors"] > 0 and s.loc[20.0, "errors"] < s.loc[20.0, "n"]
    assert s.loc[30.0, "n"] > 0  # the next level was measured too (half its requests fail)
    sat = r.saturation().iloc[0]
    assert pd.isna(sat["max_ok_qps"]) and "error" in sat["fail_reason"]


def test_interrupt_then_resume(tmp_path, no_leftovers):
    out = tmp_path / "out"

    # Interrupt from outside, as Ctrl-C would: a subprocess gets SIGINT during the second level.
    script = tmp_path / "run.py"
    script.write_text(
        "import sys\nfrom mmslib import params, performance\n"
        f"p = params.performance(models=2, modes=['mms'], qps=[20, 30, 40], duration_s=2, warmup_s=1, "
        f"output_dir={str(out)!r}, resume=(sys.argv[1] == 'resume'))\n"
        "performance.run(p, progress=False)\n")
    proc = subprocess.Popen([sys.executable, str(script), "first"], preexec_fn=default_sigint)
    import time
    deadline = time.time() + 90
    while time.time() < deadline and not (out / "levels.parquet").exists():
        time.sleep(0.2)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    proc.wait(60)
    first = pd.read_parquet(out / "levels.parquet")
    assert json.loads((out / "meta.json").read_text())["status"] == "interrupted"
    assert 1 <= len(first) < 3
    kept = pd.read_parquet(out / "requests" / "mms_20qps_r0.parquet")
    subprocess.run([sys.executable, str(script), "resume"], check=True, timeout=180)
    levels = pd.read_parquet(out / "levels.parquet")
    assert sorted(levels["qps"]) == [20.0, 30.0, 40.0]
    again = pd.read_parquet(out / "requests" / "mms_20qps_r0.parquet")
    pd.testing.assert_frame_equal(kept, again)  # the measured level was not measured again
    assert json.loads((out / "meta.json").read_text())["status"] == "complete"
    # the resumed run deployed again: its per-model rows replace the first run's (not beside them)
    dm = pd.read_parquet(out / "deploy_models.parquet")
    assert sorted(dm["model"]) == ["m00000", "m00001"] and (dm["mode"] == "mms").all() and dm["ok"].all()
    assert len(json.loads((out / "deploy.json").read_text())) == 1


def test_performance_notebook_papermill(tmp_path, no_leftovers):
    import scrapbook as sb
    out_nb = tmp_path / "perf.ipynb"
    r = papermill("performance.ipynb", out_nb, "-p", "models", "2", "-p", "qps", "[20, 40]", "-p", "duration_s", "2",
                  "-p", "warmup_s", "1", "-p", "output_dir", tmp_path / "o", timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    nb = sb.read_notebook(str(out_nb))
    summ = nb.scraps["perf_summary"].data
    assert len(summ) == 4 and set(summ["mode"]) == {"traditional", "mms"}
    assert (summ["errors"] == 0).all()
    sat = nb.scraps["saturation"].data
    assert set(sat["mode"]) == {"traditional", "mms"}
    assert nb.scraps["experiment"].data == "performance"


def test_performance_notebook_bad_param(tmp_path, no_leftovers):
    out_nb = tmp_path / "bad.ipynb"
    r = papermill("performance.ipynb", out_nb, "-p", "protocol", "websocket", "-p", "output_dir", tmp_path / "o",
                  timeout=120)
    assert r.returncode != 0
    assert "parameter 'protocol'" in out_nb.read_text() and "rest | grpc" in out_nb.read_text()
    assert not (tmp_path / "o").exists()
