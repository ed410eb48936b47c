"""Figures across runs, with the seed's published results overlaid where comparable.

Every function takes :class:`~mmslib.report.collection.Runs` (or one run) and returns a
matplotlib Figure, or None when there is nothing to draw. Seed data come from :mod:`mmslib.seed`.
"""
from __future__ import annotations

from typing import List, Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .. import seed as seedmod
from .. import summary as summ
from .collection import Run, Runs
from .labels import MODE_LABEL, MODES

#: Columns a level can be varied by, in the order a figure prefers them as its x axis.
X_CANDIDATES = ("qps", "rate", "cv", "density", "models", "hosts", "alpha", "capacity", "cache_size", "level")
_GB_TO_GIB = 1e9 / 2**30


def _modes_in(df: pd.DataFrame) -> List[str]:
    ms = list(dict.fromkeys(df["mode"])) if "mode" in df else []
    return [m for m in MODES if m in ms] + [m for m in ms if m not in MODES]


def models_vs_memory(runs: Runs):
    """Stress: models deployed vs measured memory (PSS) and vs reserved memory, per run and mode;
    the seed's two published points (352 ISVCs at 211 GB, ~10,000 models at 63 GB) on the
    reserved panel."""
    rs = [r for r in runs.of("stress") if len(r.records) and "mode" in r.records]
    if not rs:
        return None
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4.2))
    for r in rs:
        steps = r.records
        for mode in _modes_in(steps):
            g = steps[(steps["mode"] == mode) & steps.get("ok", True)]
            lab = f"{r.key}: {MODE_LABEL.get(mode, mode)}"
            if "pss_mib" in g:
                m = g.dropna(subset=["pss_mib"])
                a1.plot(m["step"], m["pss_mib"] / 1024, marker=".", label=lab)
            if "reserved_memory_mib" in g:
                a2.plot(g["step"], g["reserved_memory_mib"] / 1024, label=lab)
    s = seedmod.seed_stress_summary().set_index(["mode", "quantity"])["value"]
    for mode, marker in (("traditional", "s"), ("mms", "D")):
        a2.scatter([s[(mode, "models")]], [s[(mode, "memory_total")] * _GB_TO_GIB], marker=marker, s=70,
                   color="black", zorder=5, label=f"seed: {MODE_LABEL[mode]} (published)")
    for a, t in ((a1, "measured memory (PSS, all servers)"), (a2, "reserved memory (Kubernetes requests)")):
        a.set_xscale("log")
        a.set_yscale("log")
        a.set_xlabel("models deployed")
        a.set_ylabel("GiB")
        a.set_title(t)
        a.grid(True, which="both", alpha=0.3)
        a.legend(fontsize=7)
    fig.suptitle("Stress: models vs memory")
    fig.tight_layout()
    return fig


def latency_vs_rate(runs: Runs, stats_shown: Sequence[str] = ("p50", "p99")):
    """Performance: p50 and p99 vs client rate, one panel per mode, a line per run (median over
    repeats), the seed's published values dashed, the SLO dotted."""
    perf = runs.performance
    if not len(perf):
        return None
    modes = _modes_in(perf)
    fig, axes = plt.subplots(1, len(modes), figsize=(6 * len(modes), 4.2), squeeze=False)
    agg = perf.groupby(["run", "workload", "mode", "qps"], sort=True)[list(stats_shown)].median().reset_index()
    workloads = sorted(set(agg["workload"]))
    for ax, mode in zip(axes[0], modes):
        d = agg[agg["mode"] == mode]
        for run, g in d.groupby("run", sort=False):
            for s, ls in zip(stats_shown, ("-", "--", ":")):
                ax.plot(g["qps"], g[s], marker="o", linestyle="-", label=f"{run} {s}")
        for w in workloads:
            if w not in seedmod.PUBLISHED_WORKLOADS or mode not in MODES:
                continue
            sd = seedmod.seed_latency(w, mode)
            for s in stats_shown:
                if s in sd:
                    ax.plot(sd["client_qps"], sd[s], linestyle="--", color="gray", marker="x",
                            label=f"seed {w} {s}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        lo, hi = ax.get_ylim()
        slos = sorted(set(runs.saturation["slo_p99_ms"].dropna())) if "slo_p99_ms" in runs.saturation else []
        for slo in slos:  # an SLO far outside the data is named in the legend, not drawn
            ax.axhline(slo, color="red", linestyle=":", linewidth=1, label=f"SLO p99 {slo:g} ms")
        ax.set_ylim(min(lo, min([s for s in slos if s >= lo / 10], default=lo)),
                    max(hi, max([s for s in slos if s <= hi * 10], default=hi)))
        ax.set_xlabel("client requests per second")
        ax.set_ylabel("latency (ms)")
        ax.set_title(MODE_LABEL.get(mode, mode))
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("Performance: latency vs rate (ours solid, the seed's dashed)")
    fig.tight_layout()
    return fig


def _x_columns(df: pd.DataFrame) -> List[str]:
    """The level columns that take more than one value, in :data:`X_CANDIDATES` order."""
    return [c for c in X_CANDIDATES if c in df and pd.to_numeric(df[c], errors="coerce").nunique() > 1]


def _x_column(df: pd.DataFrame) -> Optional[str]:
    xs = _x_columns(df)
    return xs[0] if xs else None


def attainment(runs: Runs, experiments: Optional[Sequence[str]] = None):
    """SLO attainment (with its interval) vs whatever the levels vary (rate, CV, density, ...),
    one panel per experiment other than stress, a line per run and mode; None without any."""
    lv = runs.levels
    if not len(lv) or "attainment" not in lv:
        return None
    lv = lv[lv["attainment"].notna() & (lv["experiment"] != "stress")]
    exps = [e for e in dict.fromkeys(lv["experiment"]) if experiments is None or e in experiments]
    panels = [(e, x) for e in exps for x in _x_columns(lv[lv["experiment"] == e])]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.2), squeeze=False)
    for ax, (e, x) in zip(axes[0], panels):
        d = lv[lv["experiment"] == e]
        others = [c for c in _x_columns(d) if c != x]
        keys = (["run", "mode"] if "mode" in d else ["run", "experiment"]) + others
        for k, g in d.groupby(keys, sort=False):
            run, mode, *rest = k
            g = g.sort_values(x)
            gx = pd.to_numeric(g[x], errors="coerce")
            extra = "".join(f", {c} {v:g}" if isinstance(v, float) else f", {c} {v}" for c, v in zip(others, rest))
            ax.plot(gx, g["attainment"], marker="o", label=f"{run}: {MODE_LABEL.get(mode, mode)}{extra}")
            if "attainment_lo" in g:
                ax.fill_between(gx, g["attainment_lo"], g["attainment_hi"], alpha=0.15)
        targets = sorted(set(d["slo_target"].dropna())) if "slo_target" in d else []
        for t in targets:
            ax.axhline(t, color="red", linestyle=":", linewidth=1, label=f"target {t:.1%}")
        ax.set_xlabel(x)
        ax.set_ylabel("SLO attainment")
        ax.set_ylim(min(0.5, float(np.nanmin(d["attainment"])) - 0.02) if len(d) else 0, 1.005)
        if x in ("qps", "rate"):
            ax.set_xscale("log")
        ax.set_title(f"{e}: attainment vs {x}")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def experiment_levels(runs: Runs, experiment: str, stats_shown: Sequence[str] = ("p50", "p99")):
    """An experiment's levels (e.g. cold starts): p50/p99 vs what its levels vary, per run and mode;
    None when the experiment has no run or no varying level."""
    lv = runs.levels
    if not len(lv) or "experiment" not in lv:
        return None
    d = lv[lv["experiment"] == experiment]
    x = _x_column(d)
    shown = [s for s in stats_shown if s in d]
    if not len(d) or x is None or not shown:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for (run, mode), g in d.groupby(["run", "mode"] if "mode" in d else ["run", "experiment"], sort=False):
        g = g.sort_values(x)
        for s in shown:
            ax.plot(pd.to_numeric(g[x], errors="coerce"), g[s], marker="o", label=f"{run}: {mode} {s}")
    ax.set_xlabel(x)
    ax.set_ylabel("ms")
    ax.set_yscale("log")
    ax.set_title(f"{experiment}: latency vs {x}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _level_groups(run: Run):
    recs = run.records
    if not len(recs) or "latency_ms" not in recs:
        return recs, []
    meas = recs[~recs["warmup"].astype(bool)] if "warmup" in recs else recs
    meas = meas[meas["ok"].astype(bool)] if "ok" in meas else meas
    keys = [k for k in ("qps", "rate", "level") if k in meas]
    return meas, keys[:1]


def latency_histogram(run: Run):
    """Latency distribution of every level of one run: a log-binned histogram per mode, a step
    line per level (requests ok, warm-up excluded)."""
    meas, keys = _level_groups(run)
    if not len(meas) or "latency_ms" not in meas:
        return None
    modes = _modes_in(meas) or [None]
    fig, axes = plt.subplots(1, len(modes), figsize=(6 * len(modes), 3.8), squeeze=False)
    lat = meas["latency_ms"].to_numpy(float)
    lat = lat[lat > 0]
    if not lat.size:
        plt.close(fig)
        return None
    bins = np.logspace(np.log10(lat.min()), np.log10(lat.max() * 1.01), 60)
    for ax, mode in zip(axes[0], modes):
        d = meas if mode is None else meas[meas["mode"] == mode]
        for k, g in (d.groupby(keys, sort=True) if keys else [("all", d)]):
            k = k[0] if isinstance(k, tuple) else k
            ax.hist(g["latency_ms"], bins=bins, histtype="step", label=f"{keys[0] if keys else ''} {k:g}"
                    if isinstance(k, (int, float)) else str(k))
        ax.set_xscale("log")
        ax.set_xlabel("latency (ms)")
        ax.set_ylabel("requests")
        ax.set_title(f"{run.key}: {MODE_LABEL.get(mode, mode) if mode else ''}")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def percentile_spectrum(run: Run, percentiles: Sequence[float] = summ.SPECTRUM):
    """HDR-style percentile spectrum of every level of one run, to p99.99 and the max: x is
    1 / (1 - q) on a log axis (so p99 is at 100, p99.99 at 10,000), a line per level, its
    order-statistics interval shaded where the sample reaches."""
    meas, keys = _level_groups(run)
    if not len(meas) or "latency_ms" not in meas:
        return None
    modes = _modes_in(meas) or [None]
    fig, axes = plt.subplots(1, len(modes), figsize=(6 * len(modes), 3.8), squeeze=False)
    ticks = [q for q in (50, 90, 99, 99.9, 99.99)]
    for ax, mode in zip(axes[0], modes):
        d = meas if mode is None else meas[meas["mode"] == mode]
        for k, g in (d.groupby(keys, sort=True) if keys else [("all", d)]):
            k = k[0] if isinstance(k, tuple) else k
            sp = summ.spectrum(g["latency_ms"].to_numpy(float), percentiles)
            sp = sp[sp["percentile"] < 100]
            line, = ax.plot(sp["one_in"], sp["value"], marker=".",
                            label=f"{keys[0]} {k:g}" if keys and isinstance(k, (int, float)) else str(k))
            ok = sp["lo"].notna() & sp["hi"].notna()
            ax.fill_between(sp["one_in"][ok], sp["lo"][ok], sp["hi"][ok], alpha=0.15, color=line.get_color())
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks([1 / (1 - q / 100) for q in ticks])
        ax.set_xticklabels([f"p{q:g}" for q in ticks])
        ax.set_xlabel("percentile")
        ax.set_ylabel("latency (ms)")
        ax.set_title(f"{run.key}: {MODE_LABEL.get(mode, mode) if mode else ''}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
