"""Shared fixtures: real servers on loopback, and a check that nothing is left behind."""
from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("MPLBACKEND", "Agg")


TOKEN_VAR = "MMSLIB_TEST_TOKEN"


def default_sigint():
    """``preexec_fn`` of a child that a test sends SIGINT: SIGINT as a terminal's foreground job has
    it. A shell without job control starts background jobs (``make test &``) with SIGINT ignored,
    Python then installs no KeyboardInterrupt handler, and the child would never see the Ctrl-C."""
    import signal
    signal.signal(signal.SIGINT, signal.SIG_DFL)


#: The fast tier (`pytest -m "not slow"`, `make test-fast`, under a minute): test files that run in
#: this process only (parameters, statistics, summaries, run directories, the report from synthetic
#: run directories, the plug-in contracts, the simulated queue). Every other file starts real servers,
#: k6, papermill kernels or the Kubernetes double and is marked ``slow``; so is a new file until it is
#: listed here. ``make test`` runs both tiers.
FAST_FILES = {
    "test_arrivals.py", "test_compare.py", "test_dependent_stats.py", "test_docs.py", "test_export.py",
    "test_fuzz_params.py", "test_gpu.py", "test_notebooks.py", "test_packaging.py", "test_params.py",
    "test_planner.py", "test_plots_narrative.py", "test_plugins.py", "test_report.py", "test_rundir.py",
    "test_schedule.py", "test_seed.py", "test_simulate.py", "test_slo.py", "test_specs.py", "test_stats.py",
    "test_validity.py", "test_imports.py", "test_family_sim.py",
}
#: Tests of fast files that run a notebook or a server all the same.
SLOW_TESTS = {
    "test_report_command_builds_offline_html", "test_gate_makes_papermill_fail_after_saving_everything",
    "test_executed_performance_notebook_reads_answer_first",
}


def pytest_collection_modifyitems(config, items):
    """The two tiers (``slow``: see FAST_FILES); tests marked ``long`` run in ``make check-long``
    (MMSLIB_LONG=1) only."""
    slow = pytest.mark.slow
    for item in items:
        if item.path.name not in FAST_FILES or item.originalname in SLOW_TESTS:
            item.add_marker(slow)
    if os.environ.get("MMSLIB_LONG") == "1":
        return
    skip = pytest.mark.skip(reason="long check: run `make check-long` (MMSLIB_LONG=1)")
    for item in items:
        if "long" in item.keywords:
            item.add_marker(skip)


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


def describe_pids(pids) -> list:
    """"pid: command line" of each live process of ``pids``, for a failure message."""
    out = []
    for pid in pids:
        try:
            out.append(f"{pid}: {' '.join(psutil.Process(pid).cmdline())[:120]}")
        except psutil.Error:
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
    pytest.fail("processes left behind: " + "; ".join(describe_pids(left)))


@pytest.fixture
def kserve_server(tmp_path):
    """A real KServe ModelServer with simple_string models m0, m1 (one server, both loaded)."""
    from mmslib.backends.local import serve

    models = ["m0", "m1"]
    with serve("simple_string", models, tmp_path) as backend:
        srv = backend.server()
        yield {"url": srv.rest_url, "grpc": f"127.0.0.1:{srv.grpc_port}", "store": backend.store,
               "proc": srv.proc, "models": models}


def papermill(notebook: str, out, *args, timeout: float = 400) -> subprocess.CompletedProcess:
    """Execute ``notebooks/<notebook>`` with papermill in a subprocess (``-p``/``-f`` in ``args``)."""
    return subprocess.run([sys.executable, "-m", "papermill", str(ROOT / "notebooks" / notebook), str(out),
                           "--no-progress-bar", *map(str, args)], capture_output=True, text=True, timeout=timeout)
