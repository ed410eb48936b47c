"""Shared fixtures: real servers on loopback, and a check that nothing is left behind."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("MPLBACKEND", "Agg")


TOKEN_VAR = "MMSLIB_TEST_TOKEN"


def tagged_pids(token: str) -> list:
    """Live processes (other than this one) whose environment carries ``token``:
    everything a test started inherits it, orphans included."""
    me = os.getpid()
    needle = f"{TOKEN_VAR}={token}".encode()
    out = []
    for p in psutil.process_iter(["pid", "status"]):
        if p.info["pid"] == me or p.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        try:
            with open(f"/proc/{p.info['pid']}/environ", "rb") as f:
                if needle in f.read():
                    out.append(p.info["pid"])
        except OSError:
            pass
    return out


@pytest.fixture
def no_leftovers():
    """Asserts a test leaves no process that it started (servers, stubs, k6, kernels)."""
    token = uuid.uuid4().hex
    old = os.environ.get(TOKEN_VAR)
    os.environ[TOKEN_VAR] = token
    try:
        yield token
    finally:
        if old is None:
            os.environ.pop(TOKEN_VAR, None)
        else:
            os.environ[TOKEN_VAR] = old
    deadline = time.time() + 10
    left = []
    while time.time() < deadline:
        left = tagged_pids(token)
        if not left:
            return
        time.sleep(0.2)
    desc = []
    for pid in left:
        try:
            desc.append(f"{pid}: {' '.join(psutil.Process(pid).cmdline())[:120]}")
        except psutil.Error:
            pass
    pytest.fail("processes left behind: " + "; ".join(desc))


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
