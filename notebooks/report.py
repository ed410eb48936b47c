# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Report: multi-model serving vs traditional serving
#
# Every run directory found under `input_dir` (and any listed in `runs`), made by a notebook, a
# script or a benchmark, recomputed from its per-request records, side by side and next to the
# results KServe published for its multi-model serving benchmark (the *seed*). The percentiles and
# the SLO are applied now, at report time (`percentiles`, `slo_ms`).

# %% tags=["parameters"]
# Parameters (papermill: -p NAME VALUE, or -f FILE.yaml); `papermill --help-notebook` lists them.
input_dir = "outputs"  # folder scanned (recursively) for run directories (folders holding meta.json)
runs = []  # more run directories to include, e.g. "[/data/run1, /data/run2]"
percentiles = [50, 90, 95, 99, "max"]  # percentiles the level tables show, e.g. 50,99,99.9,max
slo_ms = None  # latency SLO (ms) to judge every run by; None: each run's own (slo_p99_ms)
compare = []  # two runs to compare (keys, run ids or run directories); []: the two latest comparable runs
include_seed = True  # show the seed's published results beside ours
limits_file = "params/seed-cluster.yaml"  # cluster limits for the capacity planner
tables_dir = None  # where the report's tables are written as CSV + JSON; None: <input_dir>/report

# %%
# %matplotlib inline
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

from mmslib import params as mparams
from mmslib import report
from mmslib.report import figures, html

pd.set_option("display.precision", 3)
pd.set_option("display.max_columns", 80)
P = mparams.report(**{k: globals()[k] for k in mparams.defaults(mparams.ReportParams)})
R = report.collect(P.input_dir, runs=P.runs, percentiles=P.percentiles, slo_ms=P.slo_ms)
html.offline_tables()
display(Markdown(
    f"**{len(R)} run(s)** in `{R.folder}`: " + (", ".join(f"{len(R.of(e))} {e}" for e in R.experiments) or "none")
    + (f"; {len(R.skipped)} folder(s) skipped (below)." if len(R.skipped) else ".")))


# %% [markdown]
# ## <a id="the-answer"></a>The answer

# %%
display(Markdown(report.answer(R)))
display(Markdown(report.headline(R)))
report.format_table(report.headline_table(R, include_seed=P.include_seed))

# %% [markdown]
# *Ours* are the stress and performance runs the sentences speak of (both modes measured, the
# largest, then the latest). *Reserved* figures are the Kubernetes requests the specs would make
# (queue-proxy included), *measured* memory is the PSS of the server processes; latency is
# client-side, in milliseconds.
#
# **Contents**
#
# - [The answer](#the-answer)
# - [Runs](#runs)
# - [Stress: how many models, at what cost](#stress)
# - [Performance: latency vs rate](#performance)
# - [Latency distributions per level](#distributions)
# - [SLO attainment](#traffic)
# - [Cold starts](#cold-starts)
# - [Models by family and size](#families)
# - [Comparing two runs](#comparison)
# - [Capacity planner: the seed's cluster](#capacity)
# - [Cold starts at cluster scale (simulation)](#simulation)
# - [Each run: facts, setting and metadata](#each-run)
# - [Exports](#exports)
#
# ## <a id="runs"></a>Runs

# %%
cols = ["run", "experiment", "status", "gate", "format_version", "backend", "runtime", "workload", "models",
        "hosts", "qps", "machine", "versions"]
html.table(R.runs[cols], "runs") if len(R.runs) else display(Markdown("*No runs.*"))
if len(R.skipped):
    display(R.skipped)

# %% [markdown]
# ## <a id="stress"></a>Stress: how many models, at what cost
# Models deployed against memory, per run and mode: measured (PSS of every server process) and
# reserved (the Kubernetes requests of the specs); the seed's published points (352
# InferenceServices at 211 GB; ~10,000 models on 6 InferenceServices at 63 GB) on the right.

# %%
fig = figures.models_vs_memory(R)
plt.show() if fig else display(Markdown("*No stress runs.*"))
stress_cols = ["source", "run", "mode", "models_deployed", "stop_reason", "servers", "processes", "pss_mib",
               "pss_per_model_mib", "reserved_cpu", "reserved_memory_mib", "reserved_cpu_per_model",
               "reserved_memory_mib_per_model", "deploy_rate_per_s", "ready_p50_s", "mms_over_traditional",
               "published", "setting", "versions"]
t = report.with_seed(R, "stress") if P.include_seed else report.stress_side_by_side(R)
html.table(t[[c for c in stress_cols if c in t]], "stress, with the seed's rows") if len(t) else None

# %% [markdown]
# ## <a id="performance"></a>Performance: latency vs rate
# p50 and p99 per mode against the client rate (median over repeats), the seed's dashed.
# Then, per run and mode, the seed's table layout; `p99 95% CI` is distribution-free; `valid` is
# false when the load generator fell behind its schedule.

# %%
fig = figures.latency_vs_rate(R)
plt.show() if fig else display(Markdown("*No performance runs.*"))
for tb in report.performance_tables(R, include_seed=P.include_seed):
    display(Markdown(f"**{tb['title']}**"))
    display(tb["ours"])
    if tb["seed"] is not None:
        display(Markdown(f"*{tb['seed_title']}*"))
        display(tb["seed"])

# %%
sat_cols = ["source", "run", "workload", "mode", "max_ok_qps", "first_fail_qps", "fail_reason", "slo_p99_ms",
            "published", "setting"]
t = report.with_seed(R, "saturation") if P.include_seed else report.saturation_side_by_side(R)
html.table(t[[c for c in sat_cols if c in t]], "highest rate held within the SLO") if len(t) else None
perf_cols = ["source", "run", "workload", "mode", "models", "hosts", "qps", "qps_per_isvc", "qps_per_model", "mean",
             "p50", "p90", "p95", "p99", "max", "n", "errors", "valid", "server_ms", "max_ok_qps", "setting"]
t = report.with_seed(R, "latency") if P.include_seed else report.performance_side_by_side(R)
html.table(t[[c for c in perf_cols if c in t]], "every rate, every run") if len(t) else None

# %% [markdown]
# ## <a id="distributions"></a>Latency distributions per level
# Per run: a histogram of every level's latency (log bins) and its percentile spectrum, HDR style:
# the x axis is 1 / (1 - percentile), so p99 sits at 100 and p99.99 at 10,000; shaded, the
# order-statistics interval where the sample reaches that far. Then every level with the
# requested `percentiles`, their intervals and the SLO attainment.

# %%
for run in R:
    h, s = figures.latency_histogram(run), figures.percentile_spectrum(run)
    if h is None:
        continue
    display(Markdown(f"**{run.key}** ({run.experiment})"))
    plt.show()
html.table(R.levels, "every level: percentiles with intervals, attainment") if len(R.levels) else None

# %% [markdown]
# ## <a id="traffic"></a>SLO attainment
# Attainment of the SLO (requests ok and within it) with its interval, against what each
# experiment's levels vary: rate, arrival CV, model density (traffic runs), cache size (cold starts),
# client rate (performance runs, judged by their p99 SLO).

# %%
fig = figures.attainment(R)
plt.show() if fig else display(Markdown("*No run with SLO attainment over varying levels (traffic runs).*"))
for e in [x for x in R.experiments if x not in ("stress", "performance", "coldstart")]:
    html.table(R.levels[R.levels["experiment"] == e], f"{e} levels")

# %% [markdown]
# ## <a id="cold-starts"></a>Cold starts

# %%
fig = figures.experiment_levels(R, "coldstart")
plt.show() if fig else display(Markdown("*No cold-start runs.*"))
if "coldstart" in R.experiments and "experiment" in R.levels:  # no column: no run had levels
    html.table(R.levels[R.levels["experiment"] == "coldstart"], "cold-start levels")

# %% [markdown]
# ## <a id="families"></a>Models by family and size
# Per family and artifact size (the families' `model_size`, or the files of your own models): the
# models a host's memory holds at the PSS each model adds (at most what their declared memory
# admits), and how long a model takes to load, from the stress runs' steps and the coldstart runs'
# load/unload cycles; a server's first model of a family (it imports the library) is kept apart.
# simple_string, the seed's model, is the reference point, beside the seed's published ~10,000
# models on 6 hosts.

# %%
fam = report.families_section(R, include_seed=P.include_seed)
display(Markdown(fam.text or "*No stress or coldstart run to tell it from.*"))
for fig in (report.families.plot_models_per_host(fam.models_per_host), report.families.plot_cold_start(fam.cold_start)):
    plt.show() if fig else None
html.table(fam.models_per_host, "models per host by family and size") if len(fam.models_per_host) else None
html.table(fam.cold_start, "cold start vs model size") if len(fam.cold_start) else None

# %% [markdown]
# ## <a id="comparison"></a>Comparing two runs
# Per level and mode, the difference in p50, p99 and SLO attainment between two runs (`compare`,
# or the two performance runs of the same workload, runtime and backend sharing the most levels), with a 95%
# interval and whether it exceeds the run-to-run spread (`mmslib compare RUN_A RUN_B` prints the same).

# %%
C = report.comparison(R, P.compare)
if C is None:
    display(Markdown("*Fewer than two comparable runs.*"))
else:
    display(Markdown(f"**{C['a'].key}** (A) vs **{C['b'].key}** (B): {C['text']}"))
    html.table(C["table"], "B - A per level")

# %% [markdown]
# ## <a id="capacity"></a>Capacity planner: the seed's cluster
# What the planner predicts from the seed's published cluster limits (`limits_file`), next to the
# seed's numbers and to each stress run's measurement.

# %%
cap = report.capacity_section(P.limits_file, R)
display(Markdown(cap.text))
html.table(cap.plans, "plans")
html.table(cap.seed_check, "predictions vs the seed's published numbers")
html.table(cap.measured, "predictions vs our stress runs") if len(cap.measured) else None

# %% [markdown]
# ## <a id="simulation"></a>Cold starts at cluster scale (simulation)
# **Simulation, not measurement.** Beside the planner's count of what *fits*: what happens when a
# cluster serves more models than its hosts hold (load on first use, LRU eviction), from the
# discrete-event simulator (`mmslib.simulate`) each coldstart run calibrated with its own measured
# times. First how far the simulator was from the measurement on the cells it was not calibrated
# on (targets: hit rate within 2 points, SLO attainment within 5), then, for N models, the hosts
# needed for >= 99% SLO attainment.

# %%
sim = report.simulation_section(R)
display(Markdown(sim.text or "*No coldstart run with simulator tables.*"))
html.table(sim.validation, "simulation vs measurement (validation cells)") if len(sim.validation) else None
html.table(sim.cluster, "simulation: hosts needed for >= 99% SLO attainment") if len(sim.cluster) else None

# %% [markdown]
# **By family and size.** The newest coldstart run's first cluster question asked again of every
# runtime, family and size whose multi-model loads the runs measured: load times drawn from those
# loads (plus the hand-off that run's clients saw), memory per model the larger of the measured PSS
# and the declared memory, the service time that run's own model's. Not validated for the families.

# %%
fsim = report.family_simulation(R, fam.per_model)
display(Markdown(fsim.text))
html.table(fsim.table, "simulation: hosts needed by family and size") if len(fsim.table) > 1 else None

# %% [markdown]
# ## <a id="each-run"></a>Each run: facts, setting and metadata
# The facts KServe's benchmark request asks each test to give (CPU, GPU, memory, IP addresses,
# models, pods, InferenceServices, cluster size, model and InferenceService size, assumptions),
# how the setting differs from the seed's, and the run's metadata.

# %%
for run in R:
    if run.experiment not in ("stress", "performance"):
        continue
    display(Markdown(f"### {run.key} ({run.experiment}, {run.row['backend']}/{run.row['runtime']}/{run.row['workload']})"))
    display(report.run_facts(run))
    display(report.differences_in_setting(run))
    html.table(report.run_metadata(run), "metadata")

# %% [markdown]
# ## <a id="exports"></a>Exports
# The tables above as CSV (spreadsheets) and JSON (dashboards, CI), like every run's
# `summary.csv` / `summary.json`.

# %%
written = report.write_tables(R, P.tables_dir or f"{P.input_dir}/report")
display(Markdown("\n".join(f"- `{p}`" for p in written)))
