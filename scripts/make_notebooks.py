"""Write the experiment notebooks from this one source (run: python scripts/make_notebooks.py).

Notebooks stay thin: narrative, the parameters cell, calls into mmslib, plots.
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat as nbf

ROOT = Path(__file__).resolve().parent.parent
NB = ROOT / "notebooks"


def md(s):
    return nbf.v4.new_markdown_cell(s.strip())


def code(s, tags=None):
    c = nbf.v4.new_code_cell(s.strip())
    if tags:
        c.metadata["tags"] = tags
    return c


def notebook(cells):
    nb = nbf.v4.new_notebook()
    nb.cells = cells
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def params_cell(cls, overrides=None):
    from dataclasses import fields
    lines = ["# Parameters (papermill: -p NAME VALUE, or -f params/<set>.yaml)"]
    for f in fields(cls):
        v = cls().__getattribute__(f.name)
        if overrides and f.name in overrides:
            v = overrides[f.name]
        lines.append(f"{f.name} = {v!r}")
    return code("\n".join(lines), tags=["parameters"])


SETUP = """
%matplotlib inline
import pandas as pd
from IPython.display import Markdown, display
import mmslib
from mmslib import params as mparams
pd.set_option("display.precision", 3)
pd.set_option("display.width", 160)
"""


def parameter_cells(cls, validate: str):
    """The parameters cell, the set-up cell, and the cell that validates every
    parameter before anything is deployed (``mmslib.params.<validate>``)."""
    return [params_cell(cls), code(SETUP), code(f"""
# Validate every parameter before anything is deployed (a bad value stops here, naming the parameter).
P = mparams.{validate}(**{{k: globals()[k] for k in mparams.defaults(mparams.{cls.__name__})}})
pd.Series(P.to_dict(), name="value").to_frame()
""")]


def stress_nb():
    from mmslib.params import StressParams
    return notebook([
        md("""
# Stress test: how many models fit, and what do they cost?

This notebook reproduces the *Stress Test* of KServe's published multi-model serving benchmark
(`../shared/seed/BENCHMARK.md`): deploy as many models as possible with **traditional serving**
(one server — one InferenceService — per model) and with **multi-model serving** (a few host
servers, models added one by one like TrainedModels), and compare how many fit and what they cost.

The seed found 352 InferenceServices with traditional serving against ~10,000 models on 6
InferenceServices with multi-model serving (2800% more), using 387 CPU / 211 GB vs 66 CPU / 63 GB
of *reserved* resources. Here both **reserved** resources (Kubernetes requests from the specs in the
parameters) and **measured** resources (PSS/RSS of every server process, CPU seconds) are reported.
"""),
        *parameter_cells(StressParams, "stress"),
        md("""
## Method
Each mode deploys up to `models` models, one step per model, and stops at the first limit hit:
**target reached**, the **memory budget** (measured PSS of all server processes, plus one more server
for traditional, would exceed `memory_budget`), a **deploy failure** (including an **admission
refusal**: like KServe's TrainedModel admission, a host refuses a model once the models' declared
memory would exceed the host's memory limit), a per-model **timeout** (`deploy_timeout_s`), or the
mode's `time_limit_s`. A row is recorded per step; rows are written to `output_dir` as the run goes,
so nothing measured is lost if it fails. After deployment every model must appear in its server's
model list, and a random sample (`verify_sample`) must answer a correct inference.
"""),
        code("""
from mmslib import stress
result = stress.run(P)
summary = result.summary
steps = result.steps
print(f"run {result.rundir.run_id}: records in {result.rundir.path}")
"""),
        md("## Summary (the seed's stress summary, on this machine)"),
        code("""
from mmslib import narrative
display(Markdown(narrative.stress_headline(summary)))
stress.seed_summary_table(summary)
"""),
        md("## Models vs memory, and deploy time"),
        code("""
from mmslib import plots
fig = plots.stress_memory(steps)
"""),
        code("""
fig = plots.stress_deploy_time(steps)
"""),
        md("## Verification"),
        code("""
summary[["mode", "verified_expected", "verified_listed", "verified_sampled", "verified_correct", "verify_ok", "verify_failures"]]
"""),
        md("## Run metadata\nVersions, machine, parameters and git sha, saved with the records in `output_dir/meta.json`."),
        code("""
from mmslib.notebook import glue_run, metadata_table
metadata_table(result.rundir.meta)
"""),
        code("""
# Glued for report.ipynb (scrapbook).
glue_run("stress", P, result.rundir, stress_summary=summary, comparison=stress.compare(summary))
"""),
    ])


def performance_nb():
    from mmslib.params import PerformanceParams
    return notebook([
        md("""
# Performance test: latency at fixed request rates

This notebook reproduces the *Performance Test* of KServe's published multi-model serving benchmark
(`../shared/seed/BENCHMARK.md`): **traditional serving** with N InferenceServices (here: N
single-model servers, the client-side rate split evenly across them) against **multi-model
serving** with one InferenceService and N TrainedModels (here: `hosts` servers holding the N models,
the rate split across models), at fixed client-side request rates. The seed found the two comparable
while neither scales, with multi-model serving saturating first on its single InferenceService.
"""),
        *parameter_cells(PerformanceParams, "performance"),
        md("""
## Method
- **Open loop.** k6's `constant-arrival-rate` executor starts requests on a fixed schedule whatever
  the latency, like the seed's vegeta: a slow server does not slow the schedule down, so latency is
  not hidden by *coordinated omission*. A level whose generator fell behind (more than 1% of
  iterations dropped, or less than 99% of the target rate achieved) is flagged **not valid**.
- **Warm-up.** The first `warmup_s` seconds of every level are sent but excluded from the statistics;
  they stay in the raw records, marked `warmup`.
- **Records.** Every request is a row (start time, latency, status, correct answer or not, model,
  server); all figures below are computed from those rows, saved in `output_dir/requests/`.
- **Intervals.** p99 comes with a distribution-free 95% confidence interval (order statistics);
  a level with fewer than ~1,000 requests has an unstable p99 and is marked `few_samples`.
- **Repeats.** With `repeats > 1` every level runs that many times in an interleaved order
  (A B, then B A), so drift hits both modes alike; tables show the median and the spread.
- **Server side.** Each runtime's own metrics give the time spent inside the server per request,
  shown beside client-side latency: the difference is protocol, queueing and client overhead.
"""),
        code("""
from mmslib import performance, stats, plots, narrative
result = performance.run(P)
summary = result.summary
print(f"run {result.rundir.run_id}: records in {result.rundir.path}")
result.deploy
"""),
        md("## Latency tables, in the seed's layout (ms)"),
        code("""
for mode in P.modes:
    display(Markdown(f"**{mode}**" + (f" with {P.models} InferenceServices" if mode == "traditional" else f" with {P.hosts} InferenceService(s) and {P.models} TrainedModels")))
    display(stats.seed_table(summary, mode))
"""),
        code("""
warn = narrative.performance_warnings(summary, result.levels)
display(Markdown(warn or "All levels valid, enough samples, machine not busy before any level."))
"""),
        md("## Up to what rate does each mode hold?"),
        code("""
sat = result.saturation()
display(Markdown(narrative.saturation_sentence(sat, P.slo_p99_ms)))
sat
"""),
        md("## Latency vs rate"),
        code("""
fig = plots.latency_vs_rate(summary, P.slo_p99_ms)
"""),
        md("## Latency over time at each rate (the seed's plots)"),
        code("""
ts = stats.latency_timeseries(result.records)
for q in P.qps:
    fig = plots.latency_over_time(ts, q)
"""),
        md("## Server CPU and memory during each level"),
        code("""
fig = plots.resources_over_levels(result.samples) if len(result.samples) else None
"""),
        md("## Where the latency goes: client-side vs server-side"),
        code("""
cols = [c for c in ("mode", "qps", "repeat", "mean", "p50", "server_ms", "compute_ms", "queue_ms") if c in summary.columns]
summary[cols]
"""),
        md("## Traditional vs multi-model at each rate"),
        code("""
stats.compare_modes(summary) if set(P.modes) == {"traditional", "mms"} else None
"""),
        md("## Run metadata"),
        code("""
from mmslib.notebook import glue_run, metadata_table
metadata_table(result.rundir.meta)
"""),
        code("""
# Glued for report.ipynb (scrapbook).
glue_run("performance", P, result.rundir, perf_summary=summary, saturation=sat, deploy=result.deploy)
"""),
    ])


def report_nb():
    return notebook([
        md("""
# Report: multi-model serving vs traditional serving

Every executed experiment notebook (`stress.ipynb`, `performance.ipynb`) found under `input_dir`,
side by side, next to the results KServe published for its multi-model serving benchmark
(`../shared/seed/BENCHMARK.md`). The summary answers the benchmark's question - how many models,
at what cost, at what latency, traditional vs multi-model; the details follow.
"""),
        code("""
# Parameters (papermill: -p NAME VALUE)
input_dir = "outputs"
include_seed = True
limits_file = "params/seed-cluster.yaml"
""", tags=["parameters"]),
        code("""
import warnings
import pandas as pd
import scrapbook as sb
from IPython.display import Markdown, display
from mmslib import report
pd.set_option("display.precision", 3)
pd.set_option("display.width", 160)
pd.set_option("display.max_columns", 60)
pd.set_option("display.max_colwidth", 120)

runs = report.collect(input_dir)
display(Markdown(
    f"**{len(runs)} run(s)** found in `{runs.folder}` "
    f"({len(runs.of('stress'))} stress, {len(runs.of('performance'))} performance)"
    + (f"; {len(runs.skipped)} notebook(s) skipped." if len(runs.skipped) else ".")
    if not runs.empty else
    f"**No runs found** in `{runs.folder}`: no executed stress or performance notebook there. "
    "The seed's figures and the capacity planner are shown on their own."))
"""),
        md("## Summary"),
        code("""
headline = report.headline(runs)
display(Markdown(headline))
summary = report.headline_table(runs, include_seed=include_seed)
report.format_table(summary)
"""),
        md("""
*Ours* are the stress run and the performance run the sentences speak of (both modes measured,
the largest, then the latest); every run is in the tables below. *Reserved* figures are the
Kubernetes requests the specs would make (queue-proxy sidecar included), *measured* memory is the
PSS of the server processes; latency is client-side, in milliseconds.
"""),
        md("## Runs"),
        code("""
cols = ["run", "experiment", "status", "backend", "runtime", "workload", "models", "hosts", "qps", "cluster",
        "machine", "versions"]
display(runs.runs[cols] if not runs.empty else Markdown("*No runs.*"))
if len(runs.skipped):
    display(runs.skipped)
"""),
        md("""
## Stress: how many models, at what cost
One row per run and mode; the seed's rows (source `seed`) use its published counts, with the
reserved CPU/memory computed from its specs (the words it published are in `published`).
"""),
        code("""
stress_cols = ["source", "setting", "run", "mode", "models_deployed", "stop_reason", "servers", "processes",
               "pss_mib", "pss_per_model_mib", "reserved_cpu", "reserved_memory_mib", "reserved_cpu_per_model",
               "reserved_memory_mib_per_model", "deploy_rate_per_s", "ready_p50_s", "mms_over_traditional",
               "published", "versions"]
t = report.with_seed(runs, "stress") if include_seed else report.stress_side_by_side(runs)
t[[c for c in stress_cols if c in t.columns]] if len(t) else Markdown("*No stress runs.*")
"""),
        md("""
## Performance: latency per run and mode, next to the seed's
In the seed's layout (ms). `p99 95% CI` is a distribution-free interval; `valid` is false when the
load generator fell behind the schedule.
"""),
        code("""
tables = report.performance_tables(runs, include_seed=include_seed)
if not tables:
    display(Markdown("*No performance runs.*"))
for tb in tables:
    display(Markdown(f"**{tb['title']}**"))
    display(tb["ours"])
    if tb["seed"] is not None:
        display(Markdown(f"*{tb['seed_title']}*"))
        display(tb["seed"])
"""),
        md("### All rates side by side"),
        code("""
perf_cols = ["source", "run", "workload", "mode", "models", "hosts", "qps", "qps_per_isvc", "qps_per_model",
             "mean", "p50", "p90", "p95", "p99", "max", "n", "errors", "valid", "server_ms", "max_ok_qps", "setting"]
t = report.with_seed(runs, "latency") if include_seed else report.performance_side_by_side(runs)
t[[c for c in perf_cols if c in t.columns]] if len(t) else Markdown("*No performance runs.*")
"""),
        md("""
## Saturation: up to what rate does each mode hold?
Ours: the highest rate that is valid, has no errors and keeps p99 within the SLO. The seed's:
the rate each mode handled without scaling (its multi-model InferenceService started to scale up at
500 QPS for simple_string).
"""),
        code("""
sat_cols = ["source", "run", "workload", "mode", "max_ok_qps", "first_fail_qps", "fail_reason", "slo_p99_ms",
            "published", "setting"]
t = report.with_seed(runs, "saturation") if include_seed else report.saturation_side_by_side(runs)
t[[c for c in sat_cols if c in t.columns]] if len(t) else Markdown("*No performance runs.*")
"""),
        md("""
## Capacity planner: the seed's cluster
What the planner predicts from the seed's published cluster limits (`limits_file`): which limit
binds per mode, the reserved totals, the etcd fill point and the CPU per node the seed's 352
InferenceServices imply; then the predictions next to the seed's numbers and next to each stress
run's measurement.
"""),
        code("""
cap = report.capacity_section(limits_file, runs)
display(Markdown(cap.text))
cap.plans
"""),
        code("""
cap.limits_table
"""),
        code("""
display(cap.etcd)
cap.cpu_inference
"""),
        md("### Predictions vs the seed's published numbers"),
        code("""
cap.seed_check
"""),
        md("### Predictions vs our stress runs"),
        code("""
cap.measured if len(cap.measured) else Markdown("*No stress runs to compare.*")
"""),
        md("""
## Each run: facts, setting and metadata
The facts KServe's benchmark request asks each test to give (CPU, GPU, memory, IP addresses,
models, pods, InferenceServices, cluster size, model and InferenceService size, assumptions), how
the setting differs from the seed's, and the run's metadata.
"""),
        code("""
if runs.empty:
    display(Markdown("*No runs.*"))
for run in runs:
    display(Markdown(f"### {run.key} ({run.experiment}, {run.row['backend']}/{run.row['runtime']}/{run.row['workload']})"))
    display(report.run_facts(run))
    display(report.differences_in_setting(run))
    display(report.run_metadata(run))
"""),
        code("""
# Glued for whoever reads this report (scrapbook).
sb.glue("experiment", "report")
sb.glue("input_dir", str(runs.folder))
sb.glue("runs_found", len(runs))
sb.glue("headline", headline)
sb.glue("headline_table", summary.reset_index(), encoder="pandas")
"""),
    ])


def main(argv):
    NB.mkdir(exist_ok=True)
    builders = {"stress": stress_nb, "performance": performance_nb, "report": report_nb}
    for name, build in builders.items():
        nb = build()
        for i, cell in enumerate(nb.cells):  # stable ids: regenerating changes nothing
            cell.id = f"{name}-{i:02d}"
        nbf.write(nb, NB / f"{name}.ipynb")
        print("wrote", NB / f"{name}.ipynb")


if __name__ == "__main__":
    main(sys.argv[1:])
