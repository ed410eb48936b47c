"""Deploying for measurement: what every experiment that serves traffic does before its first level.

Deploy ``n`` models in a mode (a server per model, or hosts holding them), check a sample answers
correctly, measure what the servers use, and build the load generator's targets; split the CPUs
between servers and the generator when asked. Shared by the performance, traffic and coldstart
experiments, so that no experiment imports another.

Given the run directory, :func:`deploy_mode` records what it deployed (:func:`record`): one row
per mode and size in ``deploy.json`` (with the memory one model added, :func:`added_per_model`),
and one row per model in the table ``deploy_models``
(:data:`MODEL_COLUMNS`: each model's load time, its server, the backend's ``deploy_concurrency``
and the workload's facts), so the report's cold start vs model size sees every deploy.
"""
from __future__ import annotations

import os
import time
from typing import Any, Dict, List, Optional

import numpy as np
import pandas as pd

from . import resources, v2
from .backends import make_backend, model_names
from .errors import DeployError
from .targets import Target

#: The run-directory table of per-model deploy rows, and its columns (then the workload's facts:
#: family, artifact_bytes, and source_model for a user's repository).
DEPLOY_MODELS = "deploy_models"
MODEL_COLUMNS = ["mode", "models", "model", "server", "ok", "seconds", "admitted_s", "deploy_concurrency", "error"]


def cpu_split(isolate: bool):
    """(server CPUs, k6 CPUs) or (None, None) when not isolating."""
    cpus = sorted(os.sched_getaffinity(0))
    if not isolate or len(cpus) < 2:
        return None, None
    k6 = cpus[len(cpus) // 2:] if len(cpus) >= 4 else cpus[-1:]
    return [c for c in cpus if c not in k6], k6


def targets_for(backend, workload, protocol: str, seed: int) -> List[Target]:
    rng = np.random.default_rng(seed)
    out = []
    exact = workload.exact  # otherwise answers are checked by verify(), not per request
    for ep in sorted(backend.endpoints(), key=lambda e: e.model):
        s = workload.sample(ep.model, rng)
        body = v2.request_body(s.inputs)
        expect = {k: np.asarray(v).ravel().tolist() for k, v in s.expected.items()} if exact else None
        if protocol == "grpc":
            if not ep.grpc_addr:
                raise DeployError(f"{ep.server} serves no gRPC: use protocol='rest'")
            out.append(Target(ep.grpc_addr, ep.model, body, protocol="grpc", headers=ep.headers,
                              expect=expect, endpoint=ep.server))
        else:
            out.append(Target(ep.infer_url, ep.model, body, headers=ep.headers, expect=expect, endpoint=ep.server))
    return out


def model_rows(mode: str, n_models: int, events, workload, concurrency) -> List[Dict[str, Any]]:
    """One row per model event (host events left out): ``seconds`` from the load request (mms) or
    the server's start (traditional) until ready; ``admitted_s`` until the control plane accepted it
    (``seconds`` where the backend does not tell them apart); ``deploy_concurrency``: how many loads
    the backend ran at once (they overlap); then ``workload.facts(model)``."""
    conc = float(concurrency) if concurrency is not None else np.nan
    out = []
    for e in events:
        if e.kind != "model":
            continue
        out.append({"mode": mode, "models": int(n_models), "model": e.model, "server": e.server, "ok": bool(e.ok),
                    "seconds": float(e.seconds),
                    "admitted_s": float(e.admitted_s if e.admitted_s is not None else e.seconds),
                    "deploy_concurrency": conc, "error": e.error or "", **workload.facts(e.model)})
    return out


def added_per_model(mode: str, n_models: int, measured: Dict[str, float], pss_hosts: float) -> Dict[str, float]:
    """What one model of this deploy costs in memory, under the stress summary's names:
    ``pss_hosts_mib`` (mms: the empty hosts, measured before the first load; NaN for traditional)
    and ``pss_added_per_model_mib`` (mms: the PSS the loads added over the empty hosts, divided by
    the models; traditional: a whole server each). One measurement per deploy, the mean of its
    ``n_models`` loads: a host's first model of a family (which imports its library) is in it."""
    pss = float(measured.get("pss_mib", np.nan))
    base = 0.0 if mode == "traditional" else float(pss_hosts)
    added = (pss - base) / n_models if n_models else np.nan
    return {"pss_hosts_mib": float(pss_hosts), "pss_added_per_model_mib": float(added)}


def record(rundir, mode: str, n_models: int, rows: List[Dict[str, Any]], info: Optional[Dict[str, Any]] = None):
    """Save a deploy of ``n_models`` in ``mode`` to ``rundir``: ``rows`` (:func:`model_rows`) replace
    that mode and size's rows of the table ``deploy_models``, and ``info`` (the per-mode row; None
    when the deploy failed) replaces that mode and size's row of ``deploy.json`` (a resumed run
    deploys again: its new rows replace the earlier ones)."""
    def other(r) -> bool:
        return (r.get("mode"), int(r.get("models", -1))) != (mode, int(n_models))
    if info is not None:
        rundir.save_json("deploy", [r for r in (rundir.load_json("deploy") or []) if other(r)] + [info])
    prev = rundir.load(DEPLOY_MODELS)
    kept = [r for r in (prev.to_dict("records") if prev is not None else []) if other(r)]
    if rows or kept or prev is not None:
        df = pd.DataFrame(kept + list(rows))
        for c in MODEL_COLUMNS:
            if c not in df:
                df[c] = pd.Series(dtype=object)
        rundir.save(DEPLOY_MODELS, df[MODEL_COLUMNS + [c for c in df.columns if c not in MODEL_COLUMNS]])


def deploy_mode(p, mode: str, n_models: int, workload, workdir, sup, run_id, verify_sample: int, rundir=None):
    """Deploy ``n_models`` models in ``mode`` (traditional: a server each; mms: ``p.hosts`` hosts),
    check ``verify_sample`` of them answer correctly, measure what the servers use. Returns
    (backend, targets, deploy row); the backend is closed when anything fails (DeployError).
    With ``rundir``, the deploy is recorded there (:func:`record`); when it fails, the models
    deployed before the failure are recorded all the same."""
    backend = make_backend(p, workload, workdir, sup, run_id)
    names = model_names(n_models)
    events = []
    t0 = time.time()
    pss_hosts = float("nan")  # mms: the empty hosts' PSS, before any model (as stress measures it)

    def rows():
        return model_rows(mode, n_models, events, workload,
                          getattr(backend, "deploy_concurrency", getattr(p, "deploy_concurrency", None)))
    try:
        if mode == "traditional":
            deploying = backend.deploy_traditional(names)
        else:
            backend.start_hosts(p.hosts)
            pss_hosts = resources.measured(backend.usage())["pss_mib"]
            deploying = backend.deploy_mms(names)
        for e in deploying:
            events.append(e)
        failed = [e for e in events if not e.ok]
        if failed:
            raise DeployError(f"{mode}: {len(failed)} of {len(names)} models failed to deploy: {failed[0].error}")
        v = backend.verify(sample=verify_sample, seed=p.seed)
        if not v.ok:
            raise DeployError(f"{mode}: verification failed: {v.failures[:3]}")
        u = backend.usage()
        m = resources.measured(u)
        info = {"mode": mode, "models": n_models, "servers": len(backend.servers()),
                "deploy_s": time.time() - t0, "verified": v.correct, **m, **added_per_model(mode, n_models, m, pss_hosts)}
        if u.gpu_memory_mib is not None:
            info["gpu_memory_mib"] = u.gpu_memory_mib
        targets = targets_for(backend, workload, p.protocol, p.seed)
        if rundir is not None:
            record(rundir, mode, n_models, rows(), info)
        return backend, targets, info
    except BaseException:
        try:
            if rundir is not None and events:
                record(rundir, mode, n_models, rows())  # what was measured before the failure
        finally:
            backend.close()
        raise
