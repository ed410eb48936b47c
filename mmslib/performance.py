"""The performance experiment: latency at fixed client-side request rates.

Traditional serving (N single-model servers, the rate split evenly across
them) against multi-model serving (``hosts`` servers holding the N models, the
rate split across models), at each rate in ``qps``: open-loop load from k6,
per-request records, statistics. Cells (mode, rate, repeat) run interleaved so
drift hits both modes alike; each finished level is on disk at once, so a
crash loses at most the level in progress and ``resume`` measures the rest.
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional

import numpy as np
import pandas as pd

from . import export, gate, resources, schedule, seed_layout, server_metrics, stats
from . import records as schema
from .errors import MmsError
from .loadgen import run_level
from .params import PerformanceParams
from .procs import Supervisor, pin_threads
from .progress import bar as progress_bar
from .rundir import RunDir
from .deploy import cpu_split, deploy_mode  # noqa: F401  (their home: mmslib.deploy)
from .workloads import get_workload


@dataclass
class PerformanceResult:
    records: pd.DataFrame      # one row per request (warm-up rows marked)
    levels: pd.DataFrame       # one row per (mode, qps, repeat): generator counts, machine state
    samples: pd.DataFrame      # server CPU/memory about once a second during each level
    summary: pd.DataFrame      # stats.summarize(...)
    deploy: pd.DataFrame       # per mode: servers, models, deploy time, verification
    rundir: RunDir
    params: PerformanceParams

    def seed_table(self, mode: str) -> pd.DataFrame:
        return seed_layout.seed_table(self.summary, mode)

    def saturation(self) -> pd.DataFrame:
        return stats.saturation(self.summary, self.params.slo_p99_ms)


def level_name(mode: str, qps: float, repeat: int) -> str:
    return f"requests/{mode}_{qps:g}qps_r{repeat}"


class _Sampler(threading.Thread):
    """Samples the servers' CPU (cores) and PSS about every ``interval`` seconds."""

    def __init__(self, pids_fn: Callable[[], List[int]], interval: float):
        super().__init__(daemon=True)
        self.pids_fn, self.interval = pids_fn, interval
        self.rows: List[dict] = []
        self._halt = threading.Event()

    def run(self):
        pids = self.pids_fn()
        c0, t0 = resources.cpu_seconds(pids), time.time()
        while not self._halt.wait(self.interval):
            pids = self.pids_fn()
            c1, t1 = resources.cpu_seconds(pids), time.time()
            m = resources.memory_of(pids)
            self.rows.append({"t_unix": t1, "cpu_cores": (c1 - c0) / max(1e-9, t1 - t0),
                              "pss_mib": m["pss_mib"], "rss_mib": m["rss_mib"], "uss_mib": m["uss_mib"],
                              "processes": m["processes"]})
            c0, t0 = c1, t1

    def stop(self) -> List[dict]:
        self._halt.set()
        self.join(5)
        return self.rows


def run(p: PerformanceParams, progress: bool = True, on_level: Optional[Callable] = None,
        workdir: Optional[Path] = None) -> PerformanceResult:
    rundir = RunDir(p.output_dir, "performance", p.to_dict(), p.key(), resume=p.resume)
    workload = get_workload(p.workload, p)
    cells = schedule.interleaved(p.modes, p.qps, p.repeats)
    levels_prev = rundir.load("levels") if p.resume else None
    samples_prev = rundir.load("samples") if p.resume else None
    level_rows: List[dict] = levels_prev.to_dict("records") if levels_prev is not None else []
    sample_rows: List[dict] = samples_prev.to_dict("records") if samples_prev is not None else []
    done = [(r["mode"], r["qps"], r["repeat"]) for r in level_rows
            if (rundir.path / f"{level_name(r['mode'], r['qps'], r['repeat'])}.parquet").exists()]
    level_rows = [r for r in level_rows if (r["mode"], r["qps"], r["repeat"]) in done]
    todo = schedule.remaining(cells, done)
    server_cpus, k6_cpus = cpu_split(p.cpu_isolation)
    rundir.meta["cpu_isolation"] = {"servers": server_cpus, "k6": k6_cpus}
    rundir.meta["schedule"] = schedule.to_frame(cells).to_dict("records")
    rundir.write_meta()
    bar = None
    with rundir.session(workdir, prefix="mmslib-perf-") as tmp:
        if todo:
            with Supervisor(log_dir=tmp / "logs") as sup:
                backends = {}
                try:
                    for mode in p.modes:
                        if any(c.mode == mode for c in todo):
                            backends[mode] = _deploy(p, mode, workload, tmp / mode, sup, rundir)
                            rundir.record_environment(backends[mode][0].environment())
                    if server_cpus:
                        for b, _, _ in backends.values():
                            pin_threads(b.pids(), server_cpus)
                    bar = progress_bar(len(todo), "levels", "level", progress)
                    for cell in todo:
                        backend, targets, _ = backends[cell.mode]
                        row, recs, samp = _measure(p, cell, backend, targets, k6_cpus, tmp, on_level)
                        rundir.save(level_name(cell.mode, cell.qps, cell.repeat), recs)
                        level_rows.append(row)
                        sample_rows.extend(samp)
                        rundir.save("levels", pd.DataFrame(level_rows))
                        rundir.save("samples", pd.DataFrame(sample_rows) if sample_rows else _empty_samples())
                        if bar is not None:
                            bar.update(1)
                finally:
                    if bar is not None:
                        bar.close()
                    for b, _, _ in backends.values():
                        b.close()
    result = load(rundir, p)
    export.write_run_summary(rundir)  # summary.csv / summary.json beside the records
    gate.enforce(rundir, p.fail_on_slo)  # after everything is saved
    return result


def load(rundir: RunDir, p: PerformanceParams, deploy_rows=None) -> PerformanceResult:
    """Recompute every table from the records on disk."""
    levels = rundir.load("levels")
    levels = levels if levels is not None else pd.DataFrame(columns=["mode", "qps", "repeat"])
    parts = []
    for r in levels.itertuples():
        df = rundir.load(level_name(r.mode, r.qps, r.repeat))
        if df is not None:
            parts.append(df)
    records = pd.concat(parts, ignore_index=True) if parts else _empty_records()
    samples = rundir.load("samples")
    samples = samples if samples is not None else _empty_samples()
    n_servers = {"traditional": p.models, "mms": p.hosts}
    summary = stats.summarize(records, levels, n_servers=n_servers, n_models=p.models) if len(levels) else pd.DataFrame()
    if len(summary):
        extra = [c for c in ("server_ms", "queue_ms", "compute_ms", "server_requests", "loadavg_before",
                             "loadavg_after", "error") if c in levels.columns]
        summary = summary.merge(levels[["mode", "qps", "repeat"] + extra], on=["mode", "qps", "repeat"], how="left")
    deploy = pd.DataFrame(deploy_rows if deploy_rows is not None else (rundir.load_json("deploy") or []))
    return PerformanceResult(records, levels, samples, summary, deploy, rundir, p)


def _deploy(p, mode, workload, workdir, sup, rundir):
    """Deploy ``mode`` and record it in ``rundir`` (deploy.json, deploy_models: :func:`mmslib.deploy.record`)."""
    return deploy_mode(p, mode, p.models, workload, workdir, sup, rundir.run_id, verify_sample=p.models, rundir=rundir)


def _measure(p, cell, backend, targets, k6_cpus, tmp, on_level):
    spec = backend.metric_spec()
    murls = backend.metrics_urls() if spec is not None else []
    before = server_metrics.scrape(murls) if murls else {}
    load_before = os.getloadavg()[0]
    sampler = _Sampler(backend.pids, p.sample_interval_s)
    sampler.start()
    t_start = time.time()
    error = ""
    hook = None
    if on_level is not None:
        hook = threading.Timer(p.warmup_s + p.duration_s / 2, on_level, args=(cell, backend))
        hook.daemon = True
        hook.start()
    try:
        res = run_level(targets, cell.qps, p.duration_s, p.warmup_s, traffic=p.traffic, skew=p.zipf_skew,
                        seed=p.seed + cell.index, cpu_affinity=k6_cpus)
        recs = res.records
        info = {"iterations": res.iterations, "dropped_iterations": res.dropped_iterations,
                "achieved_qps": res.achieved_qps, "k6_exit_code": res.k6_exit_code, "wall_s": res.wall_s,
                "pre_allocated_vus": res.pre_allocated_vus, "max_vus": res.max_vus}
    except MmsError as e:  # k6 itself failed: record the level as failed, go on
        error = str(e)
        recs = _empty_records()
        info = {"iterations": 0, "dropped_iterations": 0, "achieved_qps": 0.0, "k6_exit_code": -1,
                "wall_s": time.time() - t_start, "pre_allocated_vus": 0, "max_vus": 0}
    finally:
        samples = sampler.stop()
        if hook is not None:
            hook.cancel()
    after = server_metrics.scrape(murls) if murls else {}
    sm = server_metrics.delta(spec, before, after) if murls else {}
    recs = recs.copy()
    recs["mode"], recs["qps"], recs["repeat"] = cell.mode, float(cell.qps), int(cell.repeat)
    row = {"mode": cell.mode, "qps": float(cell.qps), "repeat": int(cell.repeat), "index": cell.index,
           "target_qps": float(cell.qps), "duration_s": p.duration_s, "warmup_s": p.warmup_s,
           "t_start": t_start, "loadavg_before": load_before, "loadavg_after": os.getloadavg()[0],
           "k6_cpus": str(k6_cpus or ""), "error": error, **info,
           **{k: (np.nan if v is None else v) for k, v in sm.items()}}
    for s in samples:
        s.update(mode=cell.mode, qps=float(cell.qps), repeat=int(cell.repeat), second=s["t_unix"] - t_start)
    return row, recs, samples


def _empty_records() -> pd.DataFrame:
    """No requests: the record schema (:mod:`mmslib.records`) plus the level's keys."""
    return schema.empty({**schema.REQUEST, "mode": "object", "qps": "float64", "repeat": "int64"})


def _empty_samples() -> pd.DataFrame:
    return pd.DataFrame(columns=["t_unix", "cpu_cores", "pss_mib", "rss_mib", "uss_mib", "processes", "mode",
                                 "qps", "repeat", "second"])
