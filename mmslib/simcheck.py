"""The cold-start simulator's validation, judged from its table (no experiment imported: the
report reads it too).

:func:`mmslib.coldstart.validate_simulator` writes one row per validation cell and SLO: measured
attainment with its interval, simulated over several seeds, a trivial baseline's guess
("attainment = calibration mean"), and whether the check has **power** -- the cell validly
measured, the server at least half busy, the measured attainment in 50-95% (near 100% a constant
guess passes). :func:`validation_verdict` says what the table shows; :func:`simulation_label` is
the label every cluster answer carries; :func:`validation_sentence` says it in words.
"""
from __future__ import annotations

import pandas as pd

SIMULATION_TABLES = ("simulator_validation", "cluster")  # what coldstart.save_simulation writes (read by the report)

#: What gives a validation check power (issue #21): the server at least half busy, and a measured
#: attainment where a wrong model shows (not near 100%, where a constant guess passes).
UTILISATION_MIN = 0.5
ATTAINMENT_BAND = (0.50, 0.95)
ATTAINMENT_TARGET_PTS = 5.0     # simulated attainment within this many points of the measurement
HIT_RATE_TARGET_PTS = 2.0
MIN_POWERED_CHECKS = 3          # fewer checks with power: no verdict


def validation_verdict(validation: pd.DataFrame) -> dict:
    """What the validation shows, from its table. ``status``:

    - ``validated``: at least ``MIN_POWERED_CHECKS`` powered checks, the
      simulation within 5 points on every one, and its mean absolute error
      below the baseline's;
    - ``failed``: enough powered checks, but a check misses 5 points or the
      baseline does as well;
    - ``no power``: a calibration cell not validly measured (the simulator's
      inputs came from a stalled machine), or too few powered checks (cells at
      low load, attainment near 100%, or invalid measurements);
    - ``old``: a table from before the powered checks (no verdict possible).
    """
    v = validation
    if not len(v):
        return {"status": "no power", "checks": 0, "powered": 0, "reason": "no validation cells"}
    if "powered" not in v.columns:
        return {"status": "old", "checks": len(v), "powered": 0,
                "reason": "a validation from before the checks with power: no utilisation, no baseline"}
    pw = v[v["powered"].astype(bool)]
    out = {"checks": len(v), "powered": len(pw), "cells": int(pw["name"].nunique()) if len(pw) else 0}
    bad_cal = str(v["calibration_invalid"].iloc[0]) if "calibration_invalid" in v.columns else ""
    if bad_cal and bad_cal != "nan":
        out.update(status="no power", reason=f"calibration cell(s) {bad_cal} measured while the client fell behind "
                                             "its schedule (the simulator's inputs are the machine's stalls)")
        return out
    if len(pw) < MIN_POWERED_CHECKS:
        valid = v[v["measurement_valid"].astype(bool)]
        out.update(status="no power", reason=(
            f"{len(pw)} of {len(v)} checks have power (need {MIN_POWERED_CHECKS}): "
            f"{int((~v['measurement_valid'].astype(bool)).sum())} measured while the client fell behind, "
            f"{int((~valid['loaded'].astype(bool)).sum())} at utilisation below {UTILISATION_MIN:g}, "
            f"{int((~valid['in_band'].astype(bool)).sum())} with measured attainment outside "
            f"{100 * ATTAINMENT_BAND[0]:.0f}-{100 * ATTAINMENT_BAND[1]:.0f}%"))
        return out
    sim_err, base_err = pw["attainment_diff_pts"].abs(), pw["baseline_diff_pts"].abs()
    out.update(max_err=float(sim_err.max()), sim_mae=float(sim_err.mean()), base_mae=float(base_err.mean()),
               within=int(pw["within"].sum()), beats=int(pw["beats_baseline"].sum()),
               hit_max_err=float(pw.drop_duplicates("name")["hit_rate_diff_pts"].abs().max()),
               util_lo=float(pw["utilisation"].min()), util_hi=float(pw["utilisation"].max()),
               slos=sorted(set(pw["slo_ms"].astype(float))))
    ok = out["within"] == len(pw) and out["sim_mae"] < out["base_mae"]
    out["status"] = "validated" if ok else "failed"
    return out


def simulation_label(validation: pd.DataFrame) -> str:
    """A short label for answers computed with this simulator: "validated under load" only
    when :func:`validation_verdict` says so."""
    return "validated under load" if validation_verdict(validation)["status"] == "validated" \
        else "not validated under load"


def _old_sentence(validation: pd.DataFrame) -> str:
    v = validation[validation["measurement_valid"]]
    if not len(v):
        return f"none of the {len(validation)} validation cells was measured validly."
    return (f"checked on {len(v)} cells: hit rate within "
            f"{v['hit_rate_diff_pts'].abs().max():.2f} points (target 2), SLO attainment within "
            f"{v['attainment_diff_pts'].abs().max():.2f} points (target 5) of the measurement; "
            f"{int(v['within'].sum())} of {len(v)} cells meet both targets.")


def validation_sentence(validation: pd.DataFrame) -> str:
    """The simulator's validation in words, opening with its label (validated under load or
    not, :func:`validation_verdict`); cells whose measurement was not valid are named apart."""
    if not len(validation):
        return "**Simulation, not validated**: no validation cells."
    d = validation_verdict(validation)
    base = 'the baseline "attainment = calibration mean"'
    if d["status"] == "old":
        out = f"**Simulation, not validated under load** ({d['reason']}): " + _old_sentence(validation)
    elif d["status"] == "no power":
        out = f"**Simulation, not validated under load**: {d['reason']}."
    else:
        head = ("**Simulation, validated under load**" if d["status"] == "validated"
                else "**Simulation, failed its validation under load**")
        out = (f"{head}: on {d['powered']} checks ({d['cells']} cells at utilisation {d['util_lo']:.2f}-"
               f"{d['util_hi']:.2f}, SLOs {', '.join(f'{s:g}' for s in d['slos'])} ms, measured attainment "
               f"{100 * ATTAINMENT_BAND[0]:.0f}-{100 * ATTAINMENT_BAND[1]:.0f}%) simulated SLO attainment is within "
               f"{ATTAINMENT_TARGET_PTS:g} points on {d['within']} (largest error {d['max_err']:.1f} points), "
               f"mean error {d['sim_mae']:.1f} points vs {d['base_mae']:.1f} for {base} (closer on "
               f"{d['beats']} of {d['powered']}); hit rate within {d['hit_max_err']:.2f} points.")
    bad = validation[~validation["measurement_valid"].astype(bool)].drop_duplicates("name")
    if len(bad):
        out += (f" {len(bad)} cell(s) left out, measured while the client fell behind its schedule: "
                + ", ".join(f"{r.name} (attainment {100 * r.attainment_measured:.1f}% measured, "
                            f"{100 * r.attainment_simulated:.1f}% simulated)" for r in bad.itertuples()) + ".")
    return out
