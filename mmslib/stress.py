"""The stress experiment: how many models fit, and what they cost.

For each mode, deploy up to ``models`` models, one step per model, recording
a row per step (models deployed, measured and reserved CPU/memory, elapsed),
and stop at the first limit: target reached, memory budget, deploy failure
(admission refusal included), per-model timeout, or the mode's time limit.
Rows are flushed to disk while the run goes, so a failure keeps them.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import pandas as pd

from . import export, resources
from .backends import Usage, make_backend, model_names, specs
from .params import StressParams
from .procs import Supervisor
from .progress import bar as progress_bar
from .rundir import RunDir
from .workloads import get_workload

from .outcome import (  # noqa: E402,F401  (their one home: mmslib.outcome; re-exported for callers)
    STOP_ADMISSION, STOP_BUDGET, STOP_CONFIG_FULL, STOP_FAILURE, STOP_INTERRUPTED, STOP_TARGET, STOP_TIME_LIMIT,
    STOP_TIMEOUT, more_models)


@dataclass
class StressResult:
    steps: pd.DataFrame
    summary: pd.DataFrame      # one row per mode
    rundir: RunDir

    @property
    def comparison(self) -> Dict[str, float]:
        return compare(self.summary)


def _classify(error: str) -> str:
    e = error.lower()
    if STOP_CONFIG_FULL in e:
        return STOP_CONFIG_FULL
    if e.startswith("admission") or "memoryresourceunavailable" in e:
        return STOP_ADMISSION
    if e.startswith("timeout"):
        return STOP_TIMEOUT
    return STOP_FAILURE


def run_mode(p: StressParams, mode: str, backend, budget_bytes: Optional[int], rundir: RunDir,
             prior_steps: List[dict], progress: bool = True, on_step=None, workload=None) -> Dict:
    """Deploy one mode until a limit; appends rows to ``prior_steps`` (flushed) and returns the summary.
    ``workload``: its per-model facts (family, artifact bytes) go in every row."""
    facts = workload.facts if workload is not None else (lambda model: {})
    pss_hosts = np.nan  # mms: the hosts' PSS before any model (what each model adds is measured over it)
    trad_spec, mms_spec = specs(p)
    names = model_names(p.models)
    rows: List[dict] = []
    every = p.measure_every or (1 if mode == "traditional" else max(1, p.models // 200))
    t0 = time.time()
    host_seconds: List[float] = []
    stop, stop_detail = STOP_TARGET, ""
    deployed = 0
    bar = progress_bar(p.models, f"{mode}: deploying (stops at the first limit)", "model", progress)
    last_flush = time.monotonic()
    events = None
    try:
        if mode == "traditional":
            events = backend.deploy_traditional(names)
        else:
            for ev in backend.start_hosts(p.hosts):
                host_seconds.append(ev.seconds)
            pss_hosts = resources.measured(_usage(backend))["pss_mib"]
            events = backend.deploy_mms(names)
        for ev in events:
            if not ev.ok:
                stop, stop_detail = _classify(ev.error), f"{ev.model}: {ev.error}"
                rows.append({**_row(mode, deployed, ev, t0, None, 0, trad_spec, mms_spec, p), **facts(ev.model)})
                break
            deployed += 1
            measure = deployed % every == 0 or deployed == p.models
            usage = _usage(backend) if measure else None
            servers = deployed if mode == "traditional" else p.hosts
            rows.append({**_row(mode, deployed, ev, t0, usage, servers, trad_spec, mms_spec, p), **facts(ev.model)})
            if bar is not None:
                bar.update(1)
            if on_step is not None:
                on_step(mode, deployed, backend)
            if usage is not None and usage.memory_mib is not None:
                used = usage.memory_mib * resources.MiB
                per_server = used / max(1, usage.servers)
                nxt = used + (per_server if mode == "traditional" else 0)
                if budget_bytes is not None and nxt > budget_bytes and deployed < p.models:
                    stop = STOP_BUDGET
                    stop_detail = (f"{used / 2**20:.0f} MiB used (+{(nxt - used) / 2**20:.0f} MiB for the next "
                                   f"server) > budget {budget_bytes / 2**20:.0f} MiB")
                    break
            if time.time() - t0 > p.time_limit_s and deployed < p.models:
                stop, stop_detail = STOP_TIME_LIMIT, f"time_limit_s={p.time_limit_s:g} reached"
                break
            if time.monotonic() - last_flush > 5.0:
                rundir.save("steps", pd.DataFrame(prior_steps + rows))
                last_flush = time.monotonic()
    except KeyboardInterrupt:
        stop, stop_detail = STOP_INTERRUPTED, "Ctrl-C / SIGTERM"
        raise
    finally:
        if events is not None and hasattr(events, "close"):
            events.close()
        if bar is not None:
            bar.close()
        prior_steps.extend(rows)
        rundir.save("steps", pd.DataFrame(prior_steps))
    deploy_wall = time.time() - t0
    # what bounded the deploy rate, in the backend's words (kserve: the kubelet's ConfigMap refresh)
    notes = backend.deploy_notes(mode)   # Backend.deploy_notes: {} unless the backend says what bound it
    if stop == STOP_TIME_LIMIT and notes.get("deploy_bound_by"):
        stop, stop_detail = f"{STOP_TIME_LIMIT} ({notes['deploy_bound_by']})", f"{stop_detail}; {notes['deploy_note']}"
    final = _usage(backend)
    m = resources.measured(final)
    pids = backend.pids()
    idle = resources.idle_cpu(pids, 2.0) if pids else float("nan")
    verify = backend.verify(p.verify_sample, p.seed) if deployed and p.verify_sample else None
    ok_rows = [r for r in rows if r["ok"]]
    secs = np.array([r["seconds"] for r in ok_rows], dtype=float)
    secs = secs[np.isfinite(secs)]  # no model ready: the times are NaN (not a numpy warning)
    servers = deployed if mode == "traditional" else p.hosts
    spec = trad_spec if mode == "traditional" else mms_spec
    res = resources.reserved(spec, servers)
    summary = {
        "mode": mode, "backend": p.backend, "runtime": p.runtime, "workload": p.workload,
        "models_target": p.models, "models_deployed": deployed, "stop_reason": stop, "stop_detail": stop_detail,
        "servers": servers, "processes": m["processes"],
        "deploy_wall_s": deploy_wall, "deploy_rate_per_s": deployed / deploy_wall if deploy_wall > 0 else np.nan,
        "ready_p50_s": float(np.percentile(secs, 50)) if len(secs) else np.nan,
        "ready_p99_s": float(np.percentile(secs, 99)) if len(secs) else np.nan,
        "ready_max_s": float(secs.max()) if len(secs) else np.nan,
        "host_start_s": float(np.mean(host_seconds)) if host_seconds else np.nan,
        "rss_mib": m["rss_mib"], "pss_mib": m["pss_mib"], "uss_mib": m["uss_mib"],
        "pss_per_model_mib": m["pss_mib"] / deployed if deployed else np.nan,
        # what one more model costs: mms over the empty hosts; traditional: a server each
        "pss_hosts_mib": pss_hosts,
        "pss_added_per_model_mib": ((m["pss_mib"] - (0 if mode == "traditional" else pss_hosts)) / deployed
                                    if deployed else np.nan),
        **_facts_summary(ok_rows),
        "deploy_cpu_s": m["cpu_seconds"], "idle_cpu_cores": idle,
        "memory_budget_mib": budget_bytes / 2**20 if budget_bytes is not None else np.nan,
        **res,
        "reserved_cpu_per_model": res["reserved_cpu"] / deployed if deployed else np.nan,
        "reserved_memory_mib_per_model": res["reserved_memory_mib"] / deployed if deployed else np.nan,
        "verified_listed": verify.listed if verify else 0,
        "verified_expected": verify.expected if verify else 0,
        "verified_sampled": verify.sampled if verify else 0,
        "verified_correct": verify.correct if verify else 0,
        "verify_ok": bool(verify.ok) if verify else False,
        "verify_failures": "; ".join(verify.failures[:5]) if verify else "",
    }
    summary.update(notes)
    summary["metrics_available"] = final.memory_mib is not None
    if final.reserved_cpu is not None:     # what the cluster itself holds, beside the specs' arithmetic
        summary["reserved_cpu_k8s"] = final.reserved_cpu
        summary["reserved_memory_mib_k8s"] = final.reserved_memory_mib
    if final.gpu_memory_mib is not None:
        summary["gpu_memory_mib"] = final.gpu_memory_mib
        if deployed:
            summary["gpu_memory_per_model_mib"] = final.gpu_memory_mib / deployed
    return summary


def _facts_summary(rows: List[dict]) -> Dict:
    """The deployed models' facts: mean artifact bytes, their families."""
    b = [r["artifact_bytes"] for r in rows if "artifact_bytes" in r]
    fams = list(dict.fromkeys(r["family"] for r in rows if r.get("family")))
    return {"artifact_bytes": float(np.mean(b)) if b else np.nan, "family": ", ".join(fams)}


def _usage(backend) -> Usage:
    u = backend.usage()
    if not isinstance(u, Usage):
        raise TypeError(f"{type(backend).__name__}.usage() returned {type(u).__name__}, not a Usage")
    return u


def _row(mode, deployed, ev, t0, usage: Optional[Usage], servers, trad_spec, mms_spec, p) -> dict:
    spec = trad_spec if mode == "traditional" else mms_spec
    res = resources.reserved(spec, servers)
    m = resources.measured(usage) if usage is not None else dict.fromkeys(resources.MEASURED_COLUMNS, np.nan)
    return {
        "mode": mode, "step": deployed, "model": ev.model, "server": ev.server, "ok": ev.ok,
        "seconds": ev.seconds, "elapsed_s": ev.t_done - t0, "error": ev.error,
        "admitted_s": ev.admitted_s if ev.admitted_s is not None else ev.seconds,
        "measured": usage is not None, "servers": servers, **m,
        "reserved_cpu": res["reserved_cpu"], "reserved_memory_mib": res["reserved_memory_mib"],
    }


def run(p: StressParams, progress: bool = True, workdir: Optional[Path] = None, on_step=None) -> StressResult:
    """Run the stress experiment for every mode in ``p.modes``; records go to ``p.output_dir``."""
    rundir = RunDir(p.output_dir, "stress", p.to_dict(), p.key(), resume=p.resume)
    workload = get_workload(p.workload, p)
    avail = resources.machine_memory()["available"]
    budget = memory_budget(p, avail)
    rundir.meta["memory_budget_bytes"] = budget
    rundir.write_meta()
    prior = rundir.load("steps") if p.resume else None
    steps: List[dict] = prior.to_dict("records") if prior is not None else []
    done = {s["mode"]: s for s in (rundir.load_json("summary") or {}).get("modes", [])} if p.resume else {}
    summaries = []
    with rundir.session(workdir, prefix="mmslib-stress-") as tmp:
        try:
            for mode in p.modes:
                if mode in done:
                    summaries.append(done[mode])
                    continue
                steps = [s for s in steps if s["mode"] != mode]  # a half-done mode starts over
                with Supervisor(log_dir=tmp / mode / "logs") as sup:
                    backend = make_backend(p, workload, tmp / mode, sup, rundir.run_id)
                    rundir.record_environment(backend.environment())
                    try:
                        summaries.append(run_mode(p, mode, backend, budget, rundir, steps, progress, on_step,
                                                  workload=workload))
                    finally:
                        backend.close()
                rundir.save_json("summary", {"run_id": rundir.run_id, "modes": summaries})
        finally:  # every step measured is on disk, whatever stopped the run
            rundir.save("steps", pd.DataFrame(steps) if steps else _empty_steps())
    export.write_run_summary(rundir)  # summary.csv / summary.json beside the records
    return StressResult(pd.DataFrame(steps), pd.DataFrame(summaries), rundir)


def memory_budget(p: StressParams, available: int) -> Optional[int]:
    """Bytes of measured memory the servers may use, or None for no budget.

    ``memory_budget`` when given, on any backend. Not given: half the memory
    available on this machine when the servers run here; none when they run on
    a cluster (this machine's memory says nothing about it; the cluster's own
    limits stop the run)."""
    from .backends import describe
    if p.memory_budget is None and describe(p.backend)["on_cluster"]:
        return None
    return p.memory_budget_bytes(available)


def _empty_steps() -> pd.DataFrame:
    return pd.DataFrame(columns=["mode", "step", "model", "server", "ok", "seconds", "elapsed_s", "error"])


def compare(summary: pd.DataFrame) -> Dict[str, float]:
    """The seed-style headline: models per mode and the ratio between them."""
    s = summary.set_index("mode")
    out: Dict[str, float] = {}
    for m in s.index:
        out[f"{m}_models"] = int(s.loc[m, "models_deployed"])
    if {"traditional", "mms"} <= set(s.index):
        out.update(more_models(s.loc["traditional", "models_deployed"], s.loc["mms", "models_deployed"]))
        for col in ("pss_per_model_mib", "reserved_memory_mib_per_model", "reserved_cpu_per_model"):
            a, b = s.loc["traditional", col], s.loc["mms", col]
            out[f"{col}_ratio"] = float(a / b) if b else math.nan
    return out


def seed_summary_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Models deployed, total and per-model CPU/memory, reserved and measured, per mode."""
    cols = {
        "models_deployed": "models", "servers": "servers (InferenceServices)", "stop_reason": "stopped by",
        "reserved_cpu": "reserved CPU", "reserved_memory_mib": "reserved memory (MiB)",
        "reserved_sidecar_cpu": "of which sidecar CPU", "reserved_sidecar_memory_mib": "of which sidecar memory (MiB)",
        "pss_mib": "measured PSS (MiB)", "rss_mib": "measured RSS (MiB)", "pss_per_model_mib": "PSS per model (MiB)",
        "reserved_memory_mib_per_model": "reserved memory per model (MiB)",
        "gpu_memory_per_model_mib": "GPU memory per model (MiB)",
        "idle_cpu_cores": "idle CPU (cores)", "deploy_cpu_s": "CPU spent deploying (s)",
        "deploy_rate_per_s": "deploy rate (models/s)", "ready_p50_s": "time to ready p50 (s)",
        "ready_p99_s": "time to ready p99 (s)", "ready_max_s": "time to ready max (s)",
    }
    t = summary.set_index("mode")[[c for c in cols if c in summary.columns]].rename(columns=cols)
    return t.T
