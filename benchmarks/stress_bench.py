"""Prints deploy rate and memory per model for both modes on this machine.

    .venv/bin/python benchmarks/stress_bench.py [--models 10000] [--runtime kserve]

Figures, not assertions: traditional deploys until its memory budget, mms
deploys ``--models`` models into one host.
"""
from __future__ import annotations

import argparse
import tempfile

from mmslib import params, stress


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", type=int, default=10000)
    ap.add_argument("--runtime", default="kserve")
    ap.add_argument("--memory-budget", default="4Gi")
    ap.add_argument("--concurrency", type=int, default=4)
    a = ap.parse_args()
    out = tempfile.mkdtemp(prefix="mmslib-stress-bench-")
    p = params.stress(models=a.models, runtime=a.runtime, memory_budget=a.memory_budget,
                      deploy_concurrency=a.concurrency, output_dir=out, verify_sample=100)
    r = stress.run(p, progress=False)
    print(f"runtime={a.runtime} models={a.models} budget={a.memory_budget} (records: {out})")
    print(f"{'mode':12} {'models':>7} {'stopped by':>15} {'deploy s':>9} {'models/s':>9} "
          f"{'ready p50 ms':>12} {'PSS MiB':>9} {'PSS/model MiB':>14} {'verified':>9}")
    for s in r.summary.itertuples():
        print(f"{s.mode:12} {s.models_deployed:7d} {s.stop_reason:>15} {s.deploy_wall_s:9.1f} "
              f"{s.deploy_rate_per_s:9.1f} {s.ready_p50_s * 1e3:12.1f} {s.pss_mib:9.1f} "
              f"{s.pss_per_model_mib:14.3f} {s.verified_correct:4d}/{s.verified_sampled:<4d}")
    c = stress.compare(r.summary)
    if "mms_over_traditional" in c:
        print(f"mms / traditional models: {c['mms_over_traditional']:.1f}x; "
              f"PSS per model traditional / mms: {c['pss_per_model_mib_ratio']:.0f}x")


if __name__ == "__main__":
    main()
