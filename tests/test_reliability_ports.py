"""Ports: another process takes a chosen port between choosing and binding.

For real: the port the backend picks for a server is grabbed (bound and
listened on) by another process before the server starts; the server fails to
bind and exits, and the backend starts it again on fresh ports, at most
``procs.PORT_RETRIES`` times, then reports one clear deploy error. Never a hang.
"""
from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest

from mmslib import procs
from mmslib.backends import local
from mmslib.backends.local import LocalBackend
from mmslib.workloads import get_workload

from test_runtimes import ensure_env

GRAB = ("import socket, sys, time\n"
        "s = socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen()\n"
        "print('ok', flush=True); time.sleep(600)\n")


class Grabber:
    """Wraps ``free_port``: the ports it hands out at the chosen call numbers are
    taken at once by another process, as a busy machine would."""

    def __init__(self, which):
        self.which, self.calls, self.procs, self.ports = which, 0, [], []

    def __call__(self, host="127.0.0.1"):
        port = procs.free_port(host)
        if self.which(self.calls):
            p = subprocess.Popen([sys.executable, "-c", GRAB, str(port)], stdout=subprocess.PIPE, text=True)
            assert p.stdout.readline().strip() == "ok"
            self.procs.append(p)
            self.ports.append(port)
        self.calls += 1
        return port

    def close(self):
        for p in self.procs:
            p.kill()
            p.wait(5)


def test_free_port_is_below_the_ephemeral_range_and_bindable():
    lo = procs._ephemeral_range()[0]
    ports = [procs.free_port() for _ in range(50)]
    assert len(set(ports)) == 50
    if lo - procs.PORT_RANGE_LOW >= 1000:
        assert all(procs.PORT_RANGE_LOW <= p < lo for p in ports), ports
    for p in ports[:5]:
        with socket.socket() as s:
            s.bind(("127.0.0.1", p))


@pytest.mark.parametrize("name", ["kserve", pytest.param("triton", marks=pytest.mark.long),
                                  pytest.param("mlserver", marks=pytest.mark.long)])
def test_port_taken_before_the_server_binds_it_is_retried(name, tmp_path, monkeypatch, no_leftovers):
    rt = ensure_env(name) if name != "kserve" else local.get_runtime("kserve")
    grab = Grabber(lambda i: i == 0)  # the first server's HTTP port
    monkeypatch.setattr(local, "free_port", grab)
    b = LocalBackend(rt, get_workload("simple_string"), tmp_path / "w", deploy_timeout_s=120)
    try:
        t0 = time.monotonic()
        evs = list(b.deploy_traditional(["m0"]))
        took = time.monotonic() - t0
        assert [e.ok for e in evs] == [True], evs[0].error
        srv = b.server()
        assert srv.port_retries == 1 and srv.http_port != grab.ports[0]
        assert b.verify(sample=1).ok
        print(f"\n[ports] {name}: HTTP port {grab.ports[0]} taken by another process; "
              f"retried on {srv.http_port}, ready in {took:.1f} s")
    finally:
        b.close()
        grab.close()


def test_port_taken_every_time_fails_clearly_and_bounded(tmp_path, monkeypatch, no_leftovers):
    grab = Grabber(lambda i: i % 3 == 0)  # every server's HTTP port (3 ports per server)
    monkeypatch.setattr(local, "free_port", grab)
    monkeypatch.setattr(local, "PORT_RETRIES", 1)  # the bound, made small to keep the test short
    b = LocalBackend(local.get_runtime("kserve"), get_workload("simple_string"), tmp_path / "w",
                     deploy_timeout_s=120)
    try:
        t0 = time.monotonic()
        evs = list(b.deploy_traditional(["m0"]))
        took = time.monotonic() - t0
    finally:
        b.close()
        grab.close()
    assert len(evs) == 1 and not evs[0].ok
    err = evs[0].error
    print(f"\n[ports] taken every time: failed after {took:.1f} s: {err[:300]}")
    assert err.startswith("server isvc-m0 could not bind its ports: another process took them"), err
    assert "2 times on fresh ports; last: " in err and "already in use" in err, err
    assert len(grab.ports) == 2
    assert took < 120  # bounded by the retries, well before the deploy timeout


def test_lost_port_recognises_each_runtimes_message():
    """The lines each runtime logs when its port is taken (seen on this machine)."""
    assert procs.lost_port("RuntimeError: Failed to bind to address 127.0.0.1:52919; set GRPC_VERBOSITY")
    assert procs.lost_port('main.cc:257] "failed to start HTTP service: Unavailable - Socket '
                           "'127.0.0.1:44711' already in use \"")
    assert procs.lost_port("OSError: [Errno 98] error while attempting to bind on address "
                           "('127.0.0.1', 8080): address already in use")
    assert not procs.lost_port("model m0 is already loaded")
    assert not procs.lost_port("")
