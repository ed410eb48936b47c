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
        from .outcome import more_models
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
    """Warnings a reader must see (invalid levels, few samples, errors, a busy machine), as
    Markdown bullets: :func:`mmslib.validity.performance`'s notes, one line each."""
    from . import validity
    return validity.bullets(validity.performance(summary, levels, busy_load))


def performance_headline(summary: pd.DataFrame, sat: pd.DataFrame, p, notes: pd.DataFrame | None = None) -> str:
    """The answer of a performance run in a few sentences: up to what rate each mode held the SLO,
    the latency of both modes at the highest rate both ran validly, and how many levels carry
    validity notes (``notes``: :func:`mmslib.validity.performance`)."""
    if not len(summary):
        return "No level was measured."
    rates = sorted(summary["qps"].unique())
    span = f"one rate, {rates[0]:g} QPS" if len(rates) == 1 else f"{len(rates)} rates, {rates[0]:g} to {rates[-1]:g} QPS"
    what = (f"{p.models} {p.workload} models, {p.protocol.upper()}, the {p.runtime} runtime on the {p.backend} "
            f"backend; {span}, {p.duration_s:g} s per level")
    held = {}
    by = sat.set_index("mode") if len(sat) else pd.DataFrame()
    for m in [x for x in ("traditional", "mms") if x in by.index] + [x for x in by.index if x not in _MODE_WORDS]:
        r = by.loc[m]
        held[m] = (None if pd.isna(r["max_ok_qps"]) else
                   f"**{r['max_ok_qps']:g} QPS**" + (" (the highest tested)" if pd.isna(r["first_fail_qps"]) else ""))
    out = []
    if held:
        vals = set(held.values())
        if vals == {None}:
            who = ("neither mode is" if len(held) == 2 else f"{_MODE_WORDS.get(next(iter(held)), next(iter(held)))} is") \
                + " shown to hold any tested rate"
        elif len(held) == 2 and len(vals) == 1:
            who = f"both modes held {vals.pop()}"
        else:
            who = " and ".join(f"{_MODE_WORDS.get(m, m)} held {h}" if h else
                               f"{_MODE_WORDS.get(m, m)} is not shown to hold any tested rate" for m, h in held.items())
        out.append(f"Within p99 <= {p.slo_p99_ms:g} ms with no errors, {who} ({what}).")
    med = summary.groupby(["mode", "qps"], as_index=False).agg(p50=("p50", "median"), p99=("p99", "median"),
                                                             valid=("valid", "all"))
    modes = [m for m in ("traditional", "mms") if m in set(med["mode"])]
    both = set.intersection(*[set(med.loc[(med["mode"] == m) & med["valid"], "qps"]) for m in modes]) if modes else set()
    if both:
        q = max(both)
        row = med[med["qps"] == q].set_index("mode")
        out.append(f"At {q:g} QPS, the highest rate every mode ran validly, p50 / p99 latency was "
                   + "; ".join(f"{_fmt(row.loc[m, 'p50'], 2)} / {_fmt(row.loc[m, 'p99'], 2)} ms "
                               f"{_MODE_WORDS.get(m, m)}" for m in modes) + ".")
    if notes is not None:
        n_levels = len(summary.drop_duplicates(["mode", "qps", "repeat"])) if "repeat" in summary \
            else len(summary)
        from .validity import summary_sentence
        out.append(summary_sentence(notes, n_levels))
    return " ".join(s for s in out if s)


_MODE_WORDS = {"traditional": "traditional serving", "mms": "multi-model serving"}


def with_validity(headline: str, notes: pd.DataFrame, levels: int, unit: str = "level(s)") -> str:
    """``headline`` followed by a paragraph saying how many of the ``levels`` carry validity notes."""
    from .validity import summary_sentence
    s = summary_sentence(notes, levels, unit)
    return headline + ("\n\n" + s if s else "")


def coldstart_headline(cycle_summary: pd.DataFrame, leak: pd.DataFrame, churn_compare: pd.DataFrame,
                       lazy: pd.DataFrame, validation_sentence: str = "", cluster: pd.DataFrame | None = None,
                       slo_ms: float | None = None) -> str:
    """The answer of a coldstart run, a bullet per section measured: load/unload latency and the
    leak verdict per runtime; whether churn hurt the resident models beyond run-to-run spread;
    hit rate and SLO attainment over the lazy cells; the simulator's validation and the hosts a
    simulated cluster needs."""
    out = []
    if len(cycle_summary):
        verdict = leak.set_index("runtime")["verdict"] if len(leak) else pd.Series(dtype=object)
        out.append("- **Load and unload** (p50, ms): " + "; ".join(
            f"{r.runtime} {_fmt(r.load_p50_ms, 1)} / {_fmt(r.unload_p50_ms, 1)}"
            + (f", memory {verdict[r.runtime]}" if r.runtime in verdict.index else "")
            for r in cycle_summary.itertuples()) + ".")
    if churn_compare is not None and len(churn_compare):
        parts = []
        for r in churn_compare.itertuples():
            v = str(getattr(r, "p99_beyond_spread", ""))
            d = getattr(r, "p99_diff", float("nan"))
            parts.append(f"{r.runtime}: p99 {'+' if d >= 0 else ''}{_fmt(d, 1)} ms with churn "
                         f"(beyond run-to-run spread: {v})" if d == d else f"{r.runtime}: {v}")
        out.append("- **Loading while serving**: " + "; ".join(parts) + ".")
    if len(lazy):
        hr, att = lazy["hit_rate"], lazy["attainment"]
        out.append(f"- **More models than memory** ({len(lazy)} cells): hit rate {_fmt(100 * hr.min(), 1)}% to "
                   f"{_fmt(100 * hr.max(), 1)}%, SLO attainment"
                   + (f" ({slo_ms:g} ms)" if slo_ms else "") + f" {_fmt(100 * att.min(), 1)}% to "
                   f"{_fmt(100 * att.max(), 1)}%; client and server cold-start counts agree in "
                   f"{int(lazy['counts_agree'].sum())} of {len(lazy)} cells.")
    if validation_sentence:
        out.append(f"- {validation_sentence}")
    if cluster is not None and len(cluster) and {"models", "hosts_needed"} <= set(cluster.columns):
        out.append("- **Cluster** (simulated): " + "; ".join(
            f"{int(r.models):,} models: " + ("not reachable" if pd.isna(r.hosts_needed) else f"{int(r.hosts_needed)} host(s)")
            for r in cluster.itertuples()) + ".")
    return "\n".join(out) or "Nothing was measured (no section selected)."


def saturation_sentence(sat: pd.DataFrame, slo_ms: float) -> str:
    """Per mode, the highest rate shown to hold (valid, no errors, the p99 interval's upper end within
    the SLO: :func:`mmslib.stats.saturation`) and what stopped it."""
    parts = []
    for r in sat.itertuples():
        tail = "" if pd.isna(r.first_fail_qps) else f"; at {r.first_fail_qps:g} QPS: {r.fail_reason}"
        if pd.isna(r.max_ok_qps):
            parts.append(f"- **{r.mode}** is not shown to hold any tested rate (valid, no errors, p99 shown "
                         f"within {slo_ms:g} ms){tail}.")
        else:
            parts.append(f"- **{r.mode}** holds up to **{r.max_ok_qps:g} QPS** (valid, no errors, p99 shown "
                         f"within {slo_ms:g} ms){tail}.")
    return "\n".join(parts)
