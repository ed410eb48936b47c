"""Shared fixtures: real servers on loopback, and a check that nothing is left behind."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("MPLBACKEND", "Agg")


def our_server_pids(marker: str = "mmslib") -> list:
    """Processes that look like servers/k6 started by mmslib (not this pytest)."""
    me = os.getpid()
    out = []
    for p in psutil.process_iter(["pid", "cmdline", "status"]):
        if p.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        cmd = " ".join(p.info["cmdline"] or [])
        if p.info["pid"] == me:
            continue
        if any(k in cmd for k in ("mmslib.runtimes.kserve_server", "tritonserver", "triton_python_backend_stub",
                                  "mmslib.runtimes.mlserver_server", " k6 run", "/k6 run")):
            out.append(p.info["pid"])
    return out


@pytest.fixture
def no_leftovers():
    """Asserts a test leaves no server or k6 process that it started."""
    before = set(our_server_pids())
    yield
    deadline = time.time() + 10
    while time.time() < deadline:
        left = set(our_server_pids()) - before
        if not left:
            return
        time.sleep(0.2)
    pytest.fail(f"processes left behind: {sorted(left)}")


def start_kserve_server(tmp: Path, models, workload="simple_string"):
    from mmslib.procs import free_port
    from mmslib.workloads import get_workload
    w = get_workload(workload)
    store = tmp / "store"
    for m in models:
        w.write_artifact(store / m, m)
    http, grpc = free_port(), free_port()
    cfg = tmp / "server.json"
    cfg.write_text(json.dumps({"store": str(store), "http_port": http, "grpc_port": grpc, "models": list(models)}))
    proc = subprocess.Popen([sys.executable, "-m", "mmslib.runtimes.kserve_server", str(cfg)],
                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{http}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if requests.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                break
        except requests.RequestException:
            pass
        if proc.poll() is not None:
            raise RuntimeError("kserve server exited")
        time.sleep(0.1)
    return proc, url, f"127.0.0.1:{grpc}", store


@pytest.fixture
def kserve_server(tmp_path):
    """A real KServe ModelServer with simple_string models m0, m1 (traditional start)."""
    proc, url, grpc, store = start_kserve_server(tmp_path, ["m0", "m1"])
    yield {"url": url, "grpc": grpc, "store": store, "proc": proc, "models": ["m0", "m1"]}
    os.killpg(proc.pid, 9)
    proc.wait(5)
