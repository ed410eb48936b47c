"""The cold-start experiment's figures: servers' memory over load/unload cycles, lazy loading's
attainment and hit rate per cache size and skew, the simulator's validation (simulated vs measured,
beside the baseline). Drawn from :class:`mmslib.coldstart.ColdstartResult`'s tables, as
:mod:`mmslib.traffic_plots` draws the traffic experiment's.
"""
from __future__ import annotations

import pandas as pd

from .simcheck import ATTAINMENT_BAND, ATTAINMENT_TARGET_PTS


def plot_memory(cycles: pd.DataFrame):
    """PSS after each load and after each unload vs cycle, one panel per runtime."""
    import matplotlib.pyplot as plt
    rts = list(dict.fromkeys(cycles["runtime"])) if len(cycles) else []
    fig, axes = plt.subplots(1, max(1, len(rts)), figsize=(4.5 * max(1, len(rts)), 3.2), squeeze=False)
    for ax, rt in zip(axes[0], rts):
        g = cycles[cycles["runtime"] == rt]
        ax.plot(g["cycle"], g["pss_loaded_mib"], lw=0.8, label="model loaded")
        ax.plot(g["cycle"], g["pss_after_mib"], lw=0.8, label="after unload")
        ax.set_title(rt)
        ax.set_xlabel("cycle")
        ax.set_ylabel("PSS of the servers (MiB)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_lazy(summary: pd.DataFrame, slo_ms: float):
    """Hit rate and SLO attainment vs capacity ratio, one line per Zipf alpha."""
    import matplotlib.pyplot as plt
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.4))
    for a, g in (summary.groupby("alpha") if len(summary) else []):
        g = g.sort_values("capacity_ratio")
        a1.plot(100 * g["capacity_ratio"], 100 * g["hit_rate"], marker="o", label=f"alpha {a:g}")
        a2.plot(100 * g["capacity_ratio"], 100 * g["attainment"], marker="o", label=f"alpha {a:g}")
    a1.set(xlabel="capacity (% of models)", ylabel="hit rate (%)", title="requests finding their model loaded")
    a2.set(xlabel="capacity (% of models)", ylabel=f"within {slo_ms:g} ms (%)", title="SLO attainment")
    a1.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_validation(validation: pd.DataFrame):
    """Simulated (seeds' range) and baseline vs measured attainment (its interval), per
    validation check; the shaded band is where a check has power (50-95% measured)."""
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    ax.axvspan(100 * ATTAINMENT_BAND[0], 100 * ATTAINMENT_BAND[1], color="0.92", zorder=0)
    if len(validation) and "attainment_lo" in validation.columns:
        v = validation
        x = 100 * v["attainment_measured"]
        xerr = [x - 100 * v["attainment_lo"], 100 * v["attainment_hi"] - x]
        y = 100 * v["attainment_simulated"]
        yerr = [y - 100 * v["attainment_sim_lo"], 100 * v["attainment_sim_hi"] - y]
        ax.errorbar(x, y, xerr=xerr, yerr=yerr, fmt="o", ms=4, lw=0.8, label="simulation")
        ax.scatter(x, 100 * v["attainment_baseline"], marker="x", color="C3", label="baseline (calibration mean)")
    elif len(validation):
        ax.scatter(100 * validation["attainment_measured"], 100 * validation["attainment_simulated"],
                   marker="x", label="SLO attainment")
    ax.plot([0, 100], [0, 100], color="grey", lw=0.8)
    ax.fill_between([0, 100], [-ATTAINMENT_TARGET_PTS, 100 - ATTAINMENT_TARGET_PTS],
                    [ATTAINMENT_TARGET_PTS, 100 + ATTAINMENT_TARGET_PTS], color="C2", alpha=0.12, lw=0)
    ax.set(xlabel="measured attainment (%)", ylabel="predicted attainment (%)", xlim=(0, 101), ylim=(0, 101),
           title="simulator vs measurement")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig
