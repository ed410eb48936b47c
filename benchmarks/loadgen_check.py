"""Checks mmslib's generator against an independent one: MLCommons LoadGen.

    .venv/bin/python benchmarks/loadgen_check.py [--rate 50] [--seconds 30] [--repeat 1]

One local KServe ModelServer (simple_string, models m0 and m1) on loopback.
Then, in turn, at the same Poisson rate:

* **ours**: a Poisson schedule (mmslib.arrivals) replayed by k6
  (mmslib.loadgen.replay); latency counted from the *scheduled* time, as
  LoadGen counts it;
* **LoadGen**: MLCommons LoadGen's Python bindings (``mlcommons-loadgen``),
  Server scenario (Poisson arrivals), PerformanceOnly mode; the SUT sends each
  query as one V2 REST request from a pool of threads, each with its own
  keep-alive connection, and completes it when the answer arrives. LoadGen's
  own summary (``mlperf_log_summary.txt``) gives its p50 and p99.

Prints both p50/p99 and whether they agree within 10%. Figures, not
assertions: a busy machine shows in the output (load average printed).
The two clients differ (Go k6 vs a Python SUT), so the comparison also bounds
what the client adds to the latency at this rate.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from mmslib import arrivals, loadgen
from mmslib.backends.local import serve
from mmslib.v2 import request_body

MODELS = ["m0", "m1"]


def ours(backend, sample, rate, seconds, seed, generator="k6"):
    srv = backend.server()
    body = request_body(sample.inputs)
    expect = {k: np.asarray(v).ravel().tolist() for k, v in sample.expected.items()}
    targets = [loadgen.Target(f"{srv.rest_url}/v2/models/{m}/infer", m, body, expect=expect) for m in MODELS]
    s = arrivals.make_schedule(MODELS, rate, seconds, warmup_s=2.0, arrival="poisson", seed=seed)
    r = loadgen.replay(targets, s, generator=generator)
    m = r.records[~r.records["warmup"]]
    lat = m.loc[m["ok"], "latency_sched_ms"].to_numpy()
    return {"n": len(m), "errors": int((~m["ok"]).sum()), "p50": float(np.percentile(lat, 50)),
            "p99": float(np.percentile(lat, 99)), "lateness_p99": float(np.percentile(m["lateness_ms"], 99)),
            "cpu_ms_per_request": r.cpu_ms_per_request}


def mlperf(backend, sample, rate, seconds, seed, workdir: Path):
    import mlperf_loadgen as lg

    srv = backend.server()
    host, port = "127.0.0.1", srv.http_port
    payload = json.dumps(request_body(sample.inputs)).encode()
    local = threading.local()
    errors = []

    def conn():
        c = getattr(local, "c", None)
        if c is None:
            c = local.c = http.client.HTTPConnection(host, port, timeout=10)
        return c

    def send(q):
        model = MODELS[q.index % len(MODELS)]
        ok = False
        for attempt in range(2):  # a keep-alive connection the server closed: reconnect once
            try:
                c = conn()
                c.request("POST", f"/v2/models/{model}/infer", payload, {"Content-Type": "application/json"})
                resp = c.getresponse()
                ok = resp.status == 200 and b"OUTPUT0" in resp.read()
                break
            except (OSError, http.client.HTTPException):
                local.c = None
        if not ok:
            errors.append(q.id)
        lg.QuerySamplesComplete([lg.QuerySampleResponse(q.id, 0, 0)])

    pool = ThreadPoolExecutor(max_workers=64)

    def issue(queries):
        for q in queries:
            pool.submit(send, q)

    sut = lg.ConstructSUT(issue, lambda: None)
    qsl = lg.ConstructQSL(1024, 1024, lambda idx: None, lambda idx: None)
    settings = lg.TestSettings()
    settings.scenario = lg.TestScenario.Server
    settings.mode = lg.TestMode.PerformanceOnly
    settings.server_target_qps = float(rate)
    settings.server_target_latency_ns = int(100e6)
    settings.min_duration_ms = int(seconds * 1000)
    settings.max_duration_ms = int(seconds * 1000 * 3)
    settings.min_query_count = int(rate * seconds)
    settings.schedule_rng_seed = int(seed) + 1
    log = lg.LogSettings()
    log.log_output.outdir = str(workdir)
    log.log_output.copy_summary_to_stdout = False
    t0 = time.time()
    lg.StartTestWithLogSettings(sut, qsl, settings, log)
    wall = time.time() - t0
    pool.shutdown(wait=True)
    lg.DestroyQSL(qsl)
    lg.DestroySUT(sut)
    text = (workdir / "mlperf_log_summary.txt").read_text()

    def ns(label):
        m = re.search(rf"^{re.escape(label)}\s*:\s*([0-9.]+)", text, re.M)
        return float(m.group(1)) / 1e6 if m else float("nan")

    n = re.search(r"^Completed samples per second\s*:\s*([0-9.]+)", text, re.M)
    return {"p50": ns("50.00 percentile latency (ns)"), "p99": ns("99.00 percentile latency (ns)"),
            "achieved_qps": float(n.group(1)) if n else float("nan"), "errors": len(errors), "wall_s": wall}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=50.0, help="Poisson rate, requests/s (moderate: the server idles)")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--repeat", type=int, default=1, help="alternate ours / LoadGen this many times")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--generator", default="k6", choices=loadgen.GENERATORS, help="mmslib's generator")
    a = ap.parse_args()
    loadgen.check_generator(a.generator)
    label = f"mmslib ({a.generator} replay)"
    with tempfile.TemporaryDirectory(prefix="mmslib-loadgen-check-") as tmp:
        with serve("simple_string", MODELS, Path(tmp) / "server") as backend:
            sample = backend.workload.make_sample(np.random.default_rng(0))
            rows = []
            for i in range(a.repeat):
                o = ours(backend, sample, a.rate, a.seconds, a.seed + i, a.generator)
                w = Path(tmp) / f"mlperf{i}"
                w.mkdir()
                m = mlperf(backend, sample, a.rate, a.seconds, a.seed + i, w)
                rows.append((o, m))
    print(f"load average now {os.getloadavg()[0]:.2f}; {os.cpu_count()} CPUs; Poisson {a.rate:g}/s, "
          f"{a.seconds:g} s per run, KServe ModelServer (simple_string, REST)")
    print(f"{'run':>3} {'generator':28} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}  notes")
    for i, (o, m) in enumerate(rows):
        print(f"{i:3d} {label:28} {o['p50']:8.3f} {o['p99']:8.3f} {o['errors']:7d}  "
              f"{o['n']} requests, lateness p99 {o['lateness_p99']:.2f} ms, "
              f"generator CPU {o['cpu_ms_per_request']:.3f} ms/request")
        print(f"{i:3d} {'MLCommons LoadGen (Server)':28} {m['p50']:8.3f} {m['p99']:8.3f} {m['errors']:7d}  "
              f"{m['achieved_qps']:.1f} completed/s")
        for q in ("p50", "p99"):
            d = (o[q] - m[q]) / m[q]
            print(f"    {q}: ours / LoadGen - 1 = {d:+.1%} -> {'within' if abs(d) <= 0.10 else 'NOT within'} 10%")
    if len(rows) > 1:
        print(f"median of {len(rows)} runs (and run-to-run range):")
        for q in ("p50", "p99"):
            o = [r[0][q] for r in rows]
            m = [r[1][q] for r in rows]
            d = (np.median(o) - np.median(m)) / np.median(m)
            print(f"    {q}: ours {np.median(o):.3f} [{min(o):.3f}, {max(o):.3f}] ms, LoadGen {np.median(m):.3f} "
                  f"[{min(m):.3f}, {max(m):.3f}] ms: {d:+.1%} -> {'within' if abs(d) <= 0.10 else 'NOT within'} 10%")


if __name__ == "__main__":
    main()
