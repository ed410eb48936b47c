"""The cluster simulator: how fast it is, and how well it predicts a busy host.

    .venv/bin/python benchmarks/simulate_bench.py [--models 1000000] [--rate 1000] [--duration 600]
    .venv/bin/python benchmarks/simulate_bench.py validation [--params params/coldstart-validation.yaml]
                                                             [--output-dir DIR] [--from-run DIR]

``speed`` (the default) prints the time to build a schedule and to simulate it (target: under
60 s together on a 2-core machine), and what the run found.

``validation`` measures the cells that ``--params`` fixes (section 3 of the cold-start notebook:
real kserve lazy hosts on this machine, a few minutes), then prints, per cell, the rate, how busy
the server was (its own metrics), the lateness and validity; per validation check the measured
attainment with its interval, the simulation's range over the seeds, the baseline "attainment =
calibration mean" and the errors; then the verdict (:func:`mmslib.coldstart.validation_verdict`)
and the cluster answers with their label. ``--from-run DIR`` prints a finished run's tables
without measuring. Run it on a quiet machine: a cell measured while the client fell behind its
schedule (lateness p99 above ``lateness_p99_ms``) counts for nothing, and a calibration cell that
was counts the whole validation out.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from mmslib import simulate as sim


def _md(df, floatfmt: str = "{:.3g}") -> str:
    """A DataFrame as a Markdown table (no extra dependency)."""
    def cell(v):
        if isinstance(v, (bool, np.bool_)):
            return "yes" if v else "no"
        if isinstance(v, (float, np.floating)):
            return "" if v != v else floatfmt.format(v)
        return str(v)
    rows = [list(df.columns)] + [[cell(v) for v in r] for r in df.itertuples(index=False)]
    out = ["| " + " | ".join(rows[0]) + " |", "|" + "|".join(" --- " for _ in rows[0]) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return "\n".join(out)


def speed(args) -> None:
    service, load = sim.Exponential(0.002), sim.Exponential(0.010)  # 2 ms inference, 10 ms load
    t0 = time.perf_counter()
    sched = sim.arrival_schedule(args.rate, args.duration, args.models, args.alpha, seed=0)
    t1 = time.perf_counter()
    res = sim.simulate(sched, args.hosts, args.capacity, service, load, seed=1)
    t2 = time.perf_counter()
    s = res.summary(slo_s=0.05, skip=len(sched) // 10)
    print(f"{args.models:,} models, {args.hosts} hosts x {args.capacity} models, Zipf {args.alpha}, "
          f"{args.rate:g} QPS for {args.duration:g} s: {len(sched):,} requests")
    print(f"schedule {t1 - t0:.2f} s + simulation {t2 - t1:.2f} s = {t2 - t0:.2f} s "
          f"({len(sched) / (t2 - t1):,.0f} requests/s simulated); target < 60 s: "
          f"{'met' if t2 - t0 < 60 else 'NOT met'}")
    print(f"hit rate {s['hit_rate']:.4f}, cold starts {s['cold_starts']:,}, p99 {s['p99_ms']:.2f} ms, "
          f"attainment (50 ms) {s['attainment']:.4f}")


def validation(args) -> None:
    import yaml
    from mmslib import coldstart, params
    from mmslib.rundir import RunDir
    t0 = time.time()
    if args.from_run:
        meta = json.loads((Path(args.from_run) / "meta.json").read_text())
        raw = {k: v for k, v in meta["params"].items() if k != "resume"}
        p = params.coldstart(**{**raw, "output_dir": args.from_run})
        rd = RunDir(args.from_run, "coldstart", p.to_dict(), meta["params_key"], resume=True)
        r = coldstart.load(rd, p)
    else:
        raw = yaml.safe_load(Path(args.params).read_text())
        p = params.coldstart(**{**raw, "output_dir": args.output_dir})
        r = coldstart.run(p, progress=not args.quiet)
    measured_s = time.time() - t0
    lz = r.lazy_summary()
    cols = ["name", "role", "qps", "utilisation", "server_predict_ms", "requests", "hit_rate", "cold_starts_client",
            "p50_ms", "p99_ms", "late_p99_ms", "valid"] + (["loadavg_1m"] if "loadavg_1m" in r.lazy_cells else [])
    if "loadavg_1m" in r.lazy_cells:
        lz = lz.merge(r.lazy_cells[["name", "loadavg_1m"]], on="name")
    print(f"run {r.rundir.path} ({'read' if args.from_run else 'measured'} in {measured_s:.0f} s): "
          f"service {p.service_ms:g} ms per request, {p.models} models, cells of {p.duration_s:g} s")
    print("\nCells (utilisation: requests/s x mean predict time, from the server's metrics; "
          f"valid: lateness p99 <= {p.lateness_p99_ms:g} ms):\n")
    print(_md(lz[cols]))
    t1 = time.time()
    v = r.validation()
    cl = coldstart.cluster_questions(r, validation=v) if len(v) and not args.no_cluster else None
    sim_s = time.time() - t1
    if len(v):
        show = v.assign(measured=[f"{100 * a:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]" for a, lo, hi in
                                  zip(v["attainment_measured"], v["attainment_lo"], v["attainment_hi"])],
                        simulated=[f"{100 * a:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]" for a, lo, hi in
                                   zip(v["attainment_simulated"], v["attainment_sim_lo"], v["attainment_sim_hi"])],
                        baseline=100 * v["attainment_baseline"])
        print(f"\nValidation checks (attainment %, measured [95% interval], simulated [range over "
              f"{int(v['seeds'].iloc[0])} seeds], baseline = calibration mean; errors in points):\n")
        print(_md(show[["name", "utilisation", "slo_ms", "measured", "simulated", "baseline", "attainment_diff_pts",
                        "baseline_diff_pts", "hit_rate_diff_pts", "measurement_valid", "powered", "within"]],
                  "{:.2f}"))
        print(f"\nCalibrated: occupancy {v['occupancy_ms'].iloc[0]:.2f} ms, service p50 "
              f"{v['service_p50_ms'].iloc[0]:.2f} ms, cold-start penalty p50 {v['load_p50_ms'].iloc[0]:.2f} ms")
        print("\n" + coldstart.validation_sentence(v))
    if cl is not None and len(cl):
        label = coldstart.simulation_label(v)
        print(f"\nCluster answers ({label}; simulated in {sim_s:.0f} s with the validation):\n")
        print(_md(cl[["models", "models_per_host", "qps", "slo_ms", "hosts_needed", "attainment", "note"]]))
        coldstart.save_simulation(r.rundir, v, cl)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", nargs="?", default="speed", choices=["speed", "validation"])
    ap.add_argument("--models", type=int, default=1_000_000)
    ap.add_argument("--rate", type=float, default=1000.0)
    ap.add_argument("--duration", type=float, default=600.0)
    ap.add_argument("--hosts", type=int, default=100)
    ap.add_argument("--capacity", type=int, default=2000, help="models per host")
    ap.add_argument("--alpha", type=float, default=1.0)
    ap.add_argument("--params", default="params/coldstart-validation.yaml", help="validation: the cells, fixed ahead")
    ap.add_argument("--output-dir", default="outputs/coldstart-validation", help="validation: the run directory")
    ap.add_argument("--from-run", default=None, help="validation: print this finished run, measure nothing")
    ap.add_argument("--no-cluster", action="store_true", help="validation: skip the cluster questions")
    ap.add_argument("--quiet", action="store_true", help="validation: no progress bar")
    args = ap.parse_args(argv)
    (validation if args.mode == "validation" else speed)(args)


if __name__ == "__main__":
    sys.exit(main())
