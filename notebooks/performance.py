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
# # Performance test: latency at fixed request rates
#
# This notebook reproduces the *Performance Test* of KServe's published multi-model serving benchmark:
# **traditional serving** with N InferenceServices (here: N single-model servers, the client-side rate
# split evenly across them) against **multi-model serving** with one InferenceService and N
# TrainedModels (here: `hosts` servers holding the N models, the rate split across models), at fixed
# client-side request rates. The seed found the two comparable while neither scales, with multi-model
# serving saturating first on its single InferenceService.

# %% tags=["parameters"]
# Parameters (papermill: -p NAME VALUE, or -f params/<set>.yaml); `papermill --help-notebook` lists them.
# The performance test
models = 5  # models per mode (traditional: one server each)
qps = [25, 50, 100, 150, 200, 250, 500, 1000, 1500, 2000, 2500]  # client-side request rates, one level each
duration_s = 60.0  # seconds per level, warm-up included
warmup_s = 5.0  # first seconds of each level, sent but left out of the statistics
protocol = "rest"  # rest | grpc (Open Inference Protocol V2)
traffic = "uniform"  # how requests spread over models: uniform | zipf
zipf_skew = 1.1  # skew of zipf traffic (> 0)
slo_p99_ms = 100.0  # p99 latency objective, ms: the highest rate meeting it is reported
fail_on_slo = False  # false | true (every level) | the levels that must meet the SLO (e.g. 25,50): a miss fails the run
repeats = 1  # runs of every level, interleaved across modes
cpu_isolation = False  # true: pin the servers and k6 to separate CPUs
sample_interval_s = 1.0  # seconds between server CPU/memory samples
# Where and how (see docs/development.md "Extending" for adding a runtime, backend or workload)
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
output_dir = "outputs/performance"  # run directory: records, meta.json, summaries
resume = False  # true: keep what output_dir already measured, run only the rest
seed = 0  # random seed (model samples, verification, traffic)
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

from mmslib import narrative, performance, plots, seed_layout, stats, validity
from mmslib.notebook import glue_run, metadata_table, quiet_when_done, setting_line, setting_table, validated
from mmslib.notebook import validity_section

pd.set_option("display.precision", 3)
pd.set_option("display.width", 160)

# %%
# Validate every parameter before anything is deployed (a bad value stops here, naming the parameter).
P = validated("performance", globals())
display(Markdown(setting_line(P)))

# %%
with quiet_when_done():  # progress while it runs, cleared once it is done
    result = performance.run(P)
summary, sat = result.summary, result.saturation()
notes = validity.performance(summary, result.levels)

# %% [markdown]
# ## The answer

# %%
display(Markdown(narrative.performance_headline(summary, sat, P, notes)))
fig = plots.latency_vs_rate(summary, P.slo_p99_ms)

# %% [markdown]
# ## Method
# - **Open loop.** k6's `constant-arrival-rate` executor starts requests on a fixed schedule whatever
#   the latency, like the seed's vegeta: a slow server does not slow the schedule down, so latency is
#   not hidden by *coordinated omission*. A level whose generator fell behind (more than 0.1% of
#   iterations dropped: a tenth of the p99's tail, since a dropped request would have been a slow
#   one; or less than 99% of the target rate achieved) is flagged **not valid**.
# - **Warm-up.** The first `warmup_s` seconds of every level are sent but excluded from the statistics;
#   they stay in the raw records, marked `warmup`.
# - **Records.** Every request is a row (start time, latency, status, correct answer or not, model,
#   server); all figures below are computed from those rows, saved in `output_dir/requests/`.
# - **Intervals.** p99 comes with a 95% interval that holds for dependent requests (busy periods are
#   the independent units; never narrower than the order-statistics interval); a level with fewer
#   than ~1,000 requests has an unstable p99 and is marked `few_samples`. A rate is **held** only when
#   the interval's upper end is within the SLO ("not enough data" otherwise). See `docs/statistics.md`.
# - **Repeats.** With `repeats > 1` every level runs that many times in an interleaved order
#   (A B, then B A), so drift hits both modes alike; tables show the median and the spread.
# - **Server side.** Each runtime's own metrics give the time spent inside the server per request,
#   shown beside client-side latency: the difference is protocol, queueing and client overhead.
#
# ## Latency tables, in the seed's layout (ms)
# `notes`: the level's marks in *Validity notes* below.

# %%
for mode in P.modes:
    display(Markdown(narrative.mode_title(mode, P)))
    display(validity.mark(seed_layout.seed_table(summary, mode), notes, {"Client side QPS": "qps"}, mode=mode))

# %% [markdown]
# ## Up to what rate does each mode hold?

# %%
display(Markdown(narrative.saturation_sentence(sat, P.slo_p99_ms)))
sat

# %% [markdown]
# ## Validity notes

# %%
validity_section(notes)

# %% [markdown]
# ## Latency over time at each rate (the seed's plots)

# %%
ts = stats.latency_timeseries(result.records)
for q in P.qps:
    fig = plots.latency_over_time(ts, q)

# %% [markdown]
# ## Server CPU and memory during each level

# %%
fig = plots.resources_over_levels(result.samples) if len(result.samples) else None

# %% [markdown]
# ## Where the latency goes: client-side vs server-side

# %%
cols = [c for c in ("mode", "qps", "repeat", "mean", "p50", "server_ms", "compute_ms", "queue_ms")
        if c in summary.columns]
validity.mark(summary[cols], notes, {"mode": "mode", "qps": "qps", "repeat": "repeat"})

# %% [markdown]
# ## Traditional vs multi-model at each rate

# %%
stats.compare_modes(summary) if set(P.modes) == {"traditional", "mms"} else None

# %% [markdown]
# ## Setting
# Every parameter (`changed`: not at its default), what was deployed and verified, and the run's
# metadata (versions, machine, git sha), saved with the records in `output_dir/meta.json`.

# %%
display(Markdown(f"Run `{result.rundir.run_id}`: records in `{result.rundir.path}`."))
setting_table(P)

# %%
result.deploy

# %%
metadata_table(result.rundir.meta)

# %%
# Glued for report.ipynb (scrapbook).
glue_run("performance", P, result.rundir, perf_summary=summary, saturation=sat, deploy=result.deploy)
