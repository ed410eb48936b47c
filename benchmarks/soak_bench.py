"""Soak: hours at a moderate rate against each runtime; prints errors, the
servers' memory slope and whether the generator kept up.

    .venv/bin/python benchmarks/soak_bench.py                      # params/soak.yaml: 1 h per mode, per runtime
    .venv/bin/python benchmarks/soak_bench.py --duration 120 --runtimes kserve,mlserver   # a short one
    .venv/bin/python benchmarks/soak_bench.py --from /tmp/mmslib-soak-XXXX   # figures again, from the records

Per runtime and mode (one performance level each, from ``params/soak.yaml``):

- errors: requests not answered correctly (after the warm-up);
- memory slope: least-squares line through the servers' RSS samples over the
  level (after the warm-up), in MiB per hour, with its 95% confidence interval;
  the bound is stated: **growth <= max(5 MiB/h, 1% of the servers' RSS per
  hour)**, judged on the interval's lower end (a slope is "growth" only when
  the data rule out the bound) and only when the fitted growth over the span
  exceeds 2 MiB (noise); the first 10% of the level is left out (memory
  settles first). RSS, not PSS: a process's PSS divides each shared page by
  the number of processes mapping it, so it moves when *other* processes
  start or stop using the same libraries (the first hour-long run, beside a
  test suite using the same virtual environment, read a PSS dip of 16 MiB and
  a recovery on KServe's servers, +8 MiB/h as a line, while their RSS stayed
  within 1.5 MiB). The PSS slope is printed too;
- generator kept up: the level is valid (achieved >= 99% of the target rate,
  <= 1% dropped iterations; mmslib.stats).

Exit status 1 if any runtime has errors, growth beyond the bound, or a level
the generator could not keep. Figures, not a test: the machine's load shows.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from mmslib import params, performance

ROOT = Path(__file__).resolve().parents[1]
BOUND_MIB_H = 5.0
BOUND_FRAC_H = 0.01
NOISE_MIB = 2.0   # growth smaller than this over the fitted span is noise, whatever the slope


def slope(t_s: np.ndarray, y: np.ndarray):
    """Least-squares slope of y over t (per hour) and its 95% interval (t distribution)."""
    from scipy import stats as sst
    if len(t_s) < 3:
        return math.nan, (math.nan, math.nan)
    r = sst.linregress(t_s / 3600.0, y)
    q = sst.t.ppf(0.975, len(t_s) - 2)
    return r.slope, (r.slope - q * r.stderr, r.slope + q * r.stderr)


def analyse(run_dir: Path) -> list:
    """The figures of one soak run, recomputed from its run directory (records, samples, levels)."""
    from mmslib.rundir import Run
    run = Run.load(run_dir)
    warmup, duration = float(run.params["warmup_s"]), float(run.params["duration_s"])
    levels, samples, records, summary = run.table("levels"), run.table("samples"), run.records, run.summary
    rows = []
    for s in summary.itertuples():
        if len(records):
            recs = records[(records["mode"] == s.mode) & ~records["warmup"]]
            n, errors = len(recs), int((~recs["ok"]).sum())
        else:  # a copy without the request rows (results/soak-*): the counts summary.csv kept
            n, errors = int(s.n), int(s.errors)
        # memory settles during the first minutes: the slope is fitted after the first 10% of the level
        skip = max(warmup, warmup + 0.1 * duration)
        smp = samples[(samples["mode"] == s.mode) & (samples["second"] >= skip)]
        b, (lo, hi) = slope(smp["second"].to_numpy(float), smp["rss_mib"].to_numpy(float))
        bp, _ = slope(smp["second"].to_numpy(float), smp["pss_mib"].to_numpy(float))
        has_uss = "uss_mib" in smp and smp["uss_mib"].notna().all()   # recorded since the first hour-long run
        bu, _ = slope(smp["second"].to_numpy(float), smp["uss_mib"].to_numpy(float)) if has_uss else (math.nan, 0)
        rss = float(smp["rss_mib"].mean()) if len(smp) else math.nan
        pss = float(smp["pss_mib"].mean()) if len(smp) else math.nan
        bound = max(BOUND_MIB_H, BOUND_FRAC_H * rss)
        hours = (duration + warmup - skip) / 3600
        lv = levels[levels["mode"] == s.mode].iloc[0]
        rows.append(dict(runtime=run.params["runtime"], mode=s.mode, hours=duration / 3600, requests=n,
                         errors=errors, rss_mib=rss, pss_mib=pss, slope=b, lo=lo, hi=hi,
                         pss_slope=bp, uss_slope=bu, bound=bound,
                         growth=bool(lo > bound and lo * hours > NOISE_MIB), achieved=float(lv["achieved_qps"]),
                         target=float(s.qps), dropped=int(lv["dropped_iterations"]), kept_up=bool(s.valid),
                         p99=float(s.p99)))
    return rows


def soak(runtime: str, raw: dict, out: Path) -> list:
    p = params.performance(**dict(raw, runtime=runtime, output_dir=str(out)))
    t0 = time.time()
    performance.run(p, progress=False)
    print(f"  {runtime}: {time.time() - t0:.0f} s, records in {out}", flush=True)
    return analyse(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default=str(ROOT / "params" / "soak.yaml"))
    ap.add_argument("--runtimes", default="kserve,triton,mlserver")
    ap.add_argument("--duration", type=float, help="seconds per mode (default: the params file's duration_s)")
    ap.add_argument("--warmup", type=float, help="warm-up seconds (default: the params file's)")
    ap.add_argument("--out", help="folder for the run directories (default: a temporary one)")
    ap.add_argument("--from", dest="from_dir", help="recompute the figures from this --out folder, run nothing")
    a = ap.parse_args()
    raw = params.load_yaml(a.params)
    if a.duration:
        raw["duration_s"] = a.duration
    if a.warmup is not None:
        raw["warmup_s"] = a.warmup
    out = Path(a.out or tempfile.mkdtemp(prefix="mmslib-soak-"))
    rows = []
    for rt in a.runtimes.split(","):
        try:
            rows += analyse(Path(a.from_dir) / rt) if a.from_dir else soak(rt, raw, out / rt)
        except Exception as e:  # noqa: BLE001 - one runtime failing is a figure too
            print(f"  {rt}: FAILED: {type(e).__name__}: {e}", flush=True)
            rows.append(dict(runtime=rt, mode="-", failed=str(e)))
    if a.from_dir:
        from mmslib.rundir import Run
        raw = Run.load(Path(a.from_dir) / a.runtimes.split(",")[0]).params
    print(f"\nsoak: {raw.get('qps')} QPS, {raw['duration_s'] / 3600:.2f} h per mode, models {raw.get('models')}; "
          f"load average now {os.getloadavg()[0]:.2f}; memory bound max({BOUND_MIB_H:g} MiB/h, "
          f"{BOUND_FRAC_H:.0%} of RSS per hour)")
    print(f"{'runtime':9} {'mode':12} {'hours':>5} {'requests':>9} {'errors':>6} {'RSS MiB':>8} "
          f"{'RSS slope MiB/h [95% CI]':>26} {'bound':>6} {'PSS MiB':>8} {'PSS slope':>9} {'USS slope':>9} "
          f"{'achieved/target':>16} {'dropped':>7} {'kept up':>7} {'p99 ms':>7}")
    bad = False
    for r in rows:
        if "failed" in r:
            print(f"{r['runtime']:9} FAILED: {r['failed'][:150]}")
            bad = True
            continue
        ci = f"{r['slope']:+.2f} [{r['lo']:+.2f}, {r['hi']:+.2f}]"
        print(f"{r['runtime']:9} {r['mode']:12} {r['hours']:5.2f} {r['requests']:9d} {r['errors']:6d} "
              f"{r['rss_mib']:8.1f} {ci:>26} {r['bound']:6.1f} {r['pss_mib']:8.1f} {r['pss_slope']:+9.2f} "
              f"{'n/a' if math.isnan(r['uss_slope']) else format(r['uss_slope'], '+.2f'):>9} "
              f"{r['achieved']:7.1f}/{r['target']:<8g} {r['dropped']:7d} {str(r['kept_up']):>7} {r['p99']:7.2f}")
        bad |= r["errors"] > 0 or r["growth"] or not r["kept_up"]
    print("verdict:", "FAIL (errors, memory growth beyond the bound, or the generator fell behind)" if bad else
          "OK: no errors, no memory growth beyond the bound, the generator kept up")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
