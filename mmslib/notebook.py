"""What every experiment notebook does first and last: validate its parameters,
show the run's metadata, glue the results.

An executed notebook reads answer first: one line of the parameters that differ from the
defaults (:func:`setting_line`), the run (its progress lines cleared once it is done:
:func:`quiet_when_done`), the answer and the main figure, the method, the tables, the validity
notes, and last a *Setting* section with every parameter (:func:`setting_table`), what was
deployed and the run's metadata (:func:`metadata_table`).

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


def _default_params(P):
    from . import params
    for name, cls in params.EXPERIMENTS.items():
        if isinstance(P, cls):
            return params.build(name, {}).to_dict()
    return {}


def _same(a, b) -> bool:
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - incomparable values differ
        return False


def changed_params(P) -> Dict[str, Any]:
    """The parameters of ``P`` (validated params) whose value differs from its class's default."""
    d = _default_params(P)
    return {k: v for k, v in P.to_dict().items() if k not in d or not _same(v, d[k])}


def _show(v) -> str:
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_show(x) for x in v) + "]"
    if isinstance(v, float) and v.is_integer():
        return f"{v:g}"
    return str(v)


def setting_line(P, section: str = "Setting") -> str:
    """One Markdown line for the top of a notebook: the parameters that differ from the defaults
    (the full list is in the closing ``section``)."""
    ch = changed_params(P)
    if not ch:
        return f"*Parameters*: all at their defaults (every one is listed under *{section}* at the end)."
    return ("*Parameters* (not at their defaults): " + ", ".join(f"`{k}` {_show(v)}" for k, v in ch.items())
            + f". Every parameter is listed under *{section}* at the end.")


def setting_table(P) -> pd.DataFrame:
    """Every parameter: its value, its default, and whether it was changed (``*``)."""
    d = _default_params(P)
    rows = [{"parameter": k, "value": _show(v), "default": _show(d.get(k, "")),
             "changed": "" if k in d and _same(v, d[k]) else "*"} for k, v in P.to_dict().items()]
    return pd.DataFrame(rows).set_index("parameter")


class quiet_when_done:
    """``with quiet_when_done(): result = experiment.run(P)``: the cell shows the run's progress
    while it runs and clears it once the run has finished, so an executed notebook does not open
    with progress lines; on an error the output (progress and traceback) stays."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            try:
                from IPython import get_ipython
                if get_ipython() is not None:
                    from IPython.display import clear_output
                    clear_output()
            except ImportError:  # pragma: no cover
                pass
        return False


def validity_section(notes: pd.DataFrame) -> None:
    """Display a run's validity notes (:mod:`mmslib.validity`): the table, or one line saying
    every level passed."""
    from IPython.display import Markdown, display
    from . import validity
    if len(notes):
        display(Markdown("Marks `[n]` in the tables above point here. A level marked *not valid* is not a "
                         "result; the other notes say how far to trust it."))
        with pd.option_context("display.max_colwidth", None):
            display(validity.table(notes))
    else:
        display(Markdown("No validity notes: every level passed every check."))


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
