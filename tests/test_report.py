"""The report from run directories: no executed notebook needed, a mix of runs made by a notebook,
a script and synthetic records; percentiles and SLO chosen at report time; the gate through
papermill; the HTML opened offline (headless Chromium when installed)."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import papermill
from mmslib import report
from mmslib.report import figures, html
from mmslib.rundir import Run
from runfactory import coldstart_run, perf_run, stress_run

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent

SCRIPT = """
import sys, numpy as np
sys.path.insert(0, {tests!r})
from runfactory import perf_run
from mmslib import export
rd = perf_run({out!r}, lambda m, q: np.arange(1, 1001) * (1.0 if m == "traditional" else 1.5), qps=(25.0, 50.0))
export.write_run_summary(rd)   # what an experiment does at its end
"""


# section 4 of a coldstart run, typed: two valid validation cells (errors 1.5/-3.0 and -0.5/4.0
# points) and one measured while the client fell behind; two cluster sizes, one not reachable
VALIDATION = [
    {"name": "a1_c4", "alpha": 1.0, "capacity": 4, "hit_rate_measured": 0.600, "hit_rate_simulated": 0.615,
     "hit_rate_diff_pts": 1.5, "attainment_measured": 0.900, "attainment_simulated": 0.870,
     "attainment_diff_pts": -3.0, "p99_measured_ms": 400.0, "p99_simulated_ms": 420.0, "measurement_valid": True,
     "within": True},
    {"name": "a2_c4", "alpha": 2.0, "capacity": 4, "hit_rate_measured": 0.800, "hit_rate_simulated": 0.795,
     "hit_rate_diff_pts": -0.5, "attainment_measured": 0.950, "attainment_simulated": 0.990,
     "attainment_diff_pts": 4.0, "p99_measured_ms": 300.0, "p99_simulated_ms": 250.0, "measurement_valid": True,
     "within": True},
    {"name": "a0.5_c4", "alpha": 0.5, "capacity": 4, "hit_rate_measured": 0.400, "hit_rate_simulated": 0.500,
     "hit_rate_diff_pts": 10.0, "attainment_measured": 0.200, "attainment_simulated": 0.600,
     "attainment_diff_pts": 40.0, "p99_measured_ms": 900.0, "p99_simulated_ms": 500.0, "measurement_valid": False,
     "within": False}]
CLUSTER = [
    {"models": 10000, "host_memory": "10Gi", "models_per_host": 80, "alpha": 1.0, "qps": 1000.0, "slo_ms": 200.0,
     "hosts_needed": 12, "attainment": 0.995, "note": "", "host_counts_simulated": 5},
    {"models": 1000000, "host_memory": "10Gi", "models_per_host": 80, "alpha": 1.0, "qps": 1000.0, "slo_ms": 200.0,
     "hosts_needed": None, "attainment": None, "note": "not reachable: attainment levels off at 0.9",
     "host_counts_simulated": 9}]


@pytest.fixture(scope="session")
def mixed(tmp_path_factory):
    """A folder with a run made by the performance notebook through papermill (gate on, typed as
    on a shell: ``-p fail_on_slo true``), a run written by a script (no notebook), a stress run."""
    d = tmp_path_factory.mktemp("mixed")
    (d / "nb").mkdir()
    nb = papermill("performance.ipynb", d / "nb" / "performance.ipynb", "-p", "models", "1", "-p", "modes", "mms",
                   "-p", "qps", "20", "-p", "duration_s", "2", "-p", "warmup_s", "1", "-p", "slo_p99_ms", "0.001",
                   "-p", "fail_on_slo", "true", "-p", "output_dir", d / "nb" / "run")
    script = subprocess.run([sys.executable, "-c", SCRIPT.format(tests=str(TESTS), out=str(d / "script" / "run"))],
                            capture_output=True, text=True, timeout=120)
    assert script.returncode == 0, script.stderr[-2000:]
    stress_run(d / "stress" / "run", seconds=(0.5, 1.0, 1.5, 2.0))
    coldstart_run(d / "coldstart" / "run", VALIDATION, CLUSTER)
    return d, nb


def test_gate_makes_papermill_fail_after_saving_everything(mixed):
    d, nb = mixed
    out = nb.stdout + nb.stderr
    assert nb.returncode != 0, out[-3000:]
    assert "fail_on_slo: 1 level(s) missed the SLO: mode=mms, qps=20, repeat=0" in out, out[-3000:]
    run = Run.load(d / "nb" / "run")
    assert run.status == "complete" and run.format_version == 2
    assert (run.path / "summary.csv").is_file() and len(run.records) > 0
    s = run.summary
    assert list(s["slo_met"]) == [False] and s["n"].iloc[0] > 0 and s["attainment"].iloc[0] == 0.0
    assert (d / "nb" / "performance.ipynb").is_file()  # the executed notebook is kept too


def test_report_reads_the_mix(mixed):
    d, _ = mixed
    runs = report.collect(d)
    assert sorted(runs.runs["run"]) == ["coldstart/run", "nb/run", "script/run", "stress/run"]
    assert set(runs.runs["format_version"]) == {2}
    assert runs.get("nb/run").row["gate"] == "failed (1 levels)" and runs.get("script/run").row["gate"] == ""
    assert list(d.rglob("*.ipynb"))  # an executed notebook is present, yet the run directories are read
    lv = runs.levels.set_index(["run", "mode", "qps"])
    # the script's run: latencies 1..1000 ms (traditional) and 1.5x that (mms); p50 by hand: 500.5, 750.75
    assert lv.loc[("script/run", "traditional", 25.0), "p50"] == pytest.approx(500.5)
    assert lv.loc[("script/run", "mms", 50.0), "p50"] == pytest.approx(750.75)
    assert lv.loc[("nb/run", "mms", 20.0), "n"] == (~runs.get("nb/run").records["warmup"].astype(bool)).sum()
    assert len(runs.performance) == 5 and len(runs.stress) == 2
    assert report.comparison(runs) is None  # the two performance runs share no (mode, rate)
    c = report.comparison(runs, ["script/run", "nb/run"])
    assert set(c["table"]["verdict"]) == {"unknown (only in run A)", "unknown (only in run B)"}


def test_report_from_run_directories_alone(tmp_path):
    # no notebook anywhere: synthetic run directories only
    perf_run(tmp_path / "p", lambda m, q: np.arange(1, 1001) if m == "mms" else np.arange(1, 1001) / 10,
             qps=(25.0, 50.0), slo_p99_ms=200, apart=True)
    stress_run(tmp_path / "s", seconds=(1.0, 2.0, 3.0, 4.0))
    assert not list(tmp_path.rglob("*.ipynb"))
    runs = report.collect(tmp_path)
    assert sorted(runs.runs["experiment"]) == ["performance", "stress"]
    # stress: traditional 4 models at 400 MiB (100/model), mms 4 at 53 MiB (13.25/model) -> 1/8 (7.5x)
    a = report.answer(runs)
    assert "1.0x as many models" in a and "1/8 of the measured memory per model" in a
    # performance, SLO p99 <= 200 ms: traditional p99 = 99.01 ms holds both rates; mms p99 = 990.01 holds none
    sat = runs.saturation.set_index("mode")
    assert sat.loc["traditional", "max_ok_qps"] == 50 and np.isnan(sat.loc["mms", "max_ok_qps"])
    assert "traditional held **50 QPS** and multi-model held no tested rate" in a


def test_percentiles_and_slo_are_chosen_at_report_time(tmp_path):
    perf_run(tmp_path / "p", lambda m, q: np.arange(1, 1001), qps=(25.0, 50.0), modes=("mms",), slo_p99_ms=100, apart=True)
    default = report.collect(tmp_path)
    assert {"p50", "p90", "p95", "p99", "max"} <= set(default.levels.columns)
    assert default.levels["attainment"].tolist() == [0.1, 0.1]  # 100 of 1..1000 within the run's 100 ms
    other = report.collect(tmp_path, percentiles="50,99.99,max", slo_ms=995)
    assert "p99.99" in other.levels and "p90" not in other.levels
    assert other.levels["p99.99"].iloc[0] == pytest.approx(np.percentile(np.arange(1, 1001), 99.99))
    assert other.levels["attainment"].tolist() == [0.995, 0.995]
    # 995 of 1000 within: the interval's lower end is below 0.99, so the level is not shown to meet it
    assert other.levels["slo_decision"].tolist() == ["not enough data"] * 2 and not other.levels["slo_met"].any()
    looser = report.collect(tmp_path, percentiles="50,99.99,max", slo_ms=999)  # 999 of 1000: lower end > 0.99
    assert looser.levels["slo_met"].all()
    # p99 990.01 <= 995, but its interval reaches 996 (order statistics of 1,000): not shown; 999 is
    assert np.isnan(other.saturation.set_index("mode").loc["mms", "max_ok_qps"])
    assert looser.saturation.set_index("mode").loc["mms", "max_ok_qps"] == 50
    with pytest.raises(Exception, match="percentiles"):
        report.collect(tmp_path, percentiles="50,120")


def test_unreadable_and_newer_runs_are_skipped_with_the_reason(tmp_path):
    perf_run(tmp_path / "ok", lambda m, q: np.arange(1, 101), modes=("mms",))
    perf_run(tmp_path / "new", lambda m, q: np.arange(1, 101), modes=("mms",))
    meta = json.loads((tmp_path / "new" / "meta.json").read_text())
    meta["format_version"] = 7
    (tmp_path / "new" / "meta.json").write_text(json.dumps(meta))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "meta.json").write_text("{not json")
    perf_run(tmp_path / "damaged", lambda m, q: np.arange(1, 101), modes=("mms",))
    (tmp_path / "damaged" / "requests" / "mms_25qps_r0.parquet").write_bytes(b"PAR1 not really")
    runs = report.collect(tmp_path)
    assert list(runs.runs["run"]) == ["ok"]
    reasons = dict(zip(runs.skipped["path"].map(lambda p: Path(p).name), runs.skipped["reason"]))
    assert "format_version 7" in reasons["new"] and "not readable JSON" in reasons["broken"]
    assert reasons["damaged"].startswith("records not readable")
    assert report.collect(tmp_path / "missing").empty


def test_figures_and_tables_for_every_setting(tmp_path):
    """kserve backend, triton runtime, bert workload, a GPU machine: the report still reads them."""
    settings = {"k": {"backend": "kserve", "serving_runtime": "kserve-tritonserver", "namespace": "bench"},
                "t": {"runtime": "triton"}, "b": {"workload": "bert", "device": "cuda"}}
    for name, extra in settings.items():
        perf_run(tmp_path / name, lambda m, q: np.arange(1, 501), qps=(10.0, 20.0), params=extra, key=f"k-{name}")
    stress_run(tmp_path / "s")
    runs = report.collect(tmp_path)
    assert len(runs) == 4
    for r in runs:
        assert len(report.run_facts(r)) > 10 and len(report.differences_in_setting(r)) > 5
        assert len(report.run_metadata(r)) > 5
    import matplotlib.pyplot as plt
    for fig in (figures.latency_vs_rate(runs), figures.percentile_spectrum(runs.get("b")),
                figures.attainment(runs)):  # attainment of each run's SLO vs rate
        assert fig is not None
        plt.close(fig)
    written = report.write_tables(runs, tmp_path / "tables")
    assert {p.name for p in written} >= {"report_levels.csv", "report_levels.json", "report_headline.csv"}


def test_other_experiments_get_attainment_and_level_figures(tmp_path):
    """A traffic-like run (rate x CV) and a cold-start-like run (cache size): attainment of their SLO
    per varying column, their levels' latency; their rows in the levels table."""
    from runfactory import generic_run
    lv = [{"mode": m, "rate": r, "cv": cv, "repeat": 0} for m in ("mms",) for r in (10.0, 20.0) for cv in (1.0, 4.0)]
    generic_run(tmp_path / "t", "traffic", lv, lambda L: np.full(200, 10.0) + (L["cv"] > 1) * np.arange(200))
    cs = [{"mode": "mms", "cache_size": c, "repeat": 0} for c in (2.0, 4.0, 8.0)]
    generic_run(tmp_path / "c", "coldstart", cs, lambda L: np.arange(1, 101) * 8 / L["cache_size"], key="k2")
    runs = report.collect(tmp_path)
    t = runs.levels[runs.levels["experiment"] == "traffic"].set_index(["rate", "cv"])
    # cv 1: all 10 ms -> attainment 1; cv 4: 10 + 0..199 ms, 41 of 200 within 50 ms -> 0.205
    assert t.loc[(10.0, 1.0), "attainment"] == 1.0 and t.loc[(20.0, 4.0), "attainment"] == pytest.approx(0.205)
    import matplotlib.pyplot as plt
    fig = figures.attainment(runs)
    titles = sorted(ax.get_title() for ax in fig.axes)
    assert titles == ["coldstart: attainment vs cache_size", "traffic: attainment vs cv", "traffic: attainment vs rate"]
    plt.close(fig)
    fig = figures.experiment_levels(runs, "coldstart")
    assert fig.axes[0].get_xlabel() == "cache_size"
    plt.close(fig)
    # runs are ordered by start time (whole seconds) then name: either experiment may open the sentence
    a = report.answer(runs).lower()
    # cv 1 levels: 200 requests, none missed, cannot show 99% (lower end 0.982); cv 4 levels: latencies
    # growing to 209 ms overlap the next requests, so each level is one busy period: no independent
    # evidence either way. Every traffic level: not enough data.
    assert "traffic: 0 of 4 levels shown to meet their slo (4 with not enough data to say)" in a
    assert "coldstart: 0 of 3 levels shown to meet their slo" in a


def test_html_helpers_can_fail():
    bad = '<script src="https://cdn.example/x.js"></script><link href="//cdn.example/y.css" rel="stylesheet">'
    assert len(html.remote_references(bad)) == 2 and html.remote_references(html.strip_remote(bad)) == []
    assert html.remote_references('x = import("https://a/b.mjs")')
    assert html.contents(["The answer", ("Sub part", 2)]) == \
        "**Contents**\n\n- [The answer](#the-answer)\n  - [Sub part](#sub-part)"


TOC = ["the-answer", "runs", "stress", "performance", "distributions", "traffic", "cold-starts", "comparison",
       "capacity", "simulation", "each-run", "exports"]


def test_report_command_builds_offline_html(mixed, tmp_path):
    d, _ = mixed
    out = tmp_path / "rep"
    p = subprocess.run([sys.executable, "-m", "mmslib.cli", "report", str(d), "--out", str(out),
                        "-p", "percentiles", "50,99,99.99,max"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert p.returncode == 0, (p.stdout + p.stderr)[-3000:]
    page = (out / "report.html").read_text()
    assert html.remote_references(page) == []
    assert html.figure_count(page) >= 6  # models vs memory, latency vs rate, 2 x (histogram + spectrum)
    for a in TOC:
        assert f'href="#{a}"' in page and f'id="{a}"' in page, a
    assert "dt-container" in page or "itables" in page  # interactive tables embedded
    assert "4 run(s)" in page and "p99.99" in page
    # the simulator's answers beside the capacity planner, labelled, with their validation error
    assert page.index('id="capacity"') < page.index('id="simulation"') < page.index('id="each-run"')
    assert "Cold starts at cluster scale (simulation)" in page and "Simulation, not measurement." in page
    assert "hit rate within 1.50 points (target 2), SLO attainment within 4.00 points (target 5)" in page
    assert "10,000 models need <strong>12 hosts</strong> (99.5% within the SLO)" in page
    assert (d / "report" / "report_levels.csv").is_file()  # the report's tables, exported
    if shutil.which("chromium"):
        _chromium_sees(out / "report.html", tmp_path)


def _chromium_sees(page: Path, tmp: Path):
    """Open the page in headless Chromium with the network cut off (a dead proxy, no DNS) and read
    the DOM after scripts ran: the figures are there, the contents links too, and DataTables ran."""
    args = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND", f"--user-data-dir={tmp / 'chr'}",
            "--virtual-time-budget=3000", "--dump-dom", page.as_uri()]
    r = subprocess.run(args, capture_output=True, text=True, timeout=120)
    dom = r.stdout
    assert len(re.findall(r"<img[^>]+src=\"data:image/png", dom)) >= 6, r.stderr[-2000:]
    assert all(f'href="#{a}"' in dom for a in TOC)
    assert "dt-container" in dom or "dataTables_wrapper" in dom, "DataTables did not run offline"


def test_report_notebook_parameters_are_the_report_params_defaults():
    from dataclasses import asdict

    import jupytext

    from mmslib import params
    from test_notebooks import disagreements, parameters_cell, parse_parameters
    values, uncommented = parse_parameters(parameters_cell(jupytext.read(ROOT / "notebooks" / "report.py")))
    assert not disagreements(values, asdict(params.ReportParams()))
    assert uncommented == []
    assert params.report(**values).percentiles == [50.0, 90.0, 95.0, 99.0, "max"]
    with pytest.raises(Exception, match="compare"):
        params.report(compare="only-one")


def test_seed_sentences_read_the_seed_figures():
    """The headline's seed figures come from mmslib.seed; expected words as BENCHMARK.md publishes them."""
    import importlib
    h = importlib.import_module("mmslib.report.headline")
    assert h._seed_stress_sentence() == ("deployed ~10,000 models on 6 InferenceServices against 352 (28x) "
                                         "on a 6-node cluster")
    assert (h._seed_reserved("traditional"), h._seed_reserved("mms")) == ("387 CPU / 211 GB", "66 CPU / 63 GB")
    assert h._seed_held("simple_string") == "traditional 2,500 QPS without scaling vs multi-model scaling up at 500 QPS"
    assert h._seed_held("bert") == "traditional 200 QPS without scaling vs multi-model 40 QPS without scaling"
    assert h._seed_held("no-such-workload") is None


def test_simulation_section_reads_the_coldstart_run_directory(tmp_path):
    """The cold-start simulator's tables come from the run directory (no notebook), labelled as
    simulation, with the validation error in words; a run without them is named, not skipped silently."""
    coldstart_run(tmp_path / "cs", VALIDATION, CLUSTER)
    coldstart_run(tmp_path / "old", VALIDATION[:1], [], key="k-old")
    (tmp_path / "old" / "simulator_validation.parquet").unlink()  # a run made before the tables were written
    sim = report.simulation_section(report.collect(tmp_path))
    v = sim.validation.set_index("name")
    assert list(sim.validation["run"]) == ["cs"] * 3
    assert v.loc["a2_c4", "attainment_diff_pts"] == 4.0 and v.loc["a1_c4", "hit_rate_simulated"] == 0.615
    assert list(sim.cluster["models"]) == [10000, 1000000] and list(sim.cluster["hosts_needed"].astype(object)) == [12, pd.NA]
    assert sim.missing == ["old"]
    assert sim.text == (
        "**cs** (kserve/bert): **Simulation, not validated under load** (a validation from before the checks "
        "with power: no utilisation, no baseline): checked on 2 cells: hit rate within 1.50 points (target 2), "
        "SLO attainment within 4.00 points (target 5) of the measurement; 2 of 2 cells meet both targets. "
        "1 cell(s) left out, measured while the client fell behind its schedule: a0.5_c4 (attainment 20.0% "
        "measured, 60.0% simulated). Simulated cluster (not validated under load), hosts of 10Gi (80 models "
        "each), Zipf alpha 1, "
        "1,000 requests/s in all, SLO 200 ms for >= 99% of requests: 10,000 models need **12 hosts** (99.5% "
        "within the SLO); 1,000,000 models: no host count reached 99% (not reachable: attainment levels off "
        "at 0.9).\n\nColdstart run(s) with validation cells but no simulation tables in their directory (made "
        "before `mmslib.coldstart.save_simulation` existed, or interrupted before section 4): old.")
    empty = report.simulation_section(report.collect(tmp_path / "old"))
    assert empty.empty and len(empty.cluster) == 0
