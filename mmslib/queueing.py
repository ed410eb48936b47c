"""A one-server FIFO queue in closed form, for checking the statistics on dependent requests.

Latencies of a queue are not independent: a burst of arrivals fills the queue and the requests
behind it wait together. The coverage and false-alarm benchmarks (``benchmarks/coverage_bench.py``,
``benchmarks/compare_bench.py``) and their tests draw levels from this queue, with the arrival
processes of :mod:`mmslib.arrivals`, and check the intervals and verdicts against its true
(long-run) values. Waiting times follow Lindley's recursion
``W[i+1] = max(0, W[i] + S[i] - A[i+1])``, computed without a loop as a reflected random walk:
``W[n] = C[n] - min(0, min_{k<=n} C[k])`` with ``C`` the cumulative sum of ``S[i-1] - A[i]``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import arrivals


def fifo_latencies(offsets: np.ndarray, service: np.ndarray) -> np.ndarray:
    """Latency (waiting + service, seconds) of each request of a FIFO single-server queue that
    starts empty, for arrival times ``offsets`` (sorted) and service times ``service``."""
    offsets = np.asarray(offsets, dtype=np.float64)
    service = np.asarray(service, dtype=np.float64)
    if offsets.size == 0:
        return np.zeros(0)
    gaps = np.diff(offsets)
    steps = service[:-1] - gaps
    c = np.concatenate([[0.0], np.cumsum(steps)])
    w = c - np.minimum(0.0, np.minimum.accumulate(c))
    return w + service


@dataclass(frozen=True)
class QueueLevel:
    """One simulated level: per request its scheduled time ``t`` (s), latency (ms), and whether
    it was measured (after the warm-up)."""

    t: np.ndarray
    latency_ms: np.ndarray
    measured: np.ndarray


def level(rng: np.random.Generator, rate: float, cv: float, duration_s: float, warmup_s: float = 2.0,
          service_ms: float = 4.0, service_cv: float = 1.0, arrival: str = "gamma",
          steady: bool = True) -> QueueLevel:
    """A level of ``warmup_s + duration_s`` seconds at ``rate`` requests/s into a queue with
    Gamma-distributed service times (mean ``service_ms``, CV ``service_cv``)."""
    span = warmup_s + duration_s
    off = arrivals.arrival_offsets(rng, arrival, rate, span, cv, steady=steady)
    shape = 1.0 / (service_cv * service_cv)
    s = rng.gamma(shape, service_ms / 1000.0 / shape, off.size)
    lat = fifo_latencies(off, s) * 1000.0
    return QueueLevel(off, lat, off >= warmup_s)
