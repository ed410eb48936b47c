"""A discrete-event model of multi-model hosts with LRU model caches.

What is modelled (and what is not):

- **Traffic**: an arrival schedule (:class:`mmslib.arrivals.Schedule`:
  request offsets, model ids) -- Poisson arrivals at a total rate, Zipf
  popularity (model 0 the hottest), from :func:`mmslib.arrivals.make_schedule`,
  the generator that drives the real lazy-mode runs -- or a real run's own
  recorded requests, replayed (:func:`replayed_schedule`).
- **Placement**: model ``m`` lives on host ``m % hosts`` (a fixed hash, as
  ModelMesh places a model on a few pods of its choice; one copy per model).
- **Each host**: an LRU cache of at most ``capacity`` models (a count, or a
  memory budget divided by the models' declared memory), updated when a request
  arrives, ``servers`` FIFO servers (1: a Python server's one event loop) and
  one loader. A request for a model not in the cache is a cold start: it
  waits for the loader (one load at a time), for its load, then for a server
  (the kserve runtime's lazy repository loads in a thread while its event loop
  keeps serving, and sees the load end only when the loop is free: ``loads``
  in :func:`simulate` says how); when full the least recently used model is
  evicted first.
- **Times are drawn from measured distributions** (:class:`Empirical` over a
  real run's records); :class:`Exponential` and :class:`Constant` exist for the
  closed-form checks (M/M/1, M/D/1).

Not modelled: loads overlapping inference on other cores, several replicas of a
hot model, the network between client and host, timeouts and retries. The
validation against real runs (:func:`mmslib.coldstart.validate_simulator`)
measures how much that matters.

Speed: an event-driven loop per host (arrivals and load ends in time order, a
heap for the server queue, an ``OrderedDict`` for the cache) is the only
per-request Python; popularity sampling is numpy.
1,000,000 models and 10 minutes at 1,000 QPS (600,000 requests) take a few
seconds (``benchmarks/simulate_bench.py`` prints it).
"""
from __future__ import annotations

import heapq
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np
import pandas as pd

from .errors import ParamError
from .arrivals import Schedule, make_schedule

__all__ = ["Schedule", "arrival_schedule", "replayed_schedule", "Empirical", "Exponential", "Constant", "simulate",
           "SimResult", "che_hit_rate", "mm1_mean_wait", "md1_mean_wait", "cluster", "hosts_needed"]


# --------------------------------------------------------------------------- traffic

def arrival_schedule(rate: float, duration_s: float, n_models: int, alpha: float, seed: int = 0,
                     process: str = "poisson", warmup_s: float = 0.0,
                     models: Optional[Sequence[str]] = None) -> Schedule:
    """:func:`mmslib.arrivals.make_schedule` for ``n_models`` models named
    ``m0, m1, ...`` (or ``models``): arrivals at ``rate`` per second for
    ``warmup_s + duration_s`` seconds (``poisson`` or ``constant``), model ``k``
    chosen with probability proportional to ``1 / (k + 1) ** alpha``."""
    if not isinstance(n_models, (int, np.integer)) or isinstance(n_models, bool) or n_models < 1:
        raise ParamError("n_models", n_models, "an integer >= 1")
    names = list(models) if models is not None else [f"m{i}" for i in range(int(n_models))]
    return make_schedule(names, rate, duration_s, warmup_s, arrival=process, popularity="zipf",
                         zipf_alpha=alpha, seed=seed)


def replayed_schedule(offset_s, model, models: Sequence[str], span_s: float, warmup_s: float = 0.0) -> Schedule:
    """A real run's recorded requests (offsets from its start, model indices) as a schedule."""
    offset_s = np.asarray(offset_s, dtype=np.float64)
    order = np.argsort(offset_s, kind="stable")
    return Schedule(offset_s[order], np.asarray(model)[order].astype(np.int32), np.zeros(len(order), dtype=bool),
                    tuple(models), float(span_s), float(warmup_s))


# --------------------------------------------------------------------------- distributions

class Empirical:
    """Resamples measured values (seconds), e.g. a real run's latencies."""

    def __init__(self, values: Sequence[float], name: str = "measured"):
        v = np.asarray(values, dtype=np.float64)
        v = v[np.isfinite(v)]
        if not len(v):
            raise ParamError(name, "[]", "at least one measured value")
        self.values, self.name = v, name

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return self.values[rng.integers(0, len(self.values), n)]

    @property
    def mean(self) -> float:
        return float(self.values.mean())

    def __repr__(self) -> str:
        return f"Empirical({self.name}: n={len(self.values)}, p50={np.median(self.values) * 1e3:.3g} ms)"


class Exponential:
    def __init__(self, mean: float):
        self.mean = float(mean)

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.exponential(self.mean, n)


class Constant:
    def __init__(self, value: float):
        self.mean = float(value)

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.full(n, self.mean)


# --------------------------------------------------------------------------- the model

@dataclass
class SimResult:
    latency_s: np.ndarray       # per request: finish - arrival
    cold: np.ndarray            # per request: the model was not loaded on arrival
    wait_s: np.ndarray          # per request: time queued before service started
    evictions: int
    hosts: int
    capacity: int
    extra: Dict[str, float] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.latency_s)

    @property
    def hit_rate(self) -> float:
        return float(1.0 - self.cold.mean()) if self.n else float("nan")

    def attainment(self, slo_s: float) -> float:
        return float((self.latency_s <= slo_s).mean()) if self.n else float("nan")

    def summary(self, slo_s: Optional[float] = None, skip: int = 0) -> Dict[str, float]:
        """Hit rate, cold starts, latency percentiles (ms), attainment; ``skip``: leading
        requests left out (the cache's warm-up)."""
        lat, cold = self.latency_s[skip:], self.cold[skip:]
        out = {"requests": int(len(lat)), "hit_rate": float(1 - cold.mean()) if len(lat) else np.nan,
               "cold_starts": int(cold.sum()), "evictions": self.evictions,
               "p50_ms": float(np.percentile(lat, 50) * 1e3) if len(lat) else np.nan,
               "p99_ms": float(np.percentile(lat, 99) * 1e3) if len(lat) else np.nan,
               "cold_p50_ms": float(np.percentile(lat[cold], 50) * 1e3) if cold.any() else np.nan,
               "cold_p99_ms": float(np.percentile(lat[cold], 99) * 1e3) if cold.any() else np.nan}
        if slo_s is not None:
            out["attainment"] = float((lat <= slo_s).mean()) if len(lat) else np.nan
        return out


LOADS = ("event_loop", "apart", "blocking")


def simulate(schedule: Schedule, hosts: int, capacity: int, service, load, servers: int = 1,
             seed: int = 0, occupancy=None, loads: str = "event_loop") -> SimResult:
    """Run ``schedule`` through ``hosts`` hosts of ``capacity`` models each;
    ``service`` and ``load`` are distributions (``draw(rng, n)`` in seconds).

    How a host loads a model (``loads``):

    - ``event_loop`` (the kserve runtime's lazy repository): one load at a
      time, in a thread beside the server (an asyncio event loop); a request
      for a model not in the cache waits for its load, and the load's end is
      seen only when the loop is free -- when the request it is serving ends
      (the thread hands its result back through the loop, and the repository's
      lock is released then) -- after which the request queues for the server
      like any other;
    - ``apart``: the same, with the load's end seen at once (a runtime whose
      loader needs no server);
    - ``blocking``: the load holds the server (the request's service is load +
      inference), as a runtime whose loads stop serving would.

    A request arriving while its model is still loading waits for that load
    and is a cold start too (as the kserve server counts it; not with
    ``blocking``). Each host serves its queue first come, first served.

    ``occupancy`` (a distribution, or None: the service time itself): how long
    a request holds its host's server, when that is less than its latency --
    e.g. a measured client-side latency whose tail is the client's and the
    network's, not the server's. A request then finishes ``service`` after it
    starts, and frees the server after ``occupancy``.

    ``wait_s``: time queued (for the loader, for a load in progress, for a
    server); latency = wait + own load + service."""
    if not isinstance(hosts, (int, np.integer)) or hosts < 1:
        raise ParamError("hosts", hosts, "an integer >= 1")
    if not isinstance(capacity, (int, np.integer)) or capacity < 1:
        raise ParamError("capacity", capacity, "an integer >= 1 (models per host)")
    if not isinstance(servers, (int, np.integer)) or servers < 1:
        raise ParamError("servers", servers, "an integer >= 1 (requests served at once per host)")
    if loads not in LOADS:
        raise ParamError("loads", loads, " | ".join(LOADS))
    rng = np.random.default_rng(seed)
    n = len(schedule)
    t = schedule.offset_s
    model = schedule.model
    host_of = model % hosts
    svc = service.draw(rng, n)
    ld = load.draw(rng, n)
    occ = svc if occupancy is None else np.minimum(occupancy.draw(rng, n), svc)
    # plain Python lists: the per-host event loop below is the only per-request Python
    tl, ml, ll = t.tolist(), model.tolist(), ld.tolist()
    sl, ol = svc.tolist(), occ.tolist()
    cl = [False] * n
    st = [0.0] * n
    own = [0.0] * n                        # the load this request made (0: none)
    order = np.argsort(host_of, kind="stable")
    bounds = np.searchsorted(host_of[order], np.arange(int(hosts) + 1))
    evictions = 0
    for h in range(int(hosts)):
        ids = order[bounds[h]:bounds[h + 1]].tolist()
        if ids:
            evictions += _host(ids, tl, ml, sl, ol, ll, int(capacity), int(servers), loads, cl, st, own)
    start = np.asarray(st)
    svc_all = np.asarray(sl)               # with "blocking", cold requests' service includes the load
    finish = start + svc_all
    latency = finish - t
    wait = latency - svc_all - (0.0 if loads == "blocking" else np.asarray(own))
    return SimResult(latency_s=latency, cold=np.asarray(cl, dtype=bool), wait_s=wait, evictions=evictions,
                     hosts=int(hosts), capacity=int(capacity))


def _host(ids, tl, ml, sl, ol, ll, cap, servers, loads, cl, st, own) -> int:
    """One host, its requests ``ids`` in arrival order: an event-driven loop over arrivals
    and load ends. Fills ``cl`` (cold), ``st`` (service start), ``own`` (own load), and
    ``sl``/``ol`` for blocking loads; returns the evictions."""
    INF = float("inf")
    heappush, heappop, heapreplace = heapq.heappush, heapq.heappop, heapq.heapreplace
    cache: OrderedDict = OrderedDict()
    queued: list = []                      # (time it joined the server queue, seq, request)
    pool = [0.0] * servers                 # when each server is free (a heap)
    waiting: Dict[int, list] = {}          # model -> requests waiting for its load (loading or queued)
    pending: deque = deque()               # (model, load seconds) waiting for the loader
    cur_m, cur_end = None, INF             # the load in progress, when it ends
    seen_late = loads == "event_loop"
    blocking = loads == "blocking"
    seq = evictions = k = 0
    n = len(ids)
    while k < n or cur_m is not None:
        ta = tl[ids[k]] if k < n else INF
        T = ta if ta <= cur_end else cur_end
        while queued:                      # start what starts before T, first come first served
            j = queued[0][0]
            f = pool[0]
            s = j if j > f else f
            if s >= T:
                break
            i = heappop(queued)[2]
            st[i] = s
            heapreplace(pool, s + ol[i])
        if ta <= cur_end:                  # an arrival
            i = ids[k]
            k += 1
            m = ml[i]
            w = waiting.get(m)
            if w is not None:              # its model is loading (or queued to load): wait for it
                cl[i] = True
                w.append(i)
                if m in cache:
                    cache.move_to_end(m)
                    continue
            elif m in cache:
                cache.move_to_end(m)
                heappush(queued, (ta, seq, i))
                seq += 1
                continue
            if len(cache) >= cap:
                cache.popitem(last=False)
                evictions += 1
            cache[m] = None
            if w is not None:
                continue
            cl[i] = True
            x = ll[i]
            own[i] = x
            if blocking:
                sl[i] += x
                ol[i] += x
                heappush(queued, (ta, seq, i))
                seq += 1
            else:
                waiting[m] = [i]
                if cur_m is None:
                    cur_m, cur_end = m, ta + x
                else:
                    pending.append((m, x))
        else:                              # the load of cur_m ends at T
            f = pool[0]
            seen = f if (seen_late and f > T) else T
            for i in waiting.pop(cur_m):
                heappush(queued, (seen, seq, i))
                seq += 1
            if pending:
                m, x = pending.popleft()
                cur_m, cur_end = m, seen + x
            else:
                cur_m, cur_end = None, INF
    while queued:
        j, _, i = heappop(queued)
        f = pool[0]
        s = j if j > f else f
        st[i] = s
        heapreplace(pool, s + ol[i])
    return evictions


# --------------------------------------------------------------------------- closed forms

def mm1_mean_wait(lam: float, mu: float) -> float:
    """M/M/1 mean time in queue (before service): rho / (mu - lambda)."""
    rho = lam / mu
    if rho >= 1:
        return float("inf")
    return rho / (mu - lam)


def md1_mean_wait(lam: float, mu: float) -> float:
    """M/D/1 mean time in queue (Pollaczek-Khinchine, deterministic service): rho / (2 mu (1 - rho))."""
    rho = lam / mu
    if rho >= 1:
        return float("inf")
    return rho / (2 * mu * (1 - rho))


def che_hit_rate(weights: Sequence[float], capacity: int) -> float:
    """LRU hit rate under the independent reference model by Che's
    approximation: the characteristic time T solves
    ``sum_i (1 - exp(-p_i T)) = capacity``; hit rate ``sum_i p_i (1 - exp(-p_i T))``."""
    from scipy.optimize import brentq
    p = np.asarray(weights, dtype=np.float64)
    p = p / p.sum()
    if capacity >= np.count_nonzero(p):
        return 1.0

    def f(T):
        return float(np.sum(-np.expm1(-p * T))) - capacity
    hi = 1.0
    while f(hi) < 0:
        hi *= 2
    T = brentq(f, 0.0, hi, xtol=1e-12 * hi, rtol=1e-12)
    return float(np.sum(p * -np.expm1(-p * T)))


# --------------------------------------------------------------------------- cluster questions

def _capacity(host_memory: Optional[float], model_memory: Optional[float], capacity: Optional[int]) -> int:
    if capacity is not None:
        return int(capacity)
    if not host_memory or not model_memory:
        raise ParamError("capacity", None, "a model count, or host_memory and model_memory")
    return max(1, int(host_memory // model_memory))


def cluster(n_models: int, hosts: int, alpha: float, rate: float, slo_ms: float, service, load,
            host_memory: Optional[float] = None, model_memory: Optional[float] = None,
            capacity: Optional[int] = None, duration_s: float = 600.0, servers: int = 1,
            seed: int = 0, warmup_frac: float = 0.1, schedule: Optional[Schedule] = None,
            occupancy=None, loads: str = "event_loop") -> Dict[str, float]:
    """One cluster: ``n_models`` models over ``hosts`` hosts (each holding
    ``capacity`` models, or ``host_memory // model_memory``), Poisson traffic
    at ``rate`` with Zipf ``alpha``. Returns hit rate, cold starts, p99 and SLO
    attainment over the requests after the first ``warmup_frac`` (the caches
    start empty), and the Che estimate of the hit rate."""
    cap = _capacity(host_memory, model_memory, capacity)
    sched = schedule if schedule is not None else arrival_schedule(rate, duration_s, n_models, alpha, seed)
    res = simulate(sched, hosts, cap, service, load, servers=servers, seed=seed + 1, occupancy=occupancy,
                   loads=loads)
    skip = int(len(sched) * warmup_frac)
    out = {"n_models": int(n_models), "hosts": int(hosts), "capacity_per_host": cap,
           "alpha": float(alpha), "rate": float(rate), "slo_ms": float(slo_ms),
           "duration_s": float(sched.span_s), "utilization": float(rate * (occupancy or service).mean / hosts / servers),
           **res.summary(slo_ms / 1e3, skip=skip)}
    return out


def hosts_needed(n_models: int, alpha: float, rate: float, slo_ms: float, service, load,
                 target: float = 0.99, host_memory: Optional[float] = None,
                 model_memory: Optional[float] = None, capacity: Optional[int] = None,
                 duration_s: float = 600.0, servers: int = 1, seed: int = 0,
                 max_hosts: int = 100_000, occupancy=None, loads: str = "event_loop") -> Dict[str, object]:
    """The fewest hosts whose simulated SLO attainment is >= ``target`` (one
    schedule for every host count: common random numbers), found by doubling
    then bisection. ``tried``: every (hosts, attainment) simulated."""
    sched = arrival_schedule(rate, duration_s, n_models, alpha, seed)
    tried: Dict[int, float] = {}

    def att(h: int) -> float:
        if h not in tried:
            tried[h] = cluster(n_models, h, alpha, rate, slo_ms, service, load, host_memory, model_memory,
                               capacity, duration_s, servers, seed, schedule=sched,
                               occupancy=occupancy, loads=loads)["attainment"]
        return tried[h]
    cap = _capacity(host_memory, model_memory, capacity)
    lo, hi = 0, 1
    while att(hi) < target:
        # every model fits, the hosts are at most half busy, and doubling no longer helps: the
        # misses left are first requests (and their loads), which no host count removes
        busy = rate * (occupancy or service).mean / hi / servers
        if hi * cap >= n_models and hi >= 4 and busy <= 0.5 and att(hi) - att(hi // 4) < 1e-3:
            return {"hosts": None, "target": target, "tried": sorted(tried.items()),
                    "reason": f"not reachable: attainment levels off at {att(hi):.4f}"}
        lo, hi = hi, hi * 2
        if hi > max_hosts:
            return {"hosts": None, "target": target, "tried": sorted(tried.items()),
                    "reason": f"not reached with {max_hosts} hosts"}
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if att(mid) >= target:
            hi = mid
        else:
            lo = mid
    return {"hosts": hi, "attainment": tried[hi], "target": target, "tried": sorted(tried.items())}


def cluster_table(questions: Sequence[Dict[str, object]], service, load, **kw) -> pd.DataFrame:
    """One row per question (dicts of :func:`cluster` arguments); ``hosts: None``
    asks for the hosts needed for ``target`` (default 0.99)."""
    rows = []
    for q in questions:
        q = dict(q)
        if q.get("hosts") is None:
            q.pop("hosts", None)
            r = hosts_needed(service=service, load=load, **{**kw, **q})
            rows.append({**{k: v for k, v in q.items()}, "hosts_needed": r["hosts"],
                         "attainment": r.get("attainment"), "simulated_host_counts": len(r["tried"])})
        else:
            rows.append(cluster(service=service, load=load, **{**kw, **q}))
    return pd.DataFrame(rows)
