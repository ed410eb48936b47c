"""How fast the cluster simulator is: 1,000,000 models, 10 minutes at 1,000 QPS.

    .venv/bin/python benchmarks/simulate_bench.py [--models 1000000] [--rate 1000] [--duration 600]

Prints the time to build the schedule and to simulate it (target: under 60 s
together on a 2-core machine), and what the run found.
"""
from __future__ import annotations

import argparse
import time

from mmslib import simulate as sim


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=1_000_000)
    ap.add_argument("--rate", type=float, default=1000.0)
    ap.add_argument("--duration", type=float, default=600.0)
    ap.add_argument("--hosts", type=int, default=100)
    ap.add_argument("--capacity", type=int, default=2000, help="models per host")
    ap.add_argument("--alpha", type=float, default=1.0)
    args = ap.parse_args()
    service, load = sim.Exponential(0.002), sim.Exponential(0.010)  # 2 ms inference, 10 ms load
    t0 = time.perf_counter()
    sched = sim.arrival_schedule(args.rate, args.duration, args.models, args.alpha, seed=0)
    t1 = time.perf_counter()
    res = sim.simulate(sched, args.hosts, args.capacity, service, load, seed=1)
    t2 = time.perf_counter()
    s = res.summary(slo_s=0.05, skip=len(sched) // 10)
    print(f"{args.models:,} models, {args.hosts} hosts x {args.capacity} models, Zipf {args.alpha}, "
          f"{args.rate:g} QPS for {args.duration:g} s: {len(sched):,} requests")
    print(f"schedule {t1 - t0:.2f} s + simulation {t2 - t1:.2f} s = {t2 - t0:.2f} s "
          f"({len(sched) / (t2 - t1):,.0f} requests/s simulated); target < 60 s: "
          f"{'met' if t2 - t0 < 60 else 'NOT met'}")
    print(f"hit rate {s['hit_rate']:.4f}, cold starts {s['cold_starts']:,}, p99 {s['p99_ms']:.2f} ms, "
          f"attainment (50 ms) {s['attainment']:.4f}")


if __name__ == "__main__":
    main()
