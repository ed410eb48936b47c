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
# # Stress test: how many models fit, and what do they cost?
#
# This notebook reproduces the *Stress Test* of KServe's published multi-model serving benchmark:
# deploy as many models as possible with **traditional serving** (one server — one InferenceService —
# per model) and with **multi-model serving** (a few host servers, models added one by one like
# TrainedModels), and compare how many fit and what they cost.
#
# The seed found 352 InferenceServices with traditional serving against ~10,000 models on 6
# InferenceServices with multi-model serving (2800% more), using 387 CPU / 211 GB vs 66 CPU / 63 GB
# of *reserved* resources. Here both **reserved** resources (Kubernetes requests from the specs in the
# parameters) and **measured** resources (PSS/RSS of every server process, CPU seconds) are reported.

# %% tags=["parameters"]
# Parameters (papermill: -p NAME VALUE, or -f params/<set>.yaml); `papermill --help-notebook` lists them.
# The stress test
models = 10000  # models to deploy per mode (the target)
memory_budget = None  # stop when measured memory would exceed this (e.g. 8Gi); None: half this machine's available memory (local), none on a cluster
time_limit_s = 600.0  # time limit per mode, seconds
verify_sample = 100  # models sampled for a correct-inference check after deploying (0: none)
measure_every = 0  # measure memory every this many models; 0: every model (traditional), every 1/200 of the target (mms)
fail_on_slo = False  # must stay false: the stress test states no latency SLO
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
output_dir = "outputs/stress"  # run directory: records, meta.json, summaries
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

from mmslib import narrative, plots, stress, validity
from mmslib.notebook import glue_run, metadata_table, quiet_when_done, setting_line, setting_table, validated
from mmslib.notebook import validity_section

pd.set_option("display.precision", 3)
pd.set_option("display.width", 160)

# %%
# Validate every parameter before anything is deployed (a bad value stops here, naming the parameter).
P = validated("stress", globals())
display(Markdown(setting_line(P)))

# %%
with quiet_when_done():  # progress while it runs, cleared once it is done
    result = stress.run(P)
summary, steps = result.summary, result.steps
notes = validity.stress(summary)

# %% [markdown]
# ## The answer

# %%
display(Markdown(narrative.with_validity(narrative.stress_headline(summary), notes, len(summary), "mode(s)")))
fig = plots.stress_memory(steps)

# %% [markdown]
# ## Method
# Each mode deploys up to `models` models, one step per model, and stops at the first limit hit:
# **target reached**, the **memory budget** (measured memory of all servers — PSS of every server
# process locally, the pods' working set on Kubernetes — plus one more server for traditional, would
# exceed `memory_budget`), a **deploy failure** (including an **admission refusal**: like KServe's
# TrainedModel admission, a host refuses a model once the models' declared memory would exceed the
# host's memory limit), a per-model **timeout** (`deploy_timeout_s`), or the mode's `time_limit_s`.
# A row is recorded per step; rows are written to `output_dir` as the run goes, so nothing measured is
# lost if it fails. After deployment every model must appear in its server's model list, and a random
# sample (`verify_sample`) must answer a correct inference.
#
# ## Summary (the seed's stress summary, on this machine)
# `notes`: the mode's marks in *Validity notes* below.

# %%
validity.mark_columns(stress.seed_summary_table(summary), notes, "mode")

# %% [markdown]
# ## Verification

# %%
validity.mark(summary[["mode", "verified_expected", "verified_listed", "verified_sampled", "verified_correct",
                       "verify_ok", "verify_failures"]], notes, {"mode": "mode"})

# %% [markdown]
# ## Validity notes

# %%
validity_section(notes)

# %% [markdown]
# ## Deploy time

# %%
fig = plots.stress_deploy_time(steps)

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
glue_run("stress", P, result.rundir, stress_summary=summary, comparison=stress.compare(summary))
