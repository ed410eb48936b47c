"""The Go load generator: replays a schedule open loop, at a fraction of k6's CPU.

:func:`mmslib.loadgen.replay` with ``generator="go"`` uses this module. The
program is ``replay.go`` next to this file (package data, Go standard library
only), compiled on first use with the machine's Go toolchain (Debian:
``apt-get install golang-go``; nothing is downloaded: ``GOPROXY=off``,
``GOTOOLCHAIN=local``, no module) into ``$MMSLIB_CACHE`` (default
``~/.cache/mmslib``) ``/gogen/<hash of the source and go version>/replay``.
A second build of the same source is a cache hit.

Timing: the send time is taken just before the request takes an idle
connection (or dials one); latency runs from then to the answer's last byte, so
a new connection's set-up is in it (as the k6 replay's ``timings.blocked +
sending + waiting + receiving``). The dispatcher sends a request only once its
offset has come, never before (``lateness_ms >= 0``). Clocks: Go's monotonic
clock, nanoseconds. See ``docs/generators.md``.

What it does and writes is described at the top of ``replay.go``; this module
writes its inputs (targets as :func:`mmslib.loadgen._tables` gives them to the
k6 replay, the schedule as binary columns), runs it and reads its records
file back into numpy arrays (no per-row Python).

Why: k6 (Go, plus a JavaScript VM per request callback) costs 0.5-0.8 ms of CPU
per REST request here, and k6 running nothing but a bare timer script already
0.36 ms at 1,000 requests/s; this program spends its CPU on timers, its own
small HTTP/1.1 client (one goroutine per exchange; net/http's client cost ~15%
more) and the answer check (``benchmarks/generator_cpu_bench.py --generator both``).
REST over plain HTTP/1.1 only: gRPC needs HTTP/2 and protobuf code outside Go's
standard library.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import DependencyError, MmsError

SOURCE = Path(__file__).resolve().parent / "replay.go"
MAGIC = b"MMSGOR01"
CONFIG_FILE = "mms_go.json"
SCHEDULE_FILE = "mms_go_schedule.bin"
RECORDS_FILE = "mms_go_records.bin"
MAX_INFLIGHT = 10_000  # requests in flight at most (a connection each); beyond it a request is counted unsent
INSTALL_HINT = "apt-get install golang-go"


def go_tool() -> Optional[str]:
    """The ``go`` command (``$MMSLIB_GO``, else on PATH), or None."""
    env = os.environ.get("MMSLIB_GO")
    if env:
        return env if Path(env).is_file() and os.access(env, os.X_OK) else None
    return shutil.which("go")


def cache_root() -> Path:
    base = os.environ.get("MMSLIB_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "mmslib")
    return Path(base) / "gogen"


def _go_env(root: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GO")}
    env.update(GOCACHE=str(root / "gocache"), GOPATH=str(root / "gopath"), GOTOOLCHAIN="local",
               GOPROXY="off", GOFLAGS="", GO111MODULE="off", CGO_ENABLED="0")
    return env


def binary() -> str:
    """Path of the compiled generator, building it first if needed.
    DependencyError without a Go toolchain or when the build fails."""
    go = go_tool()
    if go is None:
        raise DependencyError(f"the Go generator needs a Go toolchain: {INSTALL_HINT} (or set MMSLIB_GO)")
    root = cache_root()
    try:
        version = subprocess.run([go, "version"], capture_output=True, text=True, timeout=60,
                                 env=_go_env(root)).stdout.strip()
    except (OSError, subprocess.SubprocessError) as e:
        raise DependencyError(f"cannot run {go} version: {e}; {INSTALL_HINT}") from e
    src = SOURCE.read_bytes()
    key = hashlib.sha256(src + b"\0" + version.encode()).hexdigest()[:16]
    exe = root / key / "replay"
    if exe.is_file() and os.access(exe, os.X_OK):
        return str(exe)
    exe.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="build-", dir=exe.parent) as tmp:
        (Path(tmp) / "replay.go").write_bytes(src)
        out = Path(tmp) / "replay"
        p = subprocess.run([go, "build", "-o", str(out), "replay.go"], cwd=tmp, capture_output=True,
                           text=True, timeout=600, env=_go_env(root))
        if p.returncode != 0 or not out.is_file():
            raise DependencyError(f"building the Go generator failed ({go}, {version}): "
                                  f"{(p.stderr or p.stdout)[-2000:]}")
        os.replace(out, exe)  # atomic: a concurrent build of the same source is harmless
    return str(exe)


def offsets_ns(offset_s: np.ndarray) -> np.ndarray:
    """The schedule's offsets as the program gets them: whole nanoseconds, rounded up (a
    request is never due before its offset)."""
    return np.ceil(np.asarray(offset_s, dtype=np.float64) * 1e9).astype("<i8")


def write_inputs(wd: Path, data: dict, offset_s: np.ndarray, target: np.ndarray, timeout_s: float,
                 max_inflight: int = MAX_INFLIGHT) -> Path:
    """The program's config and schedule files in ``wd``; returns the config path."""
    n = len(offset_s)
    off_ns = offsets_ns(offset_s)
    tgt = np.asarray(target).astype("<i4")
    with open(wd / SCHEDULE_FILE, "wb") as f:
        f.write(off_ns.tobytes())
        f.write(tgt.tobytes())
    cfg = {**data, "timeout_ms": float(timeout_s) * 1e3, "max_inflight": int(max_inflight), "n": n,
           "schedule": str(wd / SCHEDULE_FILE), "out": str(wd / RECORDS_FILE)}
    (wd / RECORDS_FILE).unlink(missing_ok=True)
    path = wd / CONFIG_FILE
    path.write_text(json.dumps(cfg, separators=(",", ":")))
    return path


def read_records(path) -> dict:
    """The records file as arrays: ``t0_unix`` (s), ``errors``, and per request
    ``sent`` (bool), ``sent_ns`` (int64, -1 where not sent), ``send_ms``,
    ``latency_ms`` (NaN where not sent), ``status`` (int64), ``ok`` (bool)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise MmsError(f"the Go generator wrote no records ({path}): {e}") from e
    if raw[:8] != MAGIC or len(raw) < 32:
        raise MmsError(f"{path}: not a Go generator records file")
    n, t0_ns, errors = np.frombuffer(raw, dtype="<i8", count=3, offset=8).tolist()
    if len(raw) != 32 + 21 * n:
        raise MmsError(f"{path}: {len(raw)} bytes, want {32 + 21 * n} for {n} requests")
    o = 32
    sent_ns = np.frombuffer(raw, dtype="<i8", count=n, offset=o)
    lat_ns = np.frombuffer(raw, dtype="<i8", count=n, offset=o + 8 * n)
    status = np.frombuffer(raw, dtype="<i4", count=n, offset=o + 16 * n).astype(np.int64)
    ok = np.frombuffer(raw, dtype="u1", count=n, offset=o + 20 * n).astype(bool)
    sent = sent_ns >= 0
    return {"n": n, "t0_unix": t0_ns / 1e9, "errors": errors, "sent": sent, "sent_ns": sent_ns.astype(np.int64),
            "send_ms": np.where(sent, sent_ns / 1e6, np.nan),
            "latency_ms": np.where(sent, lat_ns / 1e6, np.nan), "status": status, "ok": ok & sent}
