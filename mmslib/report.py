"""The report: every executed experiment notebook in a folder, side by side, beside the seed.

:func:`collect` reads each executed ``stress.ipynb`` / ``performance.ipynb``
(papermill output) under a folder with scrapbook and returns :class:`Runs`,
tidy DataFrames with one set of run keys (``run``, ``run_id``, ``backend``,
``runtime``, ``workload``, ``machine``) on every row.  The functions below turn
them into the report's tables and sentences; ``notebooks/report.ipynb`` only
calls them and displays the results.

Public functions
----------------
collect(folder) -> Runs                  read the executed notebooks
read_run(path) -> Run                    one notebook
stress_side_by_side(runs)                models, memory per model, deploy rate per run and mode
performance_side_by_side(runs)           latency per run, mode and rate, with the mode's saturation rate
performance_tables(runs)                 the seed's table layout per run and mode, with the seed's table
saturation_side_by_side(runs)            highest rate each mode held, per run
with_seed(table_or_runs, kind)           our rows (source="ours") with the seed's (source="seed")
seed_setting(kind)                       the seed's setting in words
differences_in_setting(run)              seed vs this run: where, stack, runtime, model, versions
run_facts(run)                           the facts KServe's benchmark request asks each test to give
run_metadata(run)                        run id, notebook, git sha, machine, versions
headline(runs) -> markdown               how many models, at what cost, at what latency
headline_table(runs)                     the summary table (ours and the seed's)
capacity_section(limits_path, runs)      the planner's predictions for the seed's limits
format_table(df)                         numbers as display strings
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Union

import numpy as np
import pandas as pd

from . import planner, stats
from . import seed as seedmod

__all__ = [
    "Run", "Runs", "CapacitySection", "collect", "read_run", "stress_side_by_side",
    "performance_side_by_side", "performance_tables", "saturation_side_by_side", "with_seed",
    "seed_setting", "differences_in_setting", "run_facts", "run_metadata", "headline",
    "headline_table", "capacity_section", "format_table", "MODEL_SIZE_BYTES", "RUN_KEYS",
]

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENTS = ("stress", "performance")
MODES = ("traditional", "mms")
MODE_LABEL = {"traditional": "traditional", "mms": "multi-model"}
RUN_KEYS = ["run", "run_id", "backend", "runtime", "workload", "machine"]

#: Size of one model's artifact, bytes: simple_string pads its config to the
#: seed's 700 B; bert is the all-MiniLM-L6-v2 ONNX graph (~86 MiB) plus its tokenizer.
MODEL_SIZE_BYTES = {"simple_string": 700, "bert": 87 * 2**20}
MODEL_SIZE_TEXT = {"simple_string": "700 B (the seed's size: config padded to 700 B)",
                   "bert": "~87 MiB (all-MiniLM-L6-v2 ONNX graph + tokenizer)"}
#: Memory a model declares (TrainedModel spec.memory) when ``model_memory`` is None.
MODEL_MEMORY_DEFAULT = {"simple_string": "1Mi", "bert": "128Mi"}
#: Version keys worth showing, in order, per component.
_VERSION_KEYS = {"kserve": ["kserve"], "triton": ["nvidia-pytriton", "tritonclient"], "mlserver": ["mlserver"]}

RUN_COLUMNS = [
    "run", "path", "experiment", "run_id", "status", "started", "duration_s", "output_dir", "git_sha",
    "backend", "runtime", "workload", "device", "modes", "models", "hosts", "qps", "cluster", "machine",
    "hostname", "cpu_model", "cpus", "memory_gib", "gpu", "gpus", "versions", "mmslib", "python",
]

STRESS_COLUMNS = [
    "models_target", "models_deployed", "stop_reason", "stop_detail", "servers", "processes",
    "pss_mib", "rss_mib", "pss_per_model_mib", "reserved_cpu", "reserved_memory_mib",
    "reserved_cpu_per_model", "reserved_memory_mib_per_model", "deploy_rate_per_s", "ready_p50_s",
    "ready_p99_s", "host_start_s", "idle_cpu_cores", "verify_ok",
]
LATENCY_STATS = ["mean", "p50", "p90", "p95", "p99", "max"]


# --------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------

@dataclass
class Run:
    """One executed experiment notebook: its row in ``Runs.runs`` and its tables."""

    key: str
    row: Dict[str, Any]
    params: Dict[str, Any] = field(default_factory=dict)
    machine: Dict[str, Any] = field(default_factory=dict)
    versions: Dict[str, Any] = field(default_factory=dict)
    comparison: Dict[str, Any] = field(default_factory=dict)
    stress: pd.DataFrame = field(default_factory=pd.DataFrame)
    performance: pd.DataFrame = field(default_factory=pd.DataFrame)
    saturation: pd.DataFrame = field(default_factory=pd.DataFrame)
    deploy: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def experiment(self) -> str:
        return self.row.get("experiment", "")

    def __repr__(self) -> str:
        return f"Run({self.key!r}, {self.experiment}, {self.row.get('backend')}/{self.row.get('runtime')}/" \
               f"{self.row.get('workload')})"


@dataclass
class Runs:
    """Every run found under ``folder``, as tidy tables sharing :data:`RUN_KEYS`.

    runs: one row per notebook (:data:`RUN_COLUMNS`); stress: the stress
    summaries (one row per run and mode); performance: the performance
    summaries (one row per run, mode, rate, repeat); saturation: one row per
    run and mode; deploy: the performance runs' deploy rows; skipped: notebooks
    not read, with the reason.
    """

    folder: Path
    runs: pd.DataFrame
    stress: pd.DataFrame
    performance: pd.DataFrame
    saturation: pd.DataFrame
    deploy: pd.DataFrame
    skipped: pd.DataFrame
    items: Dict[str, Run] = field(default_factory=dict)

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


def _df(x) -> pd.DataFrame:
    return x.copy() if isinstance(x, pd.DataFrame) else pd.DataFrame()


def _plain(x):
    """scrapbook gives NotebookNodes for json scraps: plain dicts/lists."""
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


def _machine_label(m: Dict[str, Any]) -> str:
    if not m:
        return "unknown machine"
    cpus = m.get("cpus_usable") or m.get("cpu_count")
    mem = m.get("memory_total_bytes")
    parts = [f"{cpus} CPU" if cpus else "? CPU",
             f"{mem / 2**30:.1f} GiB" if mem else "? GiB"]
    gpus = _gpus(m)
    if gpus:
        parts.append(f"{gpus} GPU")
    return f"{m.get('hostname', '?')} ({', '.join(parts)})"


def _gpus(m: Dict[str, Any]) -> int:
    g = (m or {}).get("gpu") or ""
    return len([ln for ln in str(g).splitlines() if ln.strip()])


def _runtime_label(params: Dict[str, Any]) -> str:
    if params.get("backend") == "kserve":
        return str(params.get("serving_runtime") or params.get("runtime") or "?")
    return str(params.get("runtime") or "?")


def _versions_label(versions: Dict[str, Any], params: Dict[str, Any], experiment: str) -> str:
    keys = ["mmslib"]
    rt = params.get("runtime", "kserve")
    keys += _VERSION_KEYS.get(rt, [rt])
    if params.get("backend") == "kserve" and "kubernetes" not in keys:
        keys.append("kubernetes")
    if params.get("workload") == "bert":
        keys += ["onnxruntime", "torch"]
    if experiment == "performance":
        keys.append("k6")
    keys.append("python")
    seen = []
    for k in keys:
        if k in versions and k not in seen:
            seen.append(k)
    return ", ".join(f"{k} {versions[k]}" for k in seen)


def _git_sha(output_dir: Optional[str]) -> Optional[str]:
    if not output_dir:
        return None
    try:
        return json.loads((Path(output_dir) / "meta.json").read_text()).get("git_sha")
    except (OSError, ValueError):
        return None


def _resolve(path: Union[str, Path]) -> Path:
    """A relative path that does not exist from here is tried from the repository root."""
    p = Path(path)
    if not p.is_absolute() and not p.exists() and (ROOT / p).exists():
        return ROOT / p
    return p


def _read(path: Path, rel: str):
    """(Run, None) or (None, reason)."""
    import scrapbook as sb

    try:
        nb = sb.read_notebook(str(path))
        scraps = nb.scraps
    except Exception as e:  # not a notebook, unreadable, ...
        return None, f"not readable: {type(e).__name__}: {str(e)[:120]}"
    if "experiment" not in scraps:
        return None, "no 'experiment' scrap (not an executed experiment notebook)"
    exp = scraps["experiment"].data
    if exp == "report":
        return None, "a report notebook"
    if exp not in EXPERIMENTS:
        return None, f"experiment {exp!r} is not one of {', '.join(EXPERIMENTS)}"

    def get(name, default=None):
        return scraps[name].data if name in scraps else default

    params = _plain(get("params", {})) or {}
    machine = _plain(get("machine", {})) or {}
    versions = _plain(get("versions", {})) or {}
    pm = nb.metadata.get("papermill", {}) if hasattr(nb, "metadata") else {}
    status = "failed" if pm.get("exception") else "complete"
    output_dir = get("output_dir") or params.get("output_dir")
    modes = params.get("modes") or []
    row = {
        "run": rel, "path": str(path), "experiment": exp, "run_id": get("run_id"), "status": status,
        "started": pm.get("start_time"), "duration_s": pm.get("duration"), "output_dir": output_dir,
        "git_sha": _git_sha(output_dir),
        "backend": params.get("backend", "?"), "runtime": _runtime_label(params),
        "workload": params.get("workload", "?"), "device": params.get("device"),
        "modes": ",".join(modes) if isinstance(modes, list) else str(modes),
        "models": params.get("models"), "hosts": params.get("hosts"),
        "qps": ", ".join(f"{q:g}" for q in params.get("qps", [])) if isinstance(params.get("qps"), list) else "",
        "cluster": "Kubernetes cluster" if params.get("backend") == "kserve" else "one machine",
        "machine": _machine_label(machine),
        "hostname": machine.get("hostname"), "cpu_model": machine.get("cpu_model"),
        "cpus": machine.get("cpus_usable") or machine.get("cpu_count"),
        "memory_gib": machine["memory_total_bytes"] / 2**30 if machine.get("memory_total_bytes") else np.nan,
        "gpu": machine.get("gpu") or "", "gpus": _gpus(machine),
        "versions": _versions_label(versions, params, exp),
        "mmslib": versions.get("mmslib"), "python": versions.get("python"),
    }
    run = Run(key=rel, row=row, params=params, machine=machine, versions=versions,
              comparison=_plain(get("comparison", {})) or {})
    keys = {k: row[k] for k in RUN_KEYS}
    if exp == "stress":
        run.stress = _with_keys(_df(get("stress_summary")), keys, drop=("backend", "runtime", "workload"))
    else:
        run.performance = _with_keys(_df(get("perf_summary")), {**keys, "models": row["models"], "hosts": row["hosts"]})
        run.saturation = _with_keys(_df(get("saturation")), keys)
        run.deploy = _with_keys(_df(get("deploy")), keys)
    return run, None


def _with_keys(df: pd.DataFrame, keys: Dict[str, Any], drop: Sequence[str] = ()) -> pd.DataFrame:
    df = df.drop(columns=[c for c in list(drop) + list(keys) if c in df.columns])
    for i, (k, v) in enumerate(keys.items()):
        df.insert(i, k, v)
    return df


def read_run(path: Union[str, Path]) -> Run:
    """One executed experiment notebook as a :class:`Run` (raises ValueError if it is not one)."""
    p = Path(path)
    run, why = _read(p, p.stem)
    if run is None:
        raise ValueError(f"{p}: {why}")
    return run


def _concat(frames: List[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=RUN_KEYS)
    with_cols = [f.dropna(axis=1, how="all") if len(frames) > 1 else f for f in frames]
    out = pd.concat(with_cols, ignore_index=True, sort=False)
    return out[[c for c in frames[0].columns if c in out.columns]
               + [c for c in out.columns if c not in frames[0].columns]]


def collect(folder: Union[str, Path] = "outputs") -> Runs:
    """Read every executed experiment notebook under ``folder`` (recursively).

    Skipped (listed in ``Runs.skipped``): report notebooks, notebooks without
    the ``experiment`` scrap (not executed, or not an experiment), unreadable
    files and ``.ipynb_checkpoints``.  A missing folder gives empty Runs.
    Runs are ordered by start time, then path.
    """
    folder = _resolve(folder)
    items: List[Run] = []
    skipped = []
    paths = sorted(folder.rglob("*.ipynb")) if folder.is_dir() else []
    for p in paths:
        if ".ipynb_checkpoints" in p.parts:
            continue
        rel = p.relative_to(folder).with_suffix("").as_posix()
        run, why = _read(p, rel)
        if run is None:
            skipped.append({"path": str(p), "reason": why})
        else:
            items.append(run)
    items.sort(key=lambda r: (str(r.row.get("started") or ""), r.key))
    runs = pd.DataFrame([r.row for r in items], columns=RUN_COLUMNS)
    return Runs(
        folder=folder, runs=runs,
        stress=_concat([r.stress for r in items]),
        performance=_concat([r.performance for r in items]),
        saturation=_concat([r.saturation for r in items]),
        deploy=_concat([r.deploy for r in items]),
        skipped=pd.DataFrame(skipped, columns=["path", "reason"]),
        items={r.key: r for r in items},
    )


# --------------------------------------------------------------------------
# Side by side
# --------------------------------------------------------------------------

def _mode_order(s: pd.Series) -> pd.Series:
    return s.map({m: i for i, m in enumerate(MODES)}).fillna(len(MODES))


def stress_side_by_side(runs: Runs) -> pd.DataFrame:
    """One row per stress run and mode: models deployed, what stopped it, servers,
    processes, measured memory (total and per model), reserved CPU/memory (total
    and per model), deploy rate and time to ready, with ``mms_over_traditional``
    (models, same run) on the mms rows.  Keys: :data:`RUN_KEYS`."""
    df = runs.stress
    cols = RUN_KEYS + ["mode"] + STRESS_COLUMNS + ["mms_over_traditional"]
    if not len(df):
        return pd.DataFrame(columns=cols)
    out = df[[c for c in RUN_KEYS + ["mode"] + STRESS_COLUMNS if c in df.columns]].copy()
    ratio = {}
    for run, g in df.groupby("run", sort=False):
        m = g.set_index("mode")["models_deployed"]
        if {"traditional", "mms"} <= set(m.index) and m["traditional"]:
            ratio[run] = float(m["mms"]) / float(m["traditional"])
    out["mms_over_traditional"] = [ratio.get(r) if mode == "mms" else np.nan
                                   for r, mode in zip(out["run"], out["mode"])]
    order = {r: i for i, r in enumerate(runs.runs["run"])}
    out = out.assign(_r=out["run"].map(order), _m=_mode_order(out["mode"]))
    return out.sort_values(["_r", "_m"]).drop(columns=["_r", "_m"]).reset_index(drop=True)


def _aggregate(perf: pd.DataFrame) -> pd.DataFrame:
    """Median over repeats per (run, mode, qps); one repeat passes through."""
    if not len(perf):
        return perf
    keys = ["run", "mode", "qps"]
    if "repeat" in perf and perf.groupby(keys).size().max() > 1:
        agg = stats.aggregate_repeats(perf, keys=keys)
        extra = [c for c in ("server_ms", "compute_ms", "queue_ms") if c in perf.columns]
        if extra:
            agg = agg.merge(perf.groupby(keys)[extra].median().reset_index(), on=keys, how="left")
        meta = perf.drop_duplicates("run").set_index("run")
        for k in reversed([c for c in RUN_KEYS + ["models", "hosts"] if c != "run" and c in perf.columns]):
            agg.insert(1, k, agg["run"].map(meta[k]))
        if "errors_total" in agg:
            agg["errors"] = agg["errors_total"]
        return agg
    out = perf.copy()
    out["n_repeats"] = 1
    return out


def performance_side_by_side(runs: Runs) -> pd.DataFrame:
    """One row per performance run, mode and client rate (median over repeats):
    rates per InferenceService and per model, latency statistics (ms), requests,
    achieved rate, errors, validity, server-side time, and ``max_ok_qps`` - the
    highest rate the mode held in that run (saturation)."""
    base = ["mode", "qps", "qps_per_isvc", "qps_per_model", *LATENCY_STATS, "n", "achieved_qps", "errors",
            "valid", "few_samples", "n_repeats", "server_ms"]
    cols = RUN_KEYS + ["models", "hosts"] + base + ["max_ok_qps"]
    perf = runs.performance
    if not len(perf):
        return pd.DataFrame(columns=cols)
    out = _aggregate(perf)
    out = out[[c for c in cols if c in out.columns and c != "max_ok_qps"]].copy()
    sat = runs.saturation
    if len(sat) and "max_ok_qps" in sat:
        out = out.merge(sat[["run", "mode", "max_ok_qps"]], on=["run", "mode"], how="left")
    else:
        out["max_ok_qps"] = np.nan
    order = {r: i for i, r in enumerate(runs.runs["run"])}
    out = out.assign(_r=out["run"].map(order), _m=_mode_order(out["mode"]))
    return out.sort_values(["_r", "_m", "qps"]).drop(columns=["_r", "_m"]).reset_index(drop=True)


def saturation_side_by_side(runs: Runs) -> pd.DataFrame:
    """One row per performance run and mode: the highest rate held (valid, no errors,
    p99 within the SLO), the first failing rate and why, the SLO."""
    cols = RUN_KEYS + ["mode", "max_ok_qps", "first_fail_qps", "fail_reason", "slo_p99_ms", "n_levels"]
    sat = runs.saturation
    if not len(sat):
        return pd.DataFrame(columns=cols)
    out = sat[[c for c in cols if c in sat.columns]].copy()
    order = {r: i for i, r in enumerate(runs.runs["run"])}
    out = out.assign(_r=out["run"].map(order), _m=_mode_order(out["mode"]))
    return out.sort_values(["_r", "_m"]).drop(columns=["_r", "_m"]).reset_index(drop=True)


def performance_tables(runs: Runs, include_seed: bool = True) -> List[Dict[str, Any]]:
    """Per performance run and mode: ``{"run", "mode", "title", "ours", "seed",
    "seed_title"}`` where ``ours`` is :func:`mmslib.stats.seed_table` of the run
    (the seed's layout, ms) and ``seed`` the seed's table for the same workload
    and mode in the same layout (None without one, or when ``include_seed`` is
    false)."""
    out = []
    for run in runs.of("performance"):
        perf = run.performance
        if not len(perf):
            continue
        p = run.params
        for mode in [m for m in MODES if m in set(perf["mode"])] + sorted(set(perf["mode"]) - set(MODES)):
            n = p.get("models")
            layout = (f"{n} single-model servers" if mode == "traditional"
                      else f"{p.get('hosts')} server(s) holding {n} models")
            title = (f"{run.key}: {MODE_LABEL.get(mode, mode)}, {layout} - {run.row['workload']}, "
                     f"{run.row['backend']}/{run.row['runtime']}, {run.row['machine']}")
            seed_t, seed_title = None, None
            if include_seed and run.row["workload"] in ("simple_string", "bert") and mode in MODES:
                seed_t = _seed_layout(seedmod.seed_latency(run.row["workload"], mode), mode)
                env = seedmod.seed_environment()["performance_test"]["layout"][mode]
                seed_title = (f"seed: {MODE_LABEL[mode]}, {env['isvcs']} InferenceService(s)"
                              + (f" and {env['trained_models']} TrainedModels" if env["trained_models"] else "")
                              + f" - {run.row['workload']} (ms)")
            out.append({"run": run.key, "mode": mode, "title": title, "ours": stats.seed_table(perf, mode),
                        "seed": seed_t, "seed_title": seed_title})
    return out


def _seed_layout(df: pd.DataFrame, mode: str) -> pd.DataFrame:
    t = pd.DataFrame({"Client side QPS": df["client_qps"].to_numpy(),
                      "QPS per InferenceService": df["qps_per_isvc"].to_numpy()})
    if mode == "mms":
        t["QPS per TrainedModel"] = df["qps_per_model"].to_numpy()
    for s in LATENCY_STATS:
        t[s] = df[s].to_numpy()
    return t


# --------------------------------------------------------------------------
# The seed beside ours
# --------------------------------------------------------------------------

def seed_setting(kind: str = "stress") -> Dict[str, str]:
    """The seed's setting in words: ``{"setting", "versions", "machine", "runtime"}``."""
    env = seedmod.seed_environment()
    lim = seedmod.seed_cluster_limits()
    versions = f"kfserving {env['kfserving']}, knative {env['knative']}, istio {env['istio']}"
    cluster = (f"Kubernetes cluster, {lim['nodes']} worker nodes (<= {lim['max_pods_per_node']} pods, "
               f"<= {lim['memory_per_node']} memory each)")
    if kind == "stress":
        s = env["stress_test"]
        spec = (f"queue-proxy {s['queue_proxy']['cpu']} CPU/{s['queue_proxy']['memory']}; predictor "
                f"{s['traditional_predictor']['cpu']}/{s['traditional_predictor']['memory']} (traditional), "
                f"{s['mms_predictor']['cpu']} CPU/{s['mms_predictor']['memory']} (MMS)")
    else:
        s = env["performance_test"]
        spec = (f"predictor 1 CPU/16GB (+1 GPU for bert), queue-proxy 1 CPU/500Mi; "
                f"{s['load_generator']}, 60 s per rate")
    return {"setting": f"seed: {env['model_server']} on KServe ({cluster}); {spec}",
            "versions": versions, "machine": cluster, "runtime": env["model_server"]}


def _ours_setting(df: pd.DataFrame, runs: Optional[Runs]) -> pd.DataFrame:
    df = df.copy()
    df.insert(0, "source", "ours")
    labels = {}
    versions = {}
    if runs is not None:
        for r in runs:
            labels[r.key] = (f"{r.row['backend']} backend, {r.row['runtime']} runtime, {r.row['cluster']}: "
                             f"{r.row['machine']}")
            versions[r.key] = r.row["versions"]
    if "run" in df:
        df.insert(1, "setting", df["run"].map(labels).fillna(""))
        df.insert(2, "versions", df["run"].map(versions).fillna(""))
    return df


def _seed_stress_rows() -> pd.DataFrame:
    s = seedmod.seed_stress_summary().set_index(["mode", "quantity"])["value"]
    specs = planner.seed_specs()
    rows = []
    for mode, published_mem in (("traditional", "211 GB"), ("mms", "63 GB")):
        models = s[(mode, "models")]
        isvcs = s[(mode, "isvcs")]
        spec = specs[mode].isvc
        mem_mib = spec.memory * isvcs / planner.MiB
        cpu = float(spec.cpu) * isvcs
        rows.append({
            "run": "seed", "run_id": "", "backend": "kserve", "runtime": "Triton", "workload": "simple_string",
            "machine": "6 worker nodes", "mode": mode, "models_target": np.nan, "models_deployed": models,
            "stop_reason": "not published" if mode == "mms" else "not published (planner: CPU)",
            "stop_detail": "", "servers": isvcs, "processes": isvcs,
            "pss_mib": np.nan, "rss_mib": np.nan, "pss_per_model_mib": np.nan,
            "reserved_cpu": cpu, "reserved_memory_mib": mem_mib,
            "reserved_cpu_per_model": cpu / models, "reserved_memory_mib_per_model": mem_mib / models,
            "deploy_rate_per_s": np.nan, "ready_p50_s": np.nan, "ready_p99_s": np.nan,
            "host_start_s": np.nan, "idle_cpu_cores": np.nan, "verify_ok": None,
            "mms_over_traditional": (s[("mms", "models")] / s[("traditional", "models")]) if mode == "mms" else np.nan,
            "published": (f"{int(models):,} {'InferenceServices' if mode == 'traditional' else 'models on 6 ISVCs'}, "
                          f"{s[(mode, 'cpu_total')]:g} CPU, {published_mem}"),
        })
    return pd.DataFrame(rows).astype({"verify_ok": object})


def _seed_saturation_rows() -> pd.DataFrame:
    sat = seedmod.seed_saturation()
    rows = []
    for r in sat.itertuples():
        if r.behaviour == "starts_scaling_at":
            t = seedmod.seed_latency(r.workload, r.mode)["client_qps"]
            below = t[t < r.client_qps]
            max_ok, first_fail = (float(below.max()) if len(below) else np.nan), float(r.client_qps)
            reason = f"starts to scale up at {r.client_qps:g} QPS"
        else:
            max_ok, first_fail, reason = float(r.client_qps), np.nan, f"handles up to {r.client_qps:g} QPS without scaling"
        rows.append({"run": "seed", "run_id": "", "backend": "kserve", "runtime": "Triton", "workload": r.workload,
                     "machine": "6 worker nodes", "mode": r.mode, "max_ok_qps": max_ok, "first_fail_qps": first_fail,
                     "fail_reason": reason, "slo_p99_ms": np.nan, "n_levels": np.nan, "published": r.published})
    return pd.DataFrame(rows)


def _seed_latency_rows(workloads: Optional[Sequence[str]]) -> pd.DataFrame:
    lat = seedmod.seed_latency()
    if workloads:
        lat = lat[lat["workload"].isin(list(workloads))]
    sat = _seed_saturation_rows().set_index(["workload", "mode"])["max_ok_qps"]
    out = pd.DataFrame({
        "run": "seed", "run_id": "", "backend": "kserve", "runtime": "Triton", "workload": lat["workload"],
        "machine": "6 worker nodes", "models": 5, "hosts": np.where(lat["mode"] == "mms", 1, np.nan),
        "mode": lat["mode"], "qps": lat["client_qps"], "qps_per_isvc": lat["qps_per_isvc"],
        "qps_per_model": lat["qps_per_model"], **{s: lat[s] for s in LATENCY_STATS},
    })
    out["max_ok_qps"] = [sat.get((w, m), np.nan) for w, m in zip(out["workload"], out["mode"])]
    return out.reset_index(drop=True)


def with_seed(table: Union[Runs, pd.DataFrame], kind: str = "latency", runs: Optional[Runs] = None) -> pd.DataFrame:
    """Our rows (``source="ours"``, labelled with backend/runtime/machine and versions)
    followed by the seed's published rows (``source="seed"``, labelled with its setting:
    kfserving 0.5.1, Triton, 6 worker nodes, ...), same columns.

    ``kind``: ``"stress"`` (:func:`stress_side_by_side`; the seed's 352 ISVCs and ~10K
    models on 6 ISVCs, reserved CPU/memory computed from its specs, and its words in
    ``published``), ``"latency"`` (:func:`performance_side_by_side`; the seed's four
    tables, restricted to the workloads we ran when we ran any) or ``"saturation"``
    (:func:`saturation_side_by_side`; the seed's "up to ... without scaling").
    ``table`` is a :class:`Runs` (the side-by-side table is computed) or such a table
    (pass ``runs`` too to label our rows).
    """
    if kind not in ("stress", "latency", "saturation"):
        raise ValueError(f"kind must be 'stress', 'latency' or 'saturation', got {kind!r}")
    if isinstance(table, Runs):
        runs = table
        table = {"stress": stress_side_by_side, "latency": performance_side_by_side,
                 "saturation": saturation_side_by_side}[kind](runs)
    ours = _ours_setting(table, runs)
    if kind == "stress":
        seed = _seed_stress_rows()
    elif kind == "saturation":
        seed = _seed_saturation_rows()
        if len(table) and "workload" in table:
            seed = seed[seed["workload"].isin(set(table["workload"]))]
    else:
        seed = _seed_latency_rows(sorted(set(table["workload"])) if len(table) and "workload" in table else None)
    s = seed_setting("stress" if kind == "stress" else "performance")
    seed = seed.copy()
    seed.insert(0, "source", "seed")
    seed.insert(1, "setting", s["setting"])
    seed.insert(2, "versions", s["versions"])
    frames = [f for f in (ours, seed) if len(f)]
    if not frames:
        return ours
    out = pd.concat(frames, ignore_index=True, sort=False)
    first = list(ours.columns) if len(ours.columns) else list(seed.columns)
    out = out[[c for c in first if c in out.columns] + [c for c in out.columns if c not in first]]
    return _int_counts(out, ("models_target", "models_deployed", "servers", "processes", "models", "hosts", "n",
                             "errors", "n_levels", "n_repeats"))


def _int_counts(df: pd.DataFrame, cols: Sequence[str]) -> pd.DataFrame:
    """Count columns made float by NaN in a concat, back to nullable integers."""
    for c in cols:
        if c in df and df[c].dtype.kind == "f":
            v = df[c].dropna()
            if (v == np.floor(v)).all():
                df[c] = df[c].astype("Int64")
    return df


# --------------------------------------------------------------------------
# One run: setting, facts, metadata
# --------------------------------------------------------------------------

def _as_run(run: Union[Run, str, Path], runs: Optional[Runs] = None) -> Run:
    if isinstance(run, Run):
        return run
    if runs is not None:
        return runs.get(run)
    return read_run(run)


def _fmt(x, nd: int = 1) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if isinstance(x, (int, np.integer)) or (isinstance(x, float) and x.is_integer() and abs(x) >= 1):
        return f"{int(x):,}"
    return f"{x:,.{nd}f}"


def _model_memory(params: Dict[str, Any]) -> str:
    return params.get("model_memory") or MODEL_MEMORY_DEFAULT.get(params.get("workload"), "?")


def _workload_text(params: Dict[str, Any]) -> str:
    w = params.get("workload")
    if w == "bert":
        dev = params.get("device", "auto")
        return f"bert: all-MiniLM-L6-v2 embeddings (ONNX Runtime on CPU / PyTorch on CUDA; device {dev}), " \
               f"model {MODEL_SIZE_TEXT['bert']}"
    if w == "simple_string":
        return f"simple_string: Triton's example semantics (sum/difference of strings), {MODEL_SIZE_TEXT['simple_string']}"
    return str(w)


def differences_in_setting(run: Union[Run, str, Path]) -> pd.DataFrame:
    """Seed vs this run, a row per aspect: where it ran (cluster vs one machine), the
    serving stack, the model server (runtime), the model, layouts and specs, the stop
    rule or load generator, and the versions.  Columns: aspect, seed, ours."""
    run = _as_run(run)
    p, m, v, row = run.params, run.machine, run.versions, run.row
    env = seedmod.seed_environment()
    kind = "stress" if run.experiment == "stress" else "performance"
    seed = seed_setting(kind)
    local = p.get("backend") != "kserve"
    where_ours = (f"one machine, {row['machine']}: {m.get('cpu_model', '?')}, "
                  f"{'GPU ' + str(m.get('gpu')).splitlines()[0] if _gpus(m) else 'no GPU'}"
                  if local else f"Kubernetes cluster (size not recorded), namespace {p.get('namespace')}; "
                                f"client on {row['machine']}")
    stack_ours = ("no Kubernetes: one process per server on loopback (mmslib local backend); "
                  "no queue-proxy, ingress or etcd" if local
                  else f"KServe on Kubernetes, ServingRuntime {p.get('serving_runtime')}, "
                       f"MMS engine {p.get('mms_engine')}")
    rt = p.get("runtime", "?")
    rt_versions = ", ".join(f"{k} {v[k]}" for k in _VERSION_KEYS.get(rt, [rt]) if k in v)
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
        ("serving stack", f"KServe (kfserving) serverless: knative + istio, queue-proxy sidecar per pod",
         stack_ours),
        ("model server", env["model_server"], runtime_ours),
        ("model", seed_model, _workload_text(p)),
        ("multi-model layout", seed_mms, f"{p.get('hosts')} host server(s) holding the models"
                                         f" (TrainedModel-like load/unload, declared memory {_model_memory(p)})"),
        ("specs (requests)", seed_specs, specs_ours),
        rule,
        ("versions", seed["versions"] + ", Triton (version not published)", row["versions"]),
    ]
    return pd.DataFrame(rows, columns=["aspect", "seed", "ours"])


def _spec_reserved(p: Dict[str, Any], mode: str, servers) -> Dict[str, float]:
    from .resources import ServerSpec, reserved
    pre = "traditional" if mode == "traditional" else "mms"
    try:
        spec = ServerSpec.from_params(p.get(f"{pre}_predictor_cpu", "0"), p.get(f"{pre}_predictor_memory", "0"),
                                      p.get("sidecar_cpu"), p.get("sidecar_memory"))
        return reserved(spec, int(servers))
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
    if run.params.get("backend") == "kserve":
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
    local = p.get("backend") != "kserve"
    mem_gib = m.get("memory_total_bytes", 0) / 2**30 if m.get("memory_total_bytes") else np.nan
    gpus = _gpus(m)

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

    size = MODEL_SIZE_BYTES.get(p.get("workload"))
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
         MODEL_SIZE_TEXT.get(p.get("workload"), "unknown workload")),
        ("size of an InferenceService (MiB PSS per server)", per_server("pss_mib"), "measured memory / servers"),
        ("reserved memory per InferenceService (MiB)", per_server("reserved_memory_mib"), "from the specs"),
        ("declared memory per model", same(_model_memory(p)), "TrainedModel spec.memory (admission)"),
        ("assumptions", same(f"{len(assumptions)} listed in the note"), " ".join(assumptions)),
    ]
    out = pd.DataFrame([{"fact": f, **vals, "note": note} for f, vals, note in rows], columns=["fact", *modes, "note"])
    return out.astype({md: object for md in modes})


def row_cluster(run: Run) -> str:
    if run.params.get("backend") == "kserve":
        return f"Kubernetes cluster (client {run.row['machine']})"
    return f"one machine: {run.row['machine']}"


def _assumptions(run: Run) -> List[str]:
    p = run.params
    local = p.get("backend") != "kserve"
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
    out.append(f"Each model declares {_model_memory(p)} (TrainedModel memory) for admission on its host.")
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


# --------------------------------------------------------------------------
# Headline
# --------------------------------------------------------------------------

def _primary(runs: Runs, experiment: str) -> Optional[Run]:
    """The run the headline speaks of: both modes measured, the largest, then the latest."""
    cands = [r for r in runs.of(experiment)]
    if experiment == "stress":
        cands = [r for r in cands if len(r.stress)]
        score = lambda r: (len(set(r.stress["mode"]) & set(MODES)), r.row["status"] == "complete",
                           int(r.params.get("models") or 0), str(r.row.get("started") or ""))
    else:
        cands = [r for r in cands if len(r.performance)]
        score = lambda r: (len(set(r.performance["mode"]) & set(MODES)), r.row["status"] == "complete",
                           float(r.performance["qps"].max()), float(r.params.get("duration_s") or 0),
                           str(r.row.get("started") or ""))
    return max(cands, key=score) if cands else None


def _seed_point(workload: str, q: float) -> Optional[float]:
    """The seed's client rate nearest ``q`` (log scale) that both seed modes measured."""
    lat = seedmod.seed_latency(workload)
    common = sorted(set(lat[lat["mode"] == "traditional"]["client_qps"]) & set(lat[lat["mode"] == "mms"]["client_qps"]))
    if not common:
        return None
    return min(common, key=lambda c: abs(math.log(c) - math.log(q)))


def _latency_point(run: Run):
    """(rate, {mode: row}) at the highest rate both modes ran validly (else the highest both ran)."""
    agg = _aggregate(run.performance)
    by = {m: g.set_index("qps") for m, g in agg.groupby("mode")}
    modes = [m for m in MODES if m in by]
    if not modes:
        return None, {}
    rates = set.intersection(*[set(by[m].index) for m in modes])
    valid = [q for q in rates if all(bool(by[m].loc[q, "valid"]) for m in modes)]
    pick = max(valid) if valid else (max(rates) if rates else None)
    if pick is None:
        return None, {}
    return pick, {m: by[m].loc[pick] for m in modes}


def _ms(x) -> str:
    if x is None or pd.isna(x):
        return "n/a"
    return f"{x:.2f}" if x < 100 else f"{x:,.0f}"


def headline(runs: Runs) -> str:
    """3-6 sentences answering: how many models, at what cost, at what latency, traditional
    vs multi-model - computed from the primary stress and performance runs (both modes, the
    largest, then the latest) with the seed's figures beside them."""
    if runs.empty:
        return (f"**No runs found.** No executed stress or performance notebook was found in "
                f"`{runs.folder}`. Run `notebooks/stress.ipynb` and `notebooks/performance.ipynb` with "
                f"papermill, writing the executed notebooks into that folder, then run this report again. "
                f"The seed's published figures are shown below on their own.")
    out = []
    st, pf = _primary(runs, "stress"), _primary(runs, "performance")
    if st is not None:
        s = st.stress.set_index("mode")
        where = (f"On {st.row['machine']}, with the {st.row['backend']} backend, the {st.row['runtime']} runtime "
                 f"and {st.row['workload']} models")
        if {"traditional", "mms"} <= set(s.index):
            t, m = s.loc["traditional"], s.loc["mms"]
            ratio = (f"{m['models_deployed'] / t['models_deployed']:,.1f}x" if t["models_deployed"] else "n/a")
            out.append(
                f"{where}, multi-model serving deployed **{int(m['models_deployed']):,} models** on "
                f"{int(m['servers'])} server(s) against **{int(t['models_deployed']):,}** with one server per "
                f"model ({ratio}; stopped by *{t['stop_reason']}* vs *{m['stop_reason']}*), where the seed "
                f"deployed ~10,000 models on 6 InferenceServices against 352 (28x) on a 6-node cluster.")
            if t["pss_per_model_mib"] and m["pss_per_model_mib"] and not pd.isna(m["pss_per_model_mib"]):
                out.append(
                    f"The cost per model was {_fmt(t['pss_per_model_mib'], 1)} MiB of measured memory (PSS) "
                    f"traditional vs {_fmt(m['pss_per_model_mib'], 2)} MiB multi-model "
                    f"({t['pss_per_model_mib'] / m['pss_per_model_mib']:,.0f}x less), and the seed's Kubernetes "
                    f"requests would reserve {_fmt(t['reserved_cpu'])} CPU / {_fmt(t['reserved_memory_mib'], 0)} MiB "
                    f"vs {_fmt(m['reserved_cpu'])} CPU / {_fmt(m['reserved_memory_mib'], 0)} MiB "
                    f"(seed: 387 CPU / 211 GB vs 66 CPU / 63 GB).")
        else:
            for mode, r in s.iterrows():
                out.append(f"{where}, {MODE_LABEL.get(mode, mode)} serving deployed "
                           f"**{int(r['models_deployed']):,} models** on {int(r['servers'])} server(s) "
                           f"({_fmt(r['pss_per_model_mib'], 2)} MiB PSS per model, stopped by *{r['stop_reason']}*).")
    if pf is not None:
        q, rows = _latency_point(pf)
        w = pf.row["workload"]
        if q is not None and {"traditional", "mms"} <= set(rows):
            t, m = rows["traditional"], rows["mms"]
            sent = (f"At {q:g} client QPS ({w}, {pf.params.get('models')} models; {pf.row['runtime']} runtime), "
                    f"p50/p99 latency was {_ms(t['p50'])}/{_ms(t['p99'])} ms traditional vs "
                    f"{_ms(m['p50'])}/{_ms(m['p99'])} ms multi-model")
            sq = _seed_point(w, q) if w in ("simple_string", "bert") else None
            if sq is not None:
                lat = seedmod.seed_latency(w).set_index(["mode", "client_qps"])
                sent += (f" (seed at {sq:g} QPS: {_ms(lat.loc[('traditional', sq), 'p50'])}/"
                         f"{_ms(lat.loc[('traditional', sq), 'p99'])} vs {_ms(lat.loc[('mms', sq), 'p50'])}/"
                         f"{_ms(lat.loc[('mms', sq), 'p99'])} ms)")
            out.append(sent + ".")
        elif q is not None:
            for mode, r in rows.items():
                out.append(f"At {q:g} client QPS ({w}), {MODE_LABEL.get(mode, mode)} serving had p50/p99 "
                           f"{_ms(r['p50'])}/{_ms(r['p99'])} ms.")
        sat = pf.saturation.set_index("mode") if len(pf.saturation) else pd.DataFrame()
        if {"traditional", "mms"} <= set(sat.index):
            def held(mode):
                r = sat.loc[mode]
                if pd.isna(r["max_ok_qps"]):
                    return "no tested rate"
                return (f"at least {r['max_ok_qps']:g} QPS" if pd.isna(r["first_fail_qps"])
                        else f"{r['max_ok_qps']:g} QPS")
            seed_sat = {"simple_string": "2,500 QPS traditional without scaling vs multi-model scaling up at 500",
                        "bert": "200 QPS traditional vs 40 multi-model, without scaling"}.get(w)
            out.append(f"Within p99 <= {sat['slo_p99_ms'].iloc[0]:g} ms with no errors, traditional serving held "
                       f"{held('traditional')} and multi-model {held('mms')}"
                       + (f" (seed: {seed_sat})." if seed_sat else "."))
    n_other = len(runs) - len([r for r in (st, pf) if r is not None])
    local = (runs.runs["backend"] != "kserve").any()
    tail = []
    if local:
        tail.append("these are one-machine measurements (server processes on loopback, not pods on a cluster): "
                    "reserved figures are computed from the specs and measured memory is process PSS")
    if n_other > 0:
        tail.append(f"{n_other} more run(s) are in the tables below")
    if tail:
        out.append(tail[0][0].upper() + tail[0][1:] + ("; " + tail[1] if len(tail) > 1 else "") + ".")
    if not out:
        out.append(f"{len(runs)} run(s) were found but none holds a stress or performance summary.")
    return " ".join(out)


HEADLINE_ROWS = [
    "models deployed", "InferenceServices (servers)", "pods (processes)", "measured memory per model (MiB PSS)",
    "reserved CPU per model", "reserved memory per model (MiB)", "latency compared at (client QPS)",
    "p50 latency (ms)", "p99 latency (ms)", "highest rate held (client QPS)",
]


def headline_table(runs: Runs, include_seed: bool = True) -> pd.DataFrame:
    """The summary table: a row per quantity of :data:`HEADLINE_ROWS`, columns
    ``traditional`` and ``multi-model`` (the primary stress and performance runs) and,
    with ``include_seed``, ``seed traditional`` and ``seed multi-model``.  All values
    are floats (NaN: not measured / not published)."""
    cols = ["traditional", "multi-model"] + (["seed traditional", "seed multi-model"] if include_seed else [])
    t = pd.DataFrame(np.nan, index=pd.Index(HEADLINE_ROWS, name="quantity"), columns=cols, dtype=float)
    st, pf = _primary(runs, "stress"), _primary(runs, "performance")
    if st is not None:
        s = st.stress.set_index("mode")
        for mode in MODES:
            if mode not in s.index:
                continue
            r, c = s.loc[mode], MODE_LABEL[mode]
            t.loc["models deployed", c] = r.get("models_deployed")
            t.loc["InferenceServices (servers)", c] = r.get("servers")
            t.loc["pods (processes)", c] = r.get("processes")
            t.loc["measured memory per model (MiB PSS)", c] = r.get("pss_per_model_mib")
            t.loc["reserved CPU per model", c] = r.get("reserved_cpu_per_model")
            t.loc["reserved memory per model (MiB)", c] = r.get("reserved_memory_mib_per_model")
    workload = "simple_string"
    q = None
    if pf is not None:
        workload = pf.row["workload"]
        q, rows = _latency_point(pf)
        for mode, r in rows.items():
            if mode in MODE_LABEL:
                c = MODE_LABEL[mode]
                t.loc["latency compared at (client QPS)", c] = q
                t.loc["p50 latency (ms)", c] = r["p50"]
                t.loc["p99 latency (ms)", c] = r["p99"]
        for r in pf.saturation.to_dict("records"):
            if r["mode"] in MODE_LABEL:
                t.loc["highest rate held (client QPS)", MODE_LABEL[r["mode"]]] = r["max_ok_qps"]
    if include_seed:
        seed_rows = _seed_stress_rows().set_index("mode")
        for mode in MODES:
            c, r = f"seed {MODE_LABEL[mode]}", seed_rows.loc[mode]
            t.loc["models deployed", c] = r["models_deployed"]
            t.loc["InferenceServices (servers)", c] = r["servers"]
            t.loc["pods (processes)", c] = r["processes"]
            t.loc["reserved CPU per model", c] = r["reserved_cpu_per_model"]
            t.loc["reserved memory per model (MiB)", c] = r["reserved_memory_mib_per_model"]
        if workload in ("simple_string", "bert"):
            lat = seedmod.seed_latency(workload).set_index(["mode", "client_qps"])
            sq = _seed_point(workload, q) if q else None
            if sq is not None:
                for mode in MODES:
                    c = f"seed {MODE_LABEL[mode]}"
                    t.loc["latency compared at (client QPS)", c] = sq
                    t.loc["p50 latency (ms)", c] = lat.loc[(mode, sq), "p50"]
                    t.loc["p99 latency (ms)", c] = lat.loc[(mode, sq), "p99"]
            sat = _seed_saturation_rows().set_index(["workload", "mode"])
            for mode in MODES:
                t.loc["highest rate held (client QPS)", f"seed {MODE_LABEL[mode]}"] = sat.loc[(workload, mode), "max_ok_qps"]
    return t


def _fmt_cell(x) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)) or x is pd.NA:
        return ""
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "no"
    if isinstance(x, (int, np.integer)):
        return f"{int(x):,}"
    if isinstance(x, (float, np.floating)):
        x = float(x)
        if x.is_integer() and abs(x) < 1e15:
            return f"{int(x):,}"
        a = abs(x)
        if a >= 100:
            return f"{x:,.0f}"
        if a >= 1:
            return f"{x:.2f}"
        return f"{x:.3g}"
    return str(x)


def format_table(df: pd.DataFrame) -> pd.DataFrame:
    """The table with every cell as a display string (integers with thousands separators,
    floats to 2-3 significant places, NaN blank)."""
    return df.apply(lambda col: col.map(_fmt_cell)) if len(df) else df


# --------------------------------------------------------------------------
# Capacity planner
# --------------------------------------------------------------------------

@dataclass
class CapacitySection:
    """The planner's view of the seed's cluster.

    limits: the ClusterLimits read; plans: per scenario and mode the maximum models,
    the binding limit, objects and reserved totals (MiB, GiB and GB); limits_table: every
    limit per mode (planner.plan_table); etcd: the etcd fill point for 1 and 6 hosts,
    with and without compaction; cpu_inference: the allocatable CPU per node that makes
    352 ISVCs the CPU limit; seed_check: predictions vs the seed's published numbers;
    measured: predictions vs each stress run's measurement; text: the findings in words.
    """

    limits: planner.ClusterLimits
    plans: pd.DataFrame
    limits_table: pd.DataFrame
    etcd: pd.DataFrame
    cpu_inference: pd.DataFrame
    seed_check: pd.DataFrame
    measured: pd.DataFrame
    text: str


def _plan_row(scenario: str, res: planner.PlanResult) -> Dict[str, Any]:
    s = res.summary()
    return {"scenario": scenario, "mode": res.mode, "max_models": res.max_models,
            "binding_limit": ", ".join(res.binding_limits) if res.binding_limits else None,
            "isvcs": res.isvcs, "pods": res.pods, "services": res.services, "ips": res.ips,
            "reserved_cpu": res.reserved_cpu, "reserved_memory_mib": s["reserved_memory_mib"],
            "reserved_memory_gib": s["reserved_memory_gib"], "reserved_memory_gb": s["reserved_memory_gb"],
            "sidecar_cpu": res.sidecar_cpu,
            "sidecar_memory_mib": None if res.sidecar_memory_bytes is None else res.sidecar_memory_bytes / planner.MiB,
            "models_per_host": res.models_per_host}


def _run_mode_specs(p: Dict[str, Any]) -> Dict[str, planner.ModeSpec]:
    def isvc(name, cpu, mem):
        cs = [planner.Container("kserve-container", cpu, mem)]
        if p.get("sidecar_cpu") not in (None, "", "0"):
            cs.append(planner.Container("queue-proxy", p.get("sidecar_cpu"), p.get("sidecar_memory") or "0",
                                        sidecar=True))
        return planner.ServiceSpec(name, tuple(cs))
    return {
        "traditional": planner.ModeSpec("traditional", isvc("traditional", p.get("traditional_predictor_cpu", "100m"),
                                                            p.get("traditional_predictor_memory", "100Mi"))),
        "mms": planner.ModeSpec("mms", isvc("mms-host", p.get("mms_predictor_cpu", "10"),
                                            p.get("mms_predictor_memory", "10Gi")),
                                hosts=int(p.get("hosts") or 1), model_memory=_model_memory(p)),
    }


def capacity_section(limits_path: Union[str, Path] = "params/seed-cluster.yaml",
                     runs: Optional[Runs] = None) -> CapacitySection:
    """The capacity planner on the seed's limits: which limit binds per mode, reserved totals
    (MiB, GiB, GB), the etcd fill point, the CPU per node the seed's 352 ISVCs imply (and the plan
    with it), the predictions next to the seed's published numbers and, for every stress run in
    ``runs``, the prediction for that run's specs next to its measurement
    (:func:`mmslib.planner.compare_with_measured`)."""
    limits = planner.load_cluster_limits(_resolve(limits_path))
    seed_sum = seedmod.seed_stress_summary().set_index(["mode", "quantity"])["value"]
    seed_trad = int(seed_sum[("traditional", "isvcs")])
    seed_hosts = int(seed_sum[("mms", "isvcs")])
    specs = planner.seed_specs(mms_hosts=seed_hosts)
    plans = [_plan_row("seed limits as published", planner.plan(limits, specs[m])) for m in MODES]

    cpu_rows = []
    inferred = None
    for packing in planner.PACKINGS:
        ci = planner.infer_cpu_per_node(seed_trad, specs["traditional"].isvc, nodes=limits.nodes or 6,
                                        packing=packing, limits=limits)
        cpu_rows.append({"packing": packing, "measured_isvcs": ci.measured, "nodes": ci.nodes,
                         "per_isvc_cpu": ci.per_isvc_cpu, "cpu_per_node_lower": ci.lower,
                         "cpu_per_node_upper": ci.upper, "reproduces_exactly": ci.reproduces_exactly,
                         "predicted_max": ci.predicted_max, "cpu_binds_first": ci.cpu_binds_first})
        if packing == limits.packing:
            inferred = ci
    scen2 = None
    if limits.cpu_per_node is None and inferred is not None:
        mid = (inferred.lower_exact + inferred.upper_exact) / 2
        cpu = f"{float(mid):.4f}"
        lim2 = dataclasses.replace(limits, cpu_per_node=cpu)
        scen2 = f"with inferred CPU/node = {cpu} cores"
        plans += [_plan_row(scen2, planner.plan(lim2, specs[m])) for m in MODES]
    plans_df = pd.DataFrame(plans)
    for c in ("max_models", "isvcs", "pods", "services", "ips", "models_per_host"):
        plans_df[c] = plans_df[c].astype("Int64")

    etcd_rows = []
    if limits.etcd_bytes_int:
        e = specs["mms"].entry_bytes
        for hosts in sorted({1, seed_hosts}):
            for comp in (False, True):
                n = planner.etcd_fill_models(limits.etcd_bytes_int, hosts=hosts, entry_bytes=e,
                                             revision_overhead_bytes=specs["mms"].etcd_revision_overhead_bytes
                                             + specs["mms"].configmap_overhead_bytes,
                                             compaction=comp, base_bytes=limits.baseline_etcd_bytes_int)
                etcd_rows.append({"etcd_mib": limits.etcd_bytes_int / planner.MiB, "hosts": hosts,
                                  "compaction": comp, "entry_bytes": e, "fill_models": n})
    etcd_df = pd.DataFrame(etcd_rows, columns=["etcd_mib", "hosts", "compaction", "entry_bytes", "fill_models"])

    # predictions vs the seed's published numbers ("211 GB" = 211,200 MiB / 1000; "63 GB" read as GiB: see seed notes)
    checks = []
    published_mem = {"traditional": 211_200 * planner.MiB, "mms": 63 * planner.GiB}
    scen_lims = [("seed limits as published", limits)]
    if scen2:
        scen_lims.append((scen2, lim2))
    for scen, lim in scen_lims:
        for mode in (MODES if lim is limits else ("traditional",)):  # inferred CPU changes traditional only
            res = planner.plan(lim, specs[mode])
            cmp = planner.compare_with_measured(
                res, float(seed_sum[(mode, "models")]), float(seed_sum[(mode, "cpu_total")]), published_mem[mode],
                measured_isvcs=int(seed_sum[(mode, "isvcs")]) if mode == "mms" else None)
            cmp.insert(0, "mode", mode)
            cmp.insert(0, "scenario", scen)
            checks.append(cmp)
    seed_check = pd.concat(checks, ignore_index=True)

    measured = []
    for run in (runs.of("stress") if runs is not None else []):
        try:
            mspecs = _run_mode_specs(run.params)
        except Exception as e:  # a spec the planner cannot read: say so, go on
            measured.append(pd.DataFrame([{"run": run.key, "mode": "", "quantity": "error", "unit": str(e)}]))
            continue
        for r in run.stress.to_dict("records"):
            mode = r["mode"]
            if mode not in mspecs or not r.get("models_deployed"):
                continue
            res = planner.plan(limits, mspecs[mode])
            cmp = planner.compare_with_measured(
                res, int(r["models_deployed"]), float(r["reserved_cpu"]),
                int(round(float(r["reserved_memory_mib"]) * planner.MiB)), measured_isvcs=int(r["servers"]))
            keys = {"run": run.key, "backend": run.row["backend"], "runtime": run.row["runtime"],
                    "workload": run.row["workload"], "mode": mode, "binding_limit": res.binding_limit}
            for i, (k, v) in enumerate(keys.items()):
                cmp.insert(i, k, v)
            measured.append(cmp)
    measured_df = (pd.concat(measured, ignore_index=True) if measured else
                   pd.DataFrame(columns=["run", "backend", "runtime", "workload", "mode", "binding_limit", "quantity",
                                         "unit", "predicted", "measured", "difference", "relative_difference"]))

    p = plans_df.set_index(["scenario", "mode"])
    a = p.loc[("seed limits as published", "traditional")]
    b = p.loc[("seed limits as published", "mms")]
    text = [
        f"With the seed's published limits ({limits.source}), traditional serving binds on **{a['binding_limit']}** "
        f"at **{a['max_models']:,} InferenceServices**, reserving {a['reserved_cpu']:,.1f} CPU and "
        f"{a['reserved_memory_mib']:,.0f} MiB ({a['reserved_memory_gb']:,.1f} GB, {a['reserved_memory_gib']:,.1f} GiB); "
        f"multi-model serving on {b['isvcs']} hosts binds on **{b['binding_limit']}** at "
        f"**{b['max_models']:,} models**, reserving {b['reserved_cpu']:,.1f} CPU and {b['reserved_memory_mib']:,.0f} MiB "
        f"({b['reserved_memory_gb']:,.1f} GB, {b['reserved_memory_gib']:,.1f} GiB)."]
    if inferred is not None and scen2:
        c = p.loc[(scen2, "traditional")]
        text.append(
            f"The seed does not publish CPU per node: its {seed_trad} InferenceServices at {inferred.per_isvc_cpu:g} CPU "
            f"each imply {inferred.lower:.2f}-{inferred.upper:.2f} allocatable cores per node ({limits.packing} "
            f"packing), and with that CPU binds first at {c['max_models']:,} (binding: {c['binding_limit']}).")
    if len(etcd_df):
        no_c = etcd_df[(etcd_df["hosts"] == seed_hosts) & (~etcd_df["compaction"])]["fill_models"]
        yes_c = etcd_df[(etcd_df["hosts"] == seed_hosts) & (etcd_df["compaction"])]["fill_models"]
        if len(no_c) and len(yes_c):
            text.append(
                f"etcd ({limits.etcd_bytes_int / planner.MiB:g} MiB) fills at {int(no_c.iloc[0]):,} models on "
                f"{seed_hosts} hosts when superseded ConfigMap revisions are never compacted, {int(yes_c.iloc[0]):,} "
                f"with compaction after every write; the seed reports ~10,000 models, so its etcd was compacted "
                f"at least partly or stored less per revision than assumed.")
    if len(measured_df):
        text.append(f"{measured_df['run'].nunique()} stress run(s) are compared with the planner below: reserved "
                    f"CPU/memory predicted for the measured deployment should equal the run's own accounting; "
                    f"max_models is what the seed's cluster would allow with that run's specs, vs what this "
                    f"machine deployed within its budget.")
    return CapacitySection(limits=limits, plans=plans_df, limits_table=planner.plan_table(limits, specs),
                           etcd=etcd_df, cpu_inference=pd.DataFrame(cpu_rows), seed_check=seed_check,
                           measured=measured_df, text="\n\n".join(text))
