"""Prints how long the report takes to read and recompute a large run (no assertions).

    .venv/bin/python benchmarks/report_bench.py [--requests 1000000] [--levels 10]

Writes a synthetic performance run (two modes x LEVELS rates, REQUESTS requests in all, lognormal
latencies) through mmslib.rundir.RunDir, then times: Run.load + records, the per-level summary with
intervals (mmslib.summary), report.collect (both summaries + saturation), the figures of one run
(histogram, spectrum), the two-run comparison and the summary export.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=1_000_000)
    ap.add_argument("--levels", type=int, default=10)
    a = ap.parse_args()
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mmslib import compare, export, report
    from mmslib.report import figures
    from mmslib.rundir import Run
    from runfactory import perf_run

    per = a.requests // (2 * a.levels)
    qps = tuple(float(25 * (i + 1)) for i in range(a.levels))
    d = Path(tempfile.mkdtemp(prefix="mmslib-report-bench-"))
    rng = np.random.default_rng(0)
    t = time.perf_counter()
    for name in ("a", "b"):
        perf_run(d / name, lambda m, q: rng.lognormal(np.log(3), 0.5, per), qps=qps, key=f"k-{name}")
    print(f"wrote 2 runs of {2 * a.levels * per:,} requests each in {time.perf_counter() - t:.1f} s ({d})")

    def timed(label, fn):
        t0 = time.perf_counter()
        out = fn()
        print(f"{label:<48} {time.perf_counter() - t0:7.2f} s")
        return out

    run = timed("Run.load + records (one run)", lambda: (lambda r: (r, len(r.records)))(Run.load(d / "a"))[0])
    timed("summary with intervals (one run)", lambda: run.summarize())
    timed("export summary.csv/json (one run)", lambda: export.write_run_summary(d / "a"))
    runs = timed("report.collect (both runs)", lambda: report.collect(d))
    timed("figures: histogram + spectrum (one run)",
          lambda: [plt.close(f) for f in (figures.latency_histogram(runs.get("a")),
                                          figures.percentile_spectrum(runs.get("a")))])
    timed("compare a vs b", lambda: compare.compare(d / "a", d / "b"))
    shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
