"""Figures for the notebooks (seaborn/matplotlib); each returns its Figure."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg") if matplotlib.get_backend().lower() in ("", "agg") else None
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

MODE_ORDER = ["traditional", "mms"]
PALETTE = {"traditional": "#d95f02", "mms": "#1b9e77"}


def stress_memory(steps: pd.DataFrame):
    """Models deployed vs memory: measured PSS and reserved (requests), per mode."""
    d = steps[steps["ok"] & steps["measured"]] if "measured" in steps else steps[steps["ok"]]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    for mode, g in d.groupby("mode"):
        axes[0].plot(g["step"], g["pss_mib"], label=mode, color=PALETTE.get(mode))
        axes[1].plot(g["step"], g["reserved_memory_mib"] / 1024, label=mode, color=PALETTE.get(mode))
    axes[0].set(title="Measured memory (PSS of all server processes)", xlabel="models deployed", ylabel="MiB")
    axes[1].set(title="Reserved memory (Kubernetes requests)", xlabel="models deployed", ylabel="GiB")
    for ax in axes:
        ax.set_xscale("symlog", linthresh=10)
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def stress_deploy_time(steps: pd.DataFrame):
    """Time to ready per model and cumulative deploy time, per mode."""
    d = steps[steps["ok"]]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    sns.ecdfplot(data=d, x="seconds", hue="mode", ax=axes[0], palette=PALETTE, log_scale=True)
    axes[0].set(title="Time to ready per model (ECDF)", xlabel="seconds")
    for mode, g in d.groupby("mode"):
        axes[1].plot(g["elapsed_s"], g["step"], label=mode, color=PALETTE.get(mode))
    axes[1].set(title="Models ready over time", xlabel="elapsed (s)", ylabel="models deployed")
    axes[1].set_yscale("symlog", linthresh=10)
    axes[1].legend()
    axes[1].grid(alpha=0.3)
    fig.tight_layout()
    return fig


def latency_over_time(ts: pd.DataFrame, qps: float):
    """The seed's plots: latency over time at one rate, both modes (p50 and p99 per second)."""
    d = ts[ts["qps"] == qps]
    fig, ax = plt.subplots(figsize=(10, 3.6))
    for (mode, rep), g in d.groupby(["mode", "repeat"]):
        ax.plot(g["t_s"], g["p50"], color=PALETTE.get(mode), label=f"{mode} p50" + (f" (r{rep})" if rep else ""))
        ax.plot(g["t_s"], g["p99"], color=PALETTE.get(mode), ls="--", alpha=0.7,
                label=f"{mode} p99" + (f" (r{rep})" if rep else ""))
    ax.set(title=f"Latency over time at {qps:g} QPS", xlabel="second of the level", ylabel="ms")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(ncol=2, fontsize=8)
    fig.tight_layout()
    return fig


def latency_vs_rate(summary: pd.DataFrame, slo_ms: float | None = None):
    """p50 and p99 (with 95% CI where present) against the client-side rate, both modes."""
    fig, ax = plt.subplots(figsize=(8, 4.2))
    for mode, g in summary.groupby("mode"):
        g = g.groupby("qps", as_index=False).median(numeric_only=True).sort_values("qps")
        c = PALETTE.get(mode)
        ax.plot(g["qps"], g["p50"], marker="o", color=c, label=f"{mode} p50")
        ax.plot(g["qps"], g["p99"], marker="s", ls="--", color=c, label=f"{mode} p99")
        if {"p99_lo", "p99_hi"} <= set(g.columns):
            ax.fill_between(g["qps"], g["p99_lo"], g["p99_hi"], color=c, alpha=0.15)
    if slo_ms:
        ax.axhline(slo_ms, color="grey", ls=":", label=f"SLO p99 {slo_ms:g} ms")
    ax.set(xscale="log", yscale="log", xlabel="client-side QPS", ylabel="latency (ms)",
           title="Latency vs request rate")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def resources_over_levels(samples: pd.DataFrame):
    """CPU and memory of the servers during each level (sampled about once a second)."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    agg = samples.groupby(["mode", "qps"], as_index=False).agg(cpu=("cpu_cores", "mean"), mem=("pss_mib", "mean"))
    for mode, g in agg.groupby("mode"):
        axes[0].plot(g["qps"], g["cpu"], marker="o", color=PALETTE.get(mode), label=mode)
        axes[1].plot(g["qps"], g["mem"], marker="o", color=PALETTE.get(mode), label=mode)
    axes[0].set(xscale="log", xlabel="client-side QPS", ylabel="server CPU (cores, mean)", title="Server CPU per level")
    axes[1].set(xscale="log", xlabel="client-side QPS", ylabel="server PSS (MiB, mean)", title="Server memory per level")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return fig
