"""Exports a dashboard, a spreadsheet or CI can use: ``summary.csv`` and ``summary.json``.

Every run writes both beside its records (:func:`write_run_summary`, called by each experiment at
its end); the report writes its tables the same way (:func:`write_table`). Same rows in both files:
the CSV for spreadsheets, the JSON with the context needed to read it (``format_version``,
``experiment``, ``run_id``, ``by``, ``value``, ``percentiles``, ``slo_ms``, ``slo_target``,
``rows``). NaN is an empty CSV cell and ``null`` in JSON. Existing keys of a ``summary.json``
(e.g. the stress experiment's per-mode ``modes``) are kept.
"""
from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from . import summary as summ
from .rundir import FORMAT_VERSION, Run, RunDir, atomic_write_bytes, atomic_write_json


def _plain(x):
    if isinstance(x, (np.bool_,)):
        return bool(x)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return None if math.isnan(float(x)) else float(x)
    if x is pd.NA or x is pd.NaT:
        return None
    return x


def rows_of(df: pd.DataFrame) -> List[Dict[str, Any]]:
    """A DataFrame as JSON-ready rows (NaN -> None, numpy scalars -> Python)."""
    return [{k: _plain(v) for k, v in r.items()} for r in df.to_dict("records")]


def write_table(df: pd.DataFrame, folder, name: str, **context) -> Tuple[Path, Path]:
    """``<folder>/<name>.csv`` and ``<folder>/<name>.json`` (``{..context, "rows": [...]}``), atomically."""
    folder = Path(folder)
    buf = io.StringIO()
    df.to_csv(buf, index=False)
    csv_path, json_path = folder / f"{name}.csv", folder / f"{name}.json"
    atomic_write_bytes(csv_path, buf.getvalue().encode())
    doc = {}
    if json_path.is_file():
        try:
            old = json.loads(json_path.read_text())
            doc = old if isinstance(old, dict) else {}
        except ValueError:
            doc = {}
    doc.update(context)
    doc["format_version"] = FORMAT_VERSION
    doc["columns"] = list(map(str, df.columns))
    doc["rows"] = rows_of(df)
    atomic_write_json(json_path, doc)
    return csv_path, json_path


def read_table(path) -> Tuple[pd.DataFrame, Dict[str, Any]]:
    """(rows, context) from a ``.json`` written by :func:`write_table` (or its ``.csv``: no context)."""
    p = Path(path)
    if p.suffix == ".csv":
        return pd.read_csv(p, keep_default_na=True), {}
    doc = json.loads(p.read_text())
    df = pd.DataFrame(doc.get("rows") or [], columns=doc.get("columns"))
    return df, {k: v for k, v in doc.items() if k != "rows"}


def write_run_summary(run, percentiles=None, slo_ms: Any = "run", slo_target: Optional[float] = None,
                      by: Optional[Sequence[str]] = None, value: Optional[str] = None) -> pd.DataFrame:
    """THE call an experiment makes at its end (after its records are saved): per level/mode
    summary rows (:func:`mmslib.summary.summarize_run`) written as ``summary.csv`` and
    ``summary.json`` in the run directory. ``run``: a :class:`RunDir`, a :class:`Run` or a path.
    ``slo_ms="run"``: the run's own SLO (its ``slo_ms`` or ``slo_p99_ms`` parameter); ``by``: the level
    keys, ``value``: the column summarized (default: :attr:`mmslib.rundir.Run.level_keys` and
    :attr:`~mmslib.rundir.Run.value_column`); both are saved, so the report recomputes alike. Returns the rows."""
    path = run.path if isinstance(run, (RunDir, Run)) else Path(run)
    r = Run.load(path)
    by = list(by) if by else list(r.level_keys)
    value = value or r.value_column
    table = summ.summarize_run(r, percentiles=percentiles, slo_ms=slo_ms, slo_target=slo_target, by=by, value=value)
    modes = r.summary_doc.get("modes")
    if isinstance(modes, list) and modes and "mode" in table.columns:  # the experiment's own per-mode facts
        extra = pd.DataFrame([m for m in modes if isinstance(m, dict) and "mode" in m])
        if len(extra):
            extra = extra[["mode"] + [c for c in extra.columns if c not in table.columns]]
            table = table.merge(extra, on="mode", how="left")
    pcts = summ.parse_percentiles(percentiles)
    slo = r.slo_ms if isinstance(slo_ms, str) and slo_ms == "run" else slo_ms
    write_table(table, path, "summary", experiment=r.experiment, run_id=r.run_id, by=by, value=value, percentiles=[p if p == "max" else float(p) for p in pcts],
                slo_ms=slo, slo_target=(summ.DEFAULT_SLO_TARGET if slo_target is None else slo_target)
                if slo is not None else None)
    return table
