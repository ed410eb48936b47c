"""Cold starts at cluster scale: the simulator's answers (:mod:`mmslib.simulate`), beside the
capacity planner, read from the coldstart runs' directories.

A coldstart run writes section 4's tables into its directory
(:func:`mmslib.coldstart.save_simulation`): ``simulator_validation`` (per validation cell and SLO:
measured attainment with its interval, simulated over several seeds, a trivial baseline's guess,
and whether the check has power) and ``cluster`` (N models, hosts, alpha, rate, SLO -> attainment
and the hosts needed for >= 99%). These are *simulations*: each cluster answer is labelled with the
verdict of the run's validation (:func:`mmslib.simcheck.simulation_label`: "validated under load"
only when the simulator landed within 5 points on enough checks with power and beat the baseline)
and shown with that validation in words (:func:`mmslib.simcheck.validation_sentence`). Tables from
before the checks with power read "not validated under load".
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List

import pandas as pd

from ..simcheck import SIMULATION_TABLES, simulation_label, validation_sentence
from .collection import Runs

VALIDATION_COLUMNS = ["run", "name", "alpha", "capacity", "qps", "utilisation", "slo_ms", "attainment_measured",
                      "attainment_lo", "attainment_hi", "attainment_simulated", "attainment_sim_lo",
                      "attainment_sim_hi", "attainment_baseline", "attainment_diff_pts", "baseline_diff_pts",
                      "hit_rate_measured", "hit_rate_simulated", "hit_rate_diff_pts", "p99_measured_ms",
                      "p99_simulated_ms", "measurement_valid", "powered", "within", "beats_baseline"]
CLUSTER_COLUMNS = ["run", "validation", "models", "host_memory", "models_per_host", "alpha", "qps", "slo_ms",
                   "hosts_needed", "attainment", "note", "host_counts_simulated"]


@dataclass
class SimulationSection:
    """validation / cluster: every coldstart run's tables, a ``run`` column first; text: per run,
    a labelled paragraph (the run, the validation error, what the cluster table answers);
    missing: coldstart runs with validation cells but no simulation tables written."""

    validation: pd.DataFrame
    cluster: pd.DataFrame
    text: str
    missing: List[str]

    @property
    def empty(self) -> bool:
        return not len(self.validation) and not len(self.cluster)


def _table(run, name: str, columns: List[str]) -> pd.DataFrame:
    df = run.directory.table(name) if run.directory is not None else None
    if df is None or not len(df):
        return pd.DataFrame(columns=columns)
    df = df.copy()
    df.insert(0, "run", run.key)
    return df[[c for c in columns if c in df.columns] + [c for c in df.columns if c not in columns]]


def _cluster_sentence(cl: pd.DataFrame, label: str) -> str:
    parts = []
    for r in cl.itertuples():
        if pd.notna(r.hosts_needed):
            h = int(r.hosts_needed)
            parts.append(f"{int(r.models):,} models need **{h:,} host{'' if h == 1 else 's'}** "
                         f"({100 * float(r.attainment):.1f}% within the SLO)")
        else:
            parts.append(f"{int(r.models):,} models: no host count reached 99%"
                         + (f" ({r.note})" if isinstance(r.note, str) and r.note else ""))
    r0 = cl.iloc[0]
    return (f"Simulated cluster ({label}), hosts of {r0['host_memory']} ({int(r0['models_per_host']):,} models each), "
            f"Zipf alpha {float(r0['alpha']):g}, {float(r0['qps']):,g} requests/s in all, SLO {float(r0['slo_ms']):g} ms "
            f"for >= 99% of requests: " + "; ".join(parts) + ".")


def _union(frames: List[pd.DataFrame]) -> List[str]:
    """Every frame's columns, in first-seen order (runs of different formats side by side)."""
    return list(dict.fromkeys(c for f in frames for c in f.columns))


def simulation_section(runs: Runs) -> SimulationSection:
    """The simulator's validation and cluster tables of every coldstart run in ``runs``, with the
    validation error stated per run."""
    vals, clusters, text, missing = [], [], [], []
    for run in runs.of("coldstart"):
        v, c = (_table(run, n, cols) for n, cols in zip(SIMULATION_TABLES, (VALIDATION_COLUMNS, CLUSTER_COLUMNS)))
        if not len(v) and not len(c):
            cells = run.directory.table("lazy_cells") if run.directory is not None else None
            if cells is not None and "role" in cells and (cells["role"] == "validation").any():
                missing.append(run.key)
            continue
        vals += [v] if len(v) else []
        clusters += [c] if len(c) else []
        para = [f"**{run.key}** ({run.row.get('runtime')}/{run.row.get('workload')}): "
                + (validation_sentence(v) if len(v) else "**Simulation, not validated**: no validation table.")]
        if len(c):
            label = simulation_label(v)
            c = c.assign(validation=label)   # the run's verdict, whatever the table was saved with
            clusters[-1] = c[[x for x in CLUSTER_COLUMNS if x in c.columns]
                             + [x for x in c.columns if x not in CLUSTER_COLUMNS]]
            para.append(_cluster_sentence(c, label))
        text.append(" ".join(para))
    if missing:
        text.append("Coldstart run(s) with validation cells but no simulation tables in their directory (made before "
                    "`mmslib.coldstart.save_simulation` existed, or interrupted before section 4): "
                    + ", ".join(missing) + ".")
    val, cl = (pd.DataFrame([r for f in frames for r in f.to_dict("records")], columns=_union(frames))
               if frames else pd.DataFrame(columns=cols)
               for frames, cols in ((vals, VALIDATION_COLUMNS), (clusters, CLUSTER_COLUMNS)))  # rows, not concat:
    # a run whose cluster sizes all missed 99% has all-NA columns, which pd.concat warns about
    for c in ("models", "models_per_host", "hosts_needed", "host_counts_simulated"):
        cl[c] = pd.to_numeric(cl[c], errors="coerce").round().astype("Int64")  # counts; missing: <NA>
    return SimulationSection(validation=val, cluster=cl, text="\n\n".join(text), missing=missing)
