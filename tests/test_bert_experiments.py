"""The bert workload through both experiments (CPU, real model)."""

from mmslib import params, stress

from conftest import papermill



def test_performance_notebook_bert(tmp_path, no_leftovers):
    import scrapbook as sb
    out_nb = tmp_path / "perf-bert.ipynb"
    r = papermill("performance.ipynb", out_nb, "-p", "workload", "bert", "-p", "device", "cpu", "-p", "models", "2",
                  "-p", "qps", "[5, 10]", "-p", "duration_s", "2", "-p", "warmup_s", "1", "-p", "output_dir", tmp_path / "o")
    assert r.returncode == 0, r.stderr[-3000:]
    summ = sb.read_notebook(str(out_nb)).scraps["perf_summary"].data
    assert len(summ) == 4 and (summ["errors"] == 0).all() and (summ["n"] > 0).all()
    assert (summ["p50"] > 1.0).all()  # a real 6-layer BERT takes milliseconds, not microseconds


def test_stress_bert_memory_per_model(tmp_path, no_leftovers):
    p = params.stress(workload="bert", device="cpu", models=3, memory_budget="3Gi", verify_sample=3,
                      output_dir=str(tmp_path / "o"))
    r = stress.run(p, progress=False)
    s = r.summary.set_index("mode")
    assert (s["models_deployed"] == 3).all() and s["verify_ok"].all()
    # Each model is its own ~87 MB set of weights: tens of MiB per model in either mode.
    assert s.loc["mms", "pss_per_model_mib"] > 50
    assert s.loc["traditional", "pss_per_model_mib"] > s.loc["mms", "pss_per_model_mib"]
