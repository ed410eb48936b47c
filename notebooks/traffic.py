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
# # Traffic: SLO attainment under bursty, skewed load
#
# With many models, skewed popularity and bursty arrivals, **what share of requests meets a latency
# SLO, and up to what rate?** This notebook asks it the way serving research does (AlpaServe: attainment
# vs rate and vs burstiness with Gamma arrivals; MLPerf Inference's Server scenario: Poisson arrivals, a
# tail-latency bound, a minimum query count), for **traditional serving** (a server per model) and
# **multi-model serving** (hosts holding many models), on the same backends, runtimes and workloads as
# `performance.ipynb`.

# %% tags=["parameters"]
# Parameters (papermill: -p NAME VALUE, or -f params/traffic-*.yaml); `papermill --help-notebook` lists them.
# The traffic
models = [5, 500]  # models loaded; a list is a density sweep in mode mms (traditional runs the first size only)
rates = [25.0, 50.0, 100.0]  # offered request rates (requests/s), one level each
arrival = "gamma"  # arrival process: constant | poisson | gamma | trace
cv = [1.0, 4.0]  # gamma only: coefficient(s) of variation of the gaps (1 = Poisson, > 1 bursty), each > 0
trace = None  # arrival trace: a CSV file of offset_s,model rows (model names as m00000, m00001, ...)
time_scale = 1.0  # arrival trace: offsets are divided by this (10 replays ten times faster)
popularity = "zipf"  # how requests spread over models: uniform | zipf | hot (noisy neighbour on top)
zipf_alpha = 1.0  # zipf exponent (>= 0; 0 = uniform)
hot_models = 1  # popularity hot: the first this many models also get the hot stream
hot_rate = 50.0  # popularity hot: requests/s of the hot stream, on top of the rates
hot_cv = 4.0  # popularity hot: coefficient of variation of the hot stream's gaps (> 0)
duration_s = 15.0  # measured seconds per level (after the warm-up)
warmup_s = 2.0  # seconds sent first at each level, kept but left out of the statistics
slo_ms = 50.0  # latency objective (ms, from the scheduled time); errors and timeouts are misses
attainment_target = 0.99  # share of requests that must meet the SLO, in (0, 1): met when its interval's lower end reaches it
lateness_p99_ms = 10.0  # a level whose generator lateness p99 exceeds this is not valid
offered_tolerance = 0.1  # a level whose offered rate (measured window) is off nominal by more than this share is not valid
search = False  # true: also bisect over the rate for the highest rate meeting the target, per mode
search_lo = 10.0  # search: lowest rate (requests/s)
search_hi = 400.0  # search: highest rate (requests/s)
search_tolerance = 20.0  # search: stop when the bracket is at most this wide (requests/s)
repeats = 1  # runs of every level, interleaved across modes (A B, then B A)
protocol = "rest"  # rest | grpc (Open Inference Protocol V2)
timeout_s = 10.0  # request timeout (s): a request still waiting is a miss
fail_on_slo = False  # false | true (every level) | the rates that must meet the SLO (e.g. 25,50): a miss fails the run
cpu_isolation = False  # true: pin the servers and k6 to separate CPUs
generator = "k6"  # k6 | go (mmslib.gogen: REST only, needs golang-go, less CPU per request)
# Where and how
backend = "local"  # local (server processes on 127.0.0.1) | kserve (a Kubernetes cluster)
runtime = "kserve"  # model server on the local backend: kserve | triton | mlserver
workload = "simple_string"  # what each model computes: simple_string | bert
device = "auto"  # bert only: auto | cpu | cuda
model_size = None  # families (sklearn_forest, lightgbm_trees, onnx_mlp): artifact size per model, e.g. 10Mi
model_repository = None  # workload "repository": a folder of your models (Triton, MLServer layout or model files)
inputs_file = None  # workload "repository": a file of V2 request bodies (None: generated from the metadata)
shape = None  # workload "repository": dynamic input dimensions for generated inputs, e.g. "x:4,3"
modes = ["traditional", "mms"]  # traditional (a server per model) and/or mms (hosts holding many models)
hosts = 1  # multi-model host servers (InferenceServices) in mode mms
deploy_concurrency = 4  # servers/models being deployed at once
deploy_timeout_s = 120.0  # a model not ready within this many seconds is a failure
server_threads = 1  # worker threads per server process (local backend)
output_dir = "outputs/traffic"  # run directory: records, meta.json, summaries
resume = False  # true: keep what output_dir already measured, run only the rest
seed = 0  # random seed: schedules, model samples, verification
# Resource specs (Kubernetes requests per InferenceService), the seed's by default
traditional_predictor_cpu = "100m"  # CPU request of a traditional predictor
traditional_predictor_memory = "100Mi"  # memory request of a traditional predictor
mms_predictor_cpu = "10"  # CPU request of a multi-model host's predictor
mms_predictor_memory = "10Gi"  # memory of a host: also its admission limit for models' declared memory
sidecar_cpu = "1"  # CPU request of the queue-proxy sidecar ("0": none)
sidecar_memory = "500Mi"  # memory request of the queue-proxy sidecar
model_memory = None  # memory each model declares (TrainedModel spec.model.memory); None: the workload's
# kserve backend only
namespace = "default"  # Kubernetes namespace for the run's objects
kubeconfig = None  # kubeconfig file; None: the default or in-cluster config
ingress_host = "127.0.0.1"  # ingress gateway host that requests go to
ingress_port = 80  # ingress gateway port
mms_engine = "trainedmodel"  # multi-model engine: trainedmodel | modelmesh
serving_runtime = "kserve-tritonserver"  # the cluster's ServingRuntime for the models
storage_uri = "gs://kfserving-examples/models/triton/simple_string"  # storageUri prefix of the models
dry_run = False  # true: write the manifests to output_dir/manifests, deploy nothing; server: also send each as a server-side dry run
deployment_mode = "Serverless"  # kserve: serving.kserve.io/deploymentMode: Serverless | RawDeployment | Standard
ingress_path_template = ""  # kserve: the ingress pathTemplate, e.g. /serving/{namespace}/{name} ("" = by Host)
ingress_domain = "example.com"  # kserve: the ingress domain (the Host with a path template)
modelmesh_rest_url = ""  # kserve ModelMesh: its REST proxy URL (after kubectl port-forward)
check_artifact_layout = True  # kserve: refuse a Triton storage_uri without one model per directory
check_permissions = True  # kserve: check RBAC for every verb the run needs before creating anything
kubelet_sync_s = 60.0  # kserve: the kubelet's ConfigMap refresh (syncFrequency) TrainedModels wait for
tm_batch = 256  # kserve: TrainedModels in flight at once (so many land in one refresh)
autoscale = False  # kserve: false pins every predictor to one replica (maxReplicas = minReplicas)
unschedulable_wait_s = 0.0  # kserve: how long an unschedulable pod may wait (a node autoscaler)
modelmesh_count = "loaded"  # kserve ModelMesh: loaded (answers an inference) | registered

# %%
# %matplotlib inline
import pandas as pd
from IPython.display import Markdown, display

from mmslib import narrative, traffic, traffic_plots, validity
from mmslib.notebook import glue_run, metadata_table, quiet_when_done, setting_line, setting_table, validated
from mmslib.notebook import validity_section

pd.set_option("display.precision", 4)
pd.set_option("display.width", 180)
pd.set_option("display.max_columns", 40)

# %%
# Validate every parameter before anything is deployed (a bad value stops here, naming the parameter).
P = validated("traffic", globals())
display(Markdown(setting_line(P)))

# %%
with quiet_when_done():  # progress while it runs, cleared once it is done
    result = traffic.run(P)
S = result.summary
notes = validity.traffic(S)

# %% [markdown]
# ## The answer

# %%
display(Markdown(narrative.with_validity(traffic.headline(result), notes, len(S))))
fig = traffic_plots.attainment_vs_rate(S, P.attainment_target)

# %% [markdown]
# ## Method
# - **Schedules ahead.** Each level's requests (when, and to which model) are computed before the level
#   from `seed` and the parameters only (`mmslib.arrivals`): both modes get the same requests at the
#   same offsets, and every schedule's hash is in `meta.json`.
# - **Open loop, not a VU pool.** k6 replays the schedule with timers and asynchronous requests.
#   Latency is kept from the **scheduled** time and from the send time; their difference, the
#   generator's **lateness**, is kept per request. A level with a request not sent, or lateness p99
#   above `lateness_p99_ms`, is **not valid**.
# - **Steady state.** Arrivals start in equilibrium (no burst at the start), and each level is judged
#   at the rate its measured window actually offered (`offered_rate`): a level off nominal by more than
#   `offered_tolerance` is **not valid** (bursty levels need long windows to offer their rate).
# - **Attainment**: the share of measured requests answered correctly within `slo_ms` of their
#   scheduled time (errors and timeouts are misses), with a 95% interval that accounts for **busy
#   periods** (requests of a queue are not independent; `n_eff` is the effective sample size);
#   **goodput**: requests per second within the SLO.
# - **Decisions on evidence**: a level **meets** the target when the interval's lower end reaches it,
#   **misses** when its upper end is below it, and otherwise there is **not enough data** (`decision`).
#   The highest rate, the search and `fail_on_slo` use these decisions, with repeats pooled. MLPerf's
#   early-stopping count is shown beside them (`min_queries`). See `docs/statistics.md`.
#
# ## Highest rate meeting the target, per mode, models and CV

# %%
result.max_rates

# %% [markdown]
# ## Every level
# `notes`: the level's marks in *Validity notes* below.

# %%
cols = ["models", "mode", "rate", "cv", "repeat", "search", "offered_rate", "n", "n_eff", "share", "lo", "hi",
        "decision", "goodput", "p50", "p99", "p99_sched", "p99_sched_lo", "p99_sched_hi", "lateness_p99", "valid",
        "invalid_reason", "min_queries", "generator_cpu_ms_per_request"]
validity.mark(S[[c for c in cols if c in S.columns]], notes, {k: k for k in traffic.LEVEL_KEYS + ["search"]})

# %% [markdown]
# ## Validity notes

# %%
validity_section(notes)

# %% [markdown]
# ## Attainment vs burstiness (CV of the gaps)

# %%
fig = traffic_plots.attainment_vs_cv(S, P.attainment_target)

# %% [markdown]
# ## Density: does latency degrade as a host holds more models?

# %%
density = traffic.density(S)
fig = traffic_plots.p99_vs_models(density, P.slo_ms)
density

# %% [markdown]
# ## Latency percentile spectrum per level

# %%
spectrum = traffic.spectrum(result.records)
fig = traffic_plots.percentile_spectrum(spectrum)

# %% [markdown]
# ## Noisy neighbour (popularity `hot`): the other models, traditional vs multi-model

# %%
fig = traffic_plots.noisy_neighbour(result.noisy, P.slo_ms)
result.noisy

# %% [markdown]
# ## Did the generator keep up? Lateness over time

# %%
fig = traffic_plots.lateness_over_time(traffic.lateness_over_time(result.records), P.lateness_p99_ms)

# %% [markdown]
# ## Search: bisection over the rate

# %%
result.searches

# %% [markdown]
# ## Setting
# Every parameter (`changed`: not at its default), what was deployed and verified, and the run's
# metadata (versions, machine, git sha, schedule hashes), saved with the records in `output_dir/meta.json`.

# %%
display(Markdown(f"Run `{result.rundir.run_id}`: records in `{result.rundir.path}`."))
setting_table(P)

# %%
result.deploy

# %%
metadata_table(result.rundir.meta)

# %%
# Glued for report.ipynb (scrapbook).
glue_run("traffic", P, result.rundir, traffic_summary=S, max_rates=result.max_rates,
         noisy_neighbour=result.noisy, searches=result.searches, deploy=result.deploy,
         schedule_hashes=result.rundir.meta.get("schedule_hashes", {}))
