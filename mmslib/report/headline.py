"""The answer first: a paragraph and a table saying how many models, at what cost, at what
latency, traditional vs multi-model, beside the seed's figures."""
from __future__ import annotations

import math
from typing import Optional

import numpy as np
import pandas as pd

from .. import seed as seedmod
from ..outcome import more_models
from .collection import Run, Runs
from .labels import MODE_LABEL, MODES, on_cluster, fmt as _fmt, ms as _ms
from .seedside import seed_saturation_rows, seed_stress_rows
from .tables import aggregate_levels

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


def _seed_stress_sentence() -> str:
    """The seed's stress result in words, from :mod:`mmslib.seed` (e.g. "deployed ~10,000 models on 6
    InferenceServices against 352 (28x) on a 6-node cluster")."""
    s = seedmod.seed_stress_summary().set_index(["mode", "quantity"])
    t, m = s.loc[("traditional", "models")], s.loc[("mms", "models")]
    ratio = more_models(t["value"], m["value"])["mms_over_traditional"]
    return (f"deployed {'~' if m['approximate'] else ''}{m['value']:,.0f} models on "
            f"{s.loc[('mms', 'isvcs'), 'value']:,.0f} InferenceServices against {t['value']:,.0f} ({ratio:.0f}x) "
            f"on a {seedmod.seed_cluster_limits()['nodes']}-node cluster")


def _seed_reserved(mode: str) -> str:
    """The seed's total requests of one mode as published (e.g. "387 CPU / 211 GB")."""
    s = seedmod.seed_stress_summary().set_index(["mode", "quantity"])
    cpu, mem = s.loc[(mode, "cpu_total")], s.loc[(mode, "memory_total")]
    return f"{cpu['value']:g} {cpu['unit']} / {mem['value']:g} {mem['unit']}"


def _seed_held(workload: str) -> Optional[str]:
    """The rates the seed's modes held for ``workload`` (:func:`mmslib.seed.seed_saturation`), in words."""
    sat = seedmod.seed_saturation()
    rows = sat[sat["workload"] == workload].set_index("mode")
    if not {"traditional", "mms"} <= set(rows.index):
        return None

    def held(mode):
        r = rows.loc[mode]
        return (f"{r['client_qps']:,.0f} QPS without scaling" if r["behaviour"] == "no_scaling_up_to"
                else f"scaling up at {r['client_qps']:,.0f} QPS")
    return f"traditional {held('traditional')} vs multi-model {held('mms')}"


def _seed_point(workload: str, q: float) -> Optional[float]:
    """The seed's client rate nearest ``q`` (log scale) that both seed modes measured."""
    lat = seedmod.seed_latency(workload)
    common = sorted(set(lat[lat["mode"] == "traditional"]["client_qps"]) & set(lat[lat["mode"] == "mms"]["client_qps"]))
    if not common:
        return None
    return min(common, key=lambda c: abs(math.log(c) - math.log(q)))


def _latency_point(run: Run):
    """(rate, {mode: row}) at the highest rate both modes ran validly (else the highest both ran)."""
    agg = aggregate_levels(run.performance)
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


def headline(runs: Runs) -> str:
    """3-6 sentences answering: how many models, at what cost, at what latency, traditional
    vs multi-model - computed from the primary stress and performance runs (both modes, the
    largest, then the latest) with the seed's figures beside them."""
    if runs.empty:
        return (f"**No runs found.** No run directory (a folder with `meta.json`) was found in "
                f"`{runs.folder}`. Run an experiment (`mmslib run stress --out {runs.folder}/stress`, or "
                f"papermill with `-p output_dir ...` under that folder), then build this report again. "
                f"The seed's published figures are shown below on their own.")
    out = []
    st, pf = _primary(runs, "stress"), _primary(runs, "performance")
    if st is not None:
        s = st.stress.set_index("mode")
        where = (f"On {st.row['machine']}, with the {st.row['backend']} backend, the {st.row['runtime']} runtime "
                 f"and {st.row['workload']} models")
        if {"traditional", "mms"} <= set(s.index):
            t, m = s.loc["traditional"], s.loc["mms"]
            ratio = (f"{more_models(t['models_deployed'], m['models_deployed'])['mms_over_traditional']:,.1f}x"
                     if t["models_deployed"] else "n/a")
            out.append(
                f"{where}, multi-model serving deployed **{int(m['models_deployed']):,} models** on "
                f"{int(m['servers'])} server(s) against **{int(t['models_deployed']):,}** with one server per "
                f"model ({ratio}; stopped by *{t['stop_reason']}* vs *{m['stop_reason']}*), where the seed "
                f"{_seed_stress_sentence()}.")
            if t["pss_per_model_mib"] and m["pss_per_model_mib"] and not pd.isna(m["pss_per_model_mib"]):
                out.append(
                    f"The cost per model was {_fmt(t['pss_per_model_mib'], 1)} MiB of measured memory (PSS) "
                    f"traditional vs {_fmt(m['pss_per_model_mib'], 2)} MiB multi-model "
                    f"({t['pss_per_model_mib'] / m['pss_per_model_mib']:,.0f}x less), and the seed's Kubernetes "
                    f"requests would reserve {_fmt(t['reserved_cpu'])} CPU / {_fmt(t['reserved_memory_mib'], 0)} MiB "
                    f"vs {_fmt(m['reserved_cpu'])} CPU / {_fmt(m['reserved_memory_mib'], 0)} MiB "
                    f"(seed: {_seed_reserved('traditional')} vs {_seed_reserved('mms')}).")
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
            sq = _seed_point(w, q) if w in seedmod.PUBLISHED_WORKLOADS else None
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
            seed_sat = _seed_held(w)
            out.append(f"Within p99 <= {sat['slo_p99_ms'].iloc[0]:g} ms with no errors, traditional serving held "
                       f"{held('traditional')} and multi-model {held('mms')}"
                       + (f" (seed: {seed_sat})." if seed_sat else "."))
    n_other = len(runs) - len([r for r in (st, pf) if r is not None])
    local = any(not on_cluster(r.params) for r in runs)
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
    workload = seedmod.seed_environment()["stress_test"]["model"]["name"]   # the seed's stress-test model
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
        seed_rows = seed_stress_rows().set_index("mode")
        for mode in MODES:
            c, r = f"seed {MODE_LABEL[mode]}", seed_rows.loc[mode]
            t.loc["models deployed", c] = r["models_deployed"]
            t.loc["InferenceServices (servers)", c] = r["servers"]
            t.loc["pods (processes)", c] = r["processes"]
            t.loc["reserved CPU per model", c] = r["reserved_cpu_per_model"]
            t.loc["reserved memory per model (MiB)", c] = r["reserved_memory_mib_per_model"]
        if workload in seedmod.PUBLISHED_WORKLOADS:
            lat = seedmod.seed_latency(workload).set_index(["mode", "client_qps"])
            sq = _seed_point(workload, q) if q else None
            if sq is not None:
                for mode in MODES:
                    c = f"seed {MODE_LABEL[mode]}"
                    t.loc["latency compared at (client QPS)", c] = sq
                    t.loc["p50 latency (ms)", c] = lat.loc[(mode, sq), "p50"]
                    t.loc["p99 latency (ms)", c] = lat.loc[(mode, sq), "p99"]
            sat = seed_saturation_rows().set_index(["workload", "mode"])
            for mode in MODES:
                t.loc["highest rate held (client QPS)", f"seed {MODE_LABEL[mode]}"] = sat.loc[(workload, mode), "max_ok_qps"]
    return t


def answer(runs: Runs) -> str:
    """The answer in one paragraph, first: how many times as many models multi-model serving fit,
    at what fraction of the memory per model, and up to what rate each mode held the SLO."""
    if runs.empty:
        return "No runs yet: nothing to answer from (see below for the seed's published results)."
    parts = []
    st, pf = _primary(runs, "stress"), _primary(runs, "performance")
    if st is not None:
        s = st.stress.set_index("mode")
        if {"traditional", "mms"} <= set(s.index):
            t, m = s.loc["traditional"], s.loc["mms"]
            if t["models_deployed"]:
                ratio = more_models(t["models_deployed"], m["models_deployed"])["mms_over_traditional"]
                txt = f"multi-model serving fit **{ratio:,.1f}x as many models** ({int(m['models_deployed']):,} vs " \
                      f"{int(t['models_deployed']):,})"
                tp, mp = t.get("pss_per_model_mib"), m.get("pss_per_model_mib")
                if tp and mp and not pd.isna(tp) and not pd.isna(mp) and mp > 0:
                    txt += f" at **1/{tp / mp:,.0f} of the measured memory per model**"
                parts.append(txt)
    if pf is not None and len(pf.saturation) and "max_ok_qps" in pf.saturation:
        sat = pf.saturation.set_index("mode")
        slo = sat["slo_p99_ms"].iloc[0]
        held = {m: sat.loc[m, "max_ok_qps"] for m in MODES if m in sat.index}
        if held:
            vals = [v for v in held.values() if not pd.isna(v)]
            if len(held) == 2 and len(set(vals)) == 1 and len(vals) == 2:
                parts.append(f"both modes held **{vals[0]:g} QPS** within the SLO (p99 <= {slo:g} ms, no errors)")
            else:
                parts.append(" and ".join(
                    f"{MODE_LABEL[m]} held **{v:g} QPS**" if not pd.isna(v) else f"{MODE_LABEL[m]} held no tested rate"
                    for m, v in held.items()) + f" within the SLO (p99 <= {slo:g} ms, no errors)")
    for e in [x for x in runs.experiments if x not in ("stress", "performance")]:
        lv = runs.levels[runs.levels["experiment"] == e] if "experiment" in runs.levels else pd.DataFrame()
        if len(lv) and "slo_met" in lv and lv["slo_met"].notna().any():
            met = lv["slo_met"].eq(True)  # NaN (no SLO stated) counts as not met
            und = int(lv["slo_decision"].eq("not enough data").sum()) if "slo_decision" in lv else 0
            parts.append(f"{e}: {int(met.sum())} of {len(lv)} levels shown to meet their SLO"
                         + (f" ({und} with not enough data to say)" if und else ""))
    if not parts:
        return f"{len(runs)} run(s) found; none holds both modes of a stress or performance experiment yet."
    where = "; ".join(parts)
    return where[0].upper() + where[1:] + ". Details, intervals and the seed's figures follow."
