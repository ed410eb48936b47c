"""The local backend with real KServe servers on loopback."""
import math
import signal

import psutil
import pytest

from mmslib.backends.base import model_names
from mmslib.backends.local import LocalBackend
from mmslib.runtimes import get_runtime
from mmslib.workloads import get_workload

W = get_workload("simple_string")


@pytest.fixture
def backend(tmp_path, no_leftovers):
    b = LocalBackend(get_runtime("kserve"), W, tmp_path, deploy_concurrency=2, deploy_timeout_s=60)
    yield b
    b.close()


def test_traditional_then_mms_verify_and_usage(backend):
    evs = list(backend.deploy_traditional(["a", "b"]))
    assert sorted(e.model for e in evs) == ["a", "b"] and all(e.ok for e in evs)
    assert all(e.seconds > 0 for e in evs)
    hosts = backend.start_hosts(1)
    assert hosts[0].ok and hosts[0].kind == "host"
    evs = list(backend.deploy_mms(model_names(50)))
    assert len(evs) == 50 and all(e.ok and e.server == "host-0" for e in evs)
    v = backend.verify(sample=20)
    assert v.ok and v.expected == 52 and v.listed == 52 and v.sampled == 20 and v.correct == 20
    u = backend.usage()
    assert u.servers == 3 and u.processes == 3 and u.memory_mib > 10 and u.rss_mib >= u.memory_mib
    assert u.cpu_seconds > 0 and u.reserved_cpu is None and u.pending == 0
    row = u.as_row("m_")
    assert row["m_servers"] == 3 and row["m_memory_mib"] == u.memory_mib and math.isnan(row["m_reserved_cpu"])
    eps = backend.endpoints()
    assert len(eps) == 52 and all(e.rest_url.startswith("http://127.0.0.1:") for e in eps)
    pids = backend.pids()
    backend.close()
    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in pids)


def test_admission_refuses_once_host_memory_is_declared(tmp_path, no_leftovers):
    b = LocalBackend(get_runtime("kserve"), W, tmp_path, host_memory_limit=10 << 20, model_memory=4 << 20)
    try:
        b.start_hosts(1)
        evs = list(b.deploy_mms(["a", "b", "c"]))
        ok = [e for e in evs if e.ok]
        bad = [e for e in evs if not e.ok]
        assert len(ok) == 2 and len(bad) == 1
        assert bad[0].error.startswith("admission")
    finally:
        b.close()


def test_failed_server_reports_error(tmp_path, no_leftovers):
    """A model whose artifact is broken: the server exits, the event says why."""
    b = LocalBackend(get_runtime("kserve"), W, tmp_path, deploy_timeout_s=30)
    try:
        (b.store / "bad").mkdir(parents=True)
        (b.store / "bad" / "mmslib-model.json").write_text('{"workload": "simple_string"}')
        b._written.add("bad")  # pretend it was written: the artifact lacks its config
        ev = next(b.deploy_traditional(["bad"]))
        assert not ev.ok and "exited" in ev.error
        b.start_hosts(1)
        ev = next(b.deploy_mms(["bad"]))
        assert not ev.ok and "HTTP" in ev.error
    finally:
        b.close()


def test_kill_server_is_seen(backend):
    list(backend.deploy_traditional(["a"]))
    backend.kill_server("isvc-a", signal.SIGKILL)
    backend._servers["isvc-a"].proc.wait(5)
    v = backend.verify()
    assert not v.ok and v.failures
