"""Load-generator benchmark: parse speed and the highest rate k6 sustains here.

1. Parse speed: writes a synthetic k6 ``--out csv`` file in the exact format
   :func:`mmslib.loadgen.run_level` produces (same columns, same metrics per
   request, same tag/metadata encoding; 14 sample lines per REST request, of
   which one ``http_req_duration`` and one ``checks`` are used) and times
   :func:`mmslib.loadgen.parse_k6_csv` on (a) 1,000,000 CSV rows and (b) the
   file 1,000,000 requests produce.
2. Max sustained rate: starts one local KServe ModelServer with 5
   ``simple_string`` models and runs a ramp of short levels (REST, uniform
   split, outputs checked) until k6 no longer holds the rate (achieved within
   1 % of target and no dropped iterations, in one of ``--tries`` attempts);
   prints one line per attempt with k6's and the server's CPU use. Only the
   load-generator side is judged here: errors and latency are printed, not
   asserted. On a 2-core machine k6 and the server share the CPUs, so the
   server's latency spikes (which make k6 drop iterations when all its VUs
   wait) usually set the limit.

Run: ``.venv/bin/python benchmarks/loadgen_bench.py [--skip-parse] [--skip-rate]
[--levels 100,200,...] [--level-s 5] [--protocol rest|grpc]``.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mmslib.backends.local import serve  # noqa: E402
from mmslib.loadgen import Target, parse_k6_csv, run_level  # noqa: E402

REST_METRICS = ["http_reqs", "http_req_duration", "http_req_blocked", "http_req_connecting",
                "http_req_tls_handshaking", "http_req_sending", "http_req_waiting",
                "http_req_receiving", "http_req_failed", "checks", "data_sent", "data_received",
                "iteration_duration", "iterations"]
HEADER = "metric_name,timestamp,metric_value,error_code,status,extra_tags,metadata"


def _fixed6(v: np.ndarray):
    """Format like Go's %f (k6's CSV values): 6 decimals, vectorized."""
    import pyarrow as pa
    import pyarrow.compute as pc

    micro = np.round(v * 1e6).astype(np.int64)
    whole = pc.cast(pa.array(micro // 1_000_000), pa.string())
    frac = pc.utf8_lpad(pc.cast(pa.array(micro % 1_000_000), pa.string()), 6, "0")
    return pc.binary_join_element_wise(whole, frac, ".")


def synth_k6_csv(path: Path, n_requests: int, n_models: int = 5, qps: float = 2500.0,
                 seed: int = 0) -> int:
    """Write the k6 CSV ``n_requests`` REST requests give; returns rows written."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(seed)
    m = len(REST_METRICS)
    t0 = 1_795_000_000_000_000
    start = t0 + (np.arange(n_requests) * (1e6 / qps)).astype(np.int64)
    lat = np.round(rng.lognormal(np.log(3.0), 0.4, n_requests), 6)
    end = start + (lat * 1000).astype(np.int64)
    model = rng.integers(0, n_models, n_requests)
    warm = np.arange(n_requests) < n_requests // 60
    # k6 writes a tag set's keys in Go map order: vary it like k6 does
    orders = [("model", "endpoint", "warmup"), ("warmup", "model", "endpoint"),
              ("endpoint", "warmup", "model")]
    tag_strings, tag_idx = [], {}
    for mi in range(n_models):
        for w in (False, True):
            for o in range(len(orders)):
                vals = {"model": f"m{mi}", "endpoint": "http://127.0.0.1:8080",
                        "warmup": "true" if w else "false"}
                tag_idx[(mi, w, o)] = len(tag_strings)
                tag_strings.append("&".join(f"{k}={vals[k]}" for k in orders[o]))
    per_req_order = rng.integers(0, len(orders), (n_requests, m))
    idx = np.empty((n_requests, m), dtype=np.int32)
    for mi in range(n_models):
        for w in (False, True):
            sel = (model == mi) & (warm == w)
            for o in range(len(orders)):
                idx[sel] = np.where(per_req_order[sel] == o, tag_idx[(mi, w, o)], idx[sel])
    values = np.empty((n_requests, m))
    values[:, 0] = 1.0
    values[:, 1] = lat
    values[:, 2:9] = np.round(lat[:, None] * rng.uniform(0, 0.3, (n_requests, 7)), 6)
    values[:, 8] = 0.0
    values[:, 9] = 1.0
    values[:, 10] = 511.0
    values[:, 11] = 566.0
    values[:, 12] = np.round(lat + 0.2, 6)
    values[:, 13] = 1.0
    ts = np.repeat(end, m).reshape(n_requests, m).copy()
    ts[:, 9:] += 300  # check and iteration samples come a bit later
    has_tags = np.zeros(m, dtype=bool)
    has_tags[:10] = True  # data_*/iteration* samples carry no request tags
    status = np.where(has_tags[None, :].repeat(n_requests, 0), "200", "")
    status[:, 9] = ""  # the checks sample has no status
    tags_arr = pa.DictionaryArray.from_arrays(
        pa.array(np.where(has_tags[None, :], idx, -1).ravel(), mask=~np.tile(has_tags, n_requests)),
        pa.array(tag_strings))
    rid = pc.binary_join_element_wise(pa.array(np.full(n_requests * m, "rid=")),
                                      pc.cast(pa.array(np.repeat(np.arange(n_requests), m)), pa.string()), "")
    table = pa.table({
        "metric_name": pa.array(np.tile(np.array(REST_METRICS), n_requests)),
        "timestamp": pa.array(ts.ravel()),
        "metric_value": _fixed6(values.ravel()),
        "error_code": pa.nulls(n_requests * m, pa.string()),
        "status": pa.array(status.ravel()),
        "extra_tags": pc.cast(tags_arr, pa.string()),
        "metadata": rid,
    })
    with open(path, "wb") as f:
        f.write((HEADER + "\n").encode())
        pacsv.write_csv(table, f, pacsv.WriteOptions(include_header=False, quoting_style="none"))
    return n_requests * m


def bench_parse(tmp: Path) -> None:
    for label, n_req in (("1,000,000 CSV rows", 1_000_000 // len(REST_METRICS) + 1),
                         ("1,000,000 requests", 1_000_000)):
        path = tmp / f"synth_{n_req}.csv"
        t = time.perf_counter()
        rows = synth_k6_csv(path, n_req)
        gen = time.perf_counter() - t
        best = None
        for _ in range(2):
            t = time.perf_counter()
            df = parse_k6_csv(path)
            dt = time.perf_counter() - t
            best = dt if best is None else min(best, dt)
        assert len(df) == n_req, (len(df), n_req)
        print(f"parse {label}: {rows:,} rows, {path.stat().st_size / 1e6:,.0f} MB, "
              f"{n_req:,} records in {best:.2f} s (best of 2; generating took {gen:.1f} s)")
        path.unlink()


def _children_cpu() -> float:
    import resource

    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_rate(tmp: Path, levels, level_s: float, protocol: str, pre_vus=None,
               check_outputs: bool = True, pin: bool = False, tries: int = 2) -> None:
    from mmslib.v2 import request_body

    models = [f"m{i}" for i in range(5)]
    cpus = sorted(os.sched_getaffinity(0))
    server_cpus, k6_cpus = (cpus[: len(cpus) // 2], cpus[len(cpus) // 2:]) if pin and len(cpus) > 1 \
        else (None, None)
    with serve("simple_string", models, tmp / "server", cpus=server_cpus) as backend:
        srv = backend.server()
        proc, http_port, grpc_port = srv.proc, srv.http_port, srv.grpc_port
        sample = backend.workload.make_sample(np.random.default_rng(0))
        body = request_body(sample.inputs)
        expect = sample.expected if check_outputs else None
        if protocol == "rest":
            targets = [Target(f"http://127.0.0.1:{http_port}/v2/models/{m}/infer", m, body,
                              expect=expect) for m in models]
        else:
            targets = [Target(f"127.0.0.1:{grpc_port}", m, body, protocol="grpc",
                              expect=expect) for m in models]
        print(f"ramp against one KServe ModelServer, 5 models, {protocol}, outputs "
              f"{'checked' if check_outputs else 'not checked'}, {level_s:g} s per level "
              f"(+1 s warm-up), " + (f"server on CPUs {server_cpus}, k6 on CPUs {k6_cpus}:" if k6_cpus
                                     else f"{len(cpus)} CPUs shared by k6 and the server:"))
        best = None
        for qps in levels:
            held = False
            for attempt in range(tries):
                k6_cpu0, srv_cpu0 = _children_cpu(), _proc_cpu(proc.pid)
                r = run_level(targets, qps=qps, duration_s=level_s, warmup_s=1.0, timeout_s=10.0,
                              pre_allocated_vus=pre_vus, cpu_affinity=k6_cpus)
                k6_cpu, srv_cpu = _children_cpu() - k6_cpu0, _proc_cpu(proc.pid) - srv_cpu0
                rec = r.records[~r.records["warmup"]]
                held = abs(r.achieved_qps - qps) <= 0.01 * qps and r.dropped_iterations == 0
                print(f"  target {qps:6g} qps: achieved {r.achieved_qps:8.1f} qps, dropped "
                      f"{r.dropped_iterations:5d}, ok {rec['ok'].mean() if len(rec) else 0:6.1%}, "
                      f"p50 {rec['latency_ms'].median():7.2f} ms, p99 {rec['latency_ms'].quantile(0.99):7.2f} ms, "
                      f"VUs {r.pre_allocated_vus}/{r.max_vus}, CPU k6 {k6_cpu / r.wall_s:4.0%} "
                      f"server {srv_cpu / r.wall_s:4.0%}, wall {r.wall_s:.1f} s -> "
                      f"{'sustained' if held else 'NOT sustained'}", flush=True)
                if held:
                    break
            if held:
                best = qps
            else:
                break
        print(f"highest sustained rate: {best} qps" if best else "no level sustained")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip-parse", action="store_true")
    ap.add_argument("--skip-rate", action="store_true")
    ap.add_argument("--levels", default="100,200,300,400,600,800,1000,1200,1500,2000,2500")
    ap.add_argument("--level-s", type=float, default=5.0)
    ap.add_argument("--protocol", default="rest", choices=["rest", "grpc"])
    ap.add_argument("--pre-vus", type=int, default=None, help="preAllocatedVUs (default: loadgen's)")
    ap.add_argument("--no-check", action="store_true", help="do not check outputs (no expect)")
    ap.add_argument("--pin", action="store_true", help="server on the first half of the CPUs, k6 on the rest")
    ap.add_argument("--tries", type=int, default=2, help="attempts per level (the machine may be shared)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mmslib-loadgen-bench-") as d:
        tmp = Path(d)
        if not args.skip_parse:
            bench_parse(tmp)
        if not args.skip_rate:
            bench_rate(tmp, [float(x) for x in args.levels.split(",")], args.level_s, args.protocol,
                       args.pre_vus, not args.no_check, args.pin, args.tries)


if __name__ == "__main__":
    main()
