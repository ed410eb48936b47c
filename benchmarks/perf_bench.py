"""Prints the highest rate k6 sustains against 5 local models, per mode.

    .venv/bin/python benchmarks/perf_bench.py [--levels 100,200,400,600,800,1000] [--level-s 5]

traditional = 5 single-model servers, mms = one host with 5 models (kserve
runtime, REST, answers checked). A rate is sustained when the level is valid:
achieved within 1% of target and at most 1% dropped iterations (see
mmslib.stats). Figures, not assertions; the machine's load shows in the output.
"""
from __future__ import annotations

import argparse
import os
import tempfile

from mmslib import params, performance


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--levels", default="100,200,400,600,800,1000")
    ap.add_argument("--level-s", type=float, default=5.0)
    ap.add_argument("--pin", action="store_true", help="cpu_isolation: k6 and servers on disjoint cores")
    a = ap.parse_args()
    qps = [float(x) for x in a.levels.split(",")]
    p = params.performance(models=5, qps=qps, duration_s=a.level_s, warmup_s=1.0, cpu_isolation=a.pin,
                           output_dir=tempfile.mkdtemp(prefix="mmslib-perf-bench-"))
    r = performance.run(p, progress=False)
    s = r.summary.sort_values(["mode", "qps"])
    print(f"load average now {os.getloadavg()[0]:.2f}; records in {p.output_dir}")
    print(f"{'mode':12} {'target':>7} {'achieved':>9} {'dropped':>8} {'valid':>6} {'p50 ms':>8} {'p99 ms':>8}")
    for x in s.itertuples():
        print(f"{x.mode:12} {x.qps:7.0f} {x.achieved_qps:9.1f} {x.dropped:8d} {str(x.valid):>6} {x.p50:8.2f} {x.p99:8.2f}")
    for mode, g in s.groupby("mode"):
        ok = g[g["valid"] & (g["errors"] == 0)]["qps"]
        top = ok.max() if len(ok) else float("nan")
        print(f"highest sustained rate, {mode}: {top:g} QPS")


if __name__ == "__main__":
    main()
