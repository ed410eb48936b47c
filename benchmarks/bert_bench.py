"""Measure the bert workload: ONNX export time, RSS per loaded model, latency per request.

    .venv/bin/python benchmarks/bert_bench.py [--models 5] [--requests 200]
        [--device cpu|auto|cuda] [--fresh-cache] [--server] [--json OUT]

Artifacts are written to a temporary store (the ONNX export is cached; with
``--fresh-cache`` it goes to a temporary cache, so the export is timed). Models
are then loaded, one after another, in a fresh process that imports nothing
else, and the RSS after each load is recorded; then requests (one sentence
each, round-robin over the models) are timed in-process. ``--server`` also
serves the models from one KServe server process and times V2 REST requests
and reads the server's RSS. Nothing is downloaded.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MiB = 1 << 20


def _rss() -> int:
    import psutil
    return psutil.Process().memory_info().rss


def _pct(xs, q):
    import numpy as np
    return float(np.percentile(np.asarray(xs), q))


def measure(store: Path, names, requests: int) -> dict:
    """Runs in a fresh process: load models one by one, then time requests."""
    import numpy as np
    rss0 = _rss()
    from mmslib.workloads import bert, load_artifact  # noqa: F401  (import cost measured too)
    import tokenizers  # noqa: F401
    if bert.resolve_device(bert.read_config(store / names[0]).get("device", "auto")) == "cpu":
        import onnxruntime  # noqa: F401
    rss_imports = _rss()
    loads, preds = [], []
    for name in names:
        before, gpu_before = _rss(), bert.gpu_memory_bytes()
        t = time.perf_counter()
        p = load_artifact(store / name)
        load_s = time.perf_counter() - t
        p.predict({"text": np.array([b"warm up"], dtype=object)})
        loads.append({"model": name, "device": p.device, "load_s": load_s,
                      "rss_delta_mib": (_rss() - before) / MiB,
                      "gpu_bytes": None if bert.gpu_memory_bytes() is None
                      else bert.gpu_memory_bytes() - (gpu_before or 0)})
        preds.append(p)
    rng = np.random.default_rng(0)
    samples = [bert.make_sample(rng) for _ in range(16)]
    lat, ok = [], 0
    for i in range(requests):
        s = samples[i % len(samples)]
        t = time.perf_counter()
        out = preds[i % len(preds)].predict(s.inputs)
        lat.append(time.perf_counter() - t)
        ok += bert.check(out, s.expected)
    return {
        "rss_start_mib": rss0 / MiB,
        "rss_imports_mib": (rss_imports - rss0) / MiB,
        "loads": loads,
        "rss_total_mib": _rss() / MiB,
        "latency_ms": {"p50": _pct(lat, 50) * 1e3, "p90": _pct(lat, 90) * 1e3,
                       "p99": _pct(lat, 99) * 1e3, "mean": sum(lat) / len(lat) * 1e3},
        "requests": requests, "correct": ok,
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_and_measure(store: Path, names, requests: int, work: Path) -> dict:
    import numpy as np
    import psutil
    import requests as rq

    from mmslib import v2
    from mmslib.workloads import bert

    http_port, grpc_port = _free_port(), _free_port()
    cfg = work / "server.json"
    cfg.write_text(json.dumps({"store": str(store), "http_port": http_port, "grpc_port": grpc_port,
                               "models": list(names)}))
    log = open(work / "server.log", "wb")
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "mmslib.runtimes.kserve_server", str(cfg)],
                            stdout=log, stderr=subprocess.STDOUT, cwd=str(ROOT), start_new_session=True)
    base = f"http://127.0.0.1:{http_port}"
    try:
        sess = rq.Session()
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited: {(work / 'server.log').read_text()[-2000:]}")
            try:
                if all(sess.get(f"{base}/v2/models/{n}/ready", timeout=2).status_code == 200 for n in names):
                    break
            except rq.RequestException:
                pass
            if time.perf_counter() - t0 > 300:
                raise RuntimeError("server not ready in 300 s")
            time.sleep(0.2)
        ready_s = time.perf_counter() - t0
        rng = np.random.default_rng(1)
        samples = [bert.make_sample(rng) for _ in range(16)]
        lat, ok = [], 0
        for i in range(requests):
            s = samples[i % len(samples)]
            name = names[i % len(names)]
            t = time.perf_counter()
            r = sess.post(f"{base}/v2/models/{name}/infer", json=v2.request_body(s.inputs), timeout=30)
            lat.append(time.perf_counter() - t)
            ok += r.status_code == 200 and bert.check(v2.decode_outputs(r.json()), s.expected)
        rss = psutil.Process(proc.pid).memory_info().rss
        return {"ready_s": ready_s, "server_rss_mib": rss / MiB, "server_rss_per_model_mib": rss / MiB / len(names),
                "latency_ms": {"p50": _pct(lat, 50) * 1e3, "p90": _pct(lat, 90) * 1e3,
                               "p99": _pct(lat, 99) * 1e3},
                "requests": requests, "correct": ok}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", type=int, default=5)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--fresh-cache", action="store_true", help="export into a temporary ONNX cache")
    ap.add_argument("--server", action="store_true", help="also serve the models from one KServe server")
    ap.add_argument("--json", help="write the results here too")
    ap.add_argument("--_measure", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args._measure:
        store, names, n = args._measure
        print(json.dumps(measure(Path(store), names.split(","), int(n))))
        return

    work = Path(tempfile.mkdtemp(prefix="mmslib-bert-bench-"))
    try:
        if args.fresh_cache:
            os.environ["MMSLIB_ONNX_CACHE"] = str(work / "onnx-cache")
        from mmslib.workloads import bert

        result = {"device": args.device, "models": args.models, "ort_threads": bert.ort_threads()}
        t = time.perf_counter()
        onnx_path = bert.export_onnx() if args.device != "cuda" else None
        result["export_s"] = time.perf_counter() - t
        result["exported"] = bert.EXPORT_COUNT > 0
        result["onnx_mib"] = onnx_path.stat().st_size / MiB if onnx_path else None
        wl = bert.make_workload(args.device)
        store = work / "store"
        names = [f"bert-{i}" for i in range(args.models)]
        t = time.perf_counter()
        for n in names:
            wl.write_artifact(store / n, n)
        result["write_s_per_model"] = (time.perf_counter() - t) / len(names)
        result["artifact_mib"] = sum(f.stat().st_size for f in (store / names[0]).rglob("*") if f.is_file()) / MiB
        out = subprocess.run([sys.executable, __file__, "--_measure", str(store), ",".join(names),
                              str(args.requests)], capture_output=True, text=True, check=True, cwd=str(ROOT))
        result["in_process"] = json.loads(out.stdout.strip().splitlines()[-1])
        if args.server:
            result["server"] = serve_and_measure(store, names, args.requests, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    ip = result["in_process"]
    print(f"device {args.device}, {args.models} models, ORT intra-op threads {result['ort_threads']}")
    if result["onnx_mib"]:
        print(f"ONNX export: {result['export_s']:.1f} s ({'exported' if result['exported'] else 'cache hit'}), "
              f"{result['onnx_mib']:.1f} MiB")
    print(f"artifact: {result['artifact_mib']:.1f} MiB, written in {result['write_s_per_model']:.2f} s/model")
    print(f"imports (mmslib bert + tokenizers + onnxruntime on CPU): {ip['rss_imports_mib']:.0f} MiB RSS")
    for ld in ip["loads"]:
        gpu = f", GPU +{ld['gpu_bytes'] / MiB:.0f} MiB" if ld["gpu_bytes"] is not None else ""
        print(f"  load {ld['model']} on {ld['device']}: {ld['load_s']:.2f} s, RSS +{ld['rss_delta_mib']:.0f} MiB{gpu}")
    lat = ip["latency_ms"]
    print(f"in-process latency/request: p50 {lat['p50']:.2f} ms, p90 {lat['p90']:.2f} ms, "
          f"p99 {lat['p99']:.2f} ms ({ip['correct']}/{ip['requests']} correct)")
    if "server" in result:
        s = result["server"]
        print(f"KServe server: ready in {s['ready_s']:.1f} s, RSS {s['server_rss_mib']:.0f} MiB "
              f"({s['server_rss_per_model_mib']:.0f} MiB/model incl. server), V2 REST latency p50 "
              f"{s['latency_ms']['p50']:.2f} ms, p90 {s['latency_ms']['p90']:.2f} ms "
              f"({s['correct']}/{s['requests']} correct)")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
