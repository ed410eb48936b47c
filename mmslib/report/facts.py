"""One run: the facts KServe's benchmark request asks each test to give, how its setting differs
from the seed's, and its metadata."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import numpy as np
import pandas as pd

from .. import seed as seedmod
from .. import specs as specsmod
from .collection import Run, Runs, read
from .labels import VERSION_KEYS, MODES, gpu_count, on_cluster, workload_facts
from .seedside import seed_setting

def _as_run(run: Union[Run, str, Path], runs: Optional[Runs] = None) -> Run:
    if isinstance(run, Run):
        return run
    if runs is not None:
        return runs.get(run)
    return read(run)


def model_memory(params: Dict[str, Any]) -> str:
    return params.get("model_memory") or workload_facts(params.get("workload"))["memory"]


def _workload_text(params: Dict[str, Any]) -> str:
    w = params.get("workload")
    text = f"{w}: model {workload_facts(w)['text']}"
    if params.get("device") not in (None, "auto"):
        text += f"; device {params['device']}"
    return text


def differences_in_setting(run: Union[Run, str, Path]) -> pd.DataFrame:
    """Seed vs this run, a row per aspect: where it ran (cluster vs one machine), the
    serving stack, the model server (runtime), the model, layouts and specs, the stop
    rule or load generator, and the versions.  Columns: aspect, seed, ours."""
    run = _as_run(run)
    p, m, v, row = run.params, run.machine, run.versions, run.row
    env = seedmod.seed_environment()
    kind = "stress" if run.experiment == "stress" else "performance"
    seed = seed_setting(kind)
    local = not on_cluster(p)
    where_ours = (f"one machine, {row['machine']}: {m.get('cpu_model', '?')}, "
                  f"{'GPU ' + str(m.get('gpu')).splitlines()[0] if gpu_count(m) else 'no GPU'}"
                  if local else f"{row['cluster']}, namespace {p.get('namespace')}; client on {row['machine']}")
    stack_ours = ("no Kubernetes: one process per server on loopback (mmslib local backend); "
                  "no queue-proxy, ingress or etcd" if local
                  else f"KServe on Kubernetes, ServingRuntime {p.get('serving_runtime')}, "
                       f"MMS engine {p.get('mms_engine')}")
    rt = p.get("runtime", "?")
    rt_versions = ", ".join(f"{k} {v[k]}" for k in VERSION_KEYS.get(rt, [rt]) if k in v)
    runtime_ours = (f"{row['runtime']}" + (f" ({rt_versions})" if rt_versions and local else "")
                    + (", V2 protocol" if local else ""))
    if kind == "stress":
        s = env["stress_test"]
        seed_model = f"simple_string, TensorFlow, {s['model']['size_bytes']} B"
        seed_mms = "6 InferenceServices (10 CPU, 10Gi predictor) holding ~10K TrainedModels"
        seed_rule = "deploy until the cluster refuses (limits listed in the seed; see the capacity planner)"
        ours_rule = (f"deploy up to {p.get('models')} models per mode; stop at the memory budget "
                     f"({p.get('memory_budget') or 'half the available memory'} of measured PSS), a failure, "
                     f"a {p.get('deploy_timeout_s')} s timeout or {p.get('time_limit_s')} s per mode")
        rule = ("stop rule", seed_rule, ours_rule)
    else:
        seed_model = "simple_string (CPU) and bert (GPU)"
        seed_mms = "1 InferenceService with 5 TrainedModels; traditional: 5 InferenceServices"
        rule = ("load", "vegeta, 60 s per client rate, rate split over 5 models",
                f"k6 {v.get('k6', '?')} constant-arrival-rate (open loop), {p.get('duration_s')} s per rate "
                f"({p.get('warmup_s')} s warm-up excluded), {p.get('repeats', 1)} repeat(s), "
                f"{p.get('protocol', 'rest')}, {p.get('traffic', 'uniform')} traffic over {p.get('models')} models")
    specs_ours = (f"predictor {p.get('traditional_predictor_cpu')}/{p.get('traditional_predictor_memory')} "
                  f"(traditional), {p.get('mms_predictor_cpu')}/{p.get('mms_predictor_memory')} (MMS), "
                  f"sidecar {p.get('sidecar_cpu')}/{p.get('sidecar_memory')}"
                  + (" - requests computed, not enforced" if local else ""))
    seed_specs = (seed["setting"].split("; ", 1)[1] if "; " in seed["setting"] else "")
    rows = [
        ("where", seed["machine"], where_ours),
        ("serving stack", "KServe (kfserving) serverless: knative + istio, queue-proxy sidecar per pod",
         stack_ours),
        ("model server", env["model_server"], runtime_ours),
        ("model", seed_model, _workload_text(p)),
        ("multi-model layout", seed_mms, f"{p.get('hosts')} host server(s) holding the models"
                                         f" (TrainedModel-like load/unload, declared memory {model_memory(p)})"),
        ("specs (requests)", seed_specs, specs_ours),
        rule,
        ("versions", seed["versions"] + ", Triton (version not published)", row["versions"]),
    ]
    return pd.DataFrame(rows, columns=["aspect", "seed", "ours"])


def _spec_reserved(p: Dict[str, Any], mode: str, servers) -> Dict[str, float]:
    try:
        return specsmod.for_params(p)["traditional" if mode == "traditional" else "mms"].reserved(int(servers))
    except (ValueError, TypeError):
        return {"reserved_cpu": np.nan, "reserved_memory_mib": np.nan}


def _mode_numbers(run: Run) -> Dict[str, Dict[str, Any]]:
    """Per mode: models, servers, processes, pss_mib, reserved_cpu, reserved_memory_mib."""
    out: Dict[str, Dict[str, Any]] = {}
    if run.experiment == "stress":
        for r in run.stress.to_dict("records"):
            out[r["mode"]] = {"models": r.get("models_deployed"), "servers": r.get("servers"),
                              "processes": r.get("processes"), "pss_mib": r.get("pss_mib"),
                              "reserved_cpu": r.get("reserved_cpu"),
                              "reserved_memory_mib": r.get("reserved_memory_mib")}
    else:
        for r in run.deploy.to_dict("records"):
            res = _spec_reserved(run.params, r["mode"], r.get("servers", 0) or 0)
            out[r["mode"]] = {"models": r.get("models"), "servers": r.get("servers"),
                              "processes": r.get("processes", r.get("pods")), "pss_mib": r.get("pss_mib"),
                              "reserved_cpu": res["reserved_cpu"], "reserved_memory_mib": res["reserved_memory_mib"]}
    return out


def _ips(run: Run, servers) -> Any:
    if servers is None or (isinstance(servers, float) and math.isnan(servers)):
        return np.nan
    if on_cluster(run.params):
        return int(servers) * 3
    return int(servers) * 2


def run_facts(run: Union[Run, str, Path]) -> pd.DataFrame:
    """The facts KServe's benchmark request asks each test to give, per mode.

    Rows: size of the cluster, total CPU, GPU and memory, reserved CPU/memory,
    measured memory, models, InferenceServices (servers), pods (processes),
    IP addresses (locally: 2 ports per server, REST + gRPC; on Kubernetes: 1 pod IP +
    2 ClusterIPs per ISVC, the planner's assumption), size of a model (artifact
    bytes), size of an InferenceService (memory per server, measured and
    reserved), declared memory per model, and the assumptions made.
    Columns: fact, one per mode (traditional, mms), note.
    """
    run = _as_run(run)
    p, m = run.params, run.machine
    nums = _mode_numbers(run)
    modes = [x for x in MODES if x in nums] + [x for x in nums if x not in MODES] or list(p.get("modes") or MODES)
    local = not on_cluster(p)
    mem_gib = m.get("memory_total_bytes", 0) / 2**30 if m.get("memory_total_bytes") else np.nan
    gpus = gpu_count(m)

    def same(v):
        return {md: v for md in modes}

    def per(key, f=lambda x: x):
        return {md: (f(nums[md].get(key)) if md in nums and nums[md].get(key) is not None else np.nan)
                for md in modes}

    def per_server(key):
        out = {}
        for md in modes:
            n = nums.get(md, {})
            s, v = n.get("servers"), n.get(key)
            out[md] = float(v) / float(s) if s and v is not None and not pd.isna(v) else np.nan
        return out

    size = workload_facts(p.get("workload"))["bytes"]
    assumptions = _assumptions(run)
    rows = [
        ("size of the cluster", same(row_cluster(run)), "the machine the servers ran on" if local
         else "client machine shown; cluster size not recorded"),
        ("total CPU (cores)", same(m.get("cpus_usable") or m.get("cpu_count")), f"{m.get('cpu_model', '?')}"),
        ("total GPU", same(gpus), (str(m.get("gpu")).splitlines()[0] if gpus else "none visible")),
        ("total memory (GiB)", same(round(mem_gib, 2) if not math.isnan(mem_gib) else np.nan), "machine total"),
        ("models", per("models"), "deployed (stress) / served (performance)"),
        ("InferenceServices (servers)", per("servers"),
         "one server process per ISVC" if local else "InferenceServices"),
        ("pods (processes)", per("processes"), "server processes (Triton: + 1 stub per model)" if local else "pods"),
        ("IP addresses", {md: _ips(run, nums.get(md, {}).get("servers")) for md in modes},
         "2 ports per server (REST + gRPC) on 127.0.0.1" if local else "1 pod IP + 2 ClusterIPs per ISVC (assumed)"),
        ("reserved CPU (cores)", per("reserved_cpu"), "Kubernetes requests of the specs, queue-proxy included"),
        ("reserved memory (MiB)", per("reserved_memory_mib"), "Kubernetes requests of the specs, queue-proxy included"),
        ("measured memory (MiB PSS)", per("pss_mib"), "all server processes" if local else "as reported by the backend"),
        ("size of a model (bytes)", same(size if size is not None else np.nan),
         workload_facts(p.get("workload"))["text"]),
        ("size of an InferenceService (MiB PSS per server)", per_server("pss_mib"), "measured memory / servers"),
        ("reserved memory per InferenceService (MiB)", per_server("reserved_memory_mib"), "from the specs"),
        ("declared memory per model", same(model_memory(p)), "TrainedModel spec.memory (admission)"),
        ("assumptions", same(f"{len(assumptions)} listed in the note"), " ".join(assumptions)),
    ]
    out = pd.DataFrame([{"fact": f, **vals, "note": note} for f, vals, note in rows], columns=["fact", *modes, "note"])
    return out.astype({md: object for md in modes})


def row_cluster(run: Run) -> str:
    if on_cluster(run.params):
        return f"{run.row['cluster']} (client {run.row['machine']})"
    return f"one machine: {run.row['machine']}"


def _assumptions(run: Run) -> List[str]:
    p = run.params
    local = not on_cluster(p)
    out = []
    if local:
        out += ["Local processes stand in for pods and each server for an InferenceService; no Kubernetes "
                "objects, queue-proxy sidecars, ingress or etcd run.",
                "Reserved CPU/memory are the Kubernetes requests the specs in the parameters would make "
                "(queue-proxy included): computed, not enforced or measured.",
                "IP addresses: each server binds 2 ports (REST + gRPC) on loopback, counted as its addresses.",
                "Measured memory is the PSS of the server processes (shared pages split between them)."]
    else:
        out += ["IP addresses: 1 pod IP + 2 ClusterIP Services per InferenceService (the planner's assumption).",
                "Reserved CPU/memory are the requests of the specs in the parameters."]
    if run.experiment == "stress":
        out.append(f"The memory budget ({p.get('memory_budget') or 'half the memory available at start'}) "
                   "stands in for the cluster's limits.")
    else:
        out.append("The client-side rate is split evenly over the models; the load generator shares the "
                   "machine with the servers." if local else "The client-side rate is split evenly over the models.")
    out.append(f"Each model declares {model_memory(p)} (TrainedModel memory) for admission on its host.")
    return out


def run_metadata(run: Union[Run, str, Path]) -> pd.DataFrame:
    """Run id, notebook, status, git sha, output folder, parameters that matter, machine and versions,
    as a two-column table (key, value)."""
    run = _as_run(run)
    r = run.row
    d: Dict[str, Any] = {k: r.get(k) for k in ("run", "path", "experiment", "run_id", "status", "started",
                                              "duration_s", "git_sha", "output_dir", "backend", "runtime",
                                              "workload", "modes", "models", "hosts")}
    if run.experiment == "performance":
        for k in ("qps", "duration_s", "warmup_s", "repeats", "protocol", "traffic", "slo_p99_ms"):
            d[f"params.{k}"] = run.params.get(k)
    else:
        for k in ("memory_budget", "time_limit_s", "deploy_timeout_s", "verify_sample"):
            d[f"params.{k}"] = run.params.get(k)
    d.update({f"machine.{k}": v for k, v in run.machine.items()})
    d.update({f"version.{k}": v for k, v in run.versions.items()})
    return pd.DataFrame({"key": list(d), "value": [str(v) if v is not None else "" for v in d.values()]})
