"""Records on disk survive what shared machines do: a writer SIGKILLed mid-write,
stale files of an earlier run, a disk that fills mid-run.

- Killed mid-write: a writer process saving a large records file over and over
  (the real ``RunDir.save``) is SIGKILLed at random points of a write (seeded:
  ``MMSLIB_CHAOS_SEED``; ``MMSLIB_WRITE_KILLS`` kills, 40 here, 400 in ``make
  check-long``); after every kill the file is absent or one whole earlier
  version, byte for byte the data written, and a reader polling the file all
  along never saw anything else.
- Stale files: a fresh run with the same parameters removes the earlier run's
  records in every subfolder (``requests/*.parquet``), its result files and the
  temporary files of a killed writer; ``resume`` keeps them.
- Disk full: a performance run whose filesystem fills during its second level,
  on a size-limited tmpfs mounted by the test (root; skipped, saying so,
  elsewhere) and, needing no privileges, under ``ulimit -f`` in a subprocess:
  one :class:`DiskFullError` naming the file and the bytes it needs, the servers
  stopped, the first level readable.
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from mmslib import params, performance
from mmslib.errors import DiskFullError
from mmslib.rundir import RunDir, atomic_write_bytes

from conftest import TOKEN_VAR, tagged_pids

ROOT = Path(__file__).resolve().parents[1]
SEED = int(os.environ.get("MMSLIB_CHAOS_SEED", "17"))
KILLS = int(os.environ.get("MMSLIB_WRITE_KILLS", "30"))
ROWS = 250_000  # ~3 MB of parquet: random floats do not compress


def frame(version: int, rows: int = ROWS) -> pd.DataFrame:
    """The data of one version: the reader checks what it reads against this."""
    rng = np.random.default_rng(version)
    return pd.DataFrame({"version": np.full(rows, version, dtype=np.int64),
                         "i": np.arange(rows, dtype=np.int64), "x": rng.random(rows)})


# A fork server: imports once, then forks one writer per kill (fast, and the
# writer is a real separate process that SIGKILL ends without any clean-up).
FORK_SERVER = textwrap.dedent("""
    import os, sys
    sys.path.insert(0, sys.argv[2])
    from test_reliability_writes import frame
    from mmslib.rundir import RunDir
    out = sys.argv[1]
    for line in sys.stdin:
        try:
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        except ChildProcessError:
            pass
        base = int(line)
        pid = os.fork()
        if pid == 0:
            rd = RunDir(out, "performance", {"rows": 1}, "k", resume=True)
            v = base
            while True:
                rd.save("requests/level", frame(v))
                v += 1
        print(pid, flush=True)
""")


def _tmp_files(d: Path):
    try:
        return [e for e in os.scandir(d) if e.name.endswith(".tmp")]
    except FileNotFoundError:
        return []


def _read_whole(path: Path):
    """None if absent; else (version, ok) after checking every value."""
    try:
        t = pq.read_table(path)
    except FileNotFoundError:
        return None
    df = t.to_pandas()
    v = int(df["version"].iloc[0])
    md = json.loads(t.schema.metadata[b"mmslib"])
    ok = md["params_key"] == "k" and len(df) == ROWS and df.equals(frame(v))
    return v, ok


def test_writer_killed_mid_write_leaves_previous_file_or_none(tmp_path):
    out = tmp_path / "run"
    target = out / "requests" / "level.parquet"
    rng = random.Random(SEED)
    server = subprocess.Popen([sys.executable, "-c", FORK_SERVER, str(out), str(ROOT / "tests")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    reads, bad_reads, stop = [0], [], threading.Event()

    def reader():  # a concurrent reader must never see a partial or mixed file
        while not stop.is_set():
            try:
                got = _read_whole(target)
            except Exception as e:  # noqa: BLE001 - any failure to read is a finding
                bad_reads.append(repr(e))
                continue
            if got is not None:
                reads[0] += 1
                if not got[1]:
                    bad_reads.append(f"version {got[0]} not whole")

    th = threading.Thread(target=reader, daemon=True)
    th.start()
    size = None
    seen = None                 # version on disk after the previous kill
    offsets, mid_write, corrupt = [], 0, []
    try:
        for k in range(KILLS):
            base = (k + 1) * 1000
            server.stdin.write(f"{base}\n")
            server.stdin.flush()
            pid = int(server.stdout.readline())
            if size is None or rng.random() < 0.2:
                # a kill at a random moment (building, writing, fsync, rename, between writes)
                time.sleep(rng.uniform(0.0, 0.6))
                frac = None
            else:
                # a kill when the temporary file has reached a random offset of its write
                frac = rng.random()
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline:
                    tmps = [e for e in _tmp_files(target.parent) if e.name.startswith(".level.parquet.")]
                    try:
                        if tmps and tmps[0].stat().st_size >= frac * size:
                            break
                    except FileNotFoundError:  # renamed meanwhile
                        pass
            os.kill(pid, signal.SIGKILL)
            _wait_dead(pid)
            left = _tmp_files(target.parent)
            if left:
                mid_write += 1
                if size:
                    offsets.append(left[0].stat().st_size / size)
            got = _read_whole(target)
            if got is not None:
                v, ok = got
                if not ok:
                    corrupt.append(f"kill {k}: version {v} not whole")
                allowed = {seen} | set(range(base, base + 1000))
                if v not in allowed:
                    corrupt.append(f"kill {k}: version {v}, expected {seen} or {base}+")
                seen = v
                size = size or target.stat().st_size
            json.loads((out / "meta.json").read_text())  # meta.json is whole too
            for f in left:  # a killed writer's temporary file: what a fresh run removes
                os.unlink(f.path)
    finally:
        stop.set()
        th.join(10)
        server.stdin.close()
        server.wait(10)
    offs = np.array(offsets)
    part = offs[offs < 0.999] if len(offs) else offs
    part = part if len(part) else np.array([np.nan])
    print(f"\n[kill mid-write] {KILLS} SIGKILLs (seed {SEED}), {mid_write} with the temporary file present "
          f"({int((offs < 0.999).sum())} of them part-written: {np.nanmin(part):.0%} to {np.nanmax(part):.0%} "
          f"of the file written; the rest written, not yet renamed); corrupt files: {len(corrupt)}; "
          f"concurrent reads {reads[0]}, bad reads {len(bad_reads)}")
    assert corrupt == [] and bad_reads == [], (corrupt + bad_reads)[:5]
    assert seen is not None, "no write ever completed: the test exercised nothing"
    assert mid_write >= KILLS // 2, f"only {mid_write} of {KILLS} kills landed inside a write"
    assert reads[0] > 0


def _wait_dead(pid: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().split(") ", 1)[1].startswith("Z"):
                    return
        except FileNotFoundError:
            return
        time.sleep(0.005)
    raise AssertionError(f"writer {pid} did not die")


def test_fresh_run_removes_stale_records_in_every_subfolder(tmp_path):
    out = tmp_path / "run"
    rd = RunDir(out, "performance", {"a": 1}, "key1")
    rd.save("levels", pd.DataFrame({"qps": [10.0, 20.0]}))
    rd.save("requests/mms_10qps_r0", pd.DataFrame({"x": [1]}))
    rd.save("requests/mms_20qps_r0", pd.DataFrame({"x": [2]}))
    rd.save_json("deploy", [{"mode": "mms"}])
    rd.save_json("summary", {"modes": []})
    (out / "requests" / ".mms_30qps_r0.parquet.abc.tmp").write_bytes(b"half a file")
    (out / "notes.txt").write_text("the user's")
    rd.finish("interrupted")
    stale = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and p.name != "meta.json")

    # resume keeps everything measured
    RunDir(out, "performance", {"a": 1}, "key1", resume=True)
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")
                  if p.is_file() and p.name != "meta.json") == stale
    # a fresh run with the same parameters keeps nothing of the old one's records
    rd2 = RunDir(out, "performance", {"a": 1}, "key1")
    left = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert left == ["meta.json", "notes.txt"], left
    assert rd2.run_id != rd.run_id
    assert performance.load(rd2, params.performance(output_dir=str(out))).records.empty


# ------------------------------------------------------------------ disk full

def _fill(directory: Path, leave: int = 0) -> None:
    """Fill the filesystem of ``directory`` (as another process would)."""
    with open(directory / "ballast", "wb") as f:
        chunk = b"\0" * 65536
        try:
            while True:
                f.write(chunk)
                f.flush()
        except OSError:
            pass
    if leave:
        os.truncate(directory / "ballast", max(0, os.path.getsize(directory / "ballast") - leave))


def _perf(out, **kw):
    return params.performance(models=1, modes=["mms"], qps=[20, 25], duration_s=1.5, warmup_s=0.3,
                              output_dir=str(out), **kw)


def _check_first_level_intact(out: Path):
    levels = pd.read_parquet(out / "levels.parquet")
    assert levels["qps"].tolist() == [20.0]
    recs = pd.read_parquet(out / "requests" / "mms_20qps_r0.parquet")
    assert len(recs) >= 30 and recs["ok"].all()
    assert not (out / "requests" / "mms_25qps_r0.parquet").exists()
    assert [p.name for p in out.rglob("*.tmp")] == []


def test_disk_full_mid_run_on_a_small_tmpfs(tmp_path, no_leftovers):
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mnt)], capture_output=True,
                       text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip() or r.returncode}); "
                    "test_disk_full_under_a_file_size_limit covers this without privileges")
    try:
        out = mnt / "run"

        def fill(cell, backend):
            if cell.index == 1:
                _fill(mnt)
        with pytest.raises(DiskFullError) as e:
            performance.run(_perf(out), progress=False, on_level=fill)
        msg = str(e.value)
        print(f"\n[disk full, tmpfs] {msg}")
        assert str(out / "requests" / "mms_25qps_r0.parquet") in msg
        assert "bytes free" in msg and "needs" in msg
        assert e.value.__context__ is None or not isinstance(e.value.__context__, DiskFullError)
        (mnt / "ballast").unlink()
        _check_first_level_intact(out)
        # and the run can be resumed once there is space again
        res = performance.run(_perf(out, resume=True), progress=False)
        assert sorted(res.levels["qps"]) == [20.0, 25.0]
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


ULIMIT_SCRIPT = textwrap.dedent("""
    import resource, sys
    from mmslib import params, performance
    from mmslib.errors import DiskFullError

    def limit(cell, backend):  # the file size limit falls mid-run, as a full disk would
        if cell.index == 1:
            resource.setrlimit(resource.RLIMIT_FSIZE, (1024, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    p = params.performance(models=1, modes=["mms"], qps=[20, 25], duration_s=1.5, warmup_s=0.3,
                           output_dir=sys.argv[1])
    performance.run(p, progress=False, on_level=limit)
""")


def test_disk_full_under_a_file_size_limit(tmp_path):
    """No privileges needed: ``ulimit -f`` falls mid-run in a subprocess (the kernel answers EFBIG)."""
    out = tmp_path / "run"
    token = uuid.uuid4().hex
    r = subprocess.run([sys.executable, "-c", ULIMIT_SCRIPT, str(out)], capture_output=True, text=True,
                       timeout=300, cwd=ROOT, env=dict(os.environ, **{TOKEN_VAR: token}))
    assert r.returncode != 0
    err = r.stderr.strip().splitlines()
    print(f"\n[disk full, ulimit -f] {err[-1]}")
    assert err[-1].startswith("mmslib.errors.DiskFullError: cannot write "), r.stderr[-2000:]
    assert str(out / "requests" / "mms_25qps_r0.parquet") in err[-1] and "ulimit -f" in err[-1]
    assert r.stderr.count("Traceback") == 1, r.stderr[-3000:]  # one error, not a chain
    assert tagged_pids(token) == []  # servers and k6 stopped
    _check_first_level_intact(out)


def test_disk_full_error_names_path_and_size(tmp_path, monkeypatch):
    """The message itself, and the previous file left as it was."""
    path = tmp_path / "x.parquet"
    atomic_write_bytes(path, b"old")
    import errno

    import mmslib.rundir as rundir

    def full(p, data):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(rundir, "_atomic_write", full)
    with pytest.raises(DiskFullError, match=r"x\.parquet'.*needs 1,000 bytes.*bytes free"):
        atomic_write_bytes(path, b"n" * 1000)
    assert path.read_bytes() == b"old"
