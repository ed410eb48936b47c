"""The cold-start experiment: loading, unloading, churn, and more models than memory.

Sections (``sections`` picks them; each finished part is on disk at once, so
``resume`` measures only what is missing):

1. ``load_unload``: per runtime, ``cycles`` load/unload cycles of one model at a
   time on one host (names rotate over four models); per cycle the load and
   unload latency (client side, the V2 repository API) and the servers' PSS
   after the load and after the unload. A leak audit fits the PSS after each
   unload against the cycle number (ordinary least squares, skipping the first
   10% of cycles: allocator warm-up): ``drift_per_100_mib`` is the fitted slope
   x 100 and the verdict is **grows** when the fitted drift over the run
   (slope x cycles) exceeds the bound -- 1% of this machine's memory, or
   ``leak_bound_mib`` when that is smaller -- and the slope's 95% interval
   excludes zero; **flat** otherwise.
2. ``churn``: per runtime, ``resident_models`` models take open-loop traffic at
   ``qps`` (k6, :func:`mmslib.loadgen.run_level`, as in the performance
   notebook) while a thread loads one of ``churn_models`` other models
   ``churn_per_s`` times a second, unloading the one it loaded before. Runs
   without and with churn alternate (A B B A ...), ``repeats`` each; the
   comparison (:func:`mmslib.stats.compare_modes`) says whether p50/p99 differ
   beyond the run-to-run spread. SLO attainment = share of measured requests
   answered correctly within ``slo_ms``, with the dependence-aware interval of
   :func:`mmslib.intervals.share_ci`.
3. ``lazy``: a kserve host that loads on first request and keeps at most
   ``capacity`` models (LRU), ``models`` models behind it, Poisson traffic with
   Zipf popularity (:func:`mmslib.arrivals.make_schedule`) per cell: the cells
   ``lazy_cells`` fixes (alpha, capacity, rate, role), or each ``zipf_alpha`` x
   ``capacity`` at ``lazy_qps`` (a fresh host per cell). The client here is a
   small asyncio open-loop replayer (:func:`mmslib.coldreplay.replay`), not k6: it needs each
   response's ``x-mms-cold-start`` header, which k6's records do not keep.
   Latency counts from each request's scheduled time; a cell is valid when the
   lateness p99 is within ``lateness_p99_ms``. Cold starts are counted by the
   client (that header) and by the server (``/v2/mms/lazy``), over every request
   of the cell; the two must be equal. How busy the server was
   (``utilisation``: requests/s x mean predict time) comes from its own metrics.
4. The simulator (:mod:`mmslib.simulate`) is calibrated with *measured*
   times (:func:`calibration`: hits' latencies in the largest-capacity
   calibration cells, the cold-start penalty seen by clients) and replays the
   exact recorded requests of the validation cells, several seeds each:
   simulated vs measured SLO attainment at each of ``validation_slo_ms``, beside
   a trivial baseline's (:func:`validate_simulator`); a check has power when the
   server was at least half busy and the measured attainment lies in 50-95%, and
   :func:`validation_verdict` says whether the simulator beat the baseline and
   landed within 5 points. Then the cluster questions
   (:func:`cluster_questions`), labelled with that verdict.

Layout: one noun, the cold-start experiment (~860 lines): its four sections share one host
set-up, one run directory and its resume logic, and the tables each section's records become;
the simulator it calibrates is :mod:`mmslib.simulate` (its verdict :mod:`mmslib.simcheck`), the
traffic it sends comes from :mod:`mmslib.arrivals` through :mod:`mmslib.coldreplay` (the
asyncio replayer that reads the cold-start header), its figures are :mod:`mmslib.coldstart_plots`.
"""
from __future__ import annotations

import functools
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np
import pandas as pd

from . import arrivals, resources, schedule, server_metrics, siminputs, simulate, stats, v2
from .backends.local import LocalBackend
from .errors import DeployError, MmsError
from .intervals import dependence, share_ci
from .simcheck import (ATTAINMENT_BAND, ATTAINMENT_TARGET_PTS, SIMULATION_TABLES,  # noqa: F401
                       UTILISATION_MIN, simulation_label, validation_sentence, validation_verdict)
from .loadgen import run_level
from .params import ColdstartParams
from .deploy import targets_for
from .procs import Supervisor
from .progress import bar as progress_bar
from .rundir import RunDir
from .runtimes import get_runtime
from .runtimes.kserve_server import STATS_PATH
from .workloads import get_workload
from .coldreplay import replay  # noqa: E402,F401  (its home: mmslib.coldreplay)

CYCLE_POOL = 4            # model names the load/unload cycles rotate over
LEAK_SKIP_FRAC = 0.1      # leading cycles left out of the leak fit (allocator warm-up)
CHURN_MODES = ("no_churn", "churn")
FIT_UTILISATION_MIN = 0.3  # calibration cells at least this busy fit the occupancy (section 4)


@dataclass
class ColdstartResult:
    params: ColdstartParams
    rundir: RunDir
    cycles: pd.DataFrame          # section 1: one row per cycle per runtime
    cycle_runs: pd.DataFrame      # section 1: one row per runtime (PSS before/after, errors)
    churn_records: pd.DataFrame   # section 2: one row per request
    churn_levels: pd.DataFrame    # section 2: one row per run
    churn_ops: pd.DataFrame       # section 2: one row per churn load/unload
    lazy_records: pd.DataFrame    # section 3: one row per request
    lazy_cells: pd.DataFrame      # section 3: one row per cell (server counts)
    lazy_loads: pd.DataFrame      # section 3: one row per server-side load
    _calibration: Optional[tuple] = field(default=None, repr=False, compare=False)

    def calibration(self):
        """(service, load, occupancy) for the simulator: :func:`calibration` of the lazy cells, once."""
        if self._calibration is None:
            self._calibration = calibration(self.lazy_records, self.lazy_cells, self.lazy_loads, self.params)
        return self._calibration

    def cycle_summary(self) -> pd.DataFrame:
        return cycle_summary(self.cycles, self.cycle_runs)

    def leak_audit(self) -> pd.DataFrame:
        return leak_audit(self.cycles, self.cycle_runs, self.params.leak_bound_mib)

    def churn_summary(self) -> pd.DataFrame:
        return churn_summary(self.churn_records, self.churn_levels, self.params.slo_ms)

    def churn_compare(self) -> pd.DataFrame:
        return churn_compare(self.churn_summary())

    def lazy_summary(self) -> pd.DataFrame:
        return lazy_summary(self.lazy_records, self.lazy_cells, self.params.slo_ms, self.params.lateness_p99_ms)

    def validation(self) -> pd.DataFrame:
        return validate_simulator(self.lazy_records, self.lazy_cells, self.lazy_loads, self.params)


# --------------------------------------------------------------------------- run

def run(p: ColdstartParams, progress: bool = True, workdir: Optional[Path] = None) -> ColdstartResult:
    """Measure the sections of ``p`` not yet on disk (``resume``), return every table."""
    rundir = RunDir(p.output_dir, "coldstart", p.to_dict(), p.key(), resume=p.resume)
    workload = get_workload(p.workload, p)
    for rt in (p.runtimes if {"load_unload", "churn"} & set(p.sections) else []):
        get_runtime(rt).check_available()   # a missing runtime fails before anything starts
    with rundir.session(workdir, prefix="mmslib-coldstart-") as tmp, Supervisor(log_dir=tmp / "logs") as sup:
        if "load_unload" in p.sections:
            _section_cycles(p, rundir, workload, tmp, sup, progress)
        if "churn" in p.sections:
            _section_churn(p, rundir, workload, tmp, sup, progress)
        if "lazy" in p.sections:
            _section_lazy(p, rundir, workload, tmp, sup, progress)
    return load(rundir, p)


def _frame(rundir: RunDir, name: str) -> pd.DataFrame:
    df = rundir.load(name)
    return df if df is not None else pd.DataFrame()


def load(rundir: RunDir, p: ColdstartParams) -> ColdstartResult:
    """Every table, read back from the run directory."""
    def concat(prefix: str, names) -> pd.DataFrame:
        parts = [rundir.load(f"{prefix}/{n}") for n in names]
        parts = [x for x in parts if x is not None and len(x)]
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    cycle_runs = _frame(rundir, "cycle_runs")
    churn_levels = _frame(rundir, "churn_levels")
    lazy_cells = _frame(rundir, "lazy_cells")
    return ColdstartResult(
        params=p, rundir=rundir,
        cycles=concat("cycles", cycle_runs["runtime"] if len(cycle_runs) else []),
        cycle_runs=cycle_runs,
        churn_records=concat("churn", churn_levels["name"] if len(churn_levels) else []),
        churn_levels=churn_levels,
        churn_ops=concat("churn_ops", churn_levels["name"] if len(churn_levels) else []),
        lazy_records=concat("lazy", lazy_cells["name"] if len(lazy_cells) else []),
        lazy_cells=lazy_cells,
        lazy_loads=concat("lazy_loads", lazy_cells["name"] if len(lazy_cells) else []))


def _append(rundir: RunDir, table: str, row: dict, key: str = "name") -> None:
    old = rundir.load(table)
    rows = [] if old is None else [r for r in old.to_dict("records") if r[key] != row[key]]
    rundir.save(table, pd.DataFrame(rows + [row]))


def _done(rundir: RunDir, table: str, key: str = "name") -> set:
    old = rundir.load(table)
    return set() if old is None or not len(old) else set(old[key])


def _pss(backend: LocalBackend) -> float:
    return float(resources.memory_of(backend.pids())["pss_mib"])


def _backend(p, runtime: str, workload, workdir: Path, sup, **kw) -> LocalBackend:
    return LocalBackend(get_runtime(runtime), workload, workdir, deploy_timeout_s=p.deploy_timeout_s,
                        model_memory=p.model_memory_bytes(), server_threads=p.server_threads,
                        supervisor=sup, **kw)


# --------------------------------------------------------------------------- section 1

def _section_cycles(p, rundir, workload, tmp, sup, progress):
    done = _done(rundir, "cycle_runs", "runtime") if p.resume else set()
    todo = [rt for rt in p.runtimes if rt not in done]
    n = p.cycles_count()
    bar = progress_bar(n * len(todo), "load/unload cycles", "cycle", progress)
    try:
        for rt in todo:
            rows, run_row = _cycles(p, rt, workload, tmp / f"cycles-{rt}", sup, n, bar)
            rundir.save(f"cycles/{rt}", pd.DataFrame(rows))
            _append(rundir, "cycle_runs", run_row, "runtime")
    finally:
        if bar is not None:
            bar.close()


def _cycles(p, rt, workload, workdir, sup, n, bar):
    backend = _backend(p, rt, workload, workdir, sup)
    rows: List[dict] = []
    error = ""
    try:
        backend.start_hosts(1)
        srv = backend.server()
        names = [f"cycle{i}" for i in range(min(CYCLE_POOL, n))]
        for m in names:
            backend.runtime.write_model(backend.store, workload, m)
        time.sleep(0.5)
        before = _pss(backend)
        failures = 0
        for i in range(n):
            m = names[i % len(names)]
            t_unix = time.time()
            t0 = time.perf_counter()
            try:
                r = srv.client.load(m)
                load_ok, load_status = r.status_code == 200, r.status_code
            except Exception as e:  # noqa: BLE001 - a failed load is a measurement
                load_ok, load_status, error = False, 0, f"load {m}: {e}"
            load_s = time.perf_counter() - t0
            pss_loaded = _pss(backend)
            t0 = time.perf_counter()
            try:
                r = srv.client.unload(m)
                unload_ok, unload_status = r.status_code == 200, r.status_code
            except Exception as e:  # noqa: BLE001
                unload_ok, unload_status, error = False, 0, f"unload {m}: {e}"
            unload_s = time.perf_counter() - t0
            rows.append({"runtime": rt, "workload": workload.name, "cycle": i, "model": m, "t_unix": t_unix,
                         "load_s": load_s, "load_ok": load_ok, "load_status": load_status,
                         "unload_s": unload_s, "unload_ok": unload_ok, "unload_status": unload_status,
                         "pss_loaded_mib": pss_loaded, "pss_after_mib": _pss(backend)})
            failures = 0 if (load_ok and unload_ok) else failures + 1
            if bar is not None:
                bar.update(1)
            if failures >= 5:
                error = error or f"5 cycles in a row failed (last load HTTP {load_status})"
                break
        time.sleep(1.0)  # let stubs exit, allocators settle
        after = _pss(backend)
    except DeployError as e:
        error, before, after = str(e), np.nan, np.nan
    finally:
        backend.close()
    run_row = {"runtime": rt, "workload": workload.name, "cycles": len(rows), "pss_before_mib": before,
               "pss_after_mib": after, "host_memory_mib": resources.machine_memory()["total"] / 2**20,
               "error": error}
    return rows, run_row


def cycle_summary(cycles: pd.DataFrame, cycle_runs: pd.DataFrame) -> pd.DataFrame:
    """Per runtime: load and unload latency (ms: p50, p99, max, n) and PSS before,
    during (median and max with a model loaded) and after the cycles."""
    out = []
    for rt, g in (cycles.groupby("runtime", sort=False) if len(cycles) else []):
        row = {"runtime": rt, "workload": g["workload"].iloc[0], "cycles": len(g)}
        for op in ("load", "unload"):
            ok = g[g[f"{op}_ok"]][f"{op}_s"].to_numpy() * 1e3
            row.update({f"{op}_n": len(ok), f"{op}_failed": int((~g[f"{op}_ok"]).sum()),
                        f"{op}_p50_ms": float(np.percentile(ok, 50)) if len(ok) else np.nan,
                        f"{op}_p99_ms": float(np.percentile(ok, 99)) if len(ok) else np.nan,
                        f"{op}_max_ms": float(ok.max()) if len(ok) else np.nan})
        run = cycle_runs[cycle_runs["runtime"] == rt].iloc[0] if len(cycle_runs) else {}
        row.update({"pss_before_mib": run.get("pss_before_mib", np.nan),
                    "pss_loaded_median_mib": float(g["pss_loaded_mib"].median()),
                    "pss_loaded_max_mib": float(g["pss_loaded_mib"].max()),
                    "pss_after_mib": run.get("pss_after_mib", np.nan), "error": run.get("error", "")})
        out.append(row)
    return pd.DataFrame(out)


def leak_audit(cycles: pd.DataFrame, cycle_runs: pd.DataFrame, leak_bound_mib: Optional[float] = None) -> pd.DataFrame:
    """Per runtime: the fitted PSS slope after unload (MiB per 100 cycles, 95% CI),
    the drift over the run, the bound and the verdict (see the module doc)."""
    from scipy import stats as sps
    out = []
    for rt, g in (cycles.groupby("runtime", sort=False) if len(cycles) else []):
        g = g.sort_values("cycle")
        skip = int(len(g) * LEAK_SKIP_FRAC)
        x, y = g["cycle"].to_numpy(float)[skip:], g["pss_after_mib"].to_numpy(float)[skip:]
        host = float(cycle_runs.loc[cycle_runs["runtime"] == rt, "host_memory_mib"].iloc[0]) if len(cycle_runs) \
            else resources.machine_memory()["total"] / 2**20
        bound = host * 0.01 if leak_bound_mib is None else min(host * 0.01, float(leak_bound_mib))
        row = {"runtime": rt, "cycles": len(g), "fitted_on": len(x), "bound_mib": bound}
        if len(x) >= 3 and np.ptp(x) > 0:
            fit = sps.linregress(x, y)
            t = sps.t.ppf(0.975, len(x) - 2)
            slope, lo, hi = fit.slope, fit.slope - t * fit.stderr, fit.slope + t * fit.stderr
            drift = slope * len(g)
            grows = drift > bound and lo > 0
            row.update({"drift_per_100_mib": slope * 100, "drift_per_100_lo": lo * 100,
                        "drift_per_100_hi": hi * 100, "drift_run_mib": drift,
                        "first_mib": float(y[0]), "last_mib": float(y[-1]),
                        "verdict": "grows" if grows else "flat"})
        else:
            row.update({"drift_per_100_mib": np.nan, "drift_per_100_lo": np.nan, "drift_per_100_hi": np.nan,
                        "drift_run_mib": np.nan, "first_mib": np.nan, "last_mib": np.nan,
                        "verdict": "too few cycles"})
        out.append(row)
    return pd.DataFrame(out)


# --------------------------------------------------------------------------- section 2

class _Churner(threading.Thread):
    """Loads one of ``names`` ``rate`` times a second, unloading the previous one."""

    def __init__(self, url: str, names: Sequence[str], rate: float, timeout: float):
        super().__init__(daemon=True)
        self.client = v2.V2Client(url, timeout=timeout)
        self.names, self.rate = list(names), float(rate)
        self.rows: List[dict] = []
        self._halt = threading.Event()
        self._loaded: Optional[str] = None

    def _op(self, op: str, m: str) -> bool:
        t_unix, t0 = time.time(), time.perf_counter()
        try:
            r = (self.client.load if op == "load" else self.client.unload)(m)
            status = r.status_code
        except Exception:  # noqa: BLE001 - recorded as failed
            status = 0
        self.rows.append({"t_unix": t_unix, "op": op, "model": m, "seconds": time.perf_counter() - t0,
                          "ok": status == 200, "status": status})
        return status == 200

    def run(self):
        if self.rate <= 0:
            return
        t0, k = time.monotonic(), 0
        while not self._halt.wait(max(0.0, t0 + k / self.rate - time.monotonic())):
            m = self.names[k % len(self.names)]
            if self._op("load", m):
                if self._loaded is not None:
                    self._op("unload", self._loaded)
                self._loaded = m
            k += 1

    def stop(self) -> List[dict]:
        self._halt.set()
        self.join(60)
        if self._loaded is not None:
            self._op("unload", self._loaded)
            self._loaded = None
        self.client.session.close()
        return self.rows


def churn_name(runtime: str, mode: str, repeat: int) -> str:
    return f"{runtime}_{mode}_r{repeat}"


def _section_churn(p, rundir, workload, tmp, sup, progress):
    cells = schedule.interleaved(list(CHURN_MODES), [p.qps], p.repeats)
    done = _done(rundir, "churn_levels") if p.resume else set()
    todo = {rt: [c for c in cells if churn_name(rt, c.mode, c.repeat) not in done] for rt in p.runtimes}
    bar = progress_bar(sum(map(len, todo.values())), "churn runs", "run", progress)
    try:
        for rt, rt_cells in todo.items():
            if not rt_cells:
                continue
            backend = _backend(p, rt, workload, tmp / f"churn-{rt}", sup)
            try:
                backend.start_hosts(1)
                resident = [f"res{i}" for i in range(p.resident_models)]
                failed = [e for e in backend.deploy_mms(resident) if not e.ok]
                if failed:
                    raise DeployError(f"{rt}: resident models not loaded: {failed[0].error}")
                churners = [f"churn{i}" for i in range(p.churn_models)]
                for m in churners:
                    backend.runtime.write_model(backend.store, workload, m)
                targets = targets_for(backend, workload, "rest", p.seed)
                srv = backend.server()
                for cell in rt_cells:
                    name = churn_name(rt, cell.mode, cell.repeat)
                    ch = _Churner(srv.rest_url, churners, p.churn_per_s if cell.mode == "churn" else 0.0,
                                  p.deploy_timeout_s)
                    ch.start()
                    t_start = time.time()
                    try:
                        res = run_level(targets, p.qps, p.duration_s, p.warmup_s, seed=p.seed + cell.index)
                    finally:
                        ops = ch.stop()
                    recs = res.records.copy()
                    recs["mode"], recs["qps"], recs["repeat"], recs["runtime"] = cell.mode, float(p.qps), \
                        int(cell.repeat), rt
                    rundir.save(f"churn/{name}", recs)
                    opsdf = pd.DataFrame(ops, columns=["t_unix", "op", "model", "seconds", "ok", "status"])
                    opsdf["name"], opsdf["runtime"], opsdf["mode"], opsdf["repeat"] = name, rt, cell.mode, cell.repeat
                    rundir.save(f"churn_ops/{name}", opsdf)
                    loads = opsdf[opsdf["op"] == "load"]
                    _append(rundir, "churn_levels", {
                        "name": name, "runtime": rt, "mode": cell.mode, "qps": float(p.qps),
                        "repeat": int(cell.repeat), "index": cell.index, "target_qps": float(p.qps),
                        "duration_s": p.duration_s, "warmup_s": p.warmup_s, "iterations": res.iterations,
                        "dropped_iterations": res.dropped_iterations, "achieved_qps": res.achieved_qps,
                        "t_start": t_start, "churn_loads": int(loads["ok"].sum()),
                        "churn_failed": int((~opsdf["ok"]).sum()),
                        "churn_achieved_per_s": len(loads) / (p.warmup_s + p.duration_s),
                        "churn_load_p50_ms": float(loads["seconds"].median() * 1e3) if len(loads) else np.nan})
                    if bar is not None:
                        bar.update(1)
            finally:
                backend.close()
    finally:
        if bar is not None:
            bar.close()


def _attainment(df: pd.DataFrame, slo_ms: float, by: List[str]) -> pd.DataFrame:
    """Per group: share of measured requests answered correctly within ``slo_ms``, with the
    dependence-aware interval of :func:`mmslib.intervals.share_ci` (its units: busy periods)."""
    meas = df[~df["warmup"]]
    met = (meas["ok"] & (meas["latency_ms"] <= slo_ms)).to_numpy()
    rows = []
    for key, idx in meas.groupby(by, sort=False).indices.items():
        lat = np.where(meas["ok"].to_numpy()[idx], meas["latency_ms"].to_numpy(dtype=float)[idx] / 1e3, np.nan)
        ci = share_ci(met[idx], t=meas["t_unix"].to_numpy()[idx], latency_s=lat)   # units: busy periods
        rows.append({**dict(zip(by, key if isinstance(key, tuple) else (key,))), "attainment": ci.share,
                     "attainment_lo": ci.lo, "attainment_hi": ci.hi})
    return pd.DataFrame(rows, columns=by + ["attainment", "attainment_lo", "attainment_hi"])


def churn_summary(records: pd.DataFrame, levels: pd.DataFrame, slo_ms: float) -> pd.DataFrame:
    """Per runtime and run: :func:`mmslib.stats.summarize` plus SLO attainment."""
    if not len(records):
        return pd.DataFrame()
    parts = []
    for rt, g in records.groupby("runtime", sort=False):
        lv = levels[levels["runtime"] == rt]
        s = stats.summarize(g, lv)
        s.insert(0, "runtime", rt)
        s = s.merge(_attainment(g, slo_ms, ["mode", "qps", "repeat"]), on=["mode", "qps", "repeat"], how="left")
        s = s.merge(lv[["mode", "qps", "repeat", "churn_loads", "churn_achieved_per_s", "churn_load_p50_ms"]],
                    on=["mode", "qps", "repeat"], how="left")
        parts.append(s)
    return pd.concat(parts, ignore_index=True)


def churn_compare(summary: pd.DataFrame) -> pd.DataFrame:
    """Per runtime: with vs without churn (medians across repeats, the verdict
    "beyond run-to-run spread" from :func:`mmslib.stats.compare_modes`)."""
    if not len(summary):
        return pd.DataFrame()
    parts = []
    for rt, g in summary.groupby("runtime", sort=False):
        c = stats.compare_modes(g, modes=CHURN_MODES, stats=("p50", "p99", "attainment"))
        c.insert(0, "runtime", rt)
        parts.append(c)
    return pd.concat(parts, ignore_index=True)


# --------------------------------------------------------------------------- section 3

def lazy_name(alpha: float, capacity: int, qps: Optional[float] = None) -> str:
    return f"a{alpha:g}_c{capacity}" + ("" if qps is None else f"_q{qps:g}")


def lazy_cells(p: ColdstartParams) -> List[dict]:
    """The cells, in run order. ``lazy_cells`` given: those, in their order, with the
    roles the params file fixed before the run (names carry the rate). Otherwise
    the sweep at ``lazy_qps``: alpha-major, capacities ascending; per alpha the
    largest capacity (few loads: hits' latency is the inference time) and, with
    three capacities or more, the smallest calibrate the simulator; the cells in
    between (or, with two, the smaller) validate it."""
    out = []
    if p.lazy_cells:
        for c in p.lazy_cells:
            n = p._capacity_count(c["capacity"])
            out.append({"name": lazy_name(c["alpha"], n, c["qps"]), "index": len(out), "alpha": float(c["alpha"]),
                        "capacity": int(n), "capacity_spec": str(c["capacity"]), "capacity_ratio": n / p.models,
                        "qps": float(c["qps"]), "role": c["role"]})
        return out
    caps = sorted(zip(p.capacity_counts(), p.capacity))
    for a in p.zipf_alpha:
        for j, (c, spec) in enumerate(caps):
            cal = j == len(caps) - 1 or (j == 0 and len(caps) >= 3)
            out.append({"name": lazy_name(a, c), "index": len(out), "alpha": float(a), "capacity": int(c),
                        "capacity_spec": str(spec), "capacity_ratio": c / p.models, "qps": float(p.lazy_qps),
                        "role": "calibration" if cal else "validation"})
    return out


def _cpu_seconds(pids: Sequence[int]) -> float:
    import psutil
    total = 0.0
    for pid in pids:
        try:
            c = psutil.Process(pid).cpu_times()
            total += c.user + c.system
        except psutil.Error:
            pass
    return total


def _server_stats(backend: LocalBackend) -> List[dict]:
    out = []
    for name in backend.servers():
        srv = backend.server(name)
        r = srv.client.session.get(srv.rest_url + STATS_PATH, timeout=30)
        r.raise_for_status()
        out.append({"server": name, **r.json()})
    return out


def _section_lazy(p, rundir, workload, tmp, sup, progress):
    cells = lazy_cells(p)
    done = _done(rundir, "lazy_cells") if p.resume else set()
    todo = [c for c in cells if c["name"] not in done]
    names = [f"m{i:05d}" for i in range(p.models)]
    # each model its own request and expected answer (a user's repository may mix inputs)
    rng = np.random.default_rng(p.seed)
    samples = [workload.sample(m, rng) for m in names]
    bodies = [v2.request_body(s.inputs) for s in samples]
    checks = [functools.partial(_check, workload, s.expected) for s in samples]
    bar = progress_bar(len(todo), "lazy cells", "cell", progress)
    try:
        for cell in todo:
            backend = _backend(p, p.runtime, workload, tmp / f"lazy-{cell['name']}", sup,
                               lazy_capacity=cell["capacity"])
            try:
                backend.start_hosts(p.hosts)
                backend.register_lazy(names)
                by_model = {ep.model: ep.infer_url for ep in backend.endpoints()}
                urls = [by_model[m] for m in names]
                sched = arrivals.make_schedule(names, cell["qps"], p.duration_s, p.warmup_s, arrival="poisson",
                                               popularity="zipf", zipf_alpha=cell["alpha"],
                                               seed=p.seed + 1000 + cell["index"])
                pids, murls = backend.pids(), backend.metrics_urls()
                m0, cpu0 = server_metrics.scrape(murls), _cpu_seconds(pids)
                t_start = time.time()
                recs = replay(urls, sched, bodies, checks, timeout_s=max(60.0, p.deploy_timeout_s))
                wall = time.time() - t_start
                m1, cpu1 = server_metrics.scrape(murls), _cpu_seconds(pids)
                server = _server_stats(backend)
                pss = _pss(backend)
            finally:
                backend.close()
            recs["model"] = [names[i] for i in recs["model_index"]]
            recs["warmup"] = sched.warmup
            recs["name"], recs["alpha"], recs["capacity"] = cell["name"], cell["alpha"], cell["capacity"]
            rundir.save(f"lazy/{cell['name']}", recs)
            loads = [s for srv in server for s in srv["load_seconds"]]
            rundir.save(f"lazy_loads/{cell['name']}", pd.DataFrame({
                "name": cell["name"], "load_s": pd.Series(loads, dtype=float)}))
            busy = server_metrics.delta(backend.metric_spec(), m0, m1)
            predict_ms = busy.get("compute_ms")
            _append(rundir, "lazy_cells", {
                **cell, "hosts": p.hosts, "models": p.models, "t_start": t_start, "service_ms": p.service_ms,
                # how busy the server was: requests/s x the mean time in predict, both from the server's
                # own metrics (its HTTP handling comes on top: process CPU per request beside it)
                "server_predict_requests": busy.get("server_requests", np.nan),
                "server_predict_ms": np.nan if predict_ms is None else predict_ms,
                "utilisation": (busy.get("server_requests", 0.0) * predict_ms / 1e3 / sched.span_s / p.hosts
                                if predict_ms is not None else np.nan),
                "server_cpu_ms_per_request": (cpu1 - cpu0) * 1e3 / max(1, len(recs)),
                "replay_wall_s": wall, "loadavg_1m": os.getloadavg()[0],   # how busy the machine was
                "schedule_hash": sched.hash(),
                "requests_sent": len(recs),
                "server_requests": sum(s["requests"] for s in server),
                "server_cold_starts": sum(s["cold_starts"] for s in server),
                "server_hits": sum(s["hits"] for s in server),
                "server_loads": sum(s["loads"] for s in server),
                "server_load_failures": sum(s["load_failures"] for s in server),
                "server_evictions": sum(s["evictions"] for s in server),
                "pss_end_mib": pss})
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()


def _check(workload, expected, outputs) -> bool:
    return workload.check(outputs, expected)


def _lat_sched(df: pd.DataFrame) -> np.ndarray:
    """Latency from each request's scheduled time (ms). Records made before the replayer
    kept it: send latency plus the lateness its scheduler saw (a lower bound)."""
    if "latency_sched_ms" in df.columns:
        return df["latency_sched_ms"].to_numpy(dtype=float)
    return (df["latency_ms"] + df["late_ms"]).to_numpy(dtype=float)


def _cell_value(c, name: str, default=np.nan):
    v = getattr(c, name, default)
    return default if v is None else v


def lazy_summary(records: pd.DataFrame, cells: pd.DataFrame, slo_ms: float,
                 lateness_p99_ms: float = 10.0) -> pd.DataFrame:
    """Per cell: hit rate and latency over measured requests; cold starts counted
    by client and server over every request of the cell (they must agree).
    Latency is counted **from each request's scheduled time** (lateness included,
    as in the traffic notebook); ``p99_send_ms`` is the same from the send time.
    ``attainment``: share of measured requests answered correctly within
    ``slo_ms`` of their scheduled time, with the dependence-aware interval of
    :func:`mmslib.intervals.share_ci` (its units: the host's busy periods).
    ``valid``: the replayer sent 99% of the requests less than ``lateness_p99_ms``
    after their scheduled time (else the machine, not the server, set the
    latency) and every request was answered. ``no_header``: requests without an
    answer (client timeout, refused connection); the server may have counted
    them, so with ``no_header > 0`` the two counts can differ by up to that many.
    Hit rate and hit latency are over answered requests. ``utilisation``: the
    server's requests/s x mean time in predict, from its own metrics."""
    if not len(records):
        return pd.DataFrame()
    out = []
    for c in cells.sort_values("index").itertuples():
        g = records[records["name"] == c.name]
        m = g[~g["warmup"]]
        lat = _lat_sched(m)
        send = m["latency_ms"].to_numpy(dtype=float)
        answered = m["cold"].to_numpy() >= 0       # the response carried the flag
        cold = m["cold"].to_numpy() == 1
        okm = m["ok"].to_numpy()
        met = okm & (lat <= slo_ms)
        ci = share_ci(met, t=m["t_sched"].to_numpy(), latency_s=_held(m))
        client_cold = int((g["cold"] == 1).sum())
        hit = answered & ~cold
        out.append({
            "name": c.name, "role": c.role, "alpha": c.alpha, "capacity": c.capacity,
            "capacity_ratio": c.capacity_ratio, "qps": float(_cell_value(c, "qps")),
            "utilisation": float(_cell_value(c, "utilisation")),
            "server_predict_ms": float(_cell_value(c, "server_predict_ms")),
            "server_cpu_ms_per_request": float(_cell_value(c, "server_cpu_ms_per_request")),
            "requests": len(m), "errors": int((~okm).sum()),
            "hit_rate": float(1 - cold[answered].mean()) if answered.any() else np.nan,
            "cold_starts_client": client_cold, "cold_starts_server": int(c.server_cold_starts),
            "counts_agree": client_cold == int(c.server_cold_starts)
            and int((g["cold"] >= 0).sum()) == int(c.server_requests),
            "no_header": int((g["cold"] < 0).sum()), "loads": int(c.server_loads),
            "evictions": int(c.server_evictions),
            "cold_p50_ms": float(np.percentile(lat[cold], 50)) if cold.any() else np.nan,
            "cold_p99_ms": float(np.percentile(lat[cold], 99)) if cold.any() else np.nan,
            "hit_p50_ms": float(np.percentile(lat[hit], 50)) if hit.any() else np.nan,
            "p50_ms": float(np.percentile(lat, 50)) if len(lat) else np.nan,
            "p99_ms": float(np.percentile(lat, 99)) if len(lat) else np.nan,
            "p99_send_ms": float(np.percentile(send, 99)) if len(send) else np.nan,
            "attainment": ci.share, "attainment_lo": ci.lo, "attainment_hi": ci.hi,
            "attainment_n_eff": ci.n_eff,
            "late_p99_ms": float(np.percentile(m["late_ms"], 99)) if len(m) else np.nan})
        # the replayer kept its schedule (lateness p99 within the bound, as traffic's levels), and every
        # request was answered (a client timeout leaves a cold start the server counted unseen)
        out[-1]["valid"] = bool(len(m)) and out[-1]["late_p99_ms"] <= lateness_p99_ms and out[-1]["no_header"] == 0
    return pd.DataFrame(out)


# --------------------------------------------------------------------------- section 4: the simulator

def _held(df: pd.DataFrame) -> np.ndarray:
    """Each request's latency from its scheduled time (s), NaN for a failed one (it holds
    nothing): with the scheduled times, the busy periods of :func:`mmslib.intervals.dependence`."""
    return np.where(df["ok"].to_numpy(dtype=bool), _lat_sched(df) / 1e3, np.nan)


def _idle(df: pd.DataFrame) -> np.ndarray:
    """Per request (``df`` one cell, sorted by scheduled time): it opens a busy period (no
    earlier request still in flight when it was due: :func:`mmslib.intervals.dependence`) -- it
    found the host idle, so its latency holds no queueing."""
    if not len(df):
        return np.zeros(0, dtype=bool)
    units = dependence(df["t_sched"].to_numpy(dtype=float), latency_s=_held(df)).units
    return np.concatenate([[True], units[1:] != units[:-1]])


def _cell_schedule(g: pd.DataFrame, c, p: ColdstartParams):
    names = [f"m{i:05d}" for i in range(int(c.models))]
    return simulate.replayed_schedule(g["t_sched"].to_numpy(), g["model_index"].to_numpy(), names,
                                      p.warmup_s + p.duration_s, p.warmup_s)


def calibration(records: pd.DataFrame, cells: pd.DataFrame, loads: pd.DataFrame = None,
                p: Optional[ColdstartParams] = None):
    """The simulator's measured inputs, from the calibration cells only (latency
    from the scheduled time):

    - ``service``: the latency of hits that found the host idle (no earlier
      request in flight: no queueing inside) in the largest-capacity
      calibration cells (fewest loads; per alpha and rate), client side;
    - ``load``: the cost of a cold start as clients saw it, the latency of each
      cold request that found the host idle minus the median of those hits in
      its cell (at least 0): the load, the eviction and the thread hand-off,
      where the server's own load timer (``lazy_loads``, kept for reference)
      sees only the load itself;
    - ``occupancy``: how long a request holds the server. With ``p`` (the
      run's parameters) and calibration cells at utilisation >= 0.3 (from the
      server's metrics): fitted so that their simulated SLO attainment at the
      validation's SLOs, each cell replayed, matches the measured one
      (bisection; never below the server's own mean predict time). Otherwise
      the 5th percentile of ``service`` (the rest of a hit's latency, the
      client's and the machine's noise, holds no server).
    """
    cal = cells[cells["role"] == "calibration"]
    keys = ["alpha"] + (["qps"] if "qps" in cal.columns else [])
    top = set(cal.loc[cal.groupby(keys)["capacity"].idxmax(), "name"]) if len(cal) else set()
    parts = []
    for name in cal["name"]:
        g = records[records["name"] == name].sort_values("t_sched")
        parts.append(g.assign(_lat=_lat_sched(g), _idle=_idle(g)))
    meas = pd.concat(parts) if parts else records.iloc[:0].assign(_lat=[], _idle=[])
    meas = meas[meas["ok"] & ~meas["warmup"] & meas["_idle"]]
    hits = meas[meas["name"].isin(top) & (meas["cold"] == 0)]["_lat"].to_numpy() / 1e3
    med = meas[meas["cold"] == 0].groupby("name")["_lat"].median()
    cold = meas[(meas["cold"] == 1) & meas["name"].isin(med.index)]
    penalty = (cold["_lat"] - cold["name"].map(med)).clip(lower=0).to_numpy() / 1e3
    if not len(hits) or not len(penalty):
        raise MmsError("nothing to calibrate the simulator with: the calibration cells need hits and cold starts")
    service = simulate.Empirical(hits, "hit latency (host idle)")
    load = simulate.Empirical(penalty, "cold-start penalty")
    occupancy = simulate.Constant(float(np.percentile(hits, 5)))
    busy = cal[cal["utilisation"] >= FIT_UTILISATION_MIN] if "utilisation" in cal.columns else cal.iloc[:0]
    if p is not None and len(busy):
        # never below the time the server itself says a request spends in predict
        floor = float(np.nanmean(busy["server_predict_ms"])) / 1e3 if "server_predict_ms" in busy else np.nan
        lo = floor if floor == floor and floor < np.max(hits) else 0.25 * occupancy.mean
        occupancy = simulate.Constant(_fit_occupancy(records, busy, service, load, p, lo=lo, hi=float(np.max(hits))))
    return service, load, occupancy


def _fit_occupancy(records, cal, service, load, p, lo: float, hi: float, steps: int = 24) -> float:
    """The occupancy (s) at which the busy calibration cells' simulated SLO attainment, at each
    SLO the validation checks (measured requests, one seed: common random numbers), matches the
    measured one on average -- calibrated on what is predicted; ``lo`` or ``hi`` when no value in
    between does."""
    slos = np.asarray(p.validation_slo_ms or [p.slo_ms], dtype=float)
    runs = []
    for c in cal.itertuples():
        g = records[records["name"] == c.name].sort_values("t_sched")
        mask = ~g["warmup"].to_numpy()
        gm = g[mask]
        runs.append((c, _cell_schedule(g, c, p), mask, np.array([_met(gm, s).mean() for s in slos])))

    def gap(occ: float) -> float:          # simulated minus measured attainment: falls as occupancy grows
        out = []
        for c, sched, m, measured in runs:
            lat = simulate.simulate(sched, int(c.hosts), int(c.capacity), service, load, seed=0,
                                    occupancy=simulate.Constant(occ)).latency_s[m]
            out.append(np.mean([(lat <= s / 1e3).mean() for s in slos] - measured))
        return float(np.mean(out))
    if gap(lo) <= 0:
        return lo
    if gap(hi) >= 0:
        return hi
    for _ in range(steps):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if gap(mid) > 0 else (lo, mid)
    return (lo + hi) / 2


def _met(df: pd.DataFrame, slo_ms: float) -> np.ndarray:
    return df["ok"].to_numpy(dtype=bool) & (_lat_sched(df) <= slo_ms)


def validate_simulator(records: pd.DataFrame, cells: pd.DataFrame, loads: pd.DataFrame,
                       p: ColdstartParams, seeds: Optional[int] = None) -> pd.DataFrame:
    """Replay each validation cell's recorded schedule through the simulator
    calibrated on the calibration cells, ``seeds`` times (default
    ``p.validation_seeds``); one row per validation cell and SLO in
    ``p.validation_slo_ms`` (default ``[p.slo_ms]``):

    - measured attainment (from the scheduled time) with its interval
      (:func:`mmslib.intervals.share_ci`), simulated attainment (mean over the
      seeds) with the seeds' range, and a trivial baseline's guess,
      **attainment = the calibration cells' mean** at that SLO;
    - errors in points (simulated and baseline minus measured), ``within``
      (simulation within 5 points), ``beats_baseline`` (smaller error);
    - ``powered``: the check can tell a good model from a bad one -- the cell
      is valid, the server was at least half busy (``utilisation`` >= 0.5, from
      its own metrics) and the measured attainment lies in 50-95%;
    - hit rate measured vs simulated (kept, but it does not depend on the
      calibrated times, so it tests the cache, not the timing model).
    """
    if not len(records) or not (cells["role"] == "validation").any():
        return pd.DataFrame()
    seeds = int(p.validation_seeds if seeds is None else seeds)
    slos = list(p.validation_slo_ms or [p.slo_ms])
    service, load, occupancy = calibration(records, cells, loads, p)
    measured = lazy_summary(records, cells, p.slo_ms, p.lateness_p99_ms).set_index("name")
    cal_names = list(cells.loc[cells["role"] == "calibration", "name"])
    cal_invalid = [n for n in cal_names if not bool(measured.loc[n, "valid"])]
    meas_all = records[~records["warmup"]]
    baseline = {s: float(np.mean([_met(meas_all[meas_all["name"] == n], s).mean() for n in cal_names]))
                for s in slos}
    out = []
    for c in cells[cells["role"] == "validation"].sort_values("index").itertuples():
        g = records[records["name"] == c.name].sort_values("t_sched")
        sched = _cell_schedule(g, c, p)
        runs = [simulate.simulate(sched, int(c.hosts), int(c.capacity), service, load, seed=k,
                                  occupancy=occupancy) for k in range(seeds)]
        mask = ~g["warmup"].to_numpy()
        gm = g[mask]
        m = measured.loc[c.name]
        sim_hit = float(np.mean([1 - r.cold[mask].mean() for r in runs]))
        util = float(m["utilisation"])
        for slo in slos:
            ci = share_ci(_met(gm, slo), t=gm["t_sched"].to_numpy(), latency_s=_held(gm))
            sims = np.array([(r.latency_s[mask] <= slo / 1e3).mean() for r in runs])
            sim = float(np.clip(sims.mean(), sims.min(), sims.max()))   # no rounding past the range
            row = {"name": c.name, "alpha": c.alpha, "capacity": c.capacity, "qps": float(m["qps"]),
                   "utilisation": util, "slo_ms": float(slo),
                   "attainment_measured": ci.share, "attainment_lo": ci.lo, "attainment_hi": ci.hi,
                   "attainment_n_eff": ci.n_eff,
                   "attainment_simulated": sim, "attainment_sim_lo": float(sims.min()),
                   "attainment_sim_hi": float(sims.max()), "seeds": seeds,
                   "attainment_baseline": baseline[slo],
                   "attainment_diff_pts": 100 * (sim - ci.share),
                   "baseline_diff_pts": 100 * (baseline[slo] - ci.share),
                   "hit_rate_measured": m["hit_rate"], "hit_rate_simulated": sim_hit,
                   "hit_rate_diff_pts": 100 * (sim_hit - m["hit_rate"]),
                   "p99_measured_ms": float(np.percentile(_lat_sched(gm), 99)),
                   "p99_simulated_ms": float(np.mean([np.percentile(r.latency_s[mask], 99) for r in runs]) * 1e3),
                   "measurement_valid": bool(m["valid"]), "calibration_invalid": ", ".join(cal_invalid),
                   "occupancy_ms": occupancy.mean * 1e3,
                   "service_p50_ms": float(np.median(service.values) * 1e3), "load_p50_ms": float(np.median(load.values) * 1e3)}
            row["in_band"] = bool(ATTAINMENT_BAND[0] <= ci.share <= ATTAINMENT_BAND[1])
            row["loaded"] = bool(util >= UTILISATION_MIN)   # NaN (not measured): False
            row["powered"] = row["measurement_valid"] and row["in_band"] and row["loaded"]
            row["within"] = bool(abs(row["attainment_diff_pts"]) <= ATTAINMENT_TARGET_PTS)
            row["beats_baseline"] = bool(abs(row["attainment_diff_pts"]) < abs(row["baseline_diff_pts"]))
            out.append(row)
    return pd.DataFrame(out)


def cluster_questions(result: ColdstartResult, models: Optional[Sequence[int]] = None,
                      duration_s: Optional[float] = None, validation: Optional[pd.DataFrame] = None) -> pd.DataFrame:
    """For each N in ``cluster_models``: the hosts (each with ``cluster_host_memory``
    for models of the declared memory) needed for >= 99% SLO attainment at
    ``cluster_qps`` with Zipf ``cluster_alpha``, and the attainment there; times
    drawn from this run's calibration cells. A simulation: read it with the
    validation beside it; given ``validation`` (:func:`validate_simulator`), each row carries
    its label in ``validation`` (:func:`mmslib.simcheck.simulation_label`)."""
    from .planner import parse_memory
    p = result.params
    service, load, occupancy = result.calibration()
    host_mem = parse_memory(p.cluster_host_memory)
    rows = []
    for n in (models if models is not None else p.cluster_models):
        r = simulate.hosts_needed(int(n), p.cluster_alpha, p.cluster_qps, p.cluster_slo_ms, service, load,
                                  host_memory=host_mem, model_memory=p.model_memory_bytes(),
                                  duration_s=duration_s or p.cluster_duration_s, seed=p.seed,
                                  occupancy=occupancy)
        rows.append({"models": int(n), "host_memory": p.cluster_host_memory,
                     "models_per_host": int(host_mem // p.model_memory_bytes()), "alpha": p.cluster_alpha,
                     "qps": p.cluster_qps, "slo_ms": p.cluster_slo_ms, "hosts_needed": r["hosts"],
                     "attainment": r.get("attainment"), "note": r.get("reason", ""),
                     "host_counts_simulated": len(r["tried"])})
    out = pd.DataFrame(rows)
    if validation is not None:
        out.insert(0, "validation", simulation_label(validation))
    return out


def simulator_inputs(result: ColdstartResult) -> pd.DataFrame:
    """The calibrated simulator's inputs as rows (:func:`mmslib.siminputs.to_frame`), the lazy host's
    own load times beside them; empty without lazy cells."""
    if not len(result.lazy_records) or not len(result.lazy_cells):
        return pd.DataFrame()
    service, load, occupancy = result.calibration()
    loads = result.lazy_loads["load_s"] if len(result.lazy_loads) and "load_s" in result.lazy_loads else []
    return siminputs.to_frame(service, load, occupancy, loads)


def save_simulation(rundir: RunDir, validation: pd.DataFrame, cluster: pd.DataFrame,
                    inputs: Optional[pd.DataFrame] = None) -> List[Path]:
    """Write section 4's tables into the run directory (``simulator_validation.parquet``:
    :func:`validate_simulator`; ``cluster.parquet``: :func:`cluster_questions`, labelled in a
    ``validation`` column with :func:`simulation_label`; ``simulator_inputs.parquet``:
    :func:`simulator_inputs`), so the report reads them from the run, not from a notebook; an
    empty table is not written."""
    if cluster is not None and len(cluster):
        cluster = cluster.assign(validation=simulation_label(validation if validation is not None
                                                             else pd.DataFrame()))
    out = []
    for name, df in zip(SIMULATION_TABLES + (siminputs.TABLE,), (validation, cluster, inputs)):
        if df is not None and len(df):
            out.append(rundir.save(name, df))
    return out
