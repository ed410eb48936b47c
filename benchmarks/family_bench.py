"""Memory per model and load time per family and size, on this machine (docs/models.md).

For each runtime, family and size: one server on 127.0.0.1 with ``--models``+1 copies of the
model in its store. The first load pays for importing the library (reported apart, "first
load"); then ``--models`` more loads, each timed (``POST /v2/repository/models/<m>/load``
until 200), with the server's PSS (its process tree: Triton's stubs included) read before
and after them: PSS per model = the growth / ``--models``. Every model answers one request,
checked, before the next is loaded. Then each is unloaded, timed. simple_string is the
reference point.

    .venv/bin/python benchmarks/family_bench.py                        # 1Mi and 10Mi, every runtime
    .venv/bin/python benchmarks/family_bench.py --sizes 1Mi,10Mi,100Mi --runtimes kserve --models 3

Builds go to the family cache (``MMSLIB_FAMILY_CACHE`` or ~/.cache/mmslib/families): the
first run builds each size once (lightgbm 100Mi: ~2 minutes), later runs reuse it.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mmslib import resources  # noqa: E402
from mmslib.procs import Supervisor, free_port, tree_pids  # noqa: E402
from mmslib.quantity import parse_memory  # noqa: E402
from mmslib.runtimes import ServerConfig, get_runtime  # noqa: E402
from mmslib.v2 import V2Client  # noqa: E402
from mmslib.workloads import get_workload, sized_workloads  # noqa: E402


def workload_for(family: str, size: str):
    import importlib
    if size == "-":
        return get_workload(family)
    return importlib.import_module(f"mmslib.workloads.{family}").make_workload(parse_memory(size))


def pss(proc) -> float:
    time.sleep(0.3)  # let a load's transient buffers go
    return resources.memory_of(tree_pids(proc.pid))["pss_mib"]


def measure(rt, w, n: int, tmp: Path) -> dict:
    store = tmp / "store"
    rt.prepare_store(store)
    names = [f"m{i}" for i in range(n + 1)]
    t0 = time.monotonic()
    for m in names:
        rt.write_model(store, w, m)
    write_s = (time.monotonic() - t0) / len(names)
    with Supervisor(log_dir=tmp / "logs") as sup:
        cfg = ServerConfig(name="bench", store=store, workdir=tmp / "srv", http_port=free_port(),
                           grpc_port=free_port(), metrics_port=free_port())
        argv, env = rt.command(cfg)
        proc = sup.spawn(argv, name="bench", env=env)
        c = V2Client(f"http://127.0.0.1:{cfg.http_port}", timeout=600)
        deadline = time.monotonic() + rt.start_timeout_s()
        while not c.server_live():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{rt.name} did not start: {sup.log_tail('bench', 10)}")
            time.sleep(0.1)
        rng = np.random.default_rng(0)

        def load(m):
            t = time.monotonic()
            r = c.load(m)
            dt = (time.monotonic() - t) * 1e3
            if r.status_code != 200:
                raise RuntimeError(f"{rt.name} load {m}: HTTP {r.status_code} {r.text[:300]}")
            s = w.make_sample(rng)
            if not w.check(c.infer(m, s.inputs), s.expected):
                raise RuntimeError(f"{rt.name} {m}: wrong answer")
            return dt

        base = pss(proc)
        first = load(names[0])
        p1 = pss(proc)
        loads = [load(m) for m in names[1:]]
        p2 = pss(proc)
        unloads = []
        for m in names:
            t = time.monotonic()
            c.unload(m)
            unloads.append((time.monotonic() - t) * 1e3)
        c.session.close()
        sup.stop(proc)
    return {"artifact_mib": w.artifact_bytes / 2**20, "server_mib": base, "first_load_ms": first,
            "first_pss_mib": p1 - base, "pss_per_model_mib": (p2 - p1) / n,
            "load_p50_ms": statistics.median(loads), "load_max_ms": max(loads),
            "unload_p50_ms": statistics.median(unloads), "write_s": write_s}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1Mi,10Mi")
    ap.add_argument("--families", default=",".join(sized_workloads()))
    ap.add_argument("--runtimes", default="kserve,triton,mlserver")
    ap.add_argument("--models", type=int, default=3, help="models loaded after the first (default 3)")
    a = ap.parse_args()
    cases = [("simple_string", "-")] + [(f, s) for f in a.families.split(",") for s in a.sizes.split(",")]
    print("| runtime | family | knobs | artifact MiB | PSS MiB per model | load ms p50 (max) | unload ms p50 "
          "| first load ms (+PSS MiB: the library) |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for rt_name in a.runtimes.split(","):
        rt = get_runtime(rt_name)
        rt.check_available()
        for fam, size in cases:
            w = workload_for(fam, size)
            knobs = w.extra.get("knobs", {})
            kn = ", ".join(f"{k}={v}" for k, v in knobs.items() if k not in ("n_features",)) or "-"
            with tempfile.TemporaryDirectory(prefix="mmslib-famb-") as tmp:
                r = measure(rt, w, a.models, Path(tmp))
            print(f"| {rt_name} | {fam} | {kn} | {r['artifact_mib']:.3f} | {r['pss_per_model_mib']:.1f} | "
                  f"{r['load_p50_ms']:.0f} ({r['load_max_ms']:.0f}) | {r['unload_p50_ms']:.0f} | "
                  f"{r['first_load_ms']:.0f} (+{r['first_pss_mib']:.0f}) |", flush=True)


if __name__ == "__main__":
    main()
