"""What every experiment notebook does first and last: validate its parameters,
show the run's metadata, glue the results.

Glued names are what :mod:`mmslib.report` reads: ``experiment``, ``run_id``,
``output_dir``, ``params``, ``machine``, ``versions``, then the experiment's
tables (DataFrames with the pandas encoder, dicts with json).
"""
from __future__ import annotations

from typing import Any, Dict, Mapping

import pandas as pd


def validated(experiment: str, namespace: Mapping[str, Any]):
    """The notebook's parameters, validated before anything is deployed.

    ``namespace``: the notebook's ``globals()`` after its parameters cell (and
    papermill's injected one); every parameter of ``experiment``'s class in
    :data:`mmslib.params.EXPERIMENTS` is read from it (its default where the
    notebook lacks it). Raises ParamError naming the first bad parameter."""
    from . import params
    if experiment not in params.EXPERIMENTS:
        raise params.ParamError("experiment", experiment, " | ".join(params.EXPERIMENTS))
    names = params.defaults(params.EXPERIMENTS[experiment])
    return params.build(experiment, {k: namespace[k] for k in names if k in namespace})


def metadata_table(meta: Dict[str, Any]) -> pd.DataFrame:
    """Run id, git sha, pinning, machine and versions as one two-column table."""
    row = {"run_id": meta["run_id"], "git_sha": meta["git_sha"], "status": meta.get("status")}
    if meta.get("cpu_isolation") is not None:
        row["cpu_isolation"] = meta["cpu_isolation"]
    row.update({f"machine.{k}": v for k, v in meta["machine"].items()})
    row.update({f"environment.{k}": v for k, v in (meta.get("environment") or {}).items()})
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
