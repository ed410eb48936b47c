"""Deploying for measurement: what every experiment that serves traffic does before its first level.

Deploy ``n`` models in a mode (a server per model, or hosts holding them), check a sample answers
correctly, measure what the servers use, and build the load generator's targets; split the CPUs
between servers and the generator when asked. Shared by the performance, traffic and coldstart
experiments, so that no experiment imports another.
"""
from __future__ import annotations

import os
import time
from typing import List

import numpy as np

from . import resources, v2
from .backends import make_backend, model_names
from .errors import DeployError
from .targets import Target


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


def deploy_mode(p, mode: str, n_models: int, workload, workdir, sup, run_id, verify_sample: int):
    """Deploy ``n_models`` models in ``mode`` (traditional: a server each; mms: ``p.hosts`` hosts),
    check ``verify_sample`` of them answer correctly, measure what the servers use. Returns
    (backend, targets, deploy row); the backend is closed when anything fails (DeployError)."""
    backend = make_backend(p, workload, workdir, sup, run_id)
    names = model_names(n_models)
    t0 = time.time()
    try:
        if mode == "traditional":
            events = list(backend.deploy_traditional(names))
        else:
            backend.start_hosts(p.hosts)
            events = list(backend.deploy_mms(names))
        failed = [e for e in events if not e.ok]
        if failed:
            raise DeployError(f"{mode}: {len(failed)} of {len(names)} models failed to deploy: {failed[0].error}")
        v = backend.verify(sample=verify_sample, seed=p.seed)
        if not v.ok:
            raise DeployError(f"{mode}: verification failed: {v.failures[:3]}")
        u = backend.usage()
        info = {"mode": mode, "models": n_models, "servers": len(backend.servers()),
                "deploy_s": time.time() - t0, "verified": v.correct, **resources.measured(u)}
        if u.gpu_memory_mib is not None:
            info["gpu_memory_mib"] = u.gpu_memory_mib
        return backend, targets_for(backend, workload, p.protocol, p.seed), info
    except BaseException:
        backend.close()
        raise
