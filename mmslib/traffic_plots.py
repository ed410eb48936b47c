"""Figures of the traffic experiment (matplotlib); each returns its Figure,
or None when the run has nothing to show for it."""
from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg") if matplotlib.get_backend().lower() in ("", "agg") else None
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .plots import MODE_ORDER, PALETTE  # noqa: E402

_STYLES = ["-", "--", ":", "-."]


def _cv_label(cv) -> str:
    return "trace" if cv is None or (isinstance(cv, float) and math.isnan(cv)) else f"CV {cv:g}"


def _sweep(summary: pd.DataFrame) -> pd.DataFrame:
    return summary[~summary["search"].astype(bool)] if len(summary) else summary


def attainment_vs_rate(summary: pd.DataFrame, target: float, models=None):
    """SLO attainment (95% interval) vs offered rate: a line per mode and CV
    (AlpaServe's figure); hollow markers are levels that are not valid."""
    s = _sweep(summary)
    if not len(s):
        return None
    size = models if models is not None else int(s["models"].min())
    s = s[s["models"] == size]
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    cvs = sorted(s["cv"].unique(), key=lambda x: (math.isnan(x), x))
    for mode in [m for m in MODE_ORDER if m in set(s["mode"])]:
        for i, cv in enumerate(cvs):
            g = s[(s["mode"] == mode) & ((s["cv"] == cv) | (s["cv"].isna() & (cv != cv)))]
            g = g.groupby("rate")[["share", "lo", "hi", "valid"]].median().reset_index()
            if not len(g):
                continue
            yerr = np.vstack([g["share"] - g["lo"], g["hi"] - g["share"]]) * 100
            ax.errorbar(g["rate"], g["share"] * 100, yerr=yerr, color=PALETTE.get(mode),
                        linestyle=_STYLES[i % len(_STYLES)], marker="o", capsize=3,
                        label=f"{mode}, {_cv_label(cv)}")
            bad = g[g["valid"] < 1]
            ax.scatter(bad["rate"], bad["share"] * 100, facecolors="white", edgecolors="k", zorder=5)
    ax.axhline(target * 100, color="grey", linestyle="--", linewidth=1, label=f"target {target:.4g}")
    ax.set(title=f"SLO attainment vs rate ({size} models)", xlabel="offered rate (requests/s)",
           ylabel="requests within the SLO (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def attainment_vs_cv(summary: pd.DataFrame, target: float, rate=None):
    """Attainment vs burstiness (gap CV) at one rate, per mode."""
    s = _sweep(summary)
    s = s[s["cv"].notna()] if len(s) else s
    if not len(s) or s["cv"].nunique() < 2:
        return None
    size = int(s["models"].min())
    rate = rate if rate is not None else sorted(s["rate"].unique())[len(s["rate"].unique()) // 2]
    s = s[(s["models"] == size) & (s["rate"] == rate)]
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for mode in [m for m in MODE_ORDER if m in set(s["mode"])]:
        g = s[s["mode"] == mode].groupby("cv")[["share", "lo", "hi"]].median().reset_index()
        yerr = np.vstack([g["share"] - g["lo"], g["hi"] - g["share"]]) * 100
        ax.errorbar(g["cv"], g["share"] * 100, yerr=yerr, marker="o", capsize=3, color=PALETTE.get(mode),
                    label=mode)
    ax.axhline(target * 100, color="grey", linestyle="--", linewidth=1)
    ax.set_xscale("log", base=2)
    ax.set(title=f"Attainment vs burstiness at {rate:g} requests/s ({size} models)",
           xlabel="coefficient of variation of the gaps", ylabel="requests within the SLO (%)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def p99_vs_models(density: pd.DataFrame, slo_ms: float):
    """Density: p99 from the scheduled time (95% interval) vs models loaded, mms mode."""
    if not len(density) or density["models"].nunique() < 2:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for i, ((rate, cv), g) in enumerate(density.groupby(["rate", "cv"], dropna=False)):
        g = g.sort_values("models")
        lo = (g["p99_sched"] - g["p99_sched_lo"]).clip(lower=0).fillna(0)
        hi = (g["p99_sched_hi"] - g["p99_sched"]).clip(lower=0).fillna(0)
        ax.errorbar(g["models"], g["p99_sched"], yerr=np.vstack([lo, hi]), marker="o", capsize=3,
                    linestyle=_STYLES[i % len(_STYLES)], label=f"{rate:g}/s, {_cv_label(cv)}")
    ax.axhline(slo_ms, color="grey", linestyle="--", linewidth=1, label=f"SLO {slo_ms:g} ms")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set(title="Multi-model host: p99 vs models loaded", xlabel="models loaded on the host",
           ylabel="p99 latency from scheduled time (ms)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def percentile_spectrum(spectrum: pd.DataFrame, models=None):
    """Latency at p50..p99.99 per level (x: 1/(1-q) on a log scale), a panel per mode."""
    if not len(spectrum):
        return None
    size = models if models is not None else int(spectrum["models"].min())
    s = spectrum[spectrum["models"] == size]
    cols = [c for c in s.columns if c.startswith("p") and c[1:].replace(".", "").isdigit()]
    qs = np.array([float(c[1:]) for c in cols])
    x = 1 / (1 - qs / 100)
    modes = [m for m in MODE_ORDER if m in set(s["mode"])]
    fig, axes = plt.subplots(1, len(modes), figsize=(6 * len(modes), 4), squeeze=False, sharey=True)
    for ax, mode in zip(axes[0], modes):
        for _, r in s[s["mode"] == mode].iterrows():
            ax.plot(x, r[cols].to_numpy(dtype=float), marker=".",
                    label=f"{r['rate']:g}/s, {_cv_label(r['cv'])}, r{int(r['repeat'])}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(x, [c[1:] for c in cols])
        ax.set(title=f"{mode}: latency percentile spectrum", xlabel="percentile", ylabel="latency (ms)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def noisy_neighbour(noisy: pd.DataFrame, slo_ms: float):
    """The other models' p99 and attainment, traditional vs multi-model, per rate and CV."""
    if not len(noisy):
        return None
    labels = [f"{r.rate:g}/s, {_cv_label(r.cv)}" + (f", {r.models} models" if noisy["models"].nunique() > 1 else "")
              for r in noisy.itertuples()]
    x = np.arange(len(noisy))
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    w = 0.38
    for j, mode in enumerate(MODE_ORDER):
        axes[0].bar(x + (j - 0.5) * w, noisy[f"{mode}_p99"], w, color=PALETTE[mode], label=mode)
        axes[1].bar(x + (j - 0.5) * w, noisy[f"{mode}_share"] * 100, w, color=PALETTE[mode], label=mode)
    axes[0].axhline(slo_ms, color="grey", linestyle="--", linewidth=1)
    for ax, title, ylabel in ((axes[0], "Other models: p99 (from scheduled time)", "ms"),
                              (axes[1], "Other models: SLO attainment", "%")):
        ax.set_xticks(x, labels, rotation=20, fontsize=8)
        ax.set(title=title, ylabel=ylabel)
        ax.grid(alpha=0.3, axis="y")
        ax.legend()
    for i, r in enumerate(noisy.itertuples()):
        if r.p99_verdict.startswith("beyond"):
            axes[0].annotate("*", (i, max(r.traditional_p99, r.mms_p99)), ha="center", fontsize=14)
        if r.share_verdict.startswith("beyond"):
            axes[1].annotate("*", (i, 100 * max(r.traditional_share, r.mms_share)), ha="center", fontsize=14)
    fig.suptitle("Noisy neighbour: * = difference beyond run-to-run spread", fontsize=10)
    fig.tight_layout()
    return fig


def lateness_over_time(lateness: pd.DataFrame, bound_ms: float, models=None):
    """Generator lateness (send minus scheduled) p99 per second of every level:
    below the bound, the generator kept the schedule."""
    if not len(lateness):
        return None
    fig, ax = plt.subplots(figsize=(8, 3.8))
    for key, g in lateness.groupby(["models", "mode", "rate", "cv", "repeat"], dropna=False):
        if models is not None and key[0] != models:
            continue
        ax.plot(g["second"], g["p99"], color=PALETTE.get(key[1]), alpha=0.6, linewidth=1)
    for mode in MODE_ORDER:
        ax.plot([], [], color=PALETTE[mode], label=mode)
    ax.axhline(bound_ms, color="red", linestyle="--", linewidth=1, label=f"bound {bound_ms:g} ms")
    ax.set(title="Generator lateness p99 per second, every level", xlabel="seconds into the level",
           ylabel="lateness (ms)")
    ax.set_yscale("symlog", linthresh=1)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig
