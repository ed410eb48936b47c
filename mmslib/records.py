"""The per-request record schema: its one home.

Every load generator in mmslib returns, and every statistic reads, one row per
request with the columns below (name -> dtype). :data:`REQUEST` is what any
level has; :data:`REPLAY` adds what a replayed schedule knows
(:func:`mmslib.loadgen.replay`): when each request was *scheduled*, how late it
was sent, and its latency counted from the scheduled time.

=====================  ========  ================================================
``t_unix``             float64   request sent, epoch seconds
``latency_ms``         float64   send -> response's last byte, a wait for a connection included; NaN: never sent
``status``             int64     HTTP status (0: no response) or gRPC status code
``ok``                 bool      success status AND outputs equal the expected ones
``model``              object    model name (str)
``endpoint``           object    server address or name (str)
``warmup``             bool      scheduled in the warm-up window (kept, not counted)
---------------------  --------  ------------------------------------------------
``rid``                int64     index in the level's schedule
``scheduled_unix``     float64   when the schedule said to send it, epoch seconds
``lateness_ms``        float64   send minus scheduled (ms, the generator's delay; never < 0)
``latency_sched_ms``   float64   scheduled -> response: lateness + latency
``hot``                bool      sent by the noisy-neighbour stream
=====================  ========  ================================================

Clock resolution of the times (``clock_resolution_ms`` of the generator's result,
:class:`mmslib.loadgen.ReplayResult` / :class:`mmslib.loadgen.LevelResult`):

============================================  ==========  ========================================
generator                                     resolution  clock
============================================  ==========  ========================================
replay, ``k6`` (``mmslib/k6/replay.js``)      1e-6 ms     k6's execution clock (Go monotonic, ns)
replay, ``go`` (``mmslib/gogen``)             1e-6 ms     Go's monotonic clock (ns)
``run_level`` (k6 CSV samples)                1e-3 ms     k6's sample timestamps (microseconds)
============================================  ==========  ========================================

REST latency is, for every generator, from asking for a connection to the
answer's last byte (k6: ``timings.blocked + sending + waiting + receiving``;
``run_level``: ``http_req_blocked + http_req_duration``); gRPC latency (k6 only)
is from the send to the answer's callback. ``docs/generators.md`` has the details.
"""
from __future__ import annotations

from typing import Dict, List

import pandas as pd

from .errors import MmsError

REQUEST: Dict[str, str] = {
    "t_unix": "float64", "latency_ms": "float64", "status": "int64", "ok": "bool",
    "model": "object", "endpoint": "object", "warmup": "bool",
}
REPLAY: Dict[str, str] = {
    **REQUEST,
    "rid": "int64", "scheduled_unix": "float64", "lateness_ms": "float64",
    "latency_sched_ms": "float64", "hot": "bool",
}
REQUEST_COLUMNS: List[str] = list(REQUEST)
REPLAY_COLUMNS: List[str] = list(REPLAY)


def empty(schema: Dict[str, str] = REQUEST) -> pd.DataFrame:
    """No rows, the schema's columns and dtypes."""
    return pd.DataFrame({c: pd.Series([], dtype=t) for c, t in schema.items()})


def conform(df: pd.DataFrame, schema: Dict[str, str] = REQUEST, extra: bool = True) -> pd.DataFrame:
    """``df`` with the schema's columns first, in order, cast to its dtypes
    (other columns kept after them when ``extra``). Missing columns raise."""
    missing = [c for c in schema if c not in df.columns]
    if missing:
        raise MmsError(f"per-request records lack columns {missing} (have {list(df.columns)})")
    out = df[list(schema) + ([c for c in df.columns if c not in schema] if extra else [])].copy()
    for c, t in schema.items():
        if str(out[c].dtype) != t:
            out[c] = out[c].astype(t)
    return out
