"""Synthetic run directories written through mmslib.rundir.RunDir, as a benchmark script would write
them (no notebook): known latencies, so expected values are computed by hand, not by the code under test."""
from __future__ import annotations

import numpy as np
import pandas as pd

from mmslib.rundir import RunDir


def perf_run(path, latencies, qps=(25.0,), modes=("traditional", "mms"), slo_p99_ms=100.0, dropped=0,
             errors=0, repeat=0, params=None, key="k-synth", repeats=1, apart=False):
    """A performance run: for each (mode, qps, repeat) level, ``latencies(mode, qps)`` -> array of ms
    (warm-up rows added and marked), k6 counts in levels.parquet; the first ``errors`` rows not ok.
    Requests are ``1/qps`` apart, so long latencies overlap the next requests (one busy period:
    dependent requests, wide intervals); ``apart=True`` spaces the send times so that no two
    requests are ever in flight together (independent requests, the by-hand intervals), the
    generator's counts unchanged."""
    p = {"models": 2, "hosts": 1, "qps": list(qps), "modes": list(modes), "slo_p99_ms": slo_p99_ms,
         "duration_s": 10.0, "warmup_s": 1.0, "backend": "local", "runtime": "kserve", "workload": "simple_string",
         **(params or {})}
    rd = RunDir(path, "performance", p, key)
    levels = []
    for mode, q, repeat in [(m, q, r) for r in range(repeat, repeat + repeats) for m in modes for q in qps]:
        lat = np.asarray(latencies(mode, q), float)
        n = lat.size
        t0 = 1_700_000_000.0
        warm = pd.DataFrame({"t_unix": t0 + np.arange(5) * 0.01, "latency_ms": 1e6, "status": 200, "ok": True,
                             "model": "m0", "endpoint": "s0", "warmup": True})
        ok = np.ones(n, bool)
        ok[:errors] = False
        gap = max(1 / q, (np.nanmax(lat) / 1000 + 0.001) if n else 0) if apart else 1 / q
        meas = pd.DataFrame({"t_unix": t0 + 1 + np.arange(n) * gap, "latency_ms": lat,
                             "status": np.where(ok, 200, 503), "ok": ok, "model": "m0", "endpoint": "s0",
                             "warmup": False})
        recs = pd.concat([warm, meas], ignore_index=True)
        recs["mode"], recs["qps"], recs["repeat"] = mode, float(q), repeat
        rd.save(f"requests/{mode}_{q:g}qps_r{repeat}", recs)
        dur = n / q
        levels.append({"mode": mode, "qps": float(q), "repeat": repeat, "target_qps": float(q),
                       "duration_s": dur, "warmup_s": 1.0, "iterations": n + 5, "dropped_iterations": dropped})
    rd.save("levels", pd.DataFrame(levels))
    rd.save_json("deploy", [{"mode": m, "models": p["models"], "servers": p["models"] if m == "traditional" else 1,
                             "processes": p["models"] if m == "traditional" else 1, "pss_mib": 100.0} for m in modes])
    rd.finish("complete")
    return rd


def stress_run(path, seconds=(0.1, 0.2, 0.3), modes=("traditional", "mms"), key="k-stress"):
    rd = RunDir(path, "stress", {"models": len(seconds), "modes": list(modes), "backend": "local",
                                 "runtime": "kserve", "workload": "simple_string"}, key)
    rows = []
    for mode in modes:
        for i, s in enumerate(seconds):
            rows.append({"mode": mode, "step": i + 1, "model": f"m{i}", "ok": True, "seconds": s,
                         "servers": i + 1 if mode == "traditional" else 1,
                         "pss_mib": 100.0 * (i + 1) if mode == "traditional" else 50.0 + i,
                         "reserved_memory_mib": 600.0 * (i + 1) if mode == "traditional" else 11000.0})
    rd.save("steps", pd.DataFrame(rows))
    def facts(m):
        servers = len(seconds) if m == "traditional" else 1
        pss = max(r["pss_mib"] for r in rows if r["mode"] == m)
        return {"mode": m, "models_target": len(seconds), "models_deployed": len(seconds), "servers": servers,
                "processes": servers, "stop_reason": "target reached", "stop_detail": "", "pss_mib": pss,
                "pss_per_model_mib": pss / len(seconds), "reserved_cpu": 1.1 * servers,
                "reserved_memory_mib": 600.0 * servers, "reserved_cpu_per_model": 1.1 * servers / len(seconds),
                "reserved_memory_mib_per_model": 600.0 * servers / len(seconds), "deploy_rate_per_s": 2.0,
                "ready_p50_s": float(np.median(seconds)), "verify_ok": True}
    rd.save_json("summary", {"run_id": rd.run_id, "modes": [facts(m) for m in modes]})
    rd.finish("complete")
    return rd


def generic_run(path, experiment, levels, latencies, params=None, key="k-generic"):
    """An experiment mmslib.summary knows nothing of: ``levels`` is a list of dicts of level columns
    (e.g. {"mode": "mms", "rate": 10.0, "cv": 1.0, "repeat": 0}); ``latencies(level)`` -> ms."""
    rd = RunDir(path, experiment, {"slo_ms": 50.0, **(params or {})}, key)
    for i, lv in enumerate(levels):
        lat = np.asarray(latencies(lv), float)
        recs = pd.DataFrame({"t_unix": 1_700_000_000.0 + np.arange(lat.size) * 0.01, "latency_ms": lat,
                             "ok": True, "warmup": False, **lv})
        rd.save(f"requests/level{i}", recs)
    rd.finish("complete")
    return rd


def coldstart_run(path, validation, cluster, key="k-coldstart", runtime="kserve", workload="bert"):
    """A coldstart run as :func:`mmslib.coldstart.save_simulation` leaves it: the lazy cells (their
    roles) and section 4's tables, ``validation`` and ``cluster`` (lists of dicts, typed by the test)."""
    rd = RunDir(path, "coldstart", {"runtime": runtime, "runtimes": [runtime], "workload": workload,
                                    "backend": "local", "slo_ms": 200.0, "models": 16}, key)
    cells = [{"name": v["name"], "role": "validation"} for v in validation] + [{"name": "cal", "role": "calibration"}]
    rd.save("lazy_cells", pd.DataFrame(cells))
    from mmslib.coldstart import save_simulation
    save_simulation(rd, pd.DataFrame(validation), pd.DataFrame(cluster))
    rd.finish("complete")
    return rd
