"""Prints the load generator's own CPU per request, before and after.

    .venv/bin/python benchmarks/generator_cpu_bench.py [--rates 100,500,1000] [--seconds 10] [--pin]

One local KServe ModelServer (simple_string, 2 models, REST, answers checked).
At each rate, in turn:

* **before**: ``loadgen.run_level`` -- k6's ``constant-arrival-rate`` executor
  with a VU pool and k6's per-sample CSV output (14 lines per request) parsed
  afterwards (the generator of the performance experiment);
* **after**: ``loadgen.replay`` of a Poisson schedule -- one VU, timers and
  asynchronous requests, one short log line per request written in batches.

k6's CPU is its user + system time (``getrusage`` of the reaped child, i.e.
the whole k6 process: start-up, JavaScript, HTTP client, output). "per request"
divides it by the requests sent; "marginal" first subtracts the fixed cost of
starting k6 and ending it, measured by a run of a one-request schedule.
Python's parsing of the output happens after k6 and is printed separately.
Target (issue 12): at most 0.3 ms of generator CPU per REST request on this
machine. Figures, not assertions; the machine's load shows in the output.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from mmslib import arrivals, loadgen
from mmslib.backends.local import serve
from mmslib.v2 import request_body

MODELS = ["m0", "m1"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rates", default="100,500,1000")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--pin", action="store_true", help="pin k6 to the last CPU and the server to the others")
    a = ap.parse_args()
    rates = [float(x) for x in a.rates.split(",")]
    cpus = sorted(os.sched_getaffinity(0))
    k6_cpus = cpus[-1:] if a.pin and len(cpus) > 1 else None
    srv_cpus = cpus[:-1] if a.pin and len(cpus) > 1 else None
    rows = []
    with tempfile.TemporaryDirectory(prefix="mmslib-gencpu-") as tmp:
        with serve("simple_string", MODELS, Path(tmp) / "server", cpus=srv_cpus) as backend:
            srv = backend.server()
            sample = backend.workload.make_sample(np.random.default_rng(0))
            body = request_body(sample.inputs)
            expect = {k: np.asarray(v).ravel().tolist() for k, v in sample.expected.items()}
            targets = [loadgen.Target(f"{srv.rest_url}/v2/models/{m}/infer", m, body, expect=expect)
                       for m in MODELS]
            # fixed costs: k6 start-up and shut-down with a single request
            one = loadgen.replay(targets, arrivals.make_schedule(MODELS, 1, 1, arrival="constant"),
                                 cpu_affinity=k6_cpus)
            fixed_after = one.cpu_s
            one_b = loadgen.run_level(targets, 1, 1, cpu_affinity=k6_cpus)
            fixed_before = one_b.cpu_s
            for rate in rates:
                t = time.time()
                b = loadgen.run_level(targets, rate, a.seconds, cpu_affinity=k6_cpus)
                parse_b = time.time() - t - b.wall_s
                rec = b.records
                rows.append(("before: run_level (VU pool + CSV)", rate, len(rec), b.cpu_s, fixed_before,
                             parse_b, float(rec["ok"].mean()), float(np.percentile(rec["latency_ms"], 50)),
                             b.dropped_iterations))
                s = arrivals.make_schedule(MODELS, rate, a.seconds, arrival="poisson", seed=int(rate))
                t = time.time()
                r = loadgen.replay(targets, s, cpu_affinity=k6_cpus)
                parse_r = time.time() - t - r.wall_s
                rec = r.records
                rows.append(("after: replay (timers + async)", rate, r.sent, r.cpu_s, fixed_after, parse_r,
                             float(rec["ok"].mean()), float(np.nanpercentile(rec["latency_ms"], 50)), r.unsent))
    print(f"load average now {os.getloadavg()[0]:.2f}; {len(cpus)} CPUs; k6 pinned to {k6_cpus or 'any CPU'}; "
          f"{a.seconds:g} s per level; REST, answers checked")
    print(f"fixed k6 CPU (one-request run): before {fixed_before:.3f} s, after {fixed_after:.3f} s")
    print(f"{'generator':36} {'rate':>6} {'requests':>9} {'k6 CPU s':>9} {'ms/req':>7} {'marginal':>9} "
          f"{'parse s':>8} {'ok':>6} {'p50 ms':>7} {'dropped':>8}")
    for name, rate, n, cpu, fixed, parse, ok, p50, dropped in rows:
        print(f"{name:36} {rate:6.0f} {n:9d} {cpu:9.3f} {1e3 * cpu / max(1, n):7.3f} "
              f"{1e3 * (cpu - fixed) / max(1, n):9.3f} {parse:8.2f} {ok:6.3f} {p50:7.2f} {dropped:8d}")
    print("target: <= 0.3 ms of generator CPU per REST request")


if __name__ == "__main__":
    main()
