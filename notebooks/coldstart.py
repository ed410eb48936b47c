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
# # Cold starts, churn, and more models than memory
#
# The seed asks how many models *fit*. ModelMesh serves more models than fit: it loads a model on its
# first request and evicts the least recently used. This notebook measures what that costs with stock
# runtimes on this machine, then scales the answer to a cluster with a simulator validated against
# the measurements:
#
# 1. **Load and unload, and what they leave behind**: load/unload latency per runtime, the servers'
#    memory (PSS) over `cycles` cycles, and a leak audit.
# 2. **Loading while serving**: resident models' latency and SLO attainment with and without other
#    models being loaded and unloaded, interleaved A B B A.
# 3. **More models than memory** (`mms_engine: lazy`, the kserve runtime only: Triton and MLServer
#    have no lazy loading): hit rate, cold starts (counted by client and server), latency and SLO
#    attainment over Zipf skew x capacity.
# 4. **A simulator, validated**, then the cluster questions.

# %% tags=["parameters"]
# Parameters (papermill: -p NAME VALUE, or -f params/coldstart-*.yaml); `papermill --help-notebook` lists them.
# What to measure
sections = ["load_unload", "churn", "lazy"]  # any of load_unload | churn | lazy
runtimes = ["kserve", "triton", "mlserver"]  # sections 1-2: runtimes that load and unload
cycles = None  # section 1: load/unload cycles per runtime; None: the workload's load_cycles_default
leak_bound_mib = None  # section 1: "grows" also beyond this drift (MiB); None: 1% of this machine's memory only
resident_models = 4  # section 2: models taking traffic
churn_models = 4  # section 2: other models, loaded and unloaded in turn
churn_per_s = 2.0  # section 2: loads per second (each unloads the model loaded before)
qps = 50.0  # section 2: requests per second to the resident models (k6, open loop)
duration_s = 20.0  # sections 2-3: measured seconds per run / cell
warmup_s = 2.0  # sections 2-3: first seconds, sent but left out of the statistics
repeats = 2  # section 2: runs per condition, interleaved A B B A
slo_ms = 25.0  # sections 2-4: a request meets the SLO when answered correctly within this many ms
models = 40  # section 3: models behind the lazy host(s)
capacity = ["10%", "25%", "50%", "100%"]  # section 3: models a host keeps: counts, % of models, or memory (64Mi)
zipf_alpha = [0.5, 1.0, 1.5, 2.0]  # section 3: Zipf exponents of popularity (0: uniform)
lazy_qps = 20.0  # section 3: requests per second (Poisson arrivals)
lazy_cells = None  # section 3: cells fixed before the run, [{alpha, capacity, qps, role: calibration | validation}]; None: the grid above
lateness_p99_ms = 10.0  # section 3: a cell is valid when 99% of its requests were sent less than this late
service_ms = 0.0  # simple_string: each prediction holds the server this many ms (a known service time); 0: none
validation_slo_ms = None  # section 4: SLOs (ms) the simulated attainment is checked at; None: [slo_ms]
validation_seeds = 10  # section 4: simulator runs (seeds) per validation cell
cluster_models = [10000, 100000, 1000000]  # section 4: models in the simulated cluster
cluster_host_memory = "10Gi"  # section 4: each simulated host's memory for models
cluster_alpha = 1.0  # section 4: Zipf exponent of the simulated traffic
cluster_slo_ms = 50.0  # section 4: the SLO the simulated cluster must meet for 99% of requests
cluster_qps = 1000.0  # section 4: total simulated requests per second
cluster_duration_s = 600.0  # section 4: simulated seconds per host count
# Where and how
mms_engine = "lazy"  # lazy (load on first request, evict LRU: kserve runtime) | trainedmodel (no section 3)
runtime = "kserve"  # section 3's runtime (the one with lazy loading)
workload = "simple_string"  # what each model computes: simple_string | bert
device = "auto"  # bert only: auto | cpu | cuda
model_size = None  # families (sklearn_forest, lightgbm_trees, onnx_mlp): artifact size per model, e.g. 10Mi
model_repository = None  # workload "repository": a folder of your models (Triton, MLServer layout or model files)
inputs_file = None  # workload "repository": a file of V2 request bodies (None: generated from the metadata)
shape = None  # workload "repository": dynamic input dimensions for generated inputs, e.g. "x:4,3"
hosts = 1  # section 3: lazy hosts (model k on host k % hosts)
model_memory = None  # memory each model declares; None: the workload's (capacity as memory divides by it)
server_threads = 1  # worker threads per server process
deploy_timeout_s = 120.0  # a load not done within this many seconds is a failure
output_dir = "outputs/coldstart"  # run directory: records, meta.json
resume = False  # true: keep what output_dir already measured, run only the rest
seed = 0  # random seed (schedules, samples)
# Shared with the other notebooks, not used here
backend = "local"  # local only: cold starts are measured on this machine's servers
modes = ["traditional", "mms"]  # not used
deploy_concurrency = 4  # not used
traditional_predictor_cpu = "100m"  # not used
traditional_predictor_memory = "100Mi"  # not used
mms_predictor_cpu = "10"  # not used
mms_predictor_memory = "10Gi"  # not used
sidecar_cpu = "1"  # not used
sidecar_memory = "500Mi"  # not used
namespace = "default"  # not used (kserve backend)
kubeconfig = None  # not used (kserve backend)
ingress_host = "127.0.0.1"  # not used (kserve backend)
ingress_port = 80  # not used (kserve backend)
serving_runtime = "kserve-tritonserver"  # not used (kserve backend)
storage_uri = "gs://kfserving-examples/models/triton/simple_string"  # not used (kserve backend)
dry_run = False  # not used (kserve backend)
deployment_mode = "Serverless"  # not used (kserve backend)
ingress_path_template = ""  # not used (kserve backend)
ingress_domain = "example.com"  # not used (kserve backend)
modelmesh_rest_url = ""  # not used (kserve backend)
check_artifact_layout = True  # kserve: refuse a Triton storage_uri without one model per directory
check_permissions = True  # kserve: check RBAC for every verb the run needs before creating anything
kubelet_sync_s = 60.0  # kserve: the kubelet's ConfigMap refresh (syncFrequency) TrainedModels wait for
tm_batch = 256  # kserve: TrainedModels in flight at once (so many land in one refresh)
autoscale = False  # kserve: false pins every predictor to one replica (maxReplicas = minReplicas)
unschedulable_wait_s = 0.0  # kserve: how long an unschedulable pod may wait (a node autoscaler)
modelmesh_count = "loaded"  # kserve ModelMesh: loaded (answers an inference) | registered
fail_on_slo = False  # not used (the performance notebook's gate)

# %%
# %matplotlib inline
import pandas as pd
from IPython.display import Markdown, display

from mmslib import coldstart, coldstart_plots, narrative, validity
from mmslib.notebook import glue_run, metadata_table, quiet_when_done, setting_line, setting_table, validated
from mmslib.notebook import validity_section

pd.set_option("display.precision", 3)
pd.set_option("display.width", 160)
pd.set_option("display.max_columns", 40)

# %%
# Validate every parameter before anything starts (a bad value stops here, naming the parameter).
P = validated("coldstart", globals())
display(Markdown(setting_line(P)))

# %%
with quiet_when_done():  # progress while it runs, cleared once it is done
    result = coldstart.run(P)
    cycle_summary, leak = result.cycle_summary(), result.leak_audit()
    churn = result.churn_summary()
    churn_compare = result.churn_compare() if len(churn) else pd.DataFrame()
    lazy = result.lazy_summary()
    validation = result.validation() if len(lazy) else pd.DataFrame()
    cluster = coldstart.cluster_questions(result, validation=validation) if len(validation) else pd.DataFrame()
    # the report reads them from the run directory (and asks the simulator about other families)
    coldstart.save_simulation(result.rundir, validation, cluster, coldstart.simulator_inputs(result))
notes = validity.coldstart(cycle_summary, churn, result.churn_levels, lazy)

# %% [markdown]
# ## The answer

# %%
display(Markdown(narrative.with_validity(
    narrative.coldstart_headline(cycle_summary, leak, churn_compare, lazy,
                                 coldstart.validation_sentence(validation) if len(validation) else "", cluster,
                                 P.slo_ms),
    notes, len(cycle_summary) + len(churn) + len(lazy), "measurements (runtimes, runs, cells)")))
fig = coldstart_plots.plot_lazy(lazy, P.slo_ms) if len(lazy) else None

# %% [markdown]
# ## 1. Load and unload, and what they leave behind
# Latency of `POST /v2/repository/models/<name>/load` and `.../unload` (ms, client side), and the
# servers' PSS before the cycles, with a model loaded (median, max) and after. Leak audit: PSS after
# each unload fitted against the cycle (first 10% of cycles left out); **grows** when the fitted
# drift over the run exceeds the bound and its 95% interval excludes zero. `notes`: marks in
# *Validity notes* below.

# %%
validity.mark(cycle_summary, notes, {"runtime": "runtime"}, section="1")

# %%
leak

# %%
fig = coldstart_plots.plot_memory(result.cycles) if len(result.cycles) else None

# %% [markdown]
# ## 2. Loading while serving
# Resident models' latency (ms) per run, with and without churn; the comparison uses the median of
# the repeats and says whether the difference is beyond the run-to-run spread.

# %%
cols = ["runtime", "mode", "repeat", "n", "errors", "p50", "p99", "p99_lo", "p99_hi", "attainment",
        "attainment_lo", "attainment_hi", "churn_loads", "churn_achieved_per_s", "valid"]
validity.mark(churn[[c for c in cols if c in churn.columns]], notes,
              {"runtime": "runtime", "mode": "mode", "repeat": "repeat"}, section="2") if len(churn) else None

# %%
churn_compare if len(churn) else None

# %% [markdown]
# ## 3. More models than memory (lazy loading, LRU eviction)
# One cell per Zipf exponent x capacity, a fresh host each. Cold starts are counted by the client
# (the `x-mms-cold-start` header on each response) and by the server (`GET /v2/mms/lazy`), over
# every request of the cell: `counts_agree` says they are equal. Latency counts from each request's
# scheduled time (lateness included); a cell is `valid` when the client kept its schedule (lateness
# p99 within `lateness_p99_ms`) and every request was answered. `utilisation`: requests/s x the mean
# time in predict, from the server's own metrics. The figure is the one in *The answer*.

# %%
validity.mark(lazy, notes, {"name": "cell"}, section="3") if len(lazy) else lazy

# %% [markdown]
# ## 4. The simulator, validated, then at cluster scale
# Calibrated on the `calibration` cells only (service time: hits that found the host idle; cold-start
# penalty; how long a request holds the server, fitted on the busy calibration cells), it replays each
# `validation` cell's recorded requests, `validation_seeds` times, and predicts SLO attainment at each
# of `validation_slo_ms`. Each check shows the measurement with its interval, the seeds' range and the
# baseline "attainment = calibration mean". A check has **power** (`powered`) when the cell is valid,
# the server was at least half busy and the measured attainment lies in 50-95%; the simulator is
# *validated under load* when it lands within 5 points on every such check (at least 3) and beats
# the baseline's mean error. The cluster answers carry that label.

# %%
vcols = ["name", "qps", "utilisation", "slo_ms", "attainment_measured", "attainment_lo", "attainment_hi",
         "attainment_simulated", "attainment_sim_lo", "attainment_sim_hi", "attainment_baseline",
         "attainment_diff_pts", "baseline_diff_pts", "hit_rate_diff_pts", "measurement_valid", "powered", "within"]
validation[[c for c in vcols if c in validation.columns]] if len(validation) else validation

# %%
fig = coldstart_plots.plot_validation(validation) if len(validation) else None

# %%
display(Markdown(coldstart.validation_sentence(validation))) if len(validation) else None
cluster

# %% [markdown]
# ## Validity notes

# %%
validity_section(notes)

# %% [markdown]
# ## Setting
# Every parameter (`changed`: not at its default) and the run's metadata (versions, machine, git sha),
# saved with the records in `output_dir/meta.json`.

# %%
display(Markdown(f"Run `{result.rundir.run_id}`: records in `{result.rundir.path}`."))
setting_table(P)

# %%
metadata_table(result.rundir.meta)

# %%
# Glued for report.ipynb (scrapbook).
glue_run("coldstart", P, result.rundir, cycle_summary=cycle_summary, leak_audit=leak, churn_summary=churn,
         lazy_summary=lazy, simulator_validation=validation, cluster=cluster)
