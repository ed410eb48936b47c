"""Sentences for the notebooks, computed from the records (so they are tested)."""
from __future__ import annotations

import math

import pandas as pd


def _fmt(x, nd=1):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:,.{nd}f}"


def stress_headline(summary: pd.DataFrame) -> str:
    s = summary.set_index("mode")
    lines = []
    for mode in s.index:
        r = s.loc[mode]
        what = "one server per model" if mode == "traditional" else f"{int(r['servers'])} host server(s)"
        lines.append(
            f"- **{mode}** ({what}): **{int(r['models_deployed']):,} models** deployed, stopped by "
            f"*{r['stop_reason']}*{(' (' + str(r['stop_detail']) + ')') if r.get('stop_detail') else ''}; "
            f"measured {_fmt(r['pss_mib'])} MiB PSS ({_fmt(r['pss_per_model_mib'], 3)} MiB per model), "
            f"reserved {_fmt(r['reserved_cpu'])} CPU and {_fmt(r['reserved_memory_mib'], 0)} MiB; "
            f"deployed at {_fmt(r['deploy_rate_per_s'])} models/s.")
    if {"traditional", "mms"} <= set(s.index):
        from .seed import seed_stress_summary
        from .stress import more_models
        t, m = s.loc["traditional"], s.loc["mms"]
        if t["models_deployed"]:
            pct = more_models(t["models_deployed"], m["models_deployed"])["more_models_pct"]
            seed = seed_stress_summary().set_index(["mode", "quantity"])

            def published(mode, q):
                r = seed.loc[(mode, q)]
                return ("~" if r["approximate"] and q == "models" else "") + f"{r['value']:,.0f}"
            lines.append(
                f"\nMulti-model serving deployed **{pct:,.0f}% more models** than traditional serving "
                f"({int(m['models_deployed']):,} vs {int(t['models_deployed']):,}; the seed: "
                f"{published('mms', 'more_models_pct')}%, {published('mms', 'models')} vs "
                f"{published('traditional', 'models')}).")
            if m["pss_per_model_mib"] and not math.isnan(m["pss_per_model_mib"]):
                lines.append(
                    f"Measured memory per model: {_fmt(t['pss_per_model_mib'], 1)} MiB traditional vs "
                    f"{_fmt(m['pss_per_model_mib'], 3)} MiB multi-model "
                    f"({t['pss_per_model_mib'] / m['pss_per_model_mib']:,.0f}x less).")
    return "\n".join(lines)


def mode_title(mode: str, p) -> str:
    """The heading of a mode's latency table: the mode and what it deployed, in the seed's words."""
    if mode == "traditional":
        return f"**{mode}** with {p.models} InferenceServices"
    return f"**{mode}** with {p.hosts} InferenceService(s) and {p.models} TrainedModels"


def performance_warnings(summary: pd.DataFrame, levels: pd.DataFrame, busy_load: float | None = None) -> str:
    """Warnings a reader must see: invalid levels, few samples, errors, a busy machine."""
    import os
    busy = busy_load if busy_load is not None else 0.5 * (os.cpu_count() or 1)
    out = []
    for r in summary.itertuples():
        tag = f"{r.mode} @ {r.qps:g} QPS (repeat {r.repeat})"
        if not r.valid:
            out.append(f"- **{tag}: not valid** — {r.invalid_reason}")
        if r.errors:
            out.append(f"- {tag}: {int(r.errors)} errors of {int(r.n)} requests")
        if r.few_samples:
            out.append(f"- {tag}: only {int(r.n_lat)} samples: p99 is unstable (want ~1,000+)")
    if "loadavg_before" in levels.columns:
        for r in levels.itertuples():
            if r.loadavg_before > busy:
                out.append(f"- {r.mode} @ {r.qps:g} QPS: load average {r.loadavg_before:.2f} before the level "
                           f"(> {busy:g}): the machine was busy")
    if "error" in levels.columns:
        for r in levels.itertuples():
            if isinstance(r.error, str) and r.error:
                out.append(f"- {r.mode} @ {r.qps:g} QPS: the load generator failed: {r.error[:200]}")
    return "\n".join(out)


def saturation_sentence(sat: pd.DataFrame, slo_ms: float) -> str:
    parts = []
    for r in sat.itertuples():
        held = "no tested rate" if pd.isna(r.max_ok_qps) else f"**{r.max_ok_qps:g} QPS**"
        tail = "" if pd.isna(r.first_fail_qps) else f"; at {r.first_fail_qps:g} QPS: {r.fail_reason}"
        parts.append(f"- **{r.mode}** holds up to {held} (valid, no errors, p99 within {slo_ms:g} ms){tail}.")
    return "\n".join(parts)
