"""Models by family and size: models per host, and cold start vs model size (#23 part 3).

Computed from run directories only (nothing re-measured):

- stress runs (``steps``): each deployed model with its family and artifact bytes (recorded per
  step; a run without them: the workload's declaration for the run's parameters), its load time
  (mms: the V2 load request until the model is ready; traditional: a server's start until ready)
  and the PSS it added (the step's measured PSS minus the one before, when every step was measured);
- coldstart runs (``cycles/<runtime>``): one model loaded and unloaded at a time: load and unload
  time and the PSS the load added;
- performance and traffic runs (``deploy_models``, written by :func:`mmslib.deploy.record`): each
  model their deploys loaded, source ``"<experiment> <mode>"`` (e.g. ``performance mms``), its
  load time (request to ready; loads overlapped ``deploy_concurrency`` at a time) and its facts;
  the PSS one model added is measured once per deploy (``deploy.json``'s
  ``pss_added_per_model_mib``: the growth over the empty hosts divided by the models, the hosts'
  first loads included), given to each of its models but the first ones; unload is not measured.

A host's first model of a family (it imports the family's library) is kept apart (``first``):
the first ``hosts`` loads of each deploy, except in traditional mode, where every load starts a
server of its own.

``models per host`` = a host's memory for models (the run's ``mms_predictor_memory``) / the PSS one
model adds, beside what the run deployed. simple_string (the seed's model: a 700 B config) is the
reference point, with the seed's own published density (~10,000 models on 6 InferenceServices).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Dict, List, Optional

import numpy as np
import pandas as pd

from .collection import Run, Runs

REFERENCE = "simple_string"   # the seed's model
PER_MODEL_COLUMNS = ["run", "experiment", "source", "runtime", "workload", "family", "source_model", "model",
                     "artifact_bytes", "load_ms", "unload_ms", "pss_added_mib", "first", "host_memory_mib",
                     "declared_mib"]
#: the sources whose PSS counts towards models per host: loads into a shared host
MULTI_SOURCES = ("stress mms", "coldstart load/unload", "performance mms", "traffic mms")
KEYS = ["source", "runtime", "workload", "family", "source_model", "artifact_bytes"]


@dataclass
class FamiliesSection:
    """per_model: one row per model load measured; models_per_host and cold_start: per run (or
    source), runtime, family and artifact size; text: the findings in words."""

    per_model: pd.DataFrame
    models_per_host: pd.DataFrame
    cold_start: pd.DataFrame
    text: str


_declared_cache: Dict[str, Any] = {}


def _declared(params: Dict[str, Any]):
    """The workload the run's parameters describe (its declaration), or None when it cannot be
    rebuilt (a repository folder that is gone)."""
    key = json.dumps(params, sort_keys=True, default=str)
    if key not in _declared_cache:
        from ..workloads import WORKLOADS, get_workload
        w = None
        name = params.get("workload")
        if name in WORKLOADS:
            try:
                w = get_workload(name, SimpleNamespace(**params))
            except Exception:  # noqa: BLE001 - a run whose workload cannot be rebuilt here
                w = None
        _declared_cache[key] = w
    return _declared_cache[key]


def _facts(row: Dict[str, Any], params: Dict[str, Any], model: str) -> Dict[str, Any]:
    """family, artifact_bytes, source_model: recorded in the row, else declared."""
    if isinstance(row.get("family"), str) and row.get("family") and pd.notna(row.get("artifact_bytes")):
        return {"family": row["family"], "artifact_bytes": float(row["artifact_bytes"]),
                "source_model": row.get("source_model") if isinstance(row.get("source_model"), str) else ""}
    w = _declared(params)
    if w is None:
        return {"family": str(params.get("workload", "?")), "artifact_bytes": np.nan, "source_model": ""}
    f = w.facts(model)
    return {"family": f["family"], "artifact_bytes": float(f["artifact_bytes"]) or np.nan,
            "source_model": f.get("source_model", "")}


def _declared_mib(params: Dict[str, Any]) -> float:
    """Memory a model declares for admission: the run's ``model_memory``, else the workload's estimate."""
    from ..quantity import parse_memory
    if params.get("model_memory"):
        try:
            return parse_memory(params["model_memory"]) / 2**20
        except (TypeError, ValueError):
            return np.nan
    w = _declared(params)
    return w.memory_estimate_bytes / 2**20 if w is not None else np.nan


def _host_memory_mib(params: Dict[str, Any]) -> float:
    from ..quantity import parse_memory
    try:
        return parse_memory(params.get("mms_predictor_memory")) / 2**20
    except (TypeError, ValueError):
        return np.nan


def _stress_rows(run: Run) -> List[dict]:
    steps = run.records
    if not len(steps) or "mode" not in steps or "seconds" not in steps:
        return []
    p = run.params
    out = []
    for mode, g in steps.groupby("mode", sort=False):
        g = g[g["ok"].astype(bool)] if "ok" in g else g
        g = g.sort_values("step")
        prev_pss, prev_step = np.nan, 0
        for r in g.to_dict("records"):
            added = np.nan
            if r.get("measured") and pd.notna(r.get("pss_mib")):
                if r["step"] - prev_step == 1 and pd.notna(prev_pss):
                    added = float(r["pss_mib"]) - prev_pss
                prev_pss, prev_step = float(r["pss_mib"]), int(r["step"])
            out.append({"run": run.key, "experiment": "stress", "source": f"stress {mode}",
                        "runtime": run.row.get("runtime"), "workload": p.get("workload"),
                        **_facts(r, p, r.get("model", "")), "model": r.get("model", ""),
                        "load_ms": float(r["seconds"]) * 1e3, "unload_ms": np.nan, "pss_added_mib": added,
                        "first": False, "host_memory_mib": _host_memory_mib(p),
                        "declared_mib": _declared_mib(p)})
        # the first model's PSS counts from the empty hosts (mms summary), not from nothing
        first = [o for o in out if o["source"] == f"stress {mode}"][:1]
        hosts = _summary_value(run, mode, "pss_hosts_mib")
        if first and len(g) and pd.notna(hosts) and bool(g.iloc[0].get("measured")) and int(g.iloc[0]["step"]) == 1:
            first[0]["pss_added_mib"] = float(g.iloc[0]["pss_mib"]) - hosts
    return out


def _summary_value(run: Run, mode: str, col: str) -> float:
    s = run.stress
    if not len(s) or col not in s or "mode" not in s:
        return np.nan
    v = s.loc[s["mode"] == mode, col]
    return float(v.iloc[0]) if len(v) and pd.notna(v.iloc[0]) else np.nan


def _coldstart_rows(run: Run) -> List[dict]:
    d = run.directory
    if d is None:
        return []
    p = run.params
    out = []
    for name in d.table_names():
        if not name.startswith("cycles/"):
            continue
        df = d.table(name)
        if df is None or not len(df) or "load_s" not in df:
            continue
        df = df.sort_values("cycle")
        prev_after = np.nan
        for r in df.to_dict("records"):
            ok = bool(r.get("load_ok", True)) and bool(r.get("unload_ok", True))
            added = float(r["pss_loaded_mib"]) - prev_after if pd.notna(prev_after) else np.nan
            prev_after = float(r.get("pss_after_mib", np.nan))
            if not ok:
                continue
            out.append({"run": run.key, "experiment": "coldstart", "source": "coldstart load/unload",
                        "runtime": r.get("runtime") or run.row.get("runtime"), "workload": r.get("workload") or
                        p.get("workload"), **_facts(r, p, r.get("model", "")), "model": r.get("model", ""),
                        "load_ms": float(r["load_s"]) * 1e3, "unload_ms": float(r["unload_s"]) * 1e3,
                        "pss_added_mib": added, "first": False, "host_memory_mib": _host_memory_mib(p),
                        "declared_mib": _declared_mib(p)})
    return out


def _deploy_rows(run: Run) -> List[dict]:
    """A performance or traffic run's ``deploy_models`` (none: a run made before it was recorded)."""
    d = run.directory
    df = d.table("deploy_models") if d is not None else None
    if df is None or not len(df) or not {"mode", "model", "seconds"} <= set(df.columns):
        return []
    p = run.params
    # the memory one model added is measured once per deploy (deploy.json, the mean of its loads)
    added = {(str(i.get("mode")), str(i.get("models"))): i.get("pss_added_per_model_mib", np.nan)
             for i in (d.json("deploy") or []) if isinstance(i, dict)}
    out = []
    for r in df.to_dict("records"):
        if "ok" in r and not bool(r["ok"]):
            continue
        pss = added.get((str(r["mode"]), str(r.get("models", ""))), np.nan)
        out.append({"run": run.key, "experiment": run.experiment, "source": f"{run.experiment} {r['mode']}",
                    "runtime": run.row.get("runtime"), "workload": p.get("workload"),
                    **_facts(r, p, r.get("model", "")), "model": r.get("model", ""),
                    "load_ms": float(r["seconds"]) * 1e3, "unload_ms": np.nan,
                    "pss_added_mib": float(pss) if pss is not None and pd.notna(pss) else np.nan,
                    "first": False, "host_memory_mib": _host_memory_mib(p), "declared_mib": _declared_mib(p),
                    "_deploy": r.get("models", "")})
    return out


def per_model(runs: Runs) -> pd.DataFrame:
    """Every model load the runs measured (stress steps, coldstart cycles, performance and traffic
    deploys), with its family and size."""
    rows: List[dict] = []
    for run in runs:
        if run.experiment == "stress":
            rows += _stress_rows(run)
        elif run.experiment == "coldstart":
            rows += _coldstart_rows(run)
        elif run.experiment in ("performance", "traffic"):
            rows += _deploy_rows(run)
    df = pd.DataFrame(rows, columns=PER_MODEL_COLUMNS + ["_deploy"])
    if len(df):
        df["source_model"] = df["source_model"].fillna("")
        # a host's first model of a family imports its library: those loads are kept apart (per
        # deploy: a traffic run deploys each size on hosts of its own)
        hosts = {r.key: int(r.params.get("hosts") or 1) for r in runs}
        deploy = df["_deploy"].fillna("").astype(str)
        nth = df.assign(_deploy=deploy).groupby(["run", "source", "runtime", "family", "_deploy"],
                                                sort=False, dropna=False).cumcount()
        shared = ~df["source"].str.endswith(" traditional")  # traditional: every load starts a server of its own
        df["first"] = df["first"].astype(bool) | (shared & (nth < df["run"].map(hosts).fillna(1)))
        # a deploy's PSS is one mean over all its loads (first ones included): the first loads'
        # own cost was not measured apart
        df.loc[(deploy != "") & df["first"], "pss_added_mib"] = np.nan
    return df[PER_MODEL_COLUMNS]


def _group(df: pd.DataFrame, by: List[str]):
    return df.groupby(by, sort=False, dropna=False)


def cold_start_vs_size(pm: pd.DataFrame) -> pd.DataFrame:
    """Load (and unload) time per source, runtime, family and artifact size: p50, p90, max over the
    loads, the first load apart; ``reference``: simple_string, the seed's model."""
    cols = KEYS + ["artifact_mib", "loads", "load_ms_p50", "load_ms_p90", "load_ms_max", "unload_ms_p50",
                   "first_load_ms", "pss_added_mib", "first_pss_added_mib", "reference"]
    if not len(pm):
        return pd.DataFrame(columns=cols)
    rows = []
    for key, g in _group(pm, KEYS):
        rest = g[~g["first"].astype(bool)]
        first = g[g["first"].astype(bool)]
        lo = rest["load_ms"].dropna()
        rows.append({**dict(zip(KEYS, key)), "artifact_mib": key[-1] / 2**20 if pd.notna(key[-1]) else np.nan,
                     "loads": int(len(lo)),
                     "load_ms_p50": float(lo.median()) if len(lo) else np.nan,
                     "load_ms_p90": float(lo.quantile(0.9)) if len(lo) else np.nan,
                     "load_ms_max": float(lo.max()) if len(lo) else np.nan,
                     "unload_ms_p50": float(rest["unload_ms"].median()) if rest["unload_ms"].notna().any() else np.nan,
                     "first_load_ms": float(first["load_ms"].median()) if len(first) else np.nan,
                     "first_pss_added_mib": float(first["pss_added_mib"].median())
                     if first["pss_added_mib"].notna().any() else np.nan,
                     "pss_added_mib": float(rest["pss_added_mib"].mean()) if rest["pss_added_mib"].notna().any()
                     else np.nan,
                     "reference": key[2] == REFERENCE})
    return pd.DataFrame(rows, columns=cols).sort_values(["runtime", "family", "artifact_bytes"],
                                                        na_position="last").reset_index(drop=True)


def models_per_host(pm: pd.DataFrame, runs: Optional[Runs] = None, include_seed: bool = True) -> pd.DataFrame:
    """PSS one model adds, per run, runtime, family and size (multi-model loads,
    :data:`MULTI_SOURCES`: stress mms, coldstart, performance / traffic mms deploys), and the
    models a host's memory for models holds at that rate; ``deployed``: what a stress run put on
    its hosts; the seed's published density as a reference row."""
    cols = ["run"] + KEYS + ["artifact_mib", "pss_added_mib", "loads", "host_memory_mib", "fit_by_pss",
                             "declared_mib", "admitted", "models_per_host", "bound_by", "deployed_per_host",
                             "reference"]
    rows = []
    if len(pm):
        multi = pm[pm["source"].isin(MULTI_SOURCES) & ~pm["first"].astype(bool)]
        for key, g in _group(multi, ["run"] + KEYS):
            pss = g["pss_added_mib"].dropna()
            per = float(pss.mean()) if len(pss) else np.nan
            mem = float(g["host_memory_mib"].iloc[0])
            deployed = np.nan
            if runs is not None and key[1] == "stress mms" and key[0] in runs.items:
                run = runs.items[key[0]]
                deployed = _summary_value(run, "mms", "models_deployed") / max(1, int(run.params.get("hosts") or 1))
            declared = float(g["declared_mib"].iloc[0])
            fit = math.floor(mem / per) if per > 0 and pd.notna(mem) else np.nan
            admitted = math.floor(mem / declared) if declared > 0 and pd.notna(mem) else np.nan
            both = [x for x in (fit, admitted) if pd.notna(x)]
            rows.append({**dict(zip(["run"] + KEYS, key)),
                         "artifact_mib": key[-1] / 2**20 if pd.notna(key[-1]) else np.nan,
                         "pss_added_mib": per, "loads": int(len(pss)), "host_memory_mib": mem, "fit_by_pss": fit,
                         "declared_mib": declared, "admitted": admitted,
                         "models_per_host": min(both) if both else np.nan,
                         "bound_by": ("" if not both else "measured PSS" if pd.notna(fit) and fit <= admitted
                                      or pd.isna(admitted) else "declared memory (admission)"),
                         "deployed_per_host": deployed, "reference": key[3] == REFERENCE})
    if include_seed:
        from .. import seed as seedmod
        s = seedmod.seed_stress_summary().set_index(["mode", "quantity"])["value"]
        rows.append({"run": "seed (published)", "source": "seed", "runtime": "triton", "workload": REFERENCE,
                     "family": REFERENCE, "source_model": "", "artifact_bytes": float(seedmod.MODEL_SIZE_BYTES),
                     "artifact_mib": seedmod.MODEL_SIZE_BYTES / 2**20, "pss_added_mib": np.nan, "loads": 0,
                     "host_memory_mib": np.nan, "fit_by_pss": np.nan, "declared_mib": 1.0, "admitted": np.nan,
                     "models_per_host": np.nan, "bound_by": "",
                     "deployed_per_host": float(s[("mms", "models")] / s[("mms", "isvcs")]), "reference": True})
    return pd.DataFrame(rows, columns=cols)


def _label(r) -> str:
    size = r["artifact_mib"]
    s = "" if pd.isna(size) else (f"{size * 2**10:.3g} KiB" if size < 1 else f"{size:.3g} MiB")
    fam = family_label(r["family"]) + (f" ({r['source_model']})" if r.get("source_model") else "")
    return f"{fam} {s}".strip()


def _text(mph: pd.DataFrame, cs: pd.DataFrame) -> str:
    out = []
    m = mph[mph["models_per_host"].notna()]
    if len(m):
        lo, hi = m.loc[m["models_per_host"].idxmin()], m.loc[m["models_per_host"].idxmax()]
        out.append(f"**Models per host** (a host's memory for models over the PSS each model adds, at most "
                   f"over the memory it declares): from "
                   f"{int(lo['models_per_host']):,} ({_label(lo)}, {lo['runtime']}) to {int(hi['models_per_host']):,} "
                   f"({_label(hi)}, {hi['runtime']}).")
        ref = m[m["reference"]]
        if len(ref):
            out.append(f"simple_string, the seed's model, adds {ref['pss_added_mib'].median():.2f} MiB per model "
                       f"({int(ref['models_per_host'].median()):,} per host; the seed published ~10,000 on 6 hosts).")
    c = cs[cs["load_ms_p50"].notna()]
    if len(c):
        lo, hi = c.loc[c["load_ms_p50"].idxmin()], c.loc[c["load_ms_p50"].idxmax()]
        out.append(f"**Cold start** (load p50): from {lo['load_ms_p50']:.0f} ms ({_label(lo)}, {lo['runtime']}, "
                   f"{lo['source']}) to {hi['load_ms_p50']:,.0f} ms ({_label(hi)}, {hi['runtime']}, {hi['source']}).")
        ref = c[c["reference"]]
        if len(ref):
            out.append(f"simple_string loads in {ref['load_ms_p50'].median():.0f} ms (p50 of its rows).")
    return " ".join(out)


def families_section(runs: Runs, include_seed: bool = True) -> FamiliesSection:
    """Models per host by family and size, and cold start vs model size, from ``runs``."""
    pm = per_model(runs)
    cs = cold_start_vs_size(pm)
    mph = models_per_host(pm, runs, include_seed=include_seed)
    return FamiliesSection(per_model=pm, models_per_host=mph, cold_start=cs, text=_text(mph, cs))


# ---------------------------------------------------------------- figures

def _markers(families) -> Dict[str, str]:
    shapes = "osD^vP<>Xh"
    out, i = {}, 0
    for f in families:
        if f == REFERENCE:
            out[f] = "*"
        elif f not in out:
            out[f] = shapes[i % len(shapes)]
            i += 1
    return out


def _size_axis(ax) -> None:
    """x: artifact bytes on a log scale, labelled in B / KiB / MiB / GiB."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    def fmt(x, _pos=None):
        for unit, k in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
            if x >= 2**k:
                return f"{x / 2**k:g} {unit}"
        return f"{x:g} B"
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(LogLocator(base=2, numticks=40))
    ax.xaxis.set_major_formatter(FuncFormatter(fmt))
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda *_: ""))
    ax.set_xlabel("artifact size per model")
    for t in ax.get_xticklabels():
        t.set_rotation(30)


def family_label(family: str) -> str:
    """A family for a legend: MLServer's implementation without its module path."""
    if family.startswith("mlserver:"):
        return "mlserver " + family.split(".")[-1]
    return family


def plot_models_per_host(mph: pd.DataFrame):
    """Models per host against artifact size (log-log), one marker per family, simple_string a star
    and the seed's published density a black star; None when nothing to plot."""
    import matplotlib.pyplot as plt
    d = mph[mph["artifact_bytes"].notna() & (mph["models_per_host"].notna() | mph["deployed_per_host"].notna())]
    if not len(d) or not d["models_per_host"].notna().any():
        return None
    fig, ax = plt.subplots(figsize=(9.5, 4.5))
    mk = _markers(d["family"])
    for (fam, rt), g in d[d["models_per_host"].notna()].groupby(["family", "runtime"], sort=False):
        ax.scatter(g["artifact_bytes"], g["models_per_host"], marker=mk[fam], s=110 if fam == REFERENCE else 40,
                   label=f"{family_label(fam)} ({rt})", zorder=3)
    seed = d[d["source"] == "seed"]
    if len(seed):
        ax.scatter(seed["artifact_bytes"], seed["deployed_per_host"], marker="*", s=180, color="black", zorder=4,
                   label="seed: simple_string,\n~10,000 models / 6 hosts")
    return _finish(fig, ax, "models per host (memory for models / PSS per model)",
                   "Models per host by family and size")


def plot_cold_start(cs: pd.DataFrame):
    """Load time p50 (bars to p90) against artifact size (log-log), one colour per source and
    runtime, one marker per family, simple_string a star; None when nothing to plot."""
    import matplotlib.pyplot as plt
    d = cs[cs["artifact_bytes"].notna() & cs["load_ms_p50"].notna()]
    if not len(d):
        return None
    fig, ax = plt.subplots(figsize=(9.5, 4.5))
    mk = _markers(d["family"])
    for (src, rt, fam), g in d.groupby(["source", "runtime", "family"], sort=False):
        ax.errorbar(g["artifact_bytes"], g["load_ms_p50"],
                    yerr=[np.zeros(len(g)), (g["load_ms_p90"] - g["load_ms_p50"]).clip(lower=0)],
                    fmt=mk[fam], ms=11 if fam == REFERENCE else 6, capsize=2,
                    label=f"{family_label(fam)}: {rt}, {src}")
    return _finish(fig, ax, "load time p50, bar to p90 (ms)",
                   "Cold start vs model size (simple_string: the seed's model)")


def _finish(fig, ax, ylabel: str, title: str):
    """The two figures' common axes: artifact size (log) against a log y, grid, legend outside."""
    _size_axis(ax)
    ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig
