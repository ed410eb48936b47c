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
        t, m = s.loc["traditional"], s.loc["mms"]
        if t["models_deployed"]:
            pct = (m["models_deployed"] - t["models_deployed"]) / t["models_deployed"] * 100
            lines.append(
                f"\nMulti-model serving deployed **{pct:,.0f}% more models** than traditional serving "
                f"({int(m['models_deployed']):,} vs {int(t['models_deployed']):,}; the seed: 2800%, ~10K vs 352).")
            if m["pss_per_model_mib"] and not math.isnan(m["pss_per_model_mib"]):
                lines.append(
                    f"Measured memory per model: {_fmt(t['pss_per_model_mib'], 1)} MiB traditional vs "
                    f"{_fmt(m['pss_per_model_mib'], 3)} MiB multi-model "
                    f"({t['pss_per_model_mib'] / m['pss_per_model_mib']:,.0f}x less).")
    return "\n".join(lines)
