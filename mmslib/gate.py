"""The SLO gate: an experiment fails visibly (non-zero exit under papermill or CI) when a stated
level misses its SLO, after everything is saved, like k6's thresholds.

``fail_on_slo`` (a common parameter): ``false`` (default: never fail), ``true`` (every measured
level must meet the SLO) or a list of levels, e.g. ``25,50`` (the rates that must). A level meets
the SLO when it is valid and the **lower end** of its attainment interval (requests ok and within
the SLO; dependence-aware, :func:`mmslib.intervals.share_ci`) reaches the target (99% for a p99
SLO): a level too short to show it fails with "not enough data", never passes on its point
estimate (:func:`mmslib.slo.decide`; see :mod:`mmslib.summary`). The experiment calls
:func:`enforce` last.
"""
from __future__ import annotations

from typing import Any, List, Sequence, Union

import pandas as pd

from .errors import MmsError
from .values import levels_or_bool


class SLOMissed(MmsError, RuntimeError):
    """A stated level missed the SLO (raised after the run's records and summaries are saved)."""

    def __init__(self, message: str, missed: pd.DataFrame):
        super().__init__(message)
        self.missed = missed


def parse(v: Any, name: str = "fail_on_slo") -> Union[bool, List[float]]:
    """``false``/``true`` (any spelling :func:`mmslib.values.boolean` takes) or a list of levels."""
    return levels_or_bool(v, name)


def _level_column(summary: pd.DataFrame, by: Sequence[str]) -> str:
    for c in ("qps", "rate", "level"):
        if c in summary.columns:
            return c
    keys = [b for b in by if b not in ("mode", "repeat")]
    return keys[-1] if keys else "mode"


def check(summary: pd.DataFrame, fail_on_slo, by: Sequence[str] = ()) -> pd.DataFrame:
    """The rows of ``summary`` that ``fail_on_slo`` states and that miss the SLO (empty: pass).
    A stated level that was not measured counts as missed."""
    spec = parse(fail_on_slo)
    if spec is False:
        return summary.iloc[0:0]
    if "slo_met" not in summary.columns:
        raise SLOMissed("fail_on_slo is set but the run states no SLO (no slo_met in its summary)", summary)
    rows = summary
    if spec is not True:
        col = _level_column(summary, by)
        levels = pd.to_numeric(summary[col], errors="coerce")
        rows = summary[levels.isin(spec)]
        absent = [x for x in spec if not (levels == x).any()]
        if absent:
            extra = pd.DataFrame({col: absent, "slo_met": False, "invalid_reason": "not measured"})
            return pd.concat([rows[~rows["slo_met"].astype(bool)], extra], ignore_index=True)
    return rows[~rows["slo_met"].astype(bool)]


def enforce(run, fail_on_slo) -> None:
    """Read the run's saved summary and raise :class:`SLOMissed` naming every stated level that
    missed the SLO (its attainment and the target). ``run``: a Run, RunDir or path."""
    from .rundir import Run
    if parse(fail_on_slo) is False:
        return
    r = run if isinstance(run, Run) else Run.load(getattr(run, "path", run))
    summary = r.summary
    missed = check(summary, fail_on_slo, r.level_keys)
    _record(r, fail_on_slo, missed)
    if not len(missed):
        return
    keys = [k for k in r.level_keys if k in missed.columns]
    parts = []
    for m in missed.to_dict("records"):
        where = ", ".join(f"{k}={m[k]:g}" if isinstance(m[k], float) else f"{k}={m[k]}"
                          for k in keys if m.get(k) is not None and m.get(k) == m.get(k))
        if m.get("invalid_reason") == "not measured":
            parts.append(f"{where}: not measured")
            continue
        att = m.get("attainment")
        dec = m.get("slo_decision", "missed")
        if att != att or att is None:
            why = "no requests"
        elif dec == "not enough data":
            why = (f"not enough data: {att:.2%} of requests within {m.get('slo_ms'):g} ms, 95% interval "
                   f"[{m.get('attainment_lo'):.2%}, {m.get('attainment_hi'):.2%}] reaches below the target "
                   f"{m.get('slo_target'):.2%} (longer levels or more repeats can decide)")
        else:
            why = (f"{att:.2%} of requests within {m.get('slo_ms'):g} ms (95% interval up to "
                   f"{m.get('attainment_hi'):.2%}) < target {m.get('slo_target'):.2%}")
        if not m.get("valid", True):
            why += f"; not valid ({m.get('invalid_reason')})"
        parts.append(f"{where}: {why}")
    raise SLOMissed(f"fail_on_slo: {len(missed)} level(s) missed the SLO: " + "; ".join(parts)
                    + f". Records and summaries are saved in {r.path}.", missed)


def _record(run, fail_on_slo, missed: pd.DataFrame) -> None:
    """The gate's verdict in the run's meta.json (``gate``: what was stated, passed, levels missed)."""
    import json

    from .rundir import atomic_write_json
    mp = run.path / "meta.json"
    try:
        meta = json.loads(mp.read_text())
    except (OSError, ValueError):
        return
    keys = [k for k in run.level_keys if k in missed.columns]
    meta["gate"] = {"fail_on_slo": parse(fail_on_slo), "passed": not len(missed),
                    "missed": [{k: m.get(k) for k in keys} for m in missed.to_dict("records")]}
    atomic_write_json(mp, meta)
