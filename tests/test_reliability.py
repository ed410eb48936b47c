"""Faults and interruptions: the run goes on or stops cleanly, and nothing is left behind."""
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import pandas as pd
import psutil
import pytest

from mmslib import params, stress

from conftest import TOKEN_VAR, tagged_pids


def test_host_killed_mid_stress_run_goes_on(tmp_path, no_leftovers):
    """SIGKILL the multi-model host half-way: the mms stop reason says so, traditional is still measured."""
    p = params.stress(models=60, modes=["mms", "traditional"], output_dir=str(tmp_path / "o"), verify_sample=0,
                      memory_budget="300Mi", measure_every=1, deploy_concurrency=1)

    def fault(mode, n, backend):
        if mode == "mms" and n == 20:
            backend.kill_server("host-0", signal.SIGKILL)
    r = stress.run(p, progress=False, on_step=fault)
    s = r.summary.set_index("mode")
    assert s.loc["mms", "stop_reason"] == stress.STOP_FAILURE
    assert 20 <= s.loc["mms", "models_deployed"] < 60
    assert "host-0" in s.loc["mms", "stop_detail"]
    assert s.loc["traditional", "models_deployed"] >= 1  # the next mode was measured
    steps = pd.read_parquet(tmp_path / "o" / "steps.parquet")
    assert (steps[steps["mode"] == "mms"]["ok"]).sum() == s.loc["mms", "models_deployed"]
    assert not steps[steps["mode"] == "mms"]["ok"].iloc[-1]  # the failure is a recorded step


SCRIPT = textwrap.dedent("""
    import sys
    from mmslib import params, stress, performance
    kind, out = sys.argv[1], sys.argv[2]
    if kind == "stress":
        p = params.stress(models=3000, modes=["traditional", "mms"], output_dir=out, verify_sample=20,
                          memory_budget="400Mi", deploy_concurrency=2)
        stress.run(p, progress=False)
    else:
        p = params.performance(models=2, qps=[30, 60], duration_s=1.5, warmup_s=0.5, output_dir=out)
        performance.run(p, progress=False)
""")


def _listening_ports(pids):
    out = []
    for pid in pids:
        try:
            out += [c.laddr.port for c in psutil.Process(pid).connections(kind="inet") if c.status == "LISTEN"]
        except psutil.Error:
            pass
    return out


def test_twenty_random_interruptions_leave_nothing(tmp_path):
    """SIGINT/SIGTERM at random moments (deploying, loading, measuring, parsing, writing):
    no child process, no bound port, and what was measured is readable on disk."""
    rng = random.Random(int(os.environ.get("MMSLIB_CHAOS_SEED", "7")))
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    outcomes = []
    for i in range(20):
        kind = "stress" if i % 2 == 0 else "performance"
        sig = signal.SIGINT if i % 4 < 2 else signal.SIGTERM
        delay = rng.uniform(0.5, 9.0)
        token = f"chaos-{os.getpid()}-{i}"
        env = dict(os.environ, **{TOKEN_VAR: token})
        out = tmp_path / f"o{i}"
        proc = subprocess.Popen([sys.executable, str(script), kind, str(out)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(delay)
        ports = _listening_ports(tagged_pids(token))
        proc.send_signal(sig)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail(f"run {i} ({kind}, {sig.name} after {delay:.1f} s) did not stop within 60 s")
        deadline = time.time() + 10
        while time.time() < deadline and tagged_pids(token):
            time.sleep(0.2)
        left = tagged_pids(token)
        assert not left, f"run {i} ({kind}, {sig.name} after {delay:.1f} s) left {left}"
        still = [p for p in ports if _port_bound(p)]
        assert not still, f"run {i}: ports still bound: {still}"
        meta_path = out / "meta.json"
        if meta_path.exists():
            meta = json.loads(meta_path.read_text())
            assert meta["status"] in ("interrupted", "complete", "running"), meta["status"]
            for f in out.rglob("*.parquet"):
                pd.read_parquet(f)  # every file on disk is whole
            outcomes.append(meta["status"])
        else:
            outcomes.append("before start")
    assert outcomes.count("interrupted") >= 10, outcomes


def _port_bound(port):
    """Something still listens there (TIME_WAIT leftovers of closed connections don't count)."""
    from mmslib.procs import port_in_use
    return port_in_use(port)
