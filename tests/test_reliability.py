"""Interruptions, every runtime: SIGINT, SIGTERM and SIGKILL at random moments.

A run (stress or performance; traffic and coldstart in ``make check-long``) is
started in its own Python process with small parameters and signalled at a
random moment (deploying, loading, measuring, parsing, writing). Then: no
process left (servers, Triton stubs, k6), no port still listening, no Triton
shared memory left in /dev/shm, every file on disk whole; and ``resume``
completes the run without measuring again what was finished.

Moments are seeded (``MMSLIB_CHAOS_SEED``, default 7); one more run per
runtime takes an unseeded moment (its seed is printed, and named in any
failure). ``MMSLIB_CHAOS_N`` seeded runs per runtime (default 1, plus the
unseeded one; ``make check-long``: 20), the three signals in turn, shifted per
runtime so that ``make test`` sends each signal to some runtime. ``make test``
resumes one interrupted performance run of kserve; ``make check-long`` one per
runtime. The notebooks themselves are interrupted through
papermill too: Ctrl-C as a terminal sends it (SIGINT to papermill's process
group), SIGTERM to papermill, SIGKILL of the kernel.
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pandas as pd
import psutil
import pytest

from mmslib.procs import port_in_use
from mmslib.runtimes.triton import shm_regions as _shm_regions

from conftest import TOKEN_VAR, default_sigint, describe_pids, tagged_pids
from test_runtimes import ensure_env

ROOT = Path(__file__).resolve().parents[1]
SEED = int(os.environ.get("MMSLIB_CHAOS_SEED", "7"))
N = int(os.environ.get("MMSLIB_CHAOS_N", "1"))
LONG = os.environ.get("MMSLIB_LONG") == "1"
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)
RUNTIMES = ["kserve", "triton", "mlserver"]
SIGNAL_SHIFT = {"kserve": 0, "triton": 2, "mlserver": 2}  # first signal: SIGNALS[shift]

# Small parameters per experiment (and how long a run takes, roughly, to spread the moments over).
SMALL = {
    "stress": (dict(models=300, modes=["traditional", "mms"], memory_budget="300Mi", verify_sample=5,
                    deploy_concurrency=2, time_limit_s=20), 8.0),
    "performance": (dict(models=2, qps=[20, 30], duration_s=1.5, warmup_s=0.3), 8.0),
    "traffic": (dict(models=[2], rates=[20.0], arrival="poisson", duration_s=2.0, warmup_s=0.5), 12.0),
    "coldstart": (dict(sections=["load_unload"], cycles=20), 12.0),
}
KINDS = ["stress", "performance"] + (["traffic", "coldstart"] if LONG else [])

SCRIPT = textwrap.dedent("""
    import importlib, json, sys
    from mmslib import params
    kind, runtime, out, resume, extra = sys.argv[1:6]
    raw = dict(json.loads(extra), output_dir=out, resume=resume == "1")
    if kind == "coldstart":
        raw["runtimes"] = [runtime]
    else:
        raw["runtime"] = runtime
    p = params.build(kind, raw)
    importlib.import_module(f"mmslib.{kind}").run(p, progress=False)
""")


def _listening_ports(pids):
    out = []
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            conns = (getattr(proc, "net_connections", None) or proc.connections)(kind="inet")
            out += [c.laddr.port for c in conns if c.status == "LISTEN"]
        except psutil.Error:
            pass
    return out


def _start(kind, runtime, out, token, resume=False):
    extra, _ = SMALL[kind]
    return subprocess.Popen([sys.executable, "-c", SCRIPT, kind, runtime, str(out), "1" if resume else "0",
                             json.dumps(extra)], cwd=ROOT, env=dict(os.environ, **{TOKEN_VAR: token}),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_sigint)


def _kinds_available():
    from mmslib import params
    return [k for k in KINDS if k in params.EXPERIMENTS]


def _interrupt_once(tmp_path, runtime, i, rng, seed_note):
    kinds = _kinds_available()
    kind = kinds[i % len(kinds)]
    # kserve: INT, KILL, TERM, ...; triton: KILL, TERM, INT, ...; mlserver: KILL, TERM, INT, ...: every
    # signal in `make test` (two runs per runtime), SIGKILL to every runtime (Triton's stubs included:
    # its launcher reaps them, tests/test_reliability_triton_kill.py kills at the worst moment).
    sig = SIGNALS[(SIGNAL_SHIFT[runtime] - i) % len(SIGNALS)]
    delay = rng.uniform(0.0, SMALL[kind][1])
    what = f"{runtime} run {i} ({kind}, {sig.name} {delay:.1f} s into the run, {seed_note})"
    token = f"chaos-{uuid.uuid4().hex}"
    out = tmp_path / f"{runtime}-{i}"
    proc = _start(kind, runtime, out, token)
    t_start = time.monotonic()
    deadline = time.monotonic() + 120
    while not (out / "meta.json").exists() and proc.poll() is None:  # the run has started
        assert time.monotonic() < deadline, f"{what}: did not start"
        time.sleep(0.05)
    t0 = time.monotonic()
    pids, ports, shm = set(), set(), set()
    while time.monotonic() - t0 < delay and proc.poll() is None:  # what is open just before the signal
        now = tagged_pids(token)
        pids |= set(now)
        ports |= set(_listening_ports(now))
        shm |= set(_shm_regions(now))
        time.sleep(0.1)
    proc.send_signal(sig)
    t_sig, t_sig_wall = time.monotonic(), time.time()
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"{what}: did not stop within 60 s")
    deadline = time.monotonic() + 15  # children die with their parent (PR_SET_PDEATHSIG), stubs after
    while time.monotonic() < deadline and tagged_pids(token):
        time.sleep(0.2)
    left = tagged_pids(token)
    desc = describe_pids(left)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    assert not left, f"{what} left processes: {desc}"
    # a killed multi-threaded server shows as a zombie while its other threads still exit with
    # its sockets: the ports get a deadline too
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(port_in_use(p) for p in ports):
        time.sleep(0.2)
    still = [p for p in ports if port_in_use(p)]
    assert not still, f"{what}: ports still listening: {still}"
    shm_left = [n for n in shm if os.path.exists(f"/dev/shm/{n}")]
    assert not shm_left, f"{what}: Triton shared memory left: {shm_left}"
    status = "before start"
    if (out / "meta.json").exists():
        from mmslib.rundir import Run
        written = json.loads((out / "meta.json").read_text())["status"]
        # killed outright (SIGKILL; or SIGTERM in the instant between the run directory's creation and
        # the experiment's handler: the default action), meta.json still says "running"; its writer is
        # gone, so the run reads "interrupted" everywhere (report, export, compare)
        killed = sig == signal.SIGKILL or proc.returncode == -sig
        assert written in ("interrupted", "complete") + (("running",) if killed else ()), \
            f"{what}: meta status {written!r}; stderr: {err[-1500:]}"
        status = Run.load(out).status
        assert status in ("interrupted", "complete"), f"{what}: reads {status!r} (meta.json: {written!r})"
        for f in out.rglob("*.parquet"):
            pd.read_parquet(f)  # every file on disk is whole
        if status == "complete" and sig != signal.SIGKILL:  # it had finished: the signal was not ignored
            from datetime import datetime
            finished = datetime.fromisoformat(json.loads((out / "meta.json").read_text())["finished"]).timestamp()
            assert finished <= t_sig_wall + 1.0, f"{what}: completed {finished - t_sig_wall:.0f} s after the signal"
    if sig != signal.SIGKILL and proc.returncode != -sig and status != "complete":
        # interrupted runs end with the KeyboardInterrupt, not another error
        assert "KeyboardInterrupt" in err and "Error" not in err.split("KeyboardInterrupt")[-1], \
            f"{what}: {err[-2000:]}"
    print(f"\n  {what}: {status}, stopped in {time.monotonic() - t_sig:.1f} s (run started after "
          f"{t0 - t_start:.1f} s)")
    return kind, status, out, len(pids), len(ports)


def _resume(kind, runtime, out):
    """Resume an interrupted performance run: finished levels are kept as they are, the rest measured."""
    before = pd.read_parquet(out / "levels.parquet") if (out / "levels.parquet").exists() else None
    token = f"resume-{uuid.uuid4().hex}"
    proc = _start(kind, runtime, out, token, resume=True)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    assert json.loads((out / "meta.json").read_text())["status"] == "complete"
    levels = pd.read_parquet(out / "levels.parquet")
    extra, _ = SMALL[kind]
    assert len(levels) == len(extra["qps"]) * 2  # every (mode, rate)
    if before is not None and len(before):
        kept = levels.merge(before, on=["mode", "qps", "repeat"], suffixes=("", "_before"))
        assert len(kept) == len(before) and (kept["t_start"] == kept["t_start_before"]).all()
    for r in levels.itertuples():
        recs = pd.read_parquet(out / "requests" / f"{r.mode}_{r.qps:g}qps_r{r.repeat}.parquet")
        assert len(recs) > 0 and recs["ok"].all()
    return 0 if before is None else len(before)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_random_interruptions_leave_nothing_and_resume(runtime, tmp_path):
    if runtime != "kserve":
        ensure_env(runtime)
    unseeded = random.SystemRandom().randrange(2**32)
    plan = [(random.Random(f"{SEED}-{runtime}"), f"seed {SEED}")] * N + \
           [(random.Random(unseeded), f"unseeded: MMSLIB_CHAOS_SEED-free seed {unseeded}")]
    outcomes, resumed = [], None
    for i, (rng, note) in enumerate(plan):
        kind, status, out, npids, nports = _interrupt_once(tmp_path, runtime, i, rng, note)
        outcomes.append(f"{kind}:{status}({npids} procs, {nports} ports)")
        if resumed is None and kind == "performance" and status == "interrupted" \
                and (runtime == "kserve" or LONG):
            resumed = _resume(kind, runtime, out)
    print(f"\n[interruptions] {runtime}: {len(plan)} runs, 0 leftovers: {outcomes}; "
          f"resumed a performance run keeping {resumed} finished levels")
    assert any(s.split("(")[0].endswith("interrupted") for s in outcomes), outcomes


# ------------------------------------------------------------------ through papermill

def _papermill(out_nb, out_dir, token):
    return subprocess.Popen(
        [sys.executable, "-m", "papermill", str(ROOT / "notebooks" / "performance.ipynb"), str(out_nb),
         "--no-progress-bar", "-p", "output_dir", str(out_dir), "-p", "models", "2", "-p", "qps", "[20, 30]",
         "-p", "duration_s", "1.5", "-p", "warmup_s", "0.3"],
        cwd=ROOT, env=dict(os.environ, **{TOKEN_VAR: token}), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True,  # its own process group, as a shell gives a foreground job
        preexec_fn=default_sigint)


def _kernel(pm_pid):
    for c in psutil.Process(pm_pid).children(recursive=True):
        try:
            if "ipykernel" in " ".join(c.cmdline()):
                return c
        except psutil.Error:
            pass
    return None


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm-papermill",
                                 pytest.param("sigkill-kernel", marks=pytest.mark.long)])
def test_papermill_interrupted_mid_level(how, tmp_path):
    """The notebook interrupted while a level is measured: nothing left; the
    levels already measured readable; resume completes (check-long)."""
    token = f"pm-{uuid.uuid4().hex}"
    out = tmp_path / "run"
    pm = _papermill(tmp_path / "out.ipynb", out, token)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not (out / "levels.parquet").exists():  # a level is done
        assert pm.poll() is None, pm.communicate()[0][-2000:]
        time.sleep(0.2)
    time.sleep(random.Random(SEED).uniform(0.2, 1.5))  # into the next level
    assert pm.poll() is None
    if how == "ctrl-c":
        os.killpg(pm.pid, signal.SIGINT)  # what the terminal sends on Ctrl-C: the foreground group
    elif how == "sigterm-papermill":
        pm.send_signal(signal.SIGTERM)
    else:
        k = _kernel(pm.pid)
        assert k is not None
        k.send_signal(signal.SIGKILL)
    log, _ = pm.communicate(timeout=60)
    assert pm.returncode != 0
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and tagged_pids(token):
        time.sleep(0.2)
    assert tagged_pids(token) == [], f"{how}: left {tagged_pids(token)}"
    meta = json.loads((out / "meta.json").read_text())
    print(f"\n[papermill {how}] exit {pm.returncode}, meta status {meta['status']!r}, "
          f"levels on disk {len(pd.read_parquet(out / 'levels.parquet'))}")
    if how == "ctrl-c":
        assert meta["status"] == "interrupted", log[-2000:]
    done = pd.read_parquet(out / "levels.parquet")
    assert len(done) >= 1
    for r in done.itertuples():
        assert pd.read_parquet(out / "requests" / f"{r.mode}_{r.qps:g}qps_r{r.repeat}.parquet")["ok"].all()
    if how == "ctrl-c" and LONG:  # resume: the notebook's parameters are the experiment's, the same run goes on
        assert _resume("performance", "kserve", out) == len(done)
