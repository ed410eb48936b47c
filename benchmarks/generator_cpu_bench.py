"""Prints the load generator's own CPU per request: k6 vs the Go generator, and before.

    .venv/bin/python benchmarks/generator_cpu_bench.py [--generator go|k6|both] \
        [--rates 150,500,1000,2500] [--seconds 10] [--pin] [--before] [--k6-script OLD.js]

One local KServe ModelServer (simple_string, 2 models, REST, answers checked).
At each rate, in turn, a Poisson schedule replayed by ``loadgen.replay`` with

* ``k6``: one VU, timers and asynchronous requests, one short log line per
  request written in batches (mmslib/k6/replay.js);
* ``go``: :mod:`mmslib.gogen`, one goroutine per request, kept-alive
  connections, binary records (mmslib/gogen/replay.go);
* with ``--k6-script OLD.js``: also k6 replaying with that script instead of
  mmslib's (e.g. an earlier version: ``git show REV:mmslib/k6/replay.js >
  /tmp/old.js``), row ``replay: k6 (OLD.js)``, run back to back with the others;
* with ``--before``: also ``loadgen.run_level`` -- k6's
  ``constant-arrival-rate`` executor with a VU pool and k6's per-sample CSV
  output (the generator of the performance experiment, issue 12's "before").

The generator's CPU is its user + system time (``getrusage`` of the reaped
child: the whole process, start-up included). "per request" divides it by the
requests sent; "marginal" first subtracts the fixed cost of starting and
ending it, measured by a run of a one-request schedule. Python's parsing of the
output happens after the generator and is printed separately. "kept": the
level kept its schedule by the traffic experiment's rule (every request sent,
lateness p99 within ``TrafficParams.lateness_p99_ms``). Both generators run at
each rate back to back, so they see the same machine load; "go/k6" is the
ratio of their CPU per request. Target (issue 12): at most 0.3 ms of generator
CPU per REST request on this machine. Figures, not assertions; the server
shares the 2 cores, so at high rates it (not the generator) may fall behind:
the p50 column shows it.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from mmslib import arrivals, loadgen
from mmslib import replay as replay_mod
from mmslib.backends.local import serve
from mmslib.params import TrafficParams
from mmslib.v2 import request_body

MODELS = ["m0", "m1"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--generator", default="both", choices=("both",) + loadgen.GENERATORS)
    ap.add_argument("--rates", default="150,500,1000,2500")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--pin", action="store_true", help="pin the generator to the last CPU and the server to the others")
    ap.add_argument("--before", action="store_true", help="also run_level (k6 VU pool + CSV output)")
    ap.add_argument("--k6-script", default=None, help="also replay with this k6 script (an older replay.js)")
    a = ap.parse_args()
    gens = loadgen.GENERATORS if a.generator == "both" else (a.generator,)
    for g in gens:
        loadgen.check_generator(g)
    scripts = {g: None for g in gens}  # row name -> k6 script text to use (None: mmslib's own)
    if a.k6_script:
        scripts[f"k6 ({Path(a.k6_script).name})"] = Path(a.k6_script).read_text()
    own_js = replay_mod._REPLAY_JS

    def run(name, sched):
        replay_mod._REPLAY_JS = scripts[name] or own_js
        try:
            return loadgen.replay(targets, sched, cpu_affinity=gen_cpus, generator="go" if name == "go" else "k6")
        finally:
            replay_mod._REPLAY_JS = own_js
    rates = [float(x) for x in a.rates.split(",")]
    bound = TrafficParams.lateness_p99_ms
    cpus = sorted(os.sched_getaffinity(0))
    gen_cpus = cpus[-1:] if a.pin and len(cpus) > 1 else None
    srv_cpus = cpus[:-1] if a.pin and len(cpus) > 1 else None
    rows, fixed, per_req = [], {}, {}
    with tempfile.TemporaryDirectory(prefix="mmslib-gencpu-") as tmp:
        with serve("simple_string", MODELS, Path(tmp) / "server", cpus=srv_cpus) as backend:
            srv = backend.server()
            sample = backend.workload.make_sample(np.random.default_rng(0))
            body = request_body(sample.inputs)
            expect = {k: np.asarray(v).ravel().tolist() for k, v in sample.expected.items()}
            targets = [loadgen.Target(f"{srv.rest_url}/v2/models/{m}/infer", m, body, expect=expect)
                       for m in MODELS]
            one = arrivals.make_schedule(MODELS, 1, 1, arrival="constant")
            for g in scripts:  # fixed costs: start-up and shut-down with a single request (go: built here)
                fixed[g] = run(g, one).cpu_s
            if a.before:
                fixed["before"] = loadgen.run_level(targets, 1, 1, cpu_affinity=gen_cpus).cpu_s
            for rate in rates:
                if a.before:
                    t = time.time()
                    b = loadgen.run_level(targets, rate, a.seconds, cpu_affinity=gen_cpus)
                    rec = b.records
                    rows.append(("before: k6 run_level", rate, len(rec), b.cpu_s, fixed["before"],
                                 time.time() - t - b.wall_s, float(rec["ok"].mean()),
                                 float(np.percentile(rec["latency_ms"], 50)), float("nan"), float("nan"),
                                 b.dropped_iterations, -1))
                s = arrivals.make_schedule(MODELS, rate, a.seconds, arrival="poisson", seed=int(rate))
                for g in scripts:
                    t = time.time()
                    r = run(g, s)
                    rec = r.records
                    late = rec["lateness_ms"].dropna()
                    rows.append((f"replay: {g}", rate, r.sent, r.cpu_s, fixed[g], time.time() - t - r.wall_s,
                                 float(rec["ok"].mean()), float(np.nanpercentile(rec["latency_ms"], 50)),
                                 float(np.percentile(late, 99)) if len(late) else float("nan"),
                                 float(late.min()) if len(late) else float("nan"), r.unsent, r.early_wakeups))
                    per_req[(g, rate)] = r.cpu_s / max(1, r.sent)
    print(f"load average now {os.getloadavg()[0]:.2f}; {len(cpus)} CPUs; generator pinned to "
          f"{gen_cpus or 'any CPU'}; {a.seconds:g} s per level; REST, answers checked")
    print("fixed CPU (one-request run): " + ", ".join(f"{g} {c:.3f} s" for g, c in fixed.items()))
    print(f"{'generator':30} {'rate':>6} {'requests':>9} {'CPU s':>7} {'ms/req':>7} {'marginal':>9} "
          f"{'parse s':>8} {'ok':>6} {'p50 ms':>8} {'late p99':>9} {'late min':>9} {'unsent':>7} "
          f"{'early wk':>8} {'kept':>5}")
    for name, rate, n, cpu, fx, parse, ok, p50, lp99, lmin, uns, early in rows:
        kept = "-" if name.startswith("before") else ("yes" if uns == 0 and lp99 <= bound else "NO")
        print(f"{name:30} {rate:6.0f} {n:9d} {cpu:7.3f} {1e3 * cpu / max(1, n):7.3f} "
              f"{1e3 * (cpu - fx) / max(1, n):9.3f} {parse:8.2f} {ok:6.3f} {p50:8.2f} {lp99:9.2f} {lmin:9.3f} "
              f"{uns:7d} {early if early >= 0 else '-':>8} {kept:>5}")
    if len(gens) == 2:
        print("go/k6 CPU per request: " + ", ".join(
            f"{r:g}/s {per_req[('go', r)] / per_req[('k6', r)]:.2f}" for r in rates))
    if a.k6_script:
        old = f"k6 ({Path(a.k6_script).name})"
        if "k6" in scripts:
            print(f"k6 CPU per request, mmslib's script / {old}: " + ", ".join(
                f"{r:g}/s {per_req[('k6', r)] / per_req[(old, r)]:.2f}" for r in rates))
    print(f"target: <= 0.3 ms of generator CPU per REST request; kept: every request sent and "
          f"lateness p99 <= {bound:g} ms; late min < 0: a request sent before its time; "
          f"early wk: timer wake-ups before the next request was due (-: not reported)")


if __name__ == "__main__":
    main()
