"""Figures and sentences are computed from records: check them on known data."""
import numpy as np
import pandas as pd

from mmslib import narrative, plots, stats


def _summary():
    return pd.DataFrame([
        dict(mode="traditional", models_deployed=100, stop_reason="memory budget", stop_detail="x", servers=100,
             pss_mib=10000.0, pss_per_model_mib=100.0, reserved_cpu=110.0, reserved_memory_mib=60000.0,
             deploy_rate_per_s=1.0),
        dict(mode="mms", models_deployed=10000, stop_reason="target reached", stop_detail="", servers=1,
             pss_mib=150.0, pss_per_model_mib=0.015, reserved_cpu=11.0, reserved_memory_mib=10740.0,
             deploy_rate_per_s=400.0),
    ])


def test_stress_headline_numbers():
    text = narrative.stress_headline(_summary())
    assert "**100 models**" in text and "**10,000 models**" in text
    assert "9,900% more models" in text
    assert "the seed: 2,800%, ~10,000 vs 352" in text   # the seed's published figures, from mmslib.seed
    assert "6,667x less" in text


def test_mode_titles_in_the_seeds_words():
    from types import SimpleNamespace
    p = SimpleNamespace(models=5, hosts=2)
    assert narrative.mode_title("traditional", p) == "**traditional** with 5 InferenceServices"
    assert narrative.mode_title("mms", p) == "**mms** with 2 InferenceService(s) and 5 TrainedModels"


def _records():
    rng = np.random.default_rng(0)
    rows = []
    for mode in ("traditional", "mms"):
        for qps in (10.0, 20.0):
            n = int(qps * 5)
            t = 1000 + np.arange(n) / qps
            lat = rng.exponential(2.0, n) + (1 if mode == "mms" else 0)
            rows.append(pd.DataFrame(dict(t_unix=t, latency_ms=lat, status=200, ok=True, model="m0",
                                          endpoint="e", warmup=np.arange(n) < qps, mode=mode, qps=qps, repeat=0)))
    return pd.concat(rows, ignore_index=True)


def test_performance_figures_and_warnings():
    recs = _records()
    levels = pd.DataFrame([dict(mode=m, qps=q, repeat=0, target_qps=q, duration_s=4.0, warmup_s=1.0,
                                iterations=int(q * 5), dropped_iterations=0, loadavg_before=9.0, error="")
                           for m in ("traditional", "mms") for q in (10.0, 20.0)])
    summ = stats.summarize(recs, levels, n_servers={"traditional": 1, "mms": 1}, n_models=1)
    fig = plots.latency_vs_rate(summ, 100)
    assert len(fig.axes[0].lines) >= 4
    ts = stats.latency_timeseries(recs)
    fig = plots.latency_over_time(ts, 10.0)
    assert len(fig.axes[0].lines) == 4 and len(fig.axes[0].lines[0].get_xdata()) >= 4
    warn = narrative.performance_warnings(summ, levels, busy_load=1.0)
    assert "unstable" in warn and "machine was busy" in warn
    sat = stats.saturation(summ, 100.0)
    # 40 and 80 requests per level cannot bound a p99 from above: nothing is shown to hold
    text = narrative.saturation_sentence(sat, 100.0)
    assert "**mms** is not shown to hold any tested rate" in text and "not enough data" in text
    held = sat.assign(max_ok_qps=[20.0, 10.0], first_fail_qps=[float("nan"), 20.0])
    assert "**mms** holds up to **20 QPS** (valid, no errors, p99 shown within 100 ms)" in \
        narrative.saturation_sentence(held, 100.0)


def test_stress_figures():
    steps = pd.DataFrame(dict(mode=["mms"] * 3 + ["traditional"] * 2, step=[1, 2, 3, 1, 2], ok=True, measured=True,
                              pss_mib=[100, 101, 102, 90, 180], reserved_memory_mib=[10740] * 3 + [600, 1200],
                              seconds=[0.01, 0.02, 0.01, 1.0, 1.2], elapsed_s=[0.1, 0.2, 0.3, 1.0, 2.2]))
    fig = plots.stress_memory(steps)
    assert [len(ax.lines) for ax in fig.axes] == [2, 2]
    fig = plots.stress_deploy_time(steps)
    assert len(fig.axes) == 2
