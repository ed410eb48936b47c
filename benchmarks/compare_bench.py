"""False alarms and power of the run-vs-run verdict (mmslib.compare, issue #21).

    .venv/bin/python benchmarks/compare_bench.py [--tables 400]

Each "run" measures 3 rates (50, 100, 150 requests/s, 20 s levels after a 2 s warm-up, Poisson
arrivals) into a one-server queue (:mod:`mmslib.queueing`, exponential service, mean 4 ms), with
``repeats`` repeats. Every repeat also gets its own machine factor on the service time (lognormal,
sd ``--run-sd``, 5% by default): the run-to-run variation a quiet machine shows. Two runs are
compared on p50, p99 and attainment of a 25 ms SLO (9 comparisons per table) with
:func:`mmslib.compare.repeat_verdicts` (per-repeat statistics, Welch, Holm). Printed per number
of repeats: the share of tables with at least one "beyond" when nothing changed (family-wise
false alarms; target <= 5% wherever a verdict is given), the share of single comparisons called
"beyond", the share given a verdict at all, and the share of tables that call a planted 20%
slower service "beyond" on p50 at 150 requests/s (power).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mmslib import arrivals, compare, queueing  # noqa: E402

RATES = (50.0, 100.0, 150.0)
STATS = ("p50", "p99", "attainment")
SLO_MS = 25.0


def run_stats(rng, repeats, slowdown, run_sd, seconds):
    """per (rate, stat): the list of per-repeat values."""
    out = {(r, s): [] for r in RATES for s in STATS}
    for _ in range(repeats):
        machine = float(np.exp(rng.normal(0.0, run_sd)))
        for r in RATES:
            lv = queueing.level(rng, r, 1.0, seconds, service_ms=4.0 * machine * slowdown, arrival="poisson")
            x = lv.latency_ms[lv.measured]
            ok = np.ones(x.size, bool)
            for s in STATS:
                out[(r, s)].append(compare.stat_of(x, ok, s, SLO_MS))
    return out


def table(rng, repeats, slowdown_b, run_sd, seconds):
    a = run_stats(rng, repeats, 1.0, run_sd, seconds)
    b = run_stats(rng, repeats, slowdown_b, run_sd, seconds)
    keys = list(a)
    return keys, compare.repeat_verdicts([a[k] for k in keys], [b[k] for k in keys])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tables", type=int, default=400)
    ap.add_argument("--run-sd", type=float, default=0.05)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args(argv)
    t0 = time.time()
    print(f"{len(RATES)} rates x {len(STATS)} statistics per table, {a.seconds:g} s levels, run-to-run sd "
          f"{a.run_sd:.0%}; {a.tables} table pairs per row")
    print(f"{'repeats':>8}{'tables with a false beyond':>28}{'comparisons beyond':>20}{'given a verdict':>17}"
          f"{'power (20% slower, p50 @150)':>31}")
    for reps in (1, 3, 5):
        rng = arrivals.rng_for(a.seed, "compare_bench", reps)
        fa_tables = fa_rows = decided = rows = power = 0
        for _ in range(a.tables):
            keys, v = table(rng, reps, 1.0, a.run_sd, a.seconds)
            beyond = v["verdict"] == compare.BEYOND
            fa_tables += bool(beyond.any())
            fa_rows += int(beyond.sum())
            decided += int((~v["verdict"].str.startswith("unknown")).sum())
            rows += len(v)
            keys, v = table(rng, reps, 1.2, a.run_sd, a.seconds)
            power += v["verdict"].iloc[keys.index((150.0, "p50"))] == compare.BEYOND
        print(f"{reps:>8}{fa_tables / a.tables:>28.1%}{fa_rows / rows:>20.1%}{decided / rows:>17.0%}"
              f"{power / a.tables:>31.1%}")
    print(f"{time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
