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
(:func:`run_level`) and ``mmslib/k6/replay.js`` (:func:`mmslib.replay.replay`); k6's own
counts come from the script's ``handleSummary`` (``k6_summary.json``).
The column schema of the records lives in :mod:`mmslib.records`.

Targets and the traffic split (which target each iteration goes to) live in
:mod:`mmslib.targets`; this module re-exports :class:`Target`, :func:`traffic_weights`,
:func:`target_sequence`, ``PROTOCOLS`` and ``TRAFFIC``.

Layout: one noun, the constant-rate level. The schedule replay is :mod:`mmslib.replay`; the k6
process both run (binary, scripts, target tables, supervision) is :mod:`mmslib.k6proc`. This module
re-exports the replay's names (``loadgen.replay``, ``loadgen.GENERATORS``, ...) for callers.
"""
from __future__ import annotations

import json
import math
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np
import pandas as pd

from . import records as schema
from .errors import MmsError, ParamError
from .procs import free_port
from .targets import PROTOCOLS, target_sequence  # noqa: F401 (re-exported: loadgen.PROTOCOLS, ...)
from .targets import GRPC_CONTENTS, M32, TRAFFIC, Target, cumulative, traffic_weights
from .k6proc import (  # noqa: F401  (k6 and its process: their home is mmslib.k6proc)
    DATA_FILE, EXIT_THRESHOLDS_FAILED, GRPC_METHOD, SCRIPTS_DIR, STDERR_FILE, STDOUT_FILE, cpu_list, fmt_s,
    is_number, k6_binary, k6_error, run_k6, tables, tail)
from .k6proc import script as k6_script

_JS = k6_script("constant.js")

RECORD_COLUMNS = schema.REQUEST_COLUMNS  # the schema lives in mmslib.records
DURATION_METRICS = ("http_req_duration", "grpc_req_duration", "mms_unsent")
BLOCKED_METRIC = "http_req_blocked"  # added to http_req_duration: the wait for a connection
ITERATION_METRIC = "iteration_duration"  # caps that sum (an upper bound: the whole iteration)
LEVEL_CLOCK_RESOLUTION_MS = 1e-3   # run_level: k6's CSV timestamps, microseconds
SCRIPT_FILE = "mms_load.js"
CSV_FILE = "k6_samples.csv"
SUMMARY_FILE = "k6_summary.json"
VU_CAP_PRE = 500   # preallocated VUs at most (a VU: ~0.25 MB, ~1 ms to start; gRPC ~0.4 MB, 3 ms)
VU_CAP_MAX = 2000  # VUs at most (those beyond the preallocated start only when needed)


# --------------------------------------------------------------------------- k6 binary

def _rate_and_unit(qps: float):
    """k6 rate (integer) per timeUnit for a possibly fractional qps."""
    if float(qps).is_integer():
        return int(qps), "1s"
    f = Fraction(float(qps)).limit_denominator(1000)
    return f.numerator, f"{f.denominator}s"


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

    data, grpc_addrs = tables(targets)
    cfg = {
        "rate": rate, "timeUnit": unit, "duration": fmt_s(k6_duration),
        "preAllocatedVUs": pre, "maxVUs": mx, "gracefulStop": fmt_s(timeout_s + 1.0),
        "warmupMs": max(0.0, warmup_s * 1000.0 - interval * 500.0) if warmup_s > 0 else 0.0,
        "timeout": fmt_s(timeout_s), "seed": int(seed) & M32,
        "maxRequests": math.ceil(qps * total - 1e-9), "cum": cumulative(weights),
        "dataFile": "./" + DATA_FILE, "summaryFile": SUMMARY_FILE, "grpcAddrs": grpc_addrs, "protoDir": str(PROTO_DIR),
        "protoFile": PREDICT_V2_PROTO, "grpcMethod": GRPC_METHOD, "grpcContents": GRPC_CONTENTS,
    }
    return _JS.replace("__CFG__", json.dumps(cfg, indent=1)), data, cfg


def _validate(targets, qps, duration_s, warmup_s, traffic, skew, seed, pre, mx, timeout_s, lat):
    if not isinstance(targets, (list, tuple)) or not targets:
        raise ParamError("targets", targets if not isinstance(targets, (list, tuple)) else [],
                         "a non-empty list of Target")
    for t in targets:
        if not isinstance(t, Target):
            raise ParamError("targets", type(t).__name__, "a non-empty list of Target")
    if not is_number(qps) or qps <= 0:
        raise ParamError("qps", qps, "a number > 0 (requests per second)")
    if not is_number(warmup_s) or warmup_s < 0:
        raise ParamError("warmup_s", warmup_s, "a number >= 0 (seconds)")
    if not is_number(duration_s) or duration_s <= 0 or duration_s <= warmup_s:
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
    if not is_number(timeout_s) or timeout_s <= 0:
        raise ParamError("timeout_s", timeout_s, "a number of seconds > 0")
    if not is_number(lat) or lat <= 0:
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
    cpus = cpu_list(cpu_affinity)
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
        rc, wall, cpu_s = run_k6(cmd, wd, deadline, cpus)
        stderr_tail = tail(wd / STDERR_FILE)
        if rc not in (0, EXIT_THRESHOLDS_FAILED):
            raise MmsError(f"k6 failed (exit code {rc}): {k6_error(stderr_tail)}")
        if not (wd / SUMMARY_FILE).is_file():
            raise MmsError(f"k6 wrote no summary ({wd / SUMMARY_FILE}); stderr: {k6_error(stderr_tail)}")
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
                           f"{k6_error(stderr_tail)}")
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


# the schedule replay (its home: mmslib.replay), re-exported for callers of loadgen
from .replay import (  # noqa: E402,F401
    GENERATORS, LOG_FILE, REPLAY_LOG_BATCH, REPLAY_SCRIPT_FILE, SCHEDULE_FILE, ReplayResult, build_replay,
    check_generator, parse_replay_log, parse_timer_line, replay, replay_records)
