"""SIGKILL of the Python process that started a Triton server leaves nothing.

A child Python process starts a real Triton server with 2 models through the
local backend (``serve``) and is SIGKILLed: while the server is starting (the
moment its first python-backend stub process exists, models still loading:
the window in which a stub used to be orphaned and run forever) and once the
models are ready. Then, within a bounded wait, no process of that run is left
(tritonserver, its launcher, any ``triton_python_backend_stub``: found by the
run's workdir in their command lines, and by the environment token every
process of the run inherits), no port of the server still listens, and no
shared memory of its launcher is left in /dev/shm. Nothing else cleans up:
the test process is the child's parent and does not touch the server.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import psutil
import pytest

from mmslib.procs import port_in_use

from conftest import TOKEN_VAR, describe_pids, tagged_pids
from test_runtimes import ensure_env

ROOT = Path(__file__).resolve().parents[1]
STUB = "triton_python_backend_stub"
# The launcher stops tritonserver (SIGTERM; SIGKILL after GRACE_S = 6 s), waits up to 1.5 s
# for the stubs' shared memory, then SIGKILLs its tree: well inside this bound.
CLEAN_WITHIN_S = 30

CHILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from mmslib.backends.local import serve
    with serve("simple_string", ["m0", "m1"], Path(sys.argv[1]), runtime="triton"):
        print("ready", flush=True)
        time.sleep(600)
""")


def _run_procs(workdir: str, token: str):
    """Live processes of this run: by the workdir in their command line or by the token."""
    out = set(tagged_pids(token))
    for p in psutil.process_iter(["pid", "cmdline", "status"]):
        try:
            if p.info["status"] != psutil.STATUS_ZOMBIE and workdir in " ".join(p.info["cmdline"] or ()):
                out.add(p.info["pid"])
        except psutil.Error:
            pass
    out.discard(os.getpid())
    return sorted(out)


def _ports(pids):
    out = set()
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            conns = (getattr(proc, "net_connections", None) or proc.connections)(kind="inet")
            out |= {c.laddr.port for c in conns if c.status == psutil.CONN_LISTEN}
        except psutil.Error:
            pass
    return out


def _shm(pids):
    pids = {str(p) for p in pids}
    try:
        names = os.listdir("/dev/shm")
    except OSError:
        return set()
    return {n for n in names if n.startswith("mmslib_triton_") and n.split("_")[2] in pids}


@pytest.mark.parametrize("moment", ["starting", "ready"])
def test_sigkill_of_starter_leaves_no_triton_process(moment, tmp_path):
    ensure_env("triton")
    token = f"tkill-{uuid.uuid4().hex}"
    workdir = str(tmp_path / "run")
    child = subprocess.Popen([sys.executable, "-c", CHILD, workdir], cwd=ROOT,
                             env=dict(os.environ, **{TOKEN_VAR: token}),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen, ports, shm, stubs = set(), set(), set(), 0
    try:
        deadline = time.monotonic() + 120
        while True:
            assert child.poll() is None, f"the child exited: {child.communicate()[1][-2000:]}"
            assert time.monotonic() < deadline, f"{moment}: moment not reached"
            now = _run_procs(workdir, token)
            seen |= set(now)
            ports |= _ports(now)
            shm |= _shm(now)
            names = []
            for pid in now:
                try:
                    names.append(" ".join(psutil.Process(pid).cmdline()))
                except psutil.Error:
                    pass
            stubs = sum(STUB in n for n in names)
            if moment == "starting" and stubs >= 1:
                break
            if moment == "ready":
                import select
                if select.select([child.stdout], [], [], 0.05)[0] and child.stdout.readline().strip() == "ready":
                    now = _run_procs(workdir, token)
                    seen |= set(now)
                    ports |= _ports(now)
                    shm |= _shm(now)
                    stubs = sum(STUB in " ".join(psutil.Process(p).cmdline()) for p in now
                                if psutil.pid_exists(p))
                    assert stubs == 2, f"ready with {stubs} stubs: {describe_pids(now)}"
                    break
            time.sleep(0.02)
    finally:
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=30)
    t_kill = time.monotonic()
    while time.monotonic() - t_kill < CLEAN_WITHIN_S and _run_procs(workdir, token):
        time.sleep(0.2)
    left = _run_procs(workdir, token)
    desc = describe_pids(left)
    for pid in left:  # never leave them to the next test
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    assert not left, f"SIGKILL while {moment}: left after {CLEAN_WITHIN_S} s: {desc}"
    gone_s = time.monotonic() - t_kill
    assert ports, "no listening port seen before the kill"
    while time.monotonic() - t_kill < CLEAN_WITHIN_S and any(port_in_use(p) for p in ports):
        time.sleep(0.2)
    still = [p for p in ports if port_in_use(p)]
    assert not still, f"SIGKILL while {moment}: ports still listening: {still}"
    shm_left = [n for n in shm if os.path.exists(f"/dev/shm/{n}")]
    assert not shm_left, f"SIGKILL while {moment}: Triton shared memory left: {shm_left}"
    print(f"\n[triton sigkill {moment}] {len(seen)} processes ({stubs} stubs), ports {sorted(ports)}: "
          f"all gone {gone_s:.1f} s after the kill")
