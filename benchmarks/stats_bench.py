"""Time mmslib.stats (and mmslib.intervals) on 1,000,000 synthetic per-request records.

Not a test: prints timings.  Target: summarize() well under 5 s.

    .venv/bin/python benchmarks/stats_bench.py [n_records]
"""

from __future__ import annotations

import sys
import time

import numpy as np
import pandas as pd

from mmslib import intervals, stats


def synthetic(n_records: int = 1_000_000, seed: int = 0):
    """Records and levels for 2 modes x 7 rates x 3 repeats, 60 s each
    (10 s of warm-up + 50 s measured), request counts proportional to the rate."""
    rng = np.random.default_rng(seed)
    modes, rates, repeats, dur, warm = ["traditional", "mms"], [25, 50, 100, 150, 200, 250, 500], 3, 60.0, 10.0
    cells = [(m, q, r) for m in modes for q in rates for r in range(repeats)]
    weights = np.array([q for _, q, _ in cells], float)
    per_cell = np.floor(n_records * weights / weights.sum()).astype(int)
    per_cell[-1] += n_records - per_cell.sum()
    cell_idx = np.repeat(np.arange(len(cells)), per_cell)
    # position of each request within its cell -> start time at the cell's rate
    pos = np.arange(n_records) - np.repeat(np.cumsum(per_cell) - per_cell, per_cell)
    rate = per_cell[cell_idx] / dur
    t0 = 1.7e9 + cell_idx * 100.0
    t = t0 + pos / rate
    ok = rng.random(n_records) > 0.001
    records = pd.DataFrame({
        "t_unix": t,
        "latency_ms": rng.lognormal(1.2, 0.4, n_records),
        "status": np.where(ok, 200, 503).astype(np.int64),
        "ok": ok,
        "model": pd.Categorical.from_codes(rng.integers(0, 5, n_records),
                                           [f"model-{i}" for i in range(5)]).astype(str),
        "endpoint": "http://localhost:8080",
        "warmup": (t - t0) < warm,
        "mode": np.array([c[0] for c in cells], dtype=object)[cell_idx],
        "qps": np.array([c[1] for c in cells], float)[cell_idx],
        "repeat": np.array([c[2] for c in cells], np.int64)[cell_idx],
    })
    levels = pd.DataFrame({
        "mode": [c[0] for c in cells], "qps": [float(c[1]) for c in cells],
        "repeat": [c[2] for c in cells], "target_qps": per_cell / dur,
        "duration_s": dur - warm, "warmup_s": warm,  # loadgen: duration_s excludes warm-up
        "iterations": per_cell, "dropped_iterations": 0,
    })
    return records, levels


def main(n: int = 1_000_000) -> None:
    t = time.perf_counter()
    records, levels = synthetic(n)
    print(f"built {len(records):,} records in {time.perf_counter() - t:.2f} s")
    timings = {}
    for name, fn in [
        ("summarize", lambda: stats.summarize(records, levels,
                                              n_servers={"traditional": 5, "mms": 1},
                                              n_models=5)),
        ("summarize by model", lambda: stats.summarize(records, levels,
                                                       by=("mode", "qps", "repeat", "model"))),
        ("latency_timeseries", lambda: stats.latency_timeseries(records, bin_s=1.0)),
        ("bootstrap_ci p99 (100k)", lambda: intervals.bootstrap_ci(
            records["latency_ms"].to_numpy()[:100_000], 0.99, n_boot=10_000)),
        ("bootstrap_ci mean (100k, 2000)", lambda: intervals.bootstrap_ci(
            records["latency_ms"].to_numpy()[:100_000], "mean", n_boot=2000)),
    ]:
        t = time.perf_counter()
        out = fn()
        timings[name] = time.perf_counter() - t
        rows = len(out) if hasattr(out, "__len__") and not isinstance(out, tuple) else out
        print(f"{name:32s} {timings[name]:6.3f} s  -> {rows}")
    s = stats.summarize(records, levels)
    print(f"summary: {len(s)} rows, all valid: {bool(s['valid'].all())}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
