"""An asyncio open-loop replayer that reads each answer's cold-start header.

The cold-start experiment's lazy-loading cells (:mod:`mmslib.coldstart`, section 3) need to know,
per request, whether the host loaded the model first (the ``x-mms-cold-start`` header the kserve
runtime's lazy repository sets), which k6's records do not keep. This client sends a precomputed
:class:`mmslib.arrivals.Schedule` open loop (each request at its offset, whatever earlier ones do),
with latency from the send and from the scheduled time and the lateness of each send. One noun:
that replayer; the k6 and Go replayers are :mod:`mmslib.replay`.
"""
from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Callable, Sequence, Union

import numpy as np
import pandas as pd

from . import arrivals, v2
from .runtimes.kserve_server import COLD_HEADER


def replay(urls: Sequence[str], sched: arrivals.Schedule, body: Union[dict, Sequence[dict]],
           check: Union[None, Callable, Sequence[Callable]] = None,
           timeout_s: float = 60.0, start_delay_s: float = 0.3) -> pd.DataFrame:
    """Open loop: send request ``i`` to ``urls[sched.model[i]]`` at ``sched.offset_s[i]``
    seconds whatever the earlier requests do; one row per request (``t_sched``,
    ``t_unix``, ``late_ms``: how late it was sent (its coroutine started), ``latency_ms``:
    send -> response, ``latency_sched_ms``: scheduled time -> response (lateness
    included, so a client that falls behind cannot flatter the server; what the SLO
    is judged on, as in the traffic notebook), ``status``, ``ok``, ``cold``: the
    ``x-mms-cold-start`` header, 1/0, -1 when absent).

    ``body`` and ``check``: one for every request, or one per model (indexed like ``urls``), so
    that models taking different inputs each get their own request and answer check."""
    box: dict = {}
    n_models = len(urls)
    bodies = _per_model(body, n_models, "body", dict)
    checks = _per_model(check, n_models, "check", lambda c: c is None or callable(c))
    encoded = [json.dumps(b).encode() for b in bodies]

    def main():  # its own thread and event loop: a notebook's kernel already runs one
        try:
            box["out"] = asyncio.run(_replay(list(urls), sched, encoded, checks, timeout_s, start_delay_s))
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller
            box["error"] = e
    t = threading.Thread(target=main, name="mmslib-replay", daemon=True)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["out"]


def _per_model(x, n: int, name: str, is_one) -> list:
    """``x`` for each of ``n`` models: one value repeated, or a sequence of ``n``."""
    if (isinstance(x, dict) if is_one is dict else is_one(x)):
        return [x] * n
    xs = list(x)
    if len(xs) != n:
        raise ValueError(f"replay: {len(xs)} values of {name} for {n} models (give one, or one per model)")
    return xs


async def _replay(urls, sched, bodies, checks, timeout_s, start_delay_s):
    import aiohttp
    n = len(sched)
    lat = np.full(n, np.nan)
    lat_sched = np.full(n, np.nan)
    status = np.zeros(n, dtype=np.int64)
    cold = np.full(n, -1, dtype=np.int8)
    ok = np.zeros(n, dtype=bool)
    t_unix = np.zeros(n)
    late = np.zeros(n)
    hdr = {"Content-Type": "application/json"}
    loop = asyncio.get_running_loop()
    conn = aiohttp.TCPConnector(limit=0, ttl_dns_cache=None)
    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=timeout_s)) as session:
        async def one(i: int, k: int, at: float) -> None:
            url, body, check = urls[k], bodies[k], checks[k]
            t0 = loop.time()           # the clock the schedule is kept on (monotonic)
            late[i] = (t0 - at) * 1e3
            t_unix[i] = time.time()
            try:
                async with session.post(url, data=body, headers=hdr) as r:
                    data = await r.read()
                    status[i] = r.status
                    h = r.headers.get(COLD_HEADER)
                    cold[i] = int(h) if h in ("0", "1") else -1
                    good = r.status == 200
                    if good and check is not None:
                        try:
                            good = bool(check(v2.decode_outputs(json.loads(data))))
                        except (ValueError, KeyError, TypeError):
                            good = False
                    ok[i] = good
            except (aiohttp.ClientError, asyncio.TimeoutError):
                status[i] = 0
            t1 = loop.time()
            lat[i] = (t1 - t0) * 1e3
            lat_sched[i] = (t1 - at) * 1e3

        base = loop.time() + start_delay_s
        tasks = []
        ts, ms = sched.offset_s.tolist(), sched.model.tolist()
        for i in range(n):
            at = base + ts[i]
            delay = at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(one(i, ms[i], at)))
        await asyncio.gather(*tasks)
    return pd.DataFrame({"t_sched": sched.offset_s, "t_unix": t_unix, "late_ms": late, "latency_ms": lat,
                         "latency_sched_ms": lat_sched, "status": status, "ok": ok, "cold": cold,
                         "model_index": sched.model})
