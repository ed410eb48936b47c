"""Cold starts at cluster scale, by family and size: the simulator asked about the models the other
runs measured (#23 part 3: "the simulator draws load times from these").

A coldstart run with lazy-loading cells saves its calibrated simulator inputs
(:mod:`mmslib.siminputs`: the service time, the cold-start penalty clients saw, how long a request
holds the server, the lazy host's own load times). For every runtime, family and artifact size whose
multi-model loads the runs measured (:func:`mmslib.report.families.per_model`: stress mms steps,
coldstart load/unload cycles, performance / traffic mms deploys; a host's first model of a family
apart), the same cluster question as the coldstart run's first ``cluster_models`` value is asked
again with

- **load times** drawn from that group's measured loads (coldstart's load/unload cycles alone when
  they hold at least :data:`MIN_LOADS`: one load at a time, as a lazy host loads; otherwise every
  source pooled, whose loads overlapped ``deploy_concurrency`` at a time: ``load_source`` says which),
  plus the hand-off the calibration run's clients saw beyond its own server's load timer
  (:attr:`mmslib.siminputs.SimInputs.overhead_s`);
- **model memory** the larger of the PSS one model of the group added (measured) and its declared
  memory (what admission counts), so a host of ``cluster_host_memory`` holds
  ``host memory // model memory`` of them;
- **service time and occupancy** the calibration run's own (its model's inference, not the
  family's: said in every row).

A group with fewer than :data:`MIN_LOADS` measured loads gets "not enough data", not a host count.
Every row is labelled: the calibration run's own model carries its validation verdict
(:func:`mmslib.simcheck.simulation_label`); the families are *not validated* (their load times were
measured, their cold starts under load were not). At most :data:`MAX_ROWS` groups are simulated
(each costs a few seconds at the default 600 s of simulated traffic); the rest are named.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

import numpy as np
import pandas as pd

from .. import siminputs, simulate
from ..errors import MmsError
from ..quantity import parse_memory
from ..simcheck import SIMULATION_TABLES, simulation_label
from .collection import Run, Runs
from .families import MULTI_SOURCES

MIN_LOADS = 20
MAX_ROWS = 12
SEQUENTIAL = "coldstart load/unload"   # one load at a time; the others overlap deploy_concurrency loads
COLUMNS = ["calibration_run", "runtime", "family", "artifact_mib", "loads", "load_source", "load_ms_p50",
           "load_ms_p90",
           "overhead_ms", "model_memory_mib", "memory_from", "models_per_host", "models", "host_memory", "alpha",
           "qps", "slo_ms", "hosts_needed", "attainment", "note", "validation"]


@dataclass
class FamilySimulation:
    """table: one row per group (and the calibration run's own model first); text: in words."""

    table: pd.DataFrame
    text: str


def calibration_run(runs: Runs) -> Optional[Run]:
    """The newest coldstart run that saved its simulator inputs."""
    found = [r for r in runs.of("coldstart") if r.directory is not None
             and siminputs.TABLE in r.directory.table_names()]
    return found[-1] if found else None


def _groups(pm: pd.DataFrame) -> pd.DataFrame:
    if not len(pm):
        return pm
    m = pm[pm["source"].isin(MULTI_SOURCES) & ~pm["first"].astype(bool) & pm["load_ms"].notna()]
    return m


def family_simulation(runs: Runs, pm: pd.DataFrame, max_rows: int = MAX_ROWS) -> FamilySimulation:
    """The calibration run's first cluster question, asked of every measured family and size
    (``pm``: :func:`mmslib.report.families.per_model` of ``runs``)."""
    run = calibration_run(runs)
    if run is None:
        return FamilySimulation(pd.DataFrame(columns=COLUMNS),
                                "*No coldstart run with lazy-loading cells saved its simulator inputs: nothing to "
                                "ask the simulator with.*")
    try:
        inp = siminputs.from_frame(run.directory.table(siminputs.TABLE))
    except MmsError as e:
        return FamilySimulation(pd.DataFrame(columns=COLUMNS), f"*{run.key}: {e}*")
    p = run.params
    n = int((p.get("cluster_models") or [10_000])[0])
    host_mem = float(parse_memory(p.get("cluster_host_memory") or "10Gi"))
    q = dict(alpha=float(p.get("cluster_alpha", 1.0)), rate=float(p.get("cluster_qps", 1000.0)),
             slo_ms=float(p.get("cluster_slo_ms", 50.0)), duration_s=float(p.get("cluster_duration_s", 600.0)),
             seed=int(p.get("seed") or 0))
    common = {"calibration_run": run.key, "models": n, "host_memory": p.get("cluster_host_memory"),
              "alpha": q["alpha"], "qps": q["rate"], "slo_ms": q["slo_ms"], "overhead_ms": inp.overhead_s * 1e3}
    rows = [_own_row(run, inp, n, common)]
    groups = list(_groups(pm).groupby(["runtime", "family", "artifact_bytes"], sort=True, dropna=False))
    skipped = [f"{k[0]}/{k[1]}" for k, _ in groups[max_rows:]]
    for (runtime, family, size), g in groups[:max_rows]:
        one = g[g["source"] == SEQUENTIAL]
        g_loads = one if len(one) >= MIN_LOADS else g     # loads one at a time, as a lazy host's, when enough
        loads_s = g_loads["load_ms"].to_numpy(dtype=float) / 1e3
        pss = g["pss_added_mib"].dropna()
        declared = g["declared_mib"].dropna()
        mem = [(float(pss.mean()), "measured PSS")] if len(pss) else []
        mem += [(float(declared.iloc[0]), "declared")] if len(declared) else []
        mem_mib, mem_from = max(mem) if mem else (np.nan, "")
        row = {**common, "runtime": runtime, "family": family,
               "artifact_mib": size / 2**20 if pd.notna(size) else np.nan, "loads": int(len(loads_s)),
               "load_source": ", ".join(sorted(set(g_loads["source"]))),
               "load_ms_p50": float(np.median(loads_s) * 1e3), "load_ms_p90": float(np.percentile(loads_s, 90) * 1e3),
               "model_memory_mib": mem_mib, "memory_from": mem_from,
               "models_per_host": int(host_mem // (mem_mib * 2**20)) if mem_mib > 0 else None,
               "validation": "not validated for this family (load times measured, cold starts under load not)"}
        if len(loads_s) < MIN_LOADS:
            rows.append({**row, "note": f"not enough data: {len(loads_s)} loads (< {MIN_LOADS})"})
            continue
        if not mem_mib > 0:
            rows.append({**row, "note": "not enough data: no measured or declared memory per model"})
            continue
        load = simulate.Empirical(loads_s + inp.overhead_s, f"{family} loads")
        r = simulate.hosts_needed(n, q["alpha"], q["rate"], q["slo_ms"], inp.service, load, host_memory=host_mem,
                                  model_memory=mem_mib * 2**20, duration_s=q["duration_s"], seed=q["seed"],
                                  occupancy=inp.occupancy)
        rows.append({**row, "hosts_needed": r["hosts"],
                     "attainment": r.get("attainment"), "note": r.get("reason", "")})
    table = pd.DataFrame(rows, columns=COLUMNS)
    for c in ("models_per_host", "hosts_needed", "models"):
        table[c] = pd.to_numeric(table[c], errors="coerce").round().astype("Int64")
    return FamilySimulation(table, _text(table, run, inp, skipped))


def _own_row(run: Run, inp, n: int, common: dict) -> dict:
    """The calibration run's own answer for ``n`` models (its cluster table), as the reference."""
    cl = run.directory.table(SIMULATION_TABLES[1])
    val = run.directory.table(SIMULATION_TABLES[0])
    label = simulation_label(val if val is not None else pd.DataFrame())
    r = cl[cl["models"] == n].iloc[0] if cl is not None and len(cl) and (cl["models"] == n).any() else None
    p = run.params
    return {**common, "runtime": run.row.get("runtime") or p.get("runtime"), "family": f"{p.get('workload')} (run's own)",
            "artifact_mib": np.nan, "loads": int(len(inp.load.values)),
            "load_ms_p50": float(np.median(inp.load.values) * 1e3),
            "load_ms_p90": float(np.percentile(inp.load.values, 90) * 1e3),
            "model_memory_mib": np.nan, "memory_from": "declared (the run's model_memory)",
            "models_per_host": None if r is None else r["models_per_host"],
            "hosts_needed": None if r is None else r["hosts_needed"],
            "attainment": None if r is None else r["attainment"],
            "note": "the cold-start penalty its lazy cells measured" + ("" if r is not None else
                                                                         "; no cluster row for this size"),
            "validation": label}


def _hosts(n) -> str:
    return f"{int(n):,} host" + ("" if int(n) == 1 else "s")


def _text(t: pd.DataFrame, run: Run, inp, skipped: List[str]) -> str:
    if len(t) <= 1:
        return (f"*No runtime, family and size with measured multi-model loads to ask about* (the calibration run: "
                f"{run.key}).")
    r0 = t.iloc[0]
    parts = []
    for r in t.iloc[1:].itertuples():
        size = "" if pd.isna(r.artifact_mib) else f" {r.artifact_mib:.3g} MiB"
        what = f"{r.family}{size} on {r.runtime} (load p50 {r.load_ms_p50:,.0f} ms)"
        parts.append(f"{what}: **{_hosts(r.hosts_needed)}**" if pd.notna(r.hosts_needed)
                     else f"{what}: {r.note or 'no host count reached 99%'}")
    own = _hosts(r0.hosts_needed) if pd.notna(r0.hosts_needed) else "no host count"
    return (f"**Simulation, not measurement; not validated for these families.** {int(r0.models):,} models, "
            f"{float(r0.qps):,g} requests/s, Zipf alpha {float(r0.alpha):g}, hosts of {r0.host_memory}, >= 99% within "
            f"{float(r0.slo_ms):g} ms, with the service time and the cold-start hand-off "
            f"({float(r0.overhead_ms):.1f} ms) that **{run.key}** measured for its own model "
            f"({r0.family.replace(' (run' + chr(39) + 's own)', '')}: {own}, {r0.validation}), and each family's own "
            f"measured load times and memory per model: " + "; ".join(parts) + ". The service time is that run's "
            "model's, not the family's own inference time."
            + (f" Not simulated (over {MAX_ROWS} groups): {', '.join(skipped)}." if skipped else ""))
