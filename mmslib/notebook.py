"""What both experiment notebooks do at the end: show the run's metadata, glue the results.

Glued names are what :mod:`mmslib.report` reads: ``experiment``, ``run_id``,
``output_dir``, ``params``, ``machine``, ``versions``, then the experiment's
tables (DataFrames with the pandas encoder, dicts with json).
"""
from __future__ import annotations

from typing import Any, Dict

import pandas as pd


def metadata_table(meta: Dict[str, Any]) -> pd.DataFrame:
    """Run id, git sha, pinning, machine and versions as one two-column table."""
    row = {"run_id": meta["run_id"], "git_sha": meta["git_sha"], "status": meta.get("status")}
    if meta.get("cpu_isolation") is not None:
        row["cpu_isolation"] = meta["cpu_isolation"]
    row.update({f"machine.{k}": v for k, v in meta["machine"].items()})
    row.update({f"version.{k}": v for k, v in meta["versions"].items()})
    return pd.Series(row, name="value").to_frame()


def glue_run(experiment: str, params, rundir, **results) -> None:
    import scrapbook as sb
    meta = rundir.meta
    sb.glue("experiment", experiment)
    sb.glue("run_id", meta["run_id"])
    sb.glue("output_dir", str(rundir.path))
    sb.glue("params", params.to_dict(), encoder="json")
    sb.glue("machine", meta["machine"], encoder="json")
    sb.glue("versions", meta["versions"], encoder="json")
    for name, value in results.items():
        sb.glue(name, value, encoder="pandas" if isinstance(value, pd.DataFrame) else "json")
