"""The cluster simulator against closed forms (queueing theory, Che's LRU approximation).

Expected values come from formulas, never from the simulator. Tolerances are
several standard errors of the simulated estimate (fixed seeds make the runs
reproducible; the bounds are what any seed should meet).
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from mmslib import simulate as sim
from mmslib.errors import ParamError
from mmslib.targets import traffic_weights


def erlang_c_wait(lam: float, mu: float, c: int) -> float:
    """M/M/c mean wait in queue (Erlang C), written out independently."""
    a = lam / mu
    rho = a / c
    top = a ** c / math.factorial(c) / (1 - rho)
    p_wait = top / (sum(a ** k / math.factorial(k) for k in range(c)) + top)
    return p_wait / (c * mu - lam)


@pytest.mark.parametrize("rho", [0.3, 0.7])
def test_mm1_mean_wait_matches_formula(rho):
    mu = 100.0
    lam = rho * mu
    sched = sim.arrival_schedule(lam, 300_000 / lam, 1, 0.0, seed=11)  # ~300k requests
    res = sim.simulate(sched, 1, 1, sim.Exponential(1 / mu), sim.Constant(0.0), seed=12)
    expected = rho / (mu - lam)   # M/M/1: Wq = rho / (mu - lambda)
    assert res.cold.sum() == 1                      # one model, loaded once
    assert res.wait_s.mean() == pytest.approx(expected, rel=0.08)
    assert sim.mm1_mean_wait(lam, mu) == pytest.approx(expected)


def test_md1_mean_wait_matches_formula():
    mu, lam = 200.0, 140.0
    sched = sim.arrival_schedule(lam, 2000.0, 1, 0.0, seed=5)
    res = sim.simulate(sched, 1, 1, sim.Constant(1 / mu), sim.Constant(0.0), seed=6)
    rho = lam / mu
    expected = rho / (2 * mu * (1 - rho))   # Pollaczek-Khinchine with zero service variance
    assert res.wait_s.mean() == pytest.approx(expected, rel=0.08)
    # and M/D/1 waits half as long as M/M/1 at the same load
    assert sim.md1_mean_wait(lam, mu) == pytest.approx(sim.mm1_mean_wait(lam, mu) / 2)


def test_mmc_mean_wait_matches_erlang_c():
    mu, lam, c = 100.0, 150.0, 2
    sched = sim.arrival_schedule(lam, 2000.0, 1, 0.0, seed=7)
    res = sim.simulate(sched, 1, 1, sim.Exponential(1 / mu), sim.Constant(0.0), servers=c, seed=8)
    assert res.wait_s.mean() == pytest.approx(erlang_c_wait(lam, mu, c), rel=0.1)


@pytest.mark.parametrize("alpha,capacity", [(0.8, 100), (1.2, 20)])
def test_lru_hit_rate_matches_che(alpha, capacity):
    n = 1000
    sched = sim.arrival_schedule(1000.0, 400.0, n, alpha, seed=3)   # 400k requests
    res = sim.simulate(sched, 1, capacity, sim.Constant(0.0), sim.Constant(0.0))
    skip = 20 * n  # the cache starts empty
    measured = 1 - res.cold[skip:].mean()
    che = sim.che_hit_rate(traffic_weights(n, "zipf", alpha), capacity)
    # Che's approximation is accurate to well under a point for Zipf popularity at these sizes
    assert measured == pytest.approx(che, abs=0.01)


def test_lru_order_and_eviction_by_hand():
    # capacity 2: A B A C -> C evicts B (A was used after B); then B is cold, A is a hit
    sched = sim.replayed_schedule(np.arange(6, dtype=float), [0, 1, 0, 2, 1, 0], ["A", "B", "C"], 6.0)
    res = sim.simulate(sched, 1, 2, sim.Constant(0.001), sim.Constant(0.010))
    assert res.cold.tolist() == [True, True, False, True, True, True]
    assert res.evictions == 3
    assert res.latency_s[0] == pytest.approx(0.011) and res.latency_s[2] == pytest.approx(0.001)


def test_hosts_split_models_and_queues():
    # two hosts, models 0 and 1 on different hosts: simultaneous requests do not queue
    sched = sim.replayed_schedule(np.zeros(2), [0, 1], ["A", "B"], 1.0)
    one = sim.simulate(sched, 1, 2, sim.Constant(0.01), sim.Constant(0.0))
    two = sim.simulate(sched, 2, 1, sim.Constant(0.01), sim.Constant(0.0))
    assert one.wait_s.tolist() == pytest.approx([0.0, 0.01])
    assert two.wait_s.tolist() == pytest.approx([0.0, 0.0])


def test_schedule_follows_zipf_and_rate():
    sched = sim.arrival_schedule(500.0, 200.0, 50, 1.0, seed=1)
    assert len(sched) == pytest.approx(100_000, rel=0.02)            # Poisson count: sd ~316
    share = np.bincount(sched.model, minlength=50) / len(sched)
    w = traffic_weights(50, "zipf", 1.0)
    assert share[0] == pytest.approx(w[0], abs=0.005)
    assert share[0] / share[1] == pytest.approx(2.0, rel=0.05)
    assert np.all(np.diff(sched.offset_s) >= 0) and sched.offset_s[-1] < 200.0


def test_hosts_needed_is_the_fewest_that_meet_the_target():
    svc, load = sim.Constant(0.002), sim.Constant(0.012)   # a cold start alone meets the 20 ms SLO
    r = sim.hosts_needed(2000, 1.0, 300.0, 20.0, svc, load, capacity=100, duration_s=120.0)
    h = r["hosts"]
    assert h is not None and h > 1
    tried = dict(r["tried"])
    assert tried[h] >= 0.99 and tried[h - 1] < 0.99   # bisection ends with h - 1 tried and failing


def test_hosts_needed_says_when_no_host_count_is_enough():
    # a load (50 ms) alone breaks the 20 ms SLO: first requests miss it whatever the host count
    r = sim.hosts_needed(2000, 1.0, 200.0, 20.0, sim.Constant(0.002), sim.Constant(0.05), capacity=100,
                         duration_s=60.0)
    assert r["hosts"] is None and "not reachable" in r["reason"]


def test_bad_input():
    with pytest.raises(ParamError, match="capacity"):
        sim.simulate(sim.arrival_schedule(10, 1, 5, 1.0), 1, 0, sim.Constant(0), sim.Constant(0))
    with pytest.raises(ParamError, match="rate"):
        sim.arrival_schedule(0, 1, 5, 1.0)
    with pytest.raises(ParamError, match="n_models"):
        sim.arrival_schedule(10, 1, 0, 1.0)
    with pytest.raises(ParamError, match="measured"):
        sim.Empirical([])


def test_reference_lru_agrees_with_simulator():
    """A plain, obviously-correct LRU (list based) gives the same cold starts."""
    sched = sim.arrival_schedule(200.0, 20.0, 40, 0.9, seed=9)
    res = sim.simulate(sched, 3, 4, sim.Constant(0.0), sim.Constant(0.0))
    caches = [[] for _ in range(3)]
    cold = []
    for m in sched.model.tolist():
        c = caches[m % 3]
        if m in c:
            c.remove(m)
            c.append(m)
            cold.append(False)
        else:
            if len(c) >= 4:
                c.pop(0)
            c.append(m)
            cold.append(True)
    assert res.cold.tolist() == cold


def test_occupancy_apart_from_latency():
    """Server held for a deterministic 1/mu, answer delayed by a further d: the wait
    is M/D/1's, and latency = wait + 1/mu + d."""
    mu, lam, d = 200.0, 120.0, 0.004
    sched = sim.arrival_schedule(lam, 2000.0, 1, 0.0, seed=21)
    res = sim.simulate(sched, 1, 1, sim.Constant(1 / mu + d), sim.Constant(0.0), occupancy=sim.Constant(1 / mu))
    rho = lam / mu
    assert res.wait_s.mean() == pytest.approx(rho / (2 * mu * (1 - rho)), rel=0.08)
    assert np.allclose(res.latency_s - res.wait_s, 1 / mu + d)


def test_loads_one_at_a_time_beside_the_server_seen_when_it_is_free():
    """By hand (service 8 ms, load 10 ms): a load ends while the server is busy; the kserve
    host's event loop sees it only when the request it serves ends, so a request that arrived
    in between goes first. ``apart`` sees it at once; ``blocking`` holds the server for it."""
    # A at 0 (cold), B at 20 ms (cold), A at 25 ms (hit), A at 31 ms (hit)
    sched = sim.replayed_schedule([0.0, 0.020, 0.025, 0.031], [0, 1, 0, 0], ["A", "B"], 1.0)
    svc, load = sim.Constant(0.008), sim.Constant(0.010)
    ev = sim.simulate(sched, 1, 2, svc, load)
    assert ev.cold.tolist() == [True, True, False, False]
    # A: load 0-10, server idle: 10-18. B: load 20-30, server busy with A (25-33): seen at 33, after the
    # A that arrived at 31 (33-41): B 41-49
    assert ev.latency_s.tolist() == pytest.approx([0.018, 0.029, 0.008, 0.010])
    assert ev.wait_s.tolist() == pytest.approx([0.0, 0.011, 0.0, 0.002])
    ap = sim.simulate(sched, 1, 2, svc, load, loads="apart")   # B ready at 30: 33-41, then A 41-49
    assert ap.latency_s.tolist() == pytest.approx([0.018, 0.021, 0.008, 0.018])
    bl = sim.simulate(sched, 1, 2, svc, load, loads="blocking")  # B holds the server 20-38
    assert bl.latency_s.tolist() == pytest.approx([0.018, 0.018, 0.021, 0.023])
    # two cold starts at once: one loader, the second load starts when the first is seen
    two = sim.simulate(sim.replayed_schedule([0.0, 0.0], [0, 1], ["A", "B"], 1.0), 1, 2, svc, load)
    assert two.latency_s.tolist() == pytest.approx([0.018, 0.028])   # B: load 10-20, server 20-28


def test_a_request_arriving_while_its_model_loads_waits_and_is_a_cold_start():
    sched = sim.replayed_schedule([0.0, 0.005, 0.030], [0, 0, 0], ["A"], 1.0)
    res = sim.simulate(sched, 1, 1, sim.Constant(0.001), sim.Constant(0.010))
    assert res.cold.tolist() == [True, True, False]      # as the kserve server counts it
    assert res.latency_s.tolist() == pytest.approx([0.011, 0.007, 0.001])
    assert res.evictions == 0


@pytest.mark.parametrize("loads", ["event_loop", "apart"])
def test_the_loader_is_an_mm1_queue(loads):
    """Every request a cold start (100,000 models, uniform, one model per host's cache), no
    inference time: the loader alone is a FIFO server with exponential loads, so the mean wait
    before a load starts is M/M/1's rho / (mu - lambda)."""
    mu, lam = 100.0, 60.0
    sched = sim.arrival_schedule(lam, 3000.0, 100_000, 0.0, seed=31)
    res = sim.simulate(sched, 1, 1, sim.Constant(0.0), sim.Exponential(1 / mu), seed=32, loads=loads)
    assert res.cold.mean() > 0.999
    assert res.wait_s.mean() == pytest.approx((lam / mu) / (mu - lam), rel=0.08)


def test_bad_loads_mode():
    with pytest.raises(ParamError, match="loads"):
        sim.simulate(sim.arrival_schedule(10, 1, 5, 1.0), 1, 1, sim.Constant(0), sim.Constant(0), loads="lazy")


def test_hosts_needed_keeps_adding_hosts_while_they_are_overloaded():
    """Every model fits on one host, but 1,000 requests/s of 20 ms (uniform over 1,000 models: no
    model alone overloads its host) need more than 20 hosts: the attainment is 0 at 1 and 4 hosts
    alike, which is overload, not a plateau of first requests."""
    r = sim.hosts_needed(1000, 0.0, 1000.0, 100.0, sim.Constant(0.020), sim.Constant(0.001), capacity=10_000,
                         duration_s=30.0)
    assert r["hosts"] is not None and 20 < r["hosts"] < 64
    tried = dict(r["tried"])
    assert tried[1] == tried[4] == 0.0 and tried[r["hosts"]] >= 0.99
