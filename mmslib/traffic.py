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

from . import arrivals, export, gate, records as schema, slo
from .intervals import quantile_ci
from .backends import model_names
from .errors import MmsError
from .loadgen import replay
from .params import TrafficParams
from .performance import cpu_split, deploy_mode
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
    max_rates: pd.DataFrame   # per (models, mode, cv): highest rate meeting the target (sweep)
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
        seed=p.seed + 1000 * level.repeat, trace=p.trace, time_scale=p.time_scale)


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
    deploy_rows: List[dict] = rundir.load_json("deploy") or []
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
                                                         rundir.run_id)
                                rundir.record_environment(backends[mode][0].environment())
                                deploy_rows = [r for r in deploy_rows if (r["mode"], r["models"]) != (mode, size)]
                                deploy_rows.append(backends[mode][2])
                                rundir.save_json("deploy", deploy_rows)
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


def _deploy(p, mode, size, workload, workdir, sup, run_id):
    return deploy_mode(p, mode, size, workload, workdir, sup, run_id, verify_sample=min(size, 100))


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
                "k6_exit_code": res.k6_exit_code}
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
           "scheduled_rate": sched.rate, "span_s": sched.span_s, "warmup_s": sched.warmup_s,
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
        s = level_summary(recs, row, p)
        return bool(s["valid"] and s["share"] >= p.attainment_target)

    res = slo.bisect_rate(passes, p.search_lo, p.search_hi, p.search_tolerance)
    return {"mode": mode, "models": p.models[0], "cv": cv, "max_rate": res.max_rate, "lo": res.lo,
            "hi": res.hi, "tolerance": p.search_tolerance, "converged": res.converged,
            "probes": [list(x) for x in res.probes]}


# --------------------------------------------------------------------------- statistics

def level_summary(recs: pd.DataFrame, row, p: TrafficParams) -> dict:
    """One level's SLO figures from its records (measured rows only) and generator row."""
    m = recs[~recs["warmup"].astype(bool)] if len(recs) else recs
    measured_s = float(row["measured_s"])
    a = slo.attainment(m["latency_sched_ms"], m["ok"], p.slo_ms, measured_s)
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
    if len(lat) >= 2:
        lo, hi = quantile_ci(lat_s, 0.99)
        out["p99_sched_lo"], out["p99_sched_hi"] = float(lo), float(hi)
    else:
        out["p99_sched_lo"] = out["p99_sched_hi"] = float("nan")
    out["lateness_p50"] = float(np.percentile(late, 50)) if len(late) else float("nan")
    out["lateness_p99"] = float(np.percentile(late, 99)) if len(late) else float("nan")
    out["lateness_max"] = float(late.max()) if len(late) else float("nan")
    reasons = []
    if row.get("error"):
        reasons.append(f"{row.get('generator', 'k6')} failed")
    if int(row.get("unsent", 0)) > 0:
        reasons.append(f"{int(row['unsent'])} requests not sent")
    if not (out["lateness_p99"] <= p.lateness_p99_ms):
        reasons.append(f"lateness p99 {out['lateness_p99']:.1f} ms > {p.lateness_p99_ms:g} ms")
    out["valid"] = not reasons
    out["invalid_reason"] = "; ".join(reasons)
    misses = a.n - a.within
    pct = p.attainment_target if p.attainment_target < 1 else 0.99
    out["min_queries"] = slo.min_queries(int(misses), pct) if misses < a.n else -1
    out["few_queries"] = not slo.early_stopping_ok(a.n, int(misses), pct)
    out["offered_rate"] = float(row["scheduled_rate"])
    out["generator_cpu_ms_per_request"] = float(row.get("cpu_ms_per_request", float("nan")))
    return out


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


def max_rates(summary: pd.DataFrame, target: float) -> pd.DataFrame:
    if not len(summary):
        return pd.DataFrame()
    s = summary[~summary["search"].astype(bool)]
    return slo.max_rate(s, target, rate="rate", share="share", valid="valid", by=["models", "mode", "cv"])


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
    time) and attainment per (models, rate, cv) and mode, with 95% intervals,
    and the verdict traditional vs multi-model (see the module doc)."""
    if p.popularity != "hot" or not len(records) or set(p.modes) != {"traditional", "mms"}:
        return pd.DataFrame()
    hot_names = set(model_names(int(records["models"].max()))[:p.hot_models])
    m = records[~records["warmup"].astype(bool) & ~records["search"].astype(bool)]
    m = m[~m["model"].isin(hot_names)]
    per = []
    for key, g in m.groupby(LEVEL_KEYS, dropna=False):
        a = slo.attainment(g["latency_sched_ms"], g["ok"], p.slo_ms)
        ok = g.loc[g["ok"].astype(bool), "latency_sched_ms"].to_numpy(dtype=float)
        p99 = float(np.percentile(ok, 99)) if len(ok) else float("nan")
        lo, hi = quantile_ci(ok, 0.99) if len(ok) >= 2 else (float("nan"), float("nan"))
        per.append({**dict(zip(LEVEL_KEYS, key)), "n": a.n, "p99": p99, "p99_lo": float(lo), "p99_hi": float(hi),
                    "share": a.share, "share_lo": a.lo, "share_hi": a.hi})
    per = pd.DataFrame(per)
    out = []
    for key, g in per.groupby(["models", "rate", "cv"], dropna=False):
        t, mm = g[g["mode"] == "traditional"], g[g["mode"] == "mms"]
        if not len(t) or not len(mm):
            continue
        row = dict(zip(["models", "rate", "cv"], key))
        for name, lo, hi in (("p99", "p99_lo", "p99_hi"), ("share", "share_lo", "share_hi")):
            tv, mv = _med(t[name]), _med(mm[name])
            t_lo, t_hi, m_lo, m_hi = _med(t[lo]), _med(t[hi]), _med(mm[lo]), _med(mm[hi])
            # intervals apart (an open end, NaN, where the sample is too small, never separates)
            apart = bool(t_hi < m_lo or m_hi < t_lo)
            spread = max(_span(t[name]), _span(mm[name]))
            beyond = bool(apart and (len(t) < 2 or abs(mv - tv) > spread))
            row.update({f"traditional_{name}": tv, f"traditional_{name}_ci": f"[{t_lo:.4g}, {t_hi:.4g}]",
                        f"mms_{name}": mv, f"mms_{name}_ci": f"[{m_lo:.4g}, {m_hi:.4g}]",
                        f"{name}_difference": mv - tv, f"{name}_run_spread": spread,
                        f"{name}_verdict": "beyond run-to-run spread" if beyond else "within run-to-run spread"})
        row["others_requests"] = int(g["n"].sum())
        out.append(row)
    return pd.DataFrame(out)


def _med(x: pd.Series) -> float:
    x = x.dropna()
    return float(x.median()) if len(x) else float("nan")


def _span(x: pd.Series) -> float:
    x = x.dropna()
    return float(x.max() - x.min()) if len(x) else 0.0


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
    return TrafficResult(records, levels, summary, max_rates(summary, p.attainment_target), searches,
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
    """The answer in words (markdown): highest rate at the SLO per mode and CV,
    invalid and under-sampled levels, the search, the noisy neighbour."""
    p, s = result.params, result.summary
    if not len(s):
        return "No level was measured."
    out = [f"SLO: answered correctly within **{p.slo_ms:g} ms** of the scheduled time; "
           f"target attainment **{p.attainment_target:.4g}**."]
    for r in result.max_rates.itertuples():
        cv = "trace" if r.cv != r.cv else f"CV {r.cv:g}"
        if r.max_rate == r.max_rate:
            txt = f"up to **{r.max_rate:g} requests/s**"
            if r.first_miss == r.first_miss:
                txt += f" (missed at {r.first_miss:g})"
            else:
                txt += " (met at every valid rate measured)"
        else:
            txt = f"**not met** even at the lowest rate ({r.first_miss:g} requests/s)" \
                if r.first_miss == r.first_miss else "no valid level"
        out.append(f"- {r.mode}, {r.models} models, {cv}: {txt}")
    for r in result.searches.itertuples() if len(result.searches) else []:
        out.append(f"- search, {r.mode}: max rate at the target **{r.max_rate:g} requests/s** "
                   f"(bracket [{r.lo:g}, {r.hi:g}], tolerance {r.tolerance:g}, {len(r.probes)} probes)")
    sw = s[~s["search"].astype(bool)]
    bad = sw[~sw["valid"].astype(bool)]
    if len(bad):
        out.append(f"- **{len(bad)} of {len(sw)} levels not valid** (the generator fell behind): "
                   + "; ".join(f"{r.mode} {r.rate:g}/s: {r.invalid_reason}" for r in bad.head(4).itertuples()))
    few = sw[sw["few_queries"].astype(bool)]
    if len(few):
        out.append(f"- {len(few)} of {len(sw)} levels have fewer requests than MLPerf's early-stopping "
                   f"rule asks for their attainment claim (column `min_queries`).")
    if len(result.noisy):
        beyond = result.noisy[result.noisy["p99_verdict"].str.startswith("beyond")
                              | result.noisy["share_verdict"].str.startswith("beyond")]
        out.append(f"- Noisy neighbour: the other models' p99 or attainment differed between modes beyond "
                   f"run-to-run spread at {len(beyond)} of {len(result.noisy)} (rate, CV) points.")
    return "\n".join(out)
