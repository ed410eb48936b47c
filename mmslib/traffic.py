"""The traffic experiment: SLO attainment under bursty, skewed load.

Per level -- (models loaded, mode, rate, CV, repeat) -- a schedule is computed
ahead (:mod:`mmslib.arrivals`, from ``seed`` and the level's parameters only,
so both modes get the *same* requests at the same offsets), replayed by k6
(:func:`mmslib.loadgen.replay`), and every request is a row on disk. All
tables are recomputed from those rows (:func:`load`).

Choices (where the issue is silent)
    * ``duration_s`` is the *measured* window; each level runs
      ``warmup_s + duration_s`` seconds.
    * Attainment counts a request as met when it was answered correctly
      within ``slo_ms`` **of its scheduled time** (lateness included, so a
      generator that falls behind cannot flatter the server); the same share
      from the send time is shown beside it (``share_send``).
    * A level is *not valid* when any scheduled request was not sent, when
      the lateness p99 exceeds ``lateness_p99_ms``, or when k6 failed.
    * Early stopping: the claim "attainment >= target" (for target 0.99,
      MLPerf's p99 claim) needs ``slo.min_queries(misses, target)`` measured
      requests at 99% confidence; levels with fewer are flagged ``few_queries``.
    * Density: in ``mms`` mode every size in ``models`` is loaded (a host per
      size, fresh), the same total rate spread (``popularity``) over all of
      them; ``traditional`` (a server per model) runs at the first size only.
    * Noisy neighbour (``popularity: hot``): the *other* models (not among the
      first ``hot_models``) compared between modes: p99 and attainment with
      95% intervals; "beyond spread" when the modes' intervals do not overlap
      and (with ``repeats > 1``) the difference of medians exceeds both modes'
      run-to-run ranges.
    * Search (``search: true``): per mode, at the first size and first CV,
      bisection over the rate between ``search_lo`` and ``search_hi`` until
      the bracket is at most ``search_tolerance`` wide; a probe passes when
      the level is valid and its attainment meets the target.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional

import numpy as np
import pandas as pd

from . import arrivals, export, gate, intervals, records as schema, slo
from .backends import model_names
from .errors import MmsError
from .replay import replay
from .params import TrafficParams
from .deploy import cpu_split, deploy_mode
from .procs import Supervisor, pin_threads
from .progress import bar as progress_bar
from .rundir import RunDir
from .workloads import get_workload

LEVEL_KEYS = ["models", "mode", "rate", "cv", "repeat"]
SPECTRUM = (50, 90, 95, 99, 99.9, 99.99)


@dataclass(frozen=True)
class Level:
    models: int
    mode: str
    rate: float
    cv: float          # gamma: the CV; poisson 1; constant 0; trace NaN
    repeat: int
    search: bool = False

    @property
    def name(self) -> str:
        cv = "na" if math.isnan(self.cv) else f"{self.cv:g}"
        return (f"requests/{self.models}m_{self.mode}_{self.rate:g}qps_cv{cv}_r{self.repeat}"
                + ("_search" if self.search else ""))

    def key(self):
        return (self.models, self.mode, float(self.rate), self.cv, self.repeat, self.search)


@dataclass
class TrafficResult:
    records: pd.DataFrame     # one row per scheduled request (warm-up rows marked)
    levels: pd.DataFrame      # one row per level: generator facts, schedule hash
    summary: pd.DataFrame     # per level: attainment [CI], goodput, latency, validity, early stopping
    pooled: pd.DataFrame      # per (models, mode, rate, cv): repeats pooled, attainment interval, decision
    max_rates: pd.DataFrame   # per (models, mode, cv): highest rate met (lower bound >= target), sweep
    searches: pd.DataFrame    # per mode: bisection result (empty without search)
    noisy: pd.DataFrame       # popularity hot: the other models, per mode, with the verdict
    deploy: pd.DataFrame
    rundir: RunDir
    params: TrafficParams


def effective_cvs(p: TrafficParams) -> List[float]:
    return {"gamma": list(p.cv), "poisson": [1.0], "constant": [0.0]}.get(p.arrival, [float("nan")])


def plan(p: TrafficParams) -> List[Level]:
    """The sweep's levels in run order: per size, per repeat, per rate and CV,
    the modes interleaved (A B, then B A in odd repeats)."""
    cells = []
    for size_i, size in enumerate(p.models):
        rates = p.rates if p.arrival != "trace" else [_trace_rate(p, size)]
        modes = [m for m in p.modes if m == "mms" or size_i == 0]
        for rep in range(p.repeats):
            for rate in rates:
                for cv in effective_cvs(p):
                    for m in (modes[::-1] if rep % 2 else modes):
                        cells.append(Level(size, m, float(rate), float(cv), rep))
    return cells


def _trace_rate(p: TrafficParams, size: int) -> float:
    """A trace's level is keyed by its own scheduled rate (after time_scale)."""
    s = arrivals.make_schedule(model_names(size), 1.0, p.duration_s, p.warmup_s, arrival="trace",
                               trace=p.trace, time_scale=p.time_scale)
    return round(s.rate, 6)


def schedule_for(p: TrafficParams, level: Level) -> arrivals.Schedule:
    """The level's schedule: a function of the parameters, the level's size,
    rate and CV, and the repeat -- not of the mode."""
    names = model_names(level.models)
    return arrivals.make_schedule(
        names, level.rate if p.arrival != "trace" else 1.0, p.duration_s, p.warmup_s,
        arrival=p.arrival, cv=level.cv if p.arrival == "gamma" else 1.0, popularity=p.popularity,
        zipf_alpha=p.zipf_alpha, hot_models=p.hot_models, hot_rate=p.hot_rate, hot_cv=p.hot_cv,
        seed=p.seed, repeat=level.repeat, trace=p.trace, time_scale=p.time_scale)


# --------------------------------------------------------------------------- running

def run(p: TrafficParams, progress: bool = True, workdir: Optional[Path] = None) -> TrafficResult:
    rundir = RunDir(p.output_dir, "traffic", p.to_dict(), p.key(), resume=p.resume)
    workload = get_workload(p.workload, p)
    todo = plan(p)
    prev = rundir.load("levels") if p.resume else None
    level_rows: List[dict] = prev.to_dict("records") if prev is not None else []
    done = {_row_key(r) for r in level_rows if (rundir.path / f"{_row_level(r).name}.parquet").exists()}
    level_rows = [r for r in level_rows if _row_key(r) in done]
    todo = [lv for lv in todo if lv.key() not in done]
    server_cpus, k6_cpus = cpu_split(p.cpu_isolation)
    rundir.meta["cpu_isolation"] = {"servers": server_cpus, "k6": k6_cpus}
    rundir.meta["plan"] = [lv.name for lv in plan(p)]
    rundir.meta.setdefault("schedule_hashes", {})
    rundir.write_meta()
    searches: List[dict] = rundir.load_json("searches") or []
    with rundir.session(workdir, prefix="mmslib-traffic-") as tmp:
        need_search = p.search and not searches
        sizes = [z for z in p.models if any(lv.models == z for lv in todo) or (need_search and z == p.models[0])]
        if sizes:
            bar = progress_bar(len(todo), "levels", "level", progress)
            try:
                with Supervisor(log_dir=tmp / "logs") as sup:
                    for size in sizes:
                        # every mode measured at this size is deployed at once, so that levels
                        # interleave the modes (A B, B A) and drift hits both alike
                        modes = [m for m in p.modes if m == "mms" or size == p.models[0]]
                        backends = {}
                        try:
                            for mode in modes:
                                backends[mode] = _deploy(p, mode, size, workload, tmp / f"{mode}-{size}", sup,
                                                         rundir)
                                rundir.record_environment(backends[mode][0].environment())
                                if server_cpus:
                                    pin_threads(backends[mode][0].pids(), server_cpus)

                            def measure(lv: Level):
                                backend, targets, _ = backends[lv.mode]
                                row, recs = _measure(p, lv, backend, targets, k6_cpus, tmp)
                                rundir.save(_row_level(row).name, recs)
                                level_rows.append(row)
                                rundir.meta["schedule_hashes"][_row_level(row).name] = row["schedule_hash"]
                                rundir.write_meta()
                                rundir.save("levels", pd.DataFrame(level_rows))
                                return row, recs

                            for lv in [lv for lv in todo if lv.models == size]:
                                measure(lv)
                                if bar is not None:
                                    bar.update(1)
                            if need_search and size == p.models[0]:
                                for mode in modes:
                                    searches.append(_search(p, mode, measure))
                                    rundir.save_json("searches", searches)
                        finally:
                            for b in backends.values():
                                b[0].close()
            finally:
                if bar is not None:
                    bar.close()
        export.write_run_summary(rundir, slo_target=p.attainment_target)  # summary.csv / .json for the report
    gate.enforce(rundir, p.fail_on_slo)  # after everything is saved
    return load(rundir, p)


def _row_key(r) -> tuple:
    return _row_level(r).key()


def _row_level(r) -> Level:
    return Level(int(r["models"]), r["mode"], float(r["rate"]), float(r["cv"]), int(r["repeat"]),
                 bool(r.get("search", False)))


def _deploy(p, mode, size, workload, workdir, sup, rundir):
    """Deploy ``size`` models in ``mode`` and record it in ``rundir`` (deploy.json, deploy_models:
    :func:`mmslib.deploy.record`)."""
    return deploy_mode(p, mode, size, workload, workdir, sup, rundir.run_id, verify_sample=min(size, 100),
                       rundir=rundir)


def _measure(p, lv: Level, backend, targets, k6_cpus, tmp):
    sched = schedule_for(p, lv)
    by_model = {t.model: t for t in targets}
    tg = [by_model[m] for m in sched.models]
    t_start = time.time()
    error = ""
    try:
        res = replay(tg, sched, timeout_s=p.timeout_s, cpu_affinity=k6_cpus, generator=p.generator)
        recs = res.records
        info = {"sent": res.sent, "unsent": res.unsent, "t0_unix": res.t0_unix, "cpu_s": res.cpu_s,
                "cpu_ms_per_request": res.cpu_ms_per_request, "wall_s": res.wall_s,
                "k6_exit_code": res.k6_exit_code, "clock_resolution_ms": res.clock_resolution_ms,
                "early_wakeups": res.early_wakeups}
    except MmsError as e:  # the generator itself failed: the level is recorded as failed, the run goes on
        error = str(e)
        recs = schema.empty(schema.REPLAY)
        info = {"sent": 0, "unsent": len(sched), "t0_unix": t_start, "cpu_s": float("nan"),
                "cpu_ms_per_request": float("nan"), "wall_s": time.time() - t_start, "k6_exit_code": -1}
    recs = recs.copy()
    for k, v in (("models", lv.models), ("mode", lv.mode), ("rate", float(lv.rate)), ("cv", float(lv.cv)),
                 ("repeat", int(lv.repeat)), ("search", bool(lv.search))):
        recs[k] = v
    row = {"models": lv.models, "mode": lv.mode, "rate": float(lv.rate), "cv": float(lv.cv),
           "repeat": int(lv.repeat), "search": bool(lv.search), "scheduled": len(sched),
           "scheduled_rate": sched.rate, "offered_rate": sched.rate, "span_s": sched.span_s, "warmup_s": sched.warmup_s,
           "measured_s": sched.measured_s, "hot_requests": int(sched.hot.sum()),
           "trace_rows_cut": sched.trace_rows_cut, "schedule_hash": sched.hash(), "t_start": t_start,
           "k6_cpus": str(k6_cpus or ""), "generator": p.generator, "error": error, **info}
    # the level's verdict on every row too, for readers that see only records (mmslib.summary)
    recs["valid"] = bool(level_summary(recs, row, p)["valid"])
    return row, recs


def _search(p, mode, measure: Callable) -> dict:
    cv = effective_cvs(p)[0]

    def passes(rate):
        lv = Level(p.models[0], mode, round(float(rate), 3), cv, 0, search=True)
        row, recs = measure(lv)
        return level_summary(recs, row, p)["decision"]

    res = slo.bisect_rate(passes, p.search_lo, p.search_hi, p.search_tolerance)
    return {"mode": mode, "models": p.models[0], "cv": cv, "max_rate": res.max_rate, "lo": res.lo,
            "undecided_probes": sum(1 for _, d in res.probes if d not in (slo.MET, slo.MISSED)),
            "probe_decisions": [str(d) for _, d in res.probes],
            "hi": res.hi, "tolerance": p.search_tolerance, "converged": res.converged,
            "probes": [[float(r), d == slo.MET] for r, d in res.probes]}


# --------------------------------------------------------------------------- statistics

def level_summary(recs: pd.DataFrame, row, p: TrafficParams) -> dict:
    """One level's SLO figures from its records (measured rows only) and generator row."""
    m = recs[~recs["warmup"].astype(bool)] if len(recs) else recs
    measured_s = float(row["measured_s"])
    t = m["scheduled_unix"].to_numpy(dtype=float) if "scheduled_unix" in m else None
    a = slo.attainment(m["latency_sched_ms"], m["ok"], p.slo_ms, measured_s, t=t)
    a_send = slo.attainment(m["latency_ms"], m["ok"], p.slo_ms, measured_s)
    good = m[m["ok"].astype(bool)]
    lat = good["latency_ms"].to_numpy(dtype=float)
    lat_s = good["latency_sched_ms"].to_numpy(dtype=float)
    late = m["lateness_ms"].dropna().to_numpy(dtype=float)
    out = {k: row[k] for k in LEVEL_KEYS + ["search"]}
    out.update(a.as_row())
    out["share_send"] = a_send.share
    out["errors"] = int((~m["ok"].astype(bool)).sum())
    for q in (50, 99):
        out[f"p{q}"] = float(np.percentile(lat, q)) if len(lat) else float("nan")
        out[f"p{q}_sched"] = float(np.percentile(lat_s, q)) if len(lat_s) else float("nan")
    if len(lat) >= 2 and t is not None:
        # the interval from the busy periods of all measured requests (errors hold the system too)
        okm = m["ok"].to_numpy(dtype=bool)
        held = np.where(okm, m["latency_sched_ms"].to_numpy(dtype=float), np.nan)
        dep = intervals.dependence(t, None, len(m), latency_s=held / 1000)
        sub = intervals.Dependence(dep.units[okm], dep.n_units, dep.unit_deff, dep.kind)
        lo, hi, _ = intervals.quantile_ci_dep(lat_s, 0.99, dep=sub)
        out["p99_sched_lo"], out["p99_sched_hi"] = float(lo), float(hi)
    elif len(lat) >= 2:
        lo, hi = intervals.quantile_ci(lat_s, 0.99)
        out["p99_sched_lo"], out["p99_sched_hi"] = float(lo), float(hi)
    else:
        out["p99_sched_lo"] = out["p99_sched_hi"] = float("nan")
    out["lateness_p50"] = float(np.percentile(late, 50)) if len(late) else float("nan")
    out["lateness_p99"] = float(np.percentile(late, 99)) if len(late) else float("nan")
    out["lateness_max"] = float(late.max()) if len(late) else float("nan")
    # the rate the measured window actually offered (a short bursty level is not its nominal rate)
    nominal = float(row["rate"]) + (p.hot_rate if p.popularity == "hot" else 0.0)
    offered = float(row.get("offered_rate", row["scheduled_rate"]))
    out["offered_rate"] = offered
    out["offered_off"] = offered / nominal - 1 if nominal > 0 and p.arrival != "trace" else 0.0
    reasons = []
    if row.get("error"):
        reasons.append(f"{row.get('generator', 'k6')} failed")
    if int(row.get("unsent", 0)) > 0:
        reasons.append(f"{int(row['unsent'])} requests not sent")
    if not (out["lateness_p99"] <= p.lateness_p99_ms):
        reasons.append(f"lateness p99 {out['lateness_p99']:.1f} ms > {p.lateness_p99_ms:g} ms")
    if abs(out["offered_off"]) > p.offered_tolerance:
        reasons.append(f"offered {offered:.3g}/s, {out['offered_off']:+.0%} off nominal {nominal:g}/s "
                       f"(tolerance {p.offered_tolerance:.0%}; {needed_duration(p, nominal, out.get('cv')):.0f} s "
                       f"levels would keep it within on average)")
    out["valid"] = not reasons
    out["invalid_reason"] = "; ".join(reasons)
    out["decision"] = a.decision(p.attainment_target) if out["valid"] else "not valid"
    misses = a.n - a.within
    out["min_queries"] = slo.min_queries(int(misses), p.attainment_target) if misses < a.n else -1
    out["few_queries"] = not slo.early_stopping_ok(a.n, int(misses), p.attainment_target)
    out["generator_cpu_ms_per_request"] = float(row.get("cpu_ms_per_request", float("nan")))
    return out


def needed_duration(p: TrafficParams, rate: float, cv) -> float:
    """Seconds of measured window for the offered rate to fall within ``offered_tolerance`` of
    nominal in about 95% of levels: the count of a renewal process over ``T`` s has variance
    ``~ cv**2 * rate * T``, so ``T >= (2 * cv / tolerance)**2 / rate``."""
    c = 1.0 if p.arrival in ("poisson", "trace") else (0.0 if p.arrival == "constant" else float(cv))
    return (2 * c / p.offered_tolerance) ** 2 / rate if rate > 0 else float("nan")


def summarize(records: pd.DataFrame, levels: pd.DataFrame, p: TrafficParams) -> pd.DataFrame:
    rows = []
    for r in levels.to_dict("records"):
        lv = _row_level(r)
        sel = _select(records, lv)
        rows.append(level_summary(sel, r, p))
    return pd.DataFrame(rows)


def _select(records: pd.DataFrame, lv: Level) -> pd.DataFrame:
    if not len(records):
        return records
    cv = records["cv"].to_numpy(dtype=float)
    same_cv = np.isnan(cv) if math.isnan(lv.cv) else (cv == lv.cv)
    mask = ((records["models"] == lv.models) & (records["mode"] == lv.mode) & (records["rate"] == lv.rate)
            & same_cv & (records["repeat"] == lv.repeat) & (records["search"] == lv.search))
    return records[mask.to_numpy()]


def pooled(records: pd.DataFrame, summary: pd.DataFrame, p: TrafficParams) -> pd.DataFrame:
    """Per (models, mode, rate, cv) of the sweep: the repeats pooled (each repeat its own busy
    periods: independent runs are never merged), attainment with its interval and the decision
    against the target; valid when every repeat is."""
    if not len(summary):
        return pd.DataFrame()
    s = summary[~summary["search"].astype(bool)]
    keys = ["models", "mode", "rate", "cv"]
    rows = []
    m = records[~records["warmup"].astype(bool) & ~records["search"].astype(bool)] if len(records) else records
    for key, g in s.groupby(keys, dropna=False, sort=True):
        kv = dict(zip(keys, key))
        recs = m
        for k, v in kv.items():
            col = recs[k].to_numpy(dtype=float) if k in ("rate", "cv") else recs[k].to_numpy()
            recs = recs[(np.isnan(col) if isinstance(v, float) and v != v else col == v)]
        valid = bool(g["valid"].astype(bool).all())
        a = slo.attainment(recs["latency_sched_ms"], recs["ok"], p.slo_ms,
                           float(g["measured_s"].sum()) if "measured_s" in g else float("nan"),
                           t=recs["scheduled_unix"].to_numpy(dtype=float), batch=recs["repeat"].to_numpy())
        rows.append({**kv, "repeats": len(g), **a.as_row(), "valid": valid,
                     "decision": a.decision(p.attainment_target) if valid else "not valid"})
    return pd.DataFrame(rows)


def max_rates(pooled_levels: pd.DataFrame, target: float) -> pd.DataFrame:
    """Per (models, mode, cv): the highest rate met, from the pooled decisions (see :func:`slo.max_rate`)."""
    if not len(pooled_levels):
        return pd.DataFrame()
    return slo.max_rate(pooled_levels, target, rate="rate", decision="decision", valid="valid",
                        by=["models", "mode", "cv"])


def spectrum(records: pd.DataFrame, percentiles=SPECTRUM, latency: str = "latency_sched_ms") -> pd.DataFrame:
    """Latency at each percentile per level (correct answers, measured rows)."""
    if not len(records):
        return pd.DataFrame()
    m = records[~records["warmup"].astype(bool) & records["ok"].astype(bool)]
    out = m.groupby(LEVEL_KEYS, dropna=False)[latency].quantile([q / 100 for q in percentiles]).unstack()
    out.columns = [f"p{q:g}" for q in percentiles]
    return out.reset_index()


def lateness_over_time(records: pd.DataFrame, bin_s: float = 1.0) -> pd.DataFrame:
    """Lateness p50/p99/max per second of each level (offset from the level's start)."""
    if not len(records):
        return pd.DataFrame()
    r = records.dropna(subset=["lateness_ms"])
    t0 = r.groupby(LEVEL_KEYS, dropna=False)["scheduled_unix"].transform("min")
    r = r.assign(second=np.floor((r["scheduled_unix"] - t0) / bin_s) * bin_s)
    g = r.groupby(LEVEL_KEYS + ["second"], dropna=False)["lateness_ms"]
    return pd.concat([g.median().rename("p50"), g.quantile(0.99).rename("p99"), g.max().rename("max")],
                     axis=1).reset_index()


def noisy_neighbour(records: pd.DataFrame, p: TrafficParams) -> pd.DataFrame:
    """With ``popularity: hot``: the other models' p99 (from the scheduled
    time) and attainment per (models, rate, cv) and mode, pooled over repeats
    with dependence-aware 95% intervals, and the verdict traditional vs
    multi-model from the per-repeat values (:func:`mmslib.compare.repeat_verdicts`:
    Welch's test, Holm's adjustment over the table; "unknown: needs >= 3
    repeats per run" with fewer)."""
    from .compare import repeat_verdicts
    if p.popularity != "hot" or not len(records) or set(p.modes) != {"traditional", "mms"}:
        return pd.DataFrame()
    hot_names = set(model_names(int(records["models"].max()))[:p.hot_models])
    m = records[~records["warmup"].astype(bool) & ~records["search"].astype(bool)]
    m = m[~m["model"].isin(hot_names)]
    keys = ["models", "rate", "cv"]
    rows, per_t, per_m = [], [], []
    for key, g in m.groupby(keys, dropna=False):
        t, mm = g[g["mode"] == "traditional"], g[g["mode"] == "mms"]
        if not len(t) or not len(mm):
            continue
        row = dict(zip(keys, key))
        for mode, d in (("traditional", t), ("mms", mm)):
            times = d["scheduled_unix"].to_numpy(dtype=float)
            a = slo.attainment(d["latency_sched_ms"], d["ok"], p.slo_ms, t=times, batch=d["repeat"].to_numpy())
            okm = d["ok"].to_numpy(dtype=bool)
            x = d["latency_sched_ms"].to_numpy(dtype=float)
            p99 = float(np.percentile(x[okm], 99)) if okm.any() else float("nan")
            if okm.sum() >= 2:
                dep = intervals.dependence(times, d["repeat"].to_numpy(), len(d),
                                           latency_s=np.where(okm, x, np.nan) / 1000)
                lo, hi, _ = intervals.quantile_ci_dep(x[okm], 0.99, dep=intervals.Dependence(
                    dep.units[okm], dep.n_units, dep.unit_deff, dep.kind))
            else:
                lo = hi = float("nan")
            row.update({f"{mode}_p99": p99, f"{mode}_p99_ci": f"[{lo:.4g}, {hi:.4g}]",
                        f"{mode}_share": a.share, f"{mode}_share_ci": f"[{a.lo:.4g}, {a.hi:.4g}]"})
        for name in ("p99", "share"):
            row[f"{name}_difference"] = row[f"mms_{name}"] - row[f"traditional_{name}"]
            stat = "attainment" if name == "share" else "p99"
            per_t.append([_stat(r, stat, p.slo_ms) for _, r in t.groupby("repeat")])
            per_m.append([_stat(r, stat, p.slo_ms) for _, r in mm.groupby("repeat")])
        row["others_requests"] = int(len(g))
        rows.append(row)
    if not rows:
        return pd.DataFrame()
    v = repeat_verdicts(per_t, per_m)
    for i, row in enumerate(rows):
        for j, name in enumerate(("p99", "share")):
            r = v.iloc[2 * i + j]
            row[f"{name}_p_adjusted"] = r["p_adjusted"]
            row[f"{name}_repeats"] = int(min(r["repeats_a"], r["repeats_b"]))
            row[f"{name}_verdict"] = r["verdict"]
    return pd.DataFrame(rows)


def _stat(d: pd.DataFrame, stat: str, slo_ms: float) -> float:
    from .compare import stat_of
    return stat_of(d["latency_sched_ms"].to_numpy(dtype=float), d["ok"].to_numpy(dtype=bool), stat, slo_ms)


def load(rundir: RunDir, p: TrafficParams) -> TrafficResult:
    """Every table recomputed from the records on disk."""
    levels = rundir.load("levels")
    levels = levels if levels is not None else pd.DataFrame(columns=LEVEL_KEYS + ["search"])
    parts = []
    for r in levels.to_dict("records"):
        df = rundir.load(_row_level(r).name)
        if df is not None:
            parts.append(df)
    records = pd.concat(parts, ignore_index=True) if parts else _empty_records()
    summary = summarize(records, levels, p) if len(levels) else pd.DataFrame()
    searches = pd.DataFrame(rundir.load_json("searches") or [])
    deploy = pd.DataFrame(rundir.load_json("deploy") or [])
    pool = pooled(records, summary, p)
    return TrafficResult(records, levels, summary, pool, max_rates(pool, p.attainment_target), searches,
                         noisy_neighbour(records, p), deploy, rundir, p)


def _empty_records() -> pd.DataFrame:
    df = schema.empty(schema.REPLAY)
    for k, t in (("models", "int64"), ("mode", "object"), ("rate", "float64"), ("cv", "float64"),
                 ("repeat", "int64"), ("search", "bool")):
        df[k] = pd.Series([], dtype=t)
    return df


def density(summary: pd.DataFrame) -> pd.DataFrame:
    """p99 (from the scheduled time) and attainment vs models loaded, mms mode."""
    if not len(summary):
        return pd.DataFrame()
    s = summary[(summary["mode"] == "mms") & ~summary["search"].astype(bool)]
    return (s.groupby(["models", "rate", "cv"], dropna=False)[["p99_sched", "p99_sched_lo", "p99_sched_hi", "share"]]
            .median().reset_index())


def headline(result: TrafficResult) -> str:
    """The answer in words (markdown): highest rate at the SLO per mode and CV (decided on the
    attainment interval's lower end), what stopped it, invalid levels, the search, the noisy neighbour."""
    p, s = result.params, result.summary
    if not len(s):
        return "No level was measured."
    out = [f"SLO: answered correctly within **{p.slo_ms:g} ms** of the scheduled time; "
           f"target attainment **{p.attainment_target:.4g}**, met when the 95% interval's lower end reaches it "
           f"(intervals account for busy periods: {_method(result)})."]
    for r in result.max_rates.itertuples():
        cv = "trace" if r.cv != r.cv else f"CV {r.cv:g}"
        if r.max_rate == r.max_rate:
            txt = f"holds up to **{r.max_rate:g} requests/s**"
            txt += " (met at every valid rate measured)" if r.stopped_by.startswith("met") else f" ({r.stopped_by} requests/s)"
        elif r.stopped_by.startswith("missed"):
            txt = f"**not met** even at the lowest valid rate ({r.stopped_by} requests/s)"
        elif r.stopped_by.startswith("not enough"):
            txt = f"**not enough data** to say ({r.stopped_by} requests/s: lengthen the levels or add repeats)"
        else:
            txt = "no valid level"
        out.append(f"- {r.mode}, {r.models} models, {cv}: {txt}")
    for r in result.searches.itertuples() if len(result.searches) else []:
        extra = f"; {r.undecided_probes} probe(s) had not enough data" if getattr(r, "undecided_probes", 0) else ""
        out.append(f"- search, {r.mode}: max rate at the target **{r.max_rate:g} requests/s** "
                   f"(bracket [{r.lo:g}, {r.hi:g}], tolerance {r.tolerance:g}, {len(r.probes)} probes{extra})")
    sw = s[~s["search"].astype(bool)]
    bad = sw[~sw["valid"].astype(bool)]
    if len(bad):
        out.append(f"- **{len(bad)} of {len(sw)} levels not valid**: "
                   + "; ".join(f"{r.mode} {r.rate:g}/s: {r.invalid_reason}" for r in bad.head(4).itertuples()))
    und = sw[sw["decision"] == slo.NOT_ENOUGH]
    if len(und):
        out.append(f"- {len(und)} of {len(sw)} valid levels have **not enough data** to say whether they meet the "
                   f"target (the interval straddles it; MLPerf's early-stopping count is in `min_queries`).")
    if len(result.noisy):
        v = pd.concat([result.noisy["p99_verdict"], result.noisy["share_verdict"]])
        if v.str.startswith("unknown").all():
            out.append("- Noisy neighbour: **unknown** (the verdict needs >= 3 repeats per mode: `repeats: 3`).")
        else:
            beyond = result.noisy[result.noisy["p99_verdict"].str.startswith("beyond")
                                  | result.noisy["share_verdict"].str.startswith("beyond")]
            out.append(f"- Noisy neighbour: the other models' p99 or attainment differed between modes beyond "
                       f"run-to-run spread at {len(beyond)} of {len(result.noisy)} (rate, CV) points "
                       f"(Welch over repeats, Holm-adjusted).")
    return "\n".join(out)


def _method(result: TrafficResult) -> str:
    s = result.summary
    if "method" in s and len(s) and s["method"].notna().any():
        deff = s["n"] / s["n_eff"]
        return f"effective sample n / {deff.min():.3g} to n / {deff.max():.3g}"
    return "Clopper-Pearson"
