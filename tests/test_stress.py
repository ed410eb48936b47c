"""The stress experiment with real servers: stop reasons, records, clean-up, notebook."""
import json
import math
import signal
import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest

from mmslib import params, stress

from conftest import default_sigint, papermill



def test_small_run_both_modes(tmp_path, no_leftovers):
    p = params.stress(models=40, output_dir=str(tmp_path / "out"), memory_budget="4Gi", verify_sample=10,
                      time_limit_s=120)
    r = stress.run(p, progress=False)
    s = r.summary.set_index("mode")
    assert s.loc["mms", "models_deployed"] == 40 and s.loc["mms", "stop_reason"] == stress.STOP_TARGET
    assert s.loc["mms", "verify_ok"] and s.loc["mms", "verified_sampled"] == 10
    assert s.loc["traditional", "models_deployed"] >= 1
    # Reserved follows the seed's specs: 1.1 CPU / 600 Mi per traditional model; one host 11 CPU / 10740 Mi.
    t = s.loc["traditional"]
    assert t["reserved_cpu"] == pytest.approx(1.1 * t["models_deployed"])
    assert t["reserved_memory_mib"] == pytest.approx(600 * t["models_deployed"])
    assert s.loc["mms", "reserved_cpu"] == pytest.approx(11.0)
    assert s.loc["mms", "reserved_memory_mib"] == pytest.approx(10740.0)
    # Measured: a server process costs far more than a model in a host.
    assert t["pss_per_model_mib"] > 20 * s.loc["mms", "pss_per_model_mib"]
    # Tidy step records on disk, one row per step, with the run's metadata.
    steps = pd.read_parquet(tmp_path / "out" / "steps.parquet")
    assert len(steps[(steps["mode"] == "mms") & steps["ok"]]) == 40
    assert set(steps["step"][steps["mode"] == "mms"]) == set(range(1, 41))
    meta = json.loads((tmp_path / "out" / "meta.json").read_text())
    assert meta["status"] == "complete" and meta["params"]["models"] == 40
    assert stress.compare(r.summary)["mms_models"] == 40


def test_memory_budget_stops_traditional(tmp_path, no_leftovers):
    p = params.stress(models=50, modes=["traditional"], output_dir=str(tmp_path / "o"), memory_budget="250Mi",
                      verify_sample=0)
    r = stress.run(p, progress=False)
    s = r.summary.iloc[0]
    assert s["stop_reason"] == stress.STOP_BUDGET
    assert 1 <= s["models_deployed"] < 50
    assert s["pss_mib"] <= 250


def test_admission_stops_mms(tmp_path, no_leftovers):
    p = params.stress(models=30, modes=["mms"], output_dir=str(tmp_path / "o"), mms_predictor_memory="10Mi",
                      model_memory="1Mi", verify_sample=0)
    r = stress.run(p, progress=False)
    s = r.summary.iloc[0]
    assert s["stop_reason"] == stress.STOP_ADMISSION and s["models_deployed"] == 10
    assert "admission" in s["stop_detail"]


def test_resume_skips_finished_modes(tmp_path, no_leftovers):
    out = str(tmp_path / "o")
    p = params.stress(models=10, modes=["mms"], output_dir=out, verify_sample=0)
    r1 = stress.run(p, progress=False)
    p2 = params.stress(models=10, modes=["mms"], output_dir=out, verify_sample=0, resume=True)
    t0 = time.time()
    r2 = stress.run(p2, progress=False)
    assert time.time() - t0 < 5  # nothing deployed again
    assert r2.rundir.run_id == r1.rundir.run_id
    assert r2.summary.iloc[0]["models_deployed"] == 10 and len(r2.steps) == len(r1.steps)


def test_failure_half_way_leaves_no_process_and_keeps_steps(tmp_path, no_leftovers):
    """An exception mid-deployment: every server stopped, the steps taken are on disk."""
    p = params.stress(models=200, modes=["mms"], output_dir=str(tmp_path / "o"), verify_sample=0, measure_every=1)

    def boom(mode, n, backend):
        if n == 25:
            raise RuntimeError("injected failure")
    with pytest.raises(RuntimeError, match="injected"):
        stress.run(p, progress=False, on_step=boom)
    steps = pd.read_parquet(tmp_path / "o" / "steps.parquet")
    assert len(steps) == 25
    meta = json.loads((tmp_path / "o" / "meta.json").read_text())
    assert meta["status"] == "failed"


def test_sigint_and_sigterm_leave_nothing(tmp_path, no_leftovers):
    """Ctrl-C (SIGINT) or SIGTERM during deployment: no child process left, records flushed."""
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent("""
        import sys
        from mmslib import params, stress
        p = params.stress(models=100000, modes=[sys.argv[1]], output_dir=sys.argv[2], verify_sample=0,
                          measure_every=50, memory_budget="6Gi")
        stress.run(p, progress=False)
    """))
    for sig, mode in ((signal.SIGINT, "mms"), (signal.SIGTERM, "traditional")):
        out = tmp_path / f"o{sig}"
        proc = subprocess.Popen([sys.executable, str(script), mode, str(out)], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, preexec_fn=default_sigint)
        deadline = time.time() + 60
        while time.time() < deadline and not (out / "steps.parquet").exists():
            time.sleep(0.2)
        time.sleep(1.0)
        proc.send_signal(sig)
        proc.wait(30)
        meta = json.loads((out / "meta.json").read_text())
        assert meta["status"] == "interrupted", proc.stdout.read()[-2000:]
        assert len(pd.read_parquet(out / "steps.parquet")) > 0


def test_stress_notebook_papermill(tmp_path, no_leftovers):
    import scrapbook as sb
    out_nb = tmp_path / "stress.ipynb"
    r = papermill("stress.ipynb", out_nb, "-p", "models", "30", "-p", "output_dir", tmp_path / "o",
                  "-p", "memory_budget", "400Mi", "-p", "verify_sample", "5", timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    nb = sb.read_notebook(str(out_nb))
    summ = nb.scraps["stress_summary"].data
    assert set(summ["mode"]) == {"traditional", "mms"}
    assert int(summ.set_index("mode").loc["mms", "models_deployed"]) == 30
    assert nb.scraps["comparison"].data["mms_models"] == 30
    assert nb.scraps["experiment"].data == "stress"


def test_stress_notebook_bad_param_fails_with_message(tmp_path, no_leftovers):
    out_nb = tmp_path / "bad.ipynb"
    r = papermill("stress.ipynb", out_nb, "-p", "models", "-3", "-p", "output_dir", tmp_path / "o", timeout=120)
    assert r.returncode != 0
    text = out_nb.read_text()
    assert "parameter 'models'" in text and "an integer" in text
    assert not (tmp_path / "o").exists()  # nothing started


def test_more_models_has_one_definition():
    # the seed's stress test: ~10,000 models on 6 hosts vs 352 InferenceServices
    r = stress.more_models(352, 10_000)
    assert r["mms_over_traditional"] == pytest.approx(10_000 / 352)
    assert r["more_models_pct"] == pytest.approx((10_000 - 352) / 352 * 100)      # 2,741%, "2800%" as published
    assert stress.more_models(0, 5) == {"mms_over_traditional": math.inf, "more_models_pct": math.inf}
    summary = pd.DataFrame([{"mode": "traditional", "models_deployed": 40, "pss_per_model_mib": 100.0,
                             "reserved_memory_mib_per_model": 600.0, "reserved_cpu_per_model": 1.1},
                            {"mode": "mms", "models_deployed": 2000, "pss_per_model_mib": 0.1,
                             "reserved_memory_mib_per_model": 5.37, "reserved_cpu_per_model": 0.0055}])
    c = stress.compare(summary)
    assert c["more_models_pct"] == 4900.0 and c["mms_over_traditional"] == 50.0


def test_memory_budget_applies_on_any_backend_and_defaults_to_none_on_a_cluster(tmp_path):
    local = params.stress(output_dir=str(tmp_path / "a"))
    assert stress.memory_budget(local, 8 << 30) == 4 << 30                     # half this machine's
    cluster = params.stress(backend="kserve", output_dir=str(tmp_path / "b"))
    assert stress.memory_budget(cluster, 8 << 30) is None                        # this machine says nothing
    given = params.stress(backend="kserve", memory_budget="3Gi", output_dir=str(tmp_path / "c"))
    assert stress.memory_budget(given, 8 << 30) == 3 << 30

