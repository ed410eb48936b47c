"""A server dies, as the out-of-memory killer would kill it: SIGKILL of a
host's server process (tritonserver under its launcher, the KServe or MLServer
Python server), for every runtime.

- mid-deploy (stress): the mode stops with the failure recorded as its stop
  reason and as a failed step; the next mode is still measured;
- mid-level (performance): the level's requests after the kill are errors in
  the records; the other mode's level is still measured, without errors;
- ``verify()`` waits for models to be ready, does not wait for a dead server.
"""
from __future__ import annotations

import http.server
import signal
import threading
import time

import numpy as np
import pandas as pd
import psutil
import pytest

from mmslib import params, performance, stress
from mmslib.backends.base import Endpoint, sample_inferences
from mmslib.procs import free_port, tree_pids
from mmslib.workloads import get_workload

from test_runtimes import ensure_env

RUNTIMES = ["kserve", pytest.param("triton", marks=pytest.mark.long),
            pytest.param("mlserver", marks=pytest.mark.long)]
ALL_RUNTIMES = ["kserve", "triton", "mlserver"]


def kill_host(backend, server: str) -> int:
    """SIGKILL, as the out-of-memory killer sends it, of ``server``'s server process: the
    process of its tree listening on its HTTP port (tritonserver under its launcher, the
    KServe or MLServer Python server)."""
    srv = backend.server(server)
    for pid in tree_pids(srv.proc.pid):
        try:
            proc = psutil.Process(pid)
            conns = (getattr(proc, "net_connections", None) or proc.connections)(kind="inet")
        except psutil.Error:
            continue
        if any(c.status == psutil.CONN_LISTEN and c.laddr.port == srv.http_port for c in conns):
            proc.send_signal(signal.SIGKILL)
            return pid
    raise AssertionError(f"no process of {server} listens on {srv.http_port}")


def _runtime(name):
    if name != "kserve":
        ensure_env(name)
    return name


@pytest.mark.parametrize("name", RUNTIMES)
def test_host_killed_mid_deploy_next_mode_measured(name, tmp_path, no_leftovers):
    _runtime(name)
    p = params.stress(runtime=name, models=8, modes=["mms", "traditional"], output_dir=str(tmp_path / "o"),
                      verify_sample=2, memory_budget="400Mi", measure_every=1, deploy_concurrency=1)
    killed = []

    def fault(mode, n, backend):
        if mode == "mms" and n == 4:
            killed.append(kill_host(backend, "host-0"))
    t0 = time.monotonic()
    r = stress.run(p, progress=False, on_step=fault)
    took = time.monotonic() - t0
    s = r.summary.set_index("mode")
    print(f"\n[server dies mid-deploy] {name}: mms stopped at {s.loc['mms', 'models_deployed']} "
          f"({s.loc['mms', 'stop_reason']}: {str(s.loc['mms', 'stop_detail'])[:160]}); traditional "
          f"{s.loc['traditional', 'models_deployed']} ({s.loc['traditional', 'stop_reason']}); {took:.0f} s")
    assert killed
    assert s.loc["mms", "stop_reason"] == stress.STOP_FAILURE
    assert 4 <= s.loc["mms", "models_deployed"] < 8
    assert "host-0" in s.loc["mms", "stop_detail"]
    assert not s.loc["mms", "verify_ok"]  # the dead host's models fail verification, quickly
    assert s.loc["traditional", "models_deployed"] >= 1 and s.loc["traditional", "verify_ok"]
    steps = pd.read_parquet(tmp_path / "o" / "steps.parquet")
    mms = steps[steps["mode"] == "mms"]
    assert mms["ok"].sum() == s.loc["mms", "models_deployed"] and not mms["ok"].iloc[-1]
    assert (steps["mode"] == "traditional").any()


@pytest.mark.parametrize("name", RUNTIMES)
def test_server_killed_mid_level_other_mode_measured(name, tmp_path, no_leftovers):
    _runtime(name)
    p = params.performance(runtime=name, models=2, modes=["mms", "traditional"], qps=[20], duration_s=3.0,
                           warmup_s=0.5, output_dir=str(tmp_path / "o"))
    killed = {}

    def fault(cell, backend):
        if cell.index == 0:
            server = "host-0" if cell.mode == "mms" else backend.servers()[0]
            killed[cell.mode] = kill_host(backend, server)
    res = performance.run(p, progress=False, on_level=fault)
    assert len(killed) == 1
    hit = next(iter(killed))
    other = "traditional" if hit == "mms" else "mms"
    recs = res.records[~res.records["warmup"]]
    errors = recs.groupby("mode")["ok"].apply(lambda s: int((~s).sum()))
    oks = recs.groupby("mode")["ok"].sum()
    print(f"\n[server dies mid-level] {name}: {hit} level: {oks[hit]} ok then {errors[hit]} errors; "
          f"{other} level: {oks[other]} ok, {errors[other]} errors")
    assert sorted(res.levels["mode"]) == ["mms", "traditional"]
    assert errors[hit] > 0 and oks[hit] > 0  # before the kill fine, after it errors, all recorded
    if hit == "traditional":
        # one of two single-model servers died: only its model's requests fail
        dead = recs[(recs["mode"] == hit) & ~recs["ok"]]["model"].unique()
        assert len(dead) == 1
    assert errors[other] == 0 and oks[other] >= 40
    assert res.rundir.meta["status"] == "complete"


# ------------------------------------------------------------ verify() waits for readiness

class _Ready(http.server.BaseHTTPRequestHandler):
    ready_at = 0.0

    def do_GET(self):  # noqa: N802
        ok = time.monotonic() >= type(self).ready_at
        self.send_response(200 if ok else 503)
        self.end_headers()

    def log_message(self, *a):
        pass


def test_verify_waits_for_readiness_not_for_a_dead_server():
    ss = get_workload("simple_string")
    port = free_port()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), _Ready)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    calls = []

    def infer(ep, inputs):  # answers correctly (simple_string: sum and difference), noting when asked
        calls.append(time.monotonic())
        a = np.array([[int(x) for x in row] for row in inputs["INPUT0"]])
        b = np.array([[int(x) for x in row] for row in inputs["INPUT1"]])
        return {"OUTPUT0": a + b, "OUTPUT1": a - b}
    try:
        _Ready.ready_at = time.monotonic() + 1.0
        ep = Endpoint("m0", "s", f"http://127.0.0.1:{port}")
        sampled, correct, failures = sample_inferences(ss, [ep], infer, 1, 0, ready_timeout_s=20)
        assert calls and calls[0] >= _Ready.ready_at, "inferred before the model was ready"
        assert sampled == 1 and failures == [] and correct == 1
        # never ready: one failure saying so, after the timeout
        _Ready.ready_at = time.monotonic() + 3600
        t0 = time.monotonic()
        _, correct, failures = sample_inferences(ss, [ep], infer, 1, 0, ready_timeout_s=0.5)
        assert correct == 0 and "not ready within 0.5 s (last answer: HTTP 503)" in failures[0]
        assert time.monotonic() - t0 < 10
    finally:
        srv.shutdown()
        srv.server_close()
    # nothing listens: not waited for
    t0 = time.monotonic()
    _, correct, failures = sample_inferences(ss, [Endpoint("m0", "s", f"http://127.0.0.1:{port}")], infer, 1, 0,
                                             ready_timeout_s=60)
    assert correct == 0 and "connection refused" in failures[0] and time.monotonic() - t0 < 10
