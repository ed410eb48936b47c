"""Hosts needed by family and size (simulation), from runs made here: the report's
:func:`mmslib.report.family_simulation` end to end (docs/models.md).

Makes, in ``--out`` (a temporary folder unless given; runs already there are reused):

1. a coldstart run with lazy-loading cells only (kserve, ``--models`` models, capacities 25% and
   100%, Zipf 1.0): its calibrated simulator inputs and its own cluster answer for
   ``--cluster-models`` models;
2. one stress run per family at ``--size`` (multi-model only, ``--loads`` models): each model's load
   time and the PSS it added;

then prints, per family, the measured loads and memory and the hosts the simulator says
``--cluster-models`` models need (``--cluster-qps`` requests/s, Zipf 1, SLO ``--slo-ms`` ms for >= 99%,
hosts of ``--host-memory``), beside the calibration run's own model.

    .venv/bin/python benchmarks/family_sim_bench.py                  # ~6 minutes on 2 cores
    .venv/bin/python benchmarks/family_sim_bench.py --size 10Mi --out /tmp/fs
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mmslib import coldstart, params, report, stress  # noqa: E402

FAMILIES = ("sklearn_forest", "lightgbm_trees", "onnx_mlp")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=None)
    ap.add_argument("--size", default="1Mi")
    ap.add_argument("--loads", type=int, default=30)
    ap.add_argument("--models", type=int, default=20, help="coldstart: models behind the lazy host")
    ap.add_argument("--cluster-models", type=int, default=10_000)
    ap.add_argument("--cluster-qps", type=float, default=100.0)
    ap.add_argument("--slo-ms", type=float, default=100.0)
    ap.add_argument("--host-memory", default="10Gi")
    ap.add_argument("--duration-s", type=float, default=120.0, help="simulated traffic per host count")
    a = ap.parse_args()
    out = Path(a.out or tempfile.mkdtemp(prefix="mmslib-family-sim-"))
    t0 = time.time()
    cp = params.coldstart(sections=["lazy"], runtime="kserve", models=a.models, capacity=["25%", "100%"],
                          zipf_alpha=[1.0], lazy_qps=20, duration_s=10, warmup_s=2, resume=True,
                          cluster_models=[a.cluster_models], cluster_qps=a.cluster_qps, cluster_slo_ms=a.slo_ms,
                          cluster_host_memory=a.host_memory, cluster_duration_s=a.duration_s,
                          output_dir=str(out / "coldstart"))
    r = coldstart.run(cp, progress=False)
    v = r.validation()
    coldstart.save_simulation(r.rundir, v, coldstart.cluster_questions(r, validation=v), coldstart.simulator_inputs(r))
    print(f"coldstart (lazy cells, calibration): {time.time() - t0:.0f} s", flush=True)
    for fam in FAMILIES:
        t1 = time.time()
        sp = params.stress(workload=fam, model_size=a.size, models=a.loads, modes=["mms"], resume=True,
                           output_dir=str(out / f"stress-{fam}-{a.size}"))
        stress.run(sp, progress=False)
        print(f"stress {fam} {a.size}, {a.loads} models: {time.time() - t1:.0f} s", flush=True)
    runs = report.collect(out)
    t2 = time.time()
    fs = report.family_simulation(runs, report.families.per_model(runs))
    cols = ["runtime", "family", "artifact_mib", "loads", "load_ms_p50", "load_ms_p90", "overhead_ms",
            "model_memory_mib", "memory_from", "models_per_host", "hosts_needed", "attainment", "note", "validation"]
    with pd.option_context("display.width", 250, "display.max_columns", 30, "display.max_colwidth", 40):
        print(fs.table[cols].to_string(index=False, float_format=lambda x: f"{x:.3g}"))
    print(f"\nsimulated in {time.time() - t2:.0f} s; runs in {out}\n\n{fs.text}")


if __name__ == "__main__":
    main()
