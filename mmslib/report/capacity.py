"""The capacity planner on the seed's cluster, next to the seed's numbers and our stress runs."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Union

import pandas as pd

from .. import planner
from .. import seed as seedmod
from .. import specs as specsmod
from .collection import Runs
from .facts import model_memory
from .labels import MODES, resolve as _resolve


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
    sp = specsmod.for_params(p)
    return {
        "traditional": planner.ModeSpec("traditional", sp["traditional"]),
        "mms": planner.ModeSpec("mms", sp["mms"], hosts=int(p.get("hosts") or 1), model_memory=model_memory(p)),
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
    published_mem = {"traditional": int(seed_sum[("traditional", "memory_total")] * 1000 * planner.MiB),
                     "mms": int(seed_sum[("mms", "memory_total")] * planner.GiB)}
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