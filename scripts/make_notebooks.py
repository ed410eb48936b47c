"""Write notebooks/report.ipynb (run: python scripts/make_notebooks.py).

Only the report notebook is still built here, until it becomes a Jupytext source
like the others (notebooks/<name>.py paired with .ipynb, synced by ``make notebooks``);
then this script goes.
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
    builders = {"report": report_nb}
    for name, build in builders.items():
        nb = build()
        for i, cell in enumerate(nb.cells):  # stable ids: regenerating changes nothing
            cell.id = f"{name}-{i:02d}"
        nbf.write(nb, NB / f"{name}.ipynb")
        print("wrote", NB / f"{name}.ipynb")


if __name__ == "__main__":
    main(sys.argv[1:])
