"""The runs a report covers: run directories found under a folder (and/or listed), read with
:meth:`mmslib.rundir.Run.load`, their tables recomputed from the records.

No executed notebook is needed: a run made by a notebook, a script or a benchmark is the same
directory (``meta.json`` + records). Percentiles and the SLO are applied here, at report time.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Union

import numpy as np
import pandas as pd

from .. import stats
from .. import summary as summ
from ..rundir import Run as RunDirectory
from ..rundir import RunFormatError, find_runs
from .labels import (RUN_COLUMNS, RUN_KEYS, STRESS_COLUMNS, cluster_label, gpu_count, machine_label, on_cluster, resolve,
                     runtime_label, versions_label)


@dataclass
class Run:
    """One run as the report sees it: its row in ``Runs.runs`` and its tables.

    stress: the per-mode summary (stress runs); performance: per-level statistics
    (:func:`mmslib.stats.summarize` of the records); saturation: per mode, the highest rate held
    within the SLO; deploy: what a performance run deployed; levels: the per-level summary
    (:func:`mmslib.summary.summarize_run`: the report's percentiles with intervals, attainment of
    the report's SLO), for every experiment; directory: the :class:`mmslib.rundir.Run`.
    """

    key: str
    row: Dict[str, Any]
    directory: Optional[RunDirectory] = None
    params: Dict[str, Any] = field(default_factory=dict)
    machine: Dict[str, Any] = field(default_factory=dict)
    versions: Dict[str, Any] = field(default_factory=dict)
    stress: pd.DataFrame = field(default_factory=pd.DataFrame)
    performance: pd.DataFrame = field(default_factory=pd.DataFrame)
    saturation: pd.DataFrame = field(default_factory=pd.DataFrame)
    deploy: pd.DataFrame = field(default_factory=pd.DataFrame)
    levels: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def experiment(self) -> str:
        return self.row.get("experiment", "")

    @property
    def records(self) -> pd.DataFrame:
        return self.directory.records if self.directory is not None else pd.DataFrame()

    def __repr__(self) -> str:
        return f"Run({self.key!r}, {self.experiment}, {self.row.get('backend')}/{self.row.get('runtime')}/" \
               f"{self.row.get('workload')})"


@dataclass
class Runs:
    """Every run found, as tidy tables sharing :data:`RUN_KEYS`.

    runs: one row per run (:data:`RUN_COLUMNS`); stress, performance, saturation, deploy: the
    experiments' tables, concatenated; levels: every run's per-level summary; skipped: folders
    not read, with the reason; percentiles and slo_ms: what the report was asked for
    (slo_ms None: each run's own SLO).
    """

    folder: Optional[Path]
    runs: pd.DataFrame
    stress: pd.DataFrame
    performance: pd.DataFrame
    saturation: pd.DataFrame
    deploy: pd.DataFrame
    levels: pd.DataFrame
    skipped: pd.DataFrame
    items: Dict[str, Run] = field(default_factory=dict)
    percentiles: tuple = summ.DEFAULT_PERCENTILES
    slo_ms: Optional[float] = None

    @property
    def empty(self) -> bool:
        return len(self.runs) == 0

    def __len__(self) -> int:
        return len(self.runs)

    def __iter__(self) -> Iterator[Run]:
        return iter(self.items[k] for k in self.runs["run"])

    def get(self, key: Union[str, int]) -> Run:
        """A run by its ``run`` key, its ``run_id``, or its position."""
        if isinstance(key, int):
            return self.items[self.runs["run"].iloc[key]]
        if key in self.items:
            return self.items[key]
        for r in self.items.values():
            if r.row.get("run_id") == key:
                return r
        raise KeyError(f"no run {key!r}; runs: {', '.join(self.items)}")

    def of(self, experiment: str) -> List[Run]:
        return [r for r in self if r.experiment == experiment]

    @property
    def experiments(self) -> List[str]:
        return list(dict.fromkeys(self.runs["experiment"])) if len(self.runs) else []


def _seconds_between(a: Optional[str], b: Optional[str]) -> float:
    try:
        return (datetime.fromisoformat(str(b)) - datetime.fromisoformat(str(a))).total_seconds()
    except (TypeError, ValueError):
        return np.nan


def _with_keys(df: pd.DataFrame, keys: Dict[str, Any], drop: Sequence[str] = ()) -> pd.DataFrame:
    df = df.drop(columns=[c for c in list(drop) + list(keys) if c in df.columns])
    for i, (k, v) in enumerate(keys.items()):
        df.insert(i, k, v)
    return df


def _stress_summary(d: RunDirectory) -> pd.DataFrame:
    """The stress experiment's own per-mode summary; without one (interrupted, older), what the
    step rows say: models deployed, servers and the last measured memory per mode."""
    modes = d.summary_doc.get("modes")
    if isinstance(modes, list) and modes:
        df = pd.DataFrame(modes)
        return df.reindex(columns=list(dict.fromkeys(["mode"] + STRESS_COLUMNS + list(df.columns))))
    steps = d.records
    if not len(steps) or "mode" not in steps:
        return pd.DataFrame()
    rows = []
    for mode, g in steps.groupby("mode", sort=False):
        ok = g[g["ok"].astype(bool)] if "ok" in g else g
        last = ok.dropna(subset=["pss_mib"]).tail(1) if "pss_mib" in ok else ok.tail(0)
        n = len(ok)
        pss = float(last["pss_mib"].iloc[0]) if len(last) else np.nan
        rows.append({"mode": mode, "models_deployed": n,
                     "servers": int(ok["servers"].max()) if "servers" in ok and len(ok) else np.nan,
                     "stop_reason": "not recorded (no summary)", "pss_mib": pss,
                     "pss_per_model_mib": pss / n if n else np.nan})
    df = pd.DataFrame(rows)
    return df.reindex(columns=list(dict.fromkeys(["mode"] + STRESS_COLUMNS + list(df.columns))))


def _performance_tables(d: RunDirectory, slo_ms: Optional[float]):
    p = d.params
    recs = d.records
    levels = d.table("levels")
    if not len(recs) or levels is None or not len(levels):
        return pd.DataFrame(), pd.DataFrame()
    models, hosts = p.get("models"), p.get("hosts") or 1
    s = stats.summarize(recs, levels, n_servers={"traditional": models, "mms": hosts}, n_models=models)
    extra = [c for c in ("server_ms", "queue_ms", "compute_ms", "loadavg_before", "loadavg_after", "error")
             if c in levels.columns]
    if extra and len(s):
        s = s.merge(levels[["mode", "qps", "repeat"] + extra], on=["mode", "qps", "repeat"], how="left")
    slo = slo_ms if slo_ms is not None else d.slo_ms
    sat = stats.saturation(s, slo) if slo is not None and len(s) else pd.DataFrame()
    return s, sat


def read(path: Union[str, Path], key: Optional[str] = None, percentiles=None,
         slo_ms: Optional[float] = None) -> Run:
    """One run directory as a report :class:`Run` (raises :class:`mmslib.rundir.RunFormatError`)."""
    d = RunDirectory.load(path)
    p, m, v, meta = d.params, d.machine, d.versions, d.meta
    exp = d.experiment
    modes = p.get("modes") or []
    qps = p.get("qps")
    row = {
        "run": key or d.path.name, "path": str(d.path), "experiment": exp, "run_id": d.run_id, "status": d.status,
        "format_version": d.format_version, "started": meta.get("started"),
        "duration_s": _seconds_between(meta.get("started"), meta.get("finished")), "output_dir": str(d.path),
        "git_sha": meta.get("git_sha"),
        "backend": p.get("backend", "?"), "runtime": runtime_label(p), "workload": p.get("workload", "?"),
        "device": p.get("device"), "modes": ",".join(modes) if isinstance(modes, list) else str(modes),
        "models": p.get("models"), "hosts": p.get("hosts"),
        "qps": ", ".join(f"{q:g}" for q in qps) if isinstance(qps, list) else "",
        "cluster": cluster_label(p, meta.get("environment")),
        "machine": machine_label(m), "hostname": m.get("hostname"), "cpu_model": m.get("cpu_model"),
        "cpus": m.get("cpus_usable") or m.get("cpu_count"),
        "memory_gib": m["memory_total_bytes"] / 2**30 if m.get("memory_total_bytes") else np.nan,
        "gpu": m.get("gpu") or "", "gpus": gpu_count(m), "versions": versions_label(v, p, exp),
        "mmslib": v.get("mmslib"), "python": v.get("python"),
        "gate": ("" if not isinstance(meta.get("gate"), dict) else
                 "passed" if meta["gate"].get("passed") else f"failed ({len(meta['gate'].get('missed') or [])} levels)"),
    }
    run = Run(key=row["run"], row=row, directory=d, params=p, machine=m, versions=v)
    keys = {k: row[k] for k in RUN_KEYS}
    if exp == "stress":
        run.stress = _with_keys(_stress_summary(d), keys, drop=("backend", "runtime", "workload"))
    elif exp == "performance":
        perf, sat = _performance_tables(d, slo_ms)
        run.performance = _with_keys(perf, {**keys, "models": row["models"], "hosts": row["hosts"]})
        run.saturation = _with_keys(sat, keys)
        run.deploy = _with_keys(pd.DataFrame(d.json("deploy") or []), keys)
    try:
        lv = (d.summarize(percentiles=percentiles, slo_ms=slo_ms if slo_ms is not None else "run")
              if len(d.records) else d.summary)
    except (KeyError, ValueError, TypeError):  # records this report cannot read: the run's own summary
        lv = d.summary
    run.levels = _with_keys(lv, {**keys, "experiment": exp})
    return run


def _concat(frames: List[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=RUN_KEYS)
    with_cols = [f.dropna(axis=1, how="all") if len(frames) > 1 else f for f in frames]
    out = pd.concat(with_cols, ignore_index=True, sort=False)
    return out[[c for c in frames[0].columns if c in out.columns]
               + [c for c in out.columns if c not in frames[0].columns]]


def collect(folder: Union[str, Path, None] = "outputs", runs: Optional[Iterable[Union[str, Path]]] = None,
            percentiles=None, slo_ms: Optional[float] = None) -> Runs:
    """Every run directory under ``folder`` (recursively; a folder holding ``meta.json``) plus the
    run directories listed in ``runs``, read with :func:`read`.

    ``percentiles``: the percentiles the level tables show (default 50, 90, 95, 99, max);
    ``slo_ms``: the latency SLO to judge every run by (None: each run's own). Folders that cannot
    be read (a newer format, a broken meta.json) are listed in ``Runs.skipped`` with the reason.
    A missing folder gives empty Runs. Runs are ordered by start time, then path.
    """
    pcts = summ.parse_percentiles(percentiles)
    if slo_ms is not None:
        from ..values import num as _num
        slo_ms = _num("slo_ms", slo_ms, 0, lo_open=True)
    base = resolve(folder) if folder is not None else None
    dirs: List[Path] = list(find_runs(base)) if base is not None else []
    for r in runs or []:
        p = resolve(r)
        if p not in dirs:
            dirs.append(p)
    items: List[Run] = []
    skipped = []
    for d in dirs:
        try:
            rel = d.relative_to(base).as_posix() if base is not None and d.is_relative_to(base) else str(d)
        except ValueError:
            rel = str(d)
        rel = rel if rel != "." else d.name
        try:
            items.append(read(d, rel, pcts, slo_ms))
        except RunFormatError as e:
            skipped.append({"path": str(d), "reason": str(e)})
        except (OSError, ValueError, KeyError) as e:  # a damaged record file: say which, go on
            skipped.append({"path": str(d), "reason": f"records not readable: {type(e).__name__}: {str(e)[:200]}"})
    items.sort(key=lambda r: (str(r.row.get("started") or ""), r.key))
    table = pd.DataFrame([r.row for r in items], columns=RUN_COLUMNS)
    return Runs(
        folder=base, runs=table,
        stress=_concat([r.stress for r in items]),
        performance=_concat([r.performance for r in items]),
        saturation=_concat([r.saturation for r in items]),
        deploy=_concat([r.deploy for r in items]),
        levels=_concat([r.levels for r in items]),
        skipped=pd.DataFrame(skipped, columns=["path", "reason"]),
        items={r.key: r for r in items}, percentiles=pcts, slo_ms=slo_ms,
    )
