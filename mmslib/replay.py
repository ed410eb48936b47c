"""Replaying a schedule: every request sent at its scheduled offset, open loop.

Replaying a schedule (:func:`replay`): a precomputed
:class:`mmslib.arrivals.Schedule` (Poisson, Gamma with any CV, a trace) is
sent by one VU's timers with asynchronous requests, each at its offset,
whatever earlier requests are doing (open loop, no VU pool). The script logs
one short line per request (index, send time, duration, status, ok), in
batches; no k6 metrics output is written, which cut k6's CPU per request by
about a third against the CSV output above on this project's 2-core machine
(``benchmarks/generator_cpu_bench.py`` prints both).
Times come from k6's execution clock (Go's monotonic clock, nanoseconds; not
``Date.now()``, whole milliseconds); a request is never sent before its offset
(a timer wake-up that finds nothing due sets the timer again, counted in
``ReplayResult.early_wakeups``). REST latency is k6's ``timings.blocked +
sending + waiting + receiving``: waiting for or opening a connection included.
``docs/generators.md`` has the details and the measured figures.

Layout: one noun, the schedule replay (k6 or the Go generator, :mod:`mmslib.gogen`); the k6
process is :mod:`mmslib.k6proc`; the constant-rate level is :mod:`mmslib.loadgen`.
"""
from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np
import pandas as pd

from . import records as schema
from .errors import MmsError, ParamError
from .k6proc import (DATA_FILE, EXIT_THRESHOLDS_FAILED, GRPC_METHOD, STDERR_FILE, cpu_list, fmt_s, is_number,
                     k6_binary, k6_error, run_k6, tables, tail)
from .k6proc import script as k6_script
from .procs import free_port
from .targets import GRPC_CONTENTS, Target

#: Resolution of send times and latencies of each generator (both read a nanosecond monotonic clock).
REPLAY_CLOCK_RESOLUTION_MS = {"k6": 1e-6, "go": 1e-6}

REPLAY_SCRIPT_FILE = "mms_replay.js"
SCHEDULE_FILE = "mms_schedule.json"
LOG_FILE = "k6_requests.log"
REPLAY_LOG_BATCH = 256  # request lines per log write
_REPLAY_JS = k6_script("replay.js")
GENERATORS = ("k6", "go")  # replay(generator=...): k6 and its script, or mmslib.gogen's Go program
GO_STDOUT_FILE = "go_stdout.txt"
GO_STDERR_FILE = "go_stderr.txt"


@dataclass
class ReplayResult:
    """One replayed schedule: per-request records (:data:`mmslib.records.REPLAY`,
    one row per *scheduled* request, in schedule order; a request k6 never sent
    has ``latency_ms`` NaN, ``status`` 0, ``ok`` False) and the generator's facts."""

    records: pd.DataFrame
    scheduled: int          # requests in the schedule
    sent: int               # requests with a record line from k6
    span_s: float           # warm-up + measured window (schedule's)
    warmup_s: float
    t0_unix: float          # the schedule's time zero (k6's clock)
    cpu_s: float            # k6's CPU seconds (user + system), whole run
    wall_s: float
    schedule_hash: str
    k6_exit_code: int = 0    # the generator's exit code (k6 or go)
    k6_stderr_tail: str = ""  # the end of the generator's stderr
    cpu_affinity: Optional[List[int]] = None
    workdir: Optional[str] = None
    generator: str = "k6"   # which generator sent it (GENERATORS)
    clock_resolution_ms: float = 1e-6  # of send times and latencies (REPLAY_CLOCK_RESOLUTION_MS)
    timer_wakeups: int = -1   # the generator's timer wake-ups (-1: not reported)
    early_wakeups: int = -1   # of them, wake-ups before the next request was due (it waited again)
    most_early_ms: float = float("nan")  # how early the earliest of those was

    @property
    def unsent(self) -> int:
        return self.scheduled - self.sent

    @property
    def cpu_ms_per_request(self) -> float:
        return 1e3 * self.cpu_s / max(1, self.sent)


def build_replay(targets: Sequence[Target], schedule, timeout_s: float = 10.0):
    """The replay script (text), its target data and its schedule data (dicts).
    ``targets[i]`` serves ``schedule.models[i]``. Validates first (ParamError)."""
    from .proto import PREDICT_V2_PROTO, PROTO_DIR

    if not isinstance(targets, (list, tuple)) or not targets or \
            not all(isinstance(t, Target) for t in targets):
        raise ParamError("targets", type(targets).__name__, "a non-empty list of Target, one per schedule model")
    names = [t.model for t in targets]
    if tuple(names) != tuple(schedule.models):
        raise ParamError("targets", names[:5], f"one Target per schedule model, in its order "
                                               f"({list(schedule.models)[:5]}...)")
    if not is_number(timeout_s) or timeout_s <= 0:
        raise ParamError("timeout_s", timeout_s, "a number of seconds > 0")
    data, grpc_addrs = tables(targets)
    # offsets in ms, exactly the float64 values replay_records subtracts (JSON round-trips them), so
    # the script's "due" test and the recorded lateness agree to the last bit: lateness >= 0 exactly
    sched = {"off": (schedule.offset_s * 1e3).tolist(), "tgt": schedule.model.astype(int).tolist()}
    cfg = {"dataFile": "./" + DATA_FILE, "scheduleFile": "./" + SCHEDULE_FILE,
           "maxDuration": fmt_s(schedule.span_s + timeout_s + 30.0), "timeout": fmt_s(timeout_s),
           "grpcAddrs": grpc_addrs, "protoDir": str(PROTO_DIR), "protoFile": PREDICT_V2_PROTO,
           "grpcMethod": GRPC_METHOD, "grpcContents": GRPC_CONTENTS, "logBatch": REPLAY_LOG_BATCH}
    return _REPLAY_JS.replace("__CFG__", json.dumps(cfg, indent=1)), data, sched


def parse_timer_line(text: str) -> dict:
    """The generator's ``T,<wake-ups>,<early wake-ups>,<most ms early>`` line
    (k6 script log or Go program stdout) as ``timer_wakeups``,
    ``early_wakeups``, ``most_early_ms``; -1 / NaN where there is none."""
    for line in text.splitlines():
        if line.startswith("T,"):
            try:
                w, e, m = line[2:].split(",")
                return {"timer_wakeups": int(w), "early_wakeups": int(e), "most_early_ms": float(m)}
            except ValueError:
                break
    return {"timer_wakeups": -1, "early_wakeups": -1, "most_early_ms": float("nan")}


def parse_replay_log(path, schedule, targets: Sequence[Target]) -> tuple:
    """(records, t0_unix, timers) from the replay script's log lines, joined with the
    schedule by request index (see :mod:`mmslib.records`); ``timers``: :func:`parse_timer_line`."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    path = Path(path)
    n = len(schedule)
    t0_ms, body, timers = None, [], parse_timer_line("")
    if path.is_file():
        with open(path, "r", errors="replace") as f:
            for line in f:
                if line.startswith("R,"):
                    body.append(line[2:])
                elif line.startswith("S,") and t0_ms is None:
                    t0_ms = float(line[2:].strip())
                elif line.startswith("T,"):
                    timers = parse_timer_line(line)
    if t0_ms is None:
        raise MmsError(f"k6 wrote no start line to {path}")
    rid = np.zeros(0, dtype=np.int64)
    sent = lat = np.zeros(0)
    status = np.zeros(0, dtype=np.int64)
    okv = np.zeros(0, dtype=bool)
    if body:
        t = pacsv.read_csv(pa.py_buffer("".join(body).encode()),
                           read_options=pacsv.ReadOptions(column_names=["rid", "sent", "lat", "status", "ok"]),
                           convert_options=pacsv.ConvertOptions(column_types={
                               "rid": pa.int64(), "sent": pa.float64(), "lat": pa.float64(),
                               "status": pa.int64(), "ok": pa.int8()}))
        rid = t.column("rid").to_numpy()
        sent, lat = t.column("sent").to_numpy(), t.column("lat").to_numpy()
        status, okv = t.column("status").to_numpy(), t.column("ok").to_numpy().astype(bool)
        if len(rid) and (rid.min() < 0 or rid.max() >= n or len(np.unique(rid)) != len(rid)):
            raise MmsError(f"{path}: request indices outside the schedule or repeated")
    send_ms = np.full(n, np.nan)
    lat_ms = np.full(n, np.nan)
    st = np.zeros(n, dtype=np.int64)
    ok = np.zeros(n, dtype=bool)
    send_ms[rid], lat_ms[rid], st[rid], ok[rid] = sent, lat, status, okv
    got = np.zeros(n, dtype=bool)
    got[rid] = True
    return replay_records(schedule, targets, t0_ms / 1e3, got, send_ms, lat_ms, st, ok), t0_ms / 1e3, timers


def replay_records(schedule, targets: Sequence[Target], t0: float, got, send_ms, lat_ms, status,
                   ok, lateness_ms=None) -> pd.DataFrame:
    """The records (:data:`mmslib.records.REPLAY`) of a replayed schedule from
    per-request arrays in schedule order (any generator): ``got`` (sent or not),
    ``send_ms`` after ``t0`` (epoch s), ``lat_ms``, ``status``, ``ok``;
    ``lateness_ms``: the generator's own (default ``send_ms`` minus the offset)."""
    n = len(schedule)
    off = schedule.offset_s
    st = status
    lateness = send_ms - off * 1e3 if lateness_ms is None else np.asarray(lateness_ms, dtype=np.float64)
    models = np.array([tg.model for tg in targets], dtype=object)
    endpoints = np.array([tg.endpoint for tg in targets], dtype=object)
    df = pd.DataFrame({
        "t_unix": np.where(got, t0 + send_ms / 1e3, t0 + off),
        "latency_ms": lat_ms, "status": st, "ok": ok,
        "model": models[schedule.model] if n else np.array([], dtype=object),
        "endpoint": endpoints[schedule.model] if n else np.array([], dtype=object),
        "warmup": schedule.warmup, "rid": np.arange(n, dtype=np.int64),
        "scheduled_unix": t0 + off, "lateness_ms": lateness, "latency_sched_ms": lateness + lat_ms,
        "hot": schedule.hot,
    })
    return schema.conform(df, schema.REPLAY)


def check_generator(generator: str, protocols: Sequence[str] = ("rest",)) -> str:
    """``generator`` if it can replay requests of ``protocols`` here, else a
    ParamError naming ``generator``: one of :data:`GENERATORS`; ``go`` needs
    the Go toolchain (``apt-get install golang-go``) and sends REST only."""
    from . import gogen

    if generator not in GENERATORS:
        raise ParamError("generator", generator, ", ".join(GENERATORS))
    if generator == "go":
        if any(p != "rest" for p in protocols):
            raise ParamError("generator", generator, "k6 for gRPC (the Go generator sends REST only)")
        if gogen.go_tool() is None:
            raise ParamError("generator", generator,
                             f"k6, or go once a Go toolchain is installed ({gogen.INSTALL_HINT})")
    return generator


def replay(targets: Sequence[Target], schedule, timeout_s: float = 10.0, workdir=None,
           cpu_affinity: Optional[Sequence[int]] = None, k6_path: Optional[str] = None,
           generator: str = "k6") -> ReplayResult:
    """Send ``schedule`` (:class:`mmslib.arrivals.Schedule`) open loop: each
    request at its offset, asynchronously, whatever earlier requests are doing.
    ``targets[i]`` serves ``schedule.models[i]``.

    ``generator``: ``k6`` (default) -- one VU's timers and asynchronous
    requests (no VU pool to run out of); per-request records come from the
    script's own log lines (one short line per request; no k6 metrics output is
    written or parsed), times from k6's nanosecond execution clock; REST
    latency is k6's ``timings.blocked + sending + waiting + receiving`` (the wait
    for a connection included). ``go`` --
    :mod:`mmslib.gogen`, a Go program (standard library only, built on first
    use) with one goroutine per request and kept-alive connections, REST only,
    answers checked the same way, times to the nanosecond, at a fraction of
    k6's CPU per request. Neither sends a request before its offset
    (``lateness_ms >= 0``); ``docs/generators.md`` compares them. Raises ParamError for bad input (before anything
    starts), DependencyError without k6 / Go, MmsError when the generator
    fails (with its own message)."""
    script, data, sched = build_replay(targets, schedule, timeout_s)
    check_generator(generator, [t.protocol for t in targets])
    cpus = cpu_list(cpu_affinity)
    if generator == "go":
        from . import gogen
        exe = gogen.binary()
    else:
        k6 = k6_binary(k6_path)
    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix=f"mmslib-{generator}-")
        wd = Path(tmp.name)
    else:
        wd = Path(workdir)
        wd.mkdir(parents=True, exist_ok=True)
    try:
        deadline = schedule.span_s + timeout_s + 90.0
        if generator == "go":
            cfg = gogen.write_inputs(wd, data, schedule.offset_s, schedule.model, timeout_s)
            rc, wall, cpu_s = run_k6([exe, str(cfg)], wd, deadline, cpus, what="the Go generator",
                                      stdout=GO_STDOUT_FILE, stderr=GO_STDERR_FILE)
            stderr_tail = tail(wd / GO_STDERR_FILE)
            if rc != 0:
                raise MmsError(f"the Go generator failed (exit code {rc}): {stderr_tail[-2000:]}")
            g = gogen.read_records(wd / gogen.RECORDS_FILE)
            if g["n"] != len(schedule):
                raise MmsError(f"the Go generator wrote {g['n']} records for {len(schedule)} requests")
            # lateness in whole nanoseconds against the offsets the program was given (rounded up)
            late = np.where(g["sent"], (g["sent_ns"] - gogen.offsets_ns(schedule.offset_s)) / 1e6, np.nan)
            recs = replay_records(schedule, targets, g["t0_unix"], g["sent"], g["send_ms"], g["latency_ms"],
                                  g["status"], g["ok"], lateness_ms=late)
            t0 = g["t0_unix"]
            timers = parse_timer_line(tail(wd / GO_STDOUT_FILE))
        else:
            (wd / REPLAY_SCRIPT_FILE).write_text(script)
            (wd / DATA_FILE).write_text(json.dumps(data, separators=(",", ":")))
            (wd / SCHEDULE_FILE).write_text(json.dumps(sched, separators=(",", ":")))
            (wd / LOG_FILE).unlink(missing_ok=True)
            cmd = [k6, "run", "--no-usage-report", "--no-color", "--quiet", "--no-summary", "--no-thresholds",
                   "--address", f"127.0.0.1:{free_port()}", "--log-format", "raw",
                   "--log-output", f"file={wd / LOG_FILE}", str(wd / REPLAY_SCRIPT_FILE)]
            rc, wall, cpu_s = run_k6(cmd, wd, deadline, cpus)
            stderr_tail = tail(wd / STDERR_FILE)
            if rc not in (0, EXIT_THRESHOLDS_FAILED):
                log_tail = tail(wd / LOG_FILE)
                raise MmsError(f"k6 failed (exit code {rc}): {k6_error(stderr_tail + log_tail)}")
            recs, t0, timers = parse_replay_log(wd / LOG_FILE, schedule, targets)
        sent = int(recs["latency_ms"].notna().sum())
        return ReplayResult(recs, len(schedule), sent, float(schedule.span_s), float(schedule.warmup_s), t0,
                            cpu_s, wall, schedule.hash(), rc, stderr_tail, cpus, None if tmp else str(wd),
                            generator, REPLAY_CLOCK_RESOLUTION_MS[generator], **timers)
    finally:
        if tmp is not None:
            tmp.cleanup()
