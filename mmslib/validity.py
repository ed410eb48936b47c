"""Validity notes: what a reader must know about single levels before trusting them, gathered
into one table per experiment instead of lines printed as they happen.

Each experiment's function reads the tables the run already keeps (summaries, per-level
generator rows) and returns one row per (level, check) with the columns :data:`COLUMNS`
plus the level's key columns (``mode``, ``qps``, ``repeat``, ...). Every level with at least
one note gets a footnote mark (``[1]``, ``[2]``, ... in order of first appearance);
:func:`mark` writes those marks into a main table's ``notes`` column, so a reader sees in the
table which rows the notes below speak of. Nothing here is stored apart: the notes are
recomputed from the run directory's records and summaries whenever a notebook or report runs.

Checks (the ``check`` column): ``not valid`` (the generator fell behind its schedule, or a
level's own validity rule failed: the level is not a result), ``errors`` (failed or wrong
answers), ``generator failed``, ``few samples`` (a p99 from fewer than ~1,000 latencies is
unstable), ``few queries`` (fewer requests than MLPerf's early-stopping rule needs for the
attainment claim), ``busy machine`` (load average above half the CPUs before the level),
``counts differ`` (client and server cold-start counts disagree), ``not verified`` and
``stopped early`` (stress).
"""
from __future__ import annotations

import math
import os
from typing import Dict, Iterable, List, Mapping, Optional, Sequence

import pandas as pd

COLUMNS = ["mark", "level", "check", "note"]


def _key(values: Iterable) -> tuple:
    """A hashable key of a level's values, NaN equal to NaN and 25 equal to 25.0."""
    out = []
    for v in values:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            out.append("nan")
        elif isinstance(v, bool):
            out.append(v)
        elif isinstance(v, (int, float)):
            out.append(float(v))
        else:
            try:
                out.append(float(v) if not isinstance(v, str) else v)
            except (TypeError, ValueError):
                out.append(str(v))
    return tuple(out)


def notes_frame(rows: List[dict], keys: Sequence[str]) -> pd.DataFrame:
    """Rows ``{**key values, level, check, note}`` as the notes table: the marks assigned per
    level in order of first appearance, one row per (level, check), duplicates dropped."""
    keys = list(keys)
    if not rows:
        return pd.DataFrame(columns=COLUMNS + keys)
    df = pd.DataFrame(rows)
    for name in keys:
        if name not in df:
            df[name] = None
    level_keys = [_key(r) for r in df[keys].itertuples(index=False)]
    order: Dict[tuple, int] = {}
    for x in level_keys:
        order.setdefault(x, len(order) + 1)
    df.insert(0, "mark", [f"[{order[x]}]" for x in level_keys])
    df["_n"] = [order[x] for x in level_keys]
    df = df.drop_duplicates(subset=["mark", "check", "note"]).sort_values("_n", kind="stable")
    df = df.reset_index(drop=True)
    return df[COLUMNS + keys]


def mark(table: pd.DataFrame, notes: pd.DataFrame, on: Mapping[str, str], column: str = "notes",
         **where) -> pd.DataFrame:
    """``table`` with a ``column`` of footnote marks: for each row, the marks of the notes whose
    key columns equal the row's (``on``: table column -> notes column; ``where``: notes column =
    value, e.g. ``mode="mms"`` for a table of one mode), as its first column. Rows without a note
    get "". Several notes' levels may match one row (a table of medians over repeats): their
    marks are joined. Key columns missing from either table are left out of the match; with none
    left, no row is marked."""
    out = table.drop(columns=[column]) if column in table.columns else table.copy()
    on = {a: b for a, b in on.items() if a in out.columns and b in notes.columns}
    if not on:
        out.insert(0, column, "")
        return out
    sel = notes
    for k, v in where.items():
        if k in sel:
            sel = sel[[_key([x]) == _key([v]) for x in sel[k]]]
    by: Dict[tuple, List[str]] = {}
    if len(sel):
        for m, key in zip(sel["mark"], sel[list(on.values())].itertuples(index=False)):
            lst = by.setdefault(_key(key), [])
            if m not in lst:
                lst.append(m)
    out.insert(0, column, ["".join(by.get(_key(r), [])) for r in out[list(on.keys())].itertuples(index=False)])
    return out


def mark_columns(table: pd.DataFrame, notes: pd.DataFrame, key: str, row: str = "notes") -> pd.DataFrame:
    """``table`` (one column per level, e.g. a mode per column) with a last ``row`` holding each
    column's marks: the notes whose ``key`` equals the column name."""
    out = table.copy()
    marks = {}
    if len(notes) and key in notes:
        for m, k in zip(notes["mark"], notes[key]):
            lst = marks.setdefault(_key([k]), [])
            if m not in lst:
                lst.append(m)
    out.loc[row] = ["".join(marks.get(_key([c]), [])) for c in out.columns]
    return out


def summary_sentence(notes: pd.DataFrame, levels: int, unit: str = "level(s)",
                     section: str = "Validity notes") -> str:
    """One sentence for the answer: how many of the ``levels`` (counted in ``unit``) carry notes,
    and of which kinds."""
    if not len(notes):
        return f"All {levels} {unit} passed every validity check." if levels else ""
    marked = notes["mark"].nunique()
    kinds = notes.groupby("check", sort=False)["mark"].nunique()
    what = ", ".join(f"{k}: {n}" for k, n in kinds.items())
    return (f"{marked} of {levels} {unit} carry validity notes ({what}); they are marked in the "
            f"tables and listed under *{section}*.")


def busy_threshold(busy_load: Optional[float] = None) -> float:
    """The load average above which the machine counts as busy: half its CPUs, unless given."""
    return busy_load if busy_load is not None else 0.5 * (os.cpu_count() or 1)


def _level_checks(summary: pd.DataFrame, levels: pd.DataFrame, keys: Sequence[str], label, busy: float,
                  rate: str = "qps") -> List[dict]:
    """The checks of a :func:`mmslib.stats.summarize` table and its generator rows."""
    rows = []

    def add(r, check, note):
        rows.append({**{k: getattr(r, k, None) for k in keys}, "level": label(r), "check": check, "note": note})
    for r in summary.itertuples():
        if not getattr(r, "valid", True):
            add(r, "not valid", str(getattr(r, "invalid_reason", "") or "the generator fell behind its schedule"))
        if getattr(r, "errors", 0):
            add(r, "errors", f"{int(r.errors)} errors of {int(r.n)} requests")
        if getattr(r, "few_samples", False):
            add(r, "few samples", f"only {int(r.n_lat)} samples: p99 is unstable (want ~1,000+)")
    if "loadavg_before" in levels.columns:
        for r in levels.itertuples():
            if r.loadavg_before > busy:
                add(r, "busy machine", f"load average {r.loadavg_before:.2f} before the level (> {busy:g}): "
                               "the machine was busy")
    if "error" in levels.columns:
        for r in levels.itertuples():
            if isinstance(r.error, str) and r.error:
                add(r, "generator failed", f"the load generator failed: {r.error[:200]}")
    return rows


def performance(summary: pd.DataFrame, levels: pd.DataFrame, busy_load: Optional[float] = None) -> pd.DataFrame:
    """Notes of a performance run (per mode, rate and repeat): not valid, errors, few samples,
    a busy machine before the level, a failed generator."""
    keys = ["mode", "qps", "repeat"]

    def label(r):
        rep = getattr(r, "repeat", None)
        return f"{r.mode} @ {r.qps:g} QPS" + ("" if rep is None else f" (repeat {int(rep)})")
    return notes_frame(_level_checks(summary, levels, keys, label, busy_threshold(busy_load)), keys)


def traffic(summary: pd.DataFrame) -> pd.DataFrame:
    """Notes of a traffic run (per models, mode, rate, CV, repeat, search): not valid, errors,
    not enough data to decide against the target (the attainment interval straddles it)."""
    keys = ["models", "mode", "rate", "cv", "repeat", "search"]
    rows = []
    for r in summary.itertuples():
        cv = getattr(r, "cv", float("nan"))
        lv = (f"{r.mode}, {int(r.models)} models @ {r.rate:g}/s"
              + ("" if cv != cv else f", CV {cv:g}") + f" (repeat {int(r.repeat)})"
              + (", search probe" if getattr(r, "search", False) else ""))
        base = {k: getattr(r, k, None) for k in keys}
        if not r.valid:
            rows.append({**base, "level": lv, "check": "not valid", "note": str(r.invalid_reason)})
        if getattr(r, "errors", 0):
            rows.append({**base, "level": lv, "check": "errors", "note": f"{int(r.errors)} errors of {int(r.n)} requests"})
        if getattr(r, "decision", None) == "not enough data":
            need = int(getattr(r, "min_queries", -1))
            rows.append({**base, "level": lv, "check": "not enough data",
                         "note": (f"attainment {r.share:.2%}, 95% interval [{r.lo:.2%}, {r.hi:.2%}] (n_eff "
                                  f"{getattr(r, 'n_eff', float('nan')):,.0f} of {int(r.n):,}) straddles the target"
                                  + (f"; MLPerf's early-stopping rule alone would need {need:,} requests"
                                     if need >= 0 else ""))})
    return notes_frame(rows, keys)


def stress(summary: pd.DataFrame) -> pd.DataFrame:
    """Notes of a stress run (per mode): a verification that failed, a stop that says more about
    the run than about capacity (a deploy failure, a timeout, the time limit, an interruption)."""
    from .outcome import STOP_BUDGET, STOP_CONFIG_FULL, STOP_TARGET, STOP_ADMISSION
    rows = []
    for r in summary.itertuples():
        base = {"mode": r.mode, "level": f"{r.mode} ({int(r.models_deployed):,} models)"}
        if getattr(r, "verified_expected", 0) and not getattr(r, "verify_ok", True):
            rows.append({**base, "check": "not verified",
                         "note": (f"{int(r.verified_listed):,} of {int(r.verified_expected):,} models listed, "
                                  f"{int(r.verified_correct)} of {int(r.verified_sampled)} sampled answered "
                                  f"correctly" + (f": {r.verify_failures}" if r.verify_failures else ""))})
        if r.stop_reason not in (STOP_TARGET, STOP_BUDGET, STOP_CONFIG_FULL, STOP_ADMISSION):
            detail = getattr(r, "stop_detail", "") or ""
            rows.append({**base, "check": "stopped early",
                         "note": f"stopped by {r.stop_reason}" + (f" ({detail})" if detail else "")
                         + ": the count is this run's limit, not the mode's capacity"})
    return notes_frame(rows, ["mode"])


def coldstart(cycle_summary: pd.DataFrame, churn: pd.DataFrame, churn_levels: pd.DataFrame,
              lazy: pd.DataFrame, busy_load: Optional[float] = None) -> pd.DataFrame:
    """Notes of a coldstart run: failed loads or unloads (section 1), the performance checks per
    churn run (section 2), and per lazy cell (section 3) not valid, errors or client and server
    cold-start counts that differ."""
    keys = ["section", "runtime", "mode", "repeat", "cell"]
    rows: List[dict] = []
    for r in cycle_summary.itertuples() if len(cycle_summary) else []:
        base = {"section": "1", "runtime": r.runtime, "level": f"1. {r.runtime} load/unload cycles"}
        failed = int(getattr(r, "load_failed", 0) or 0) + int(getattr(r, "unload_failed", 0) or 0)
        if failed:
            rows.append({**base, "check": "errors", "note": f"{int(r.load_failed)} loads and "
                         f"{int(r.unload_failed)} unloads failed of {int(r.cycles)} cycles"})
        if isinstance(getattr(r, "error", ""), str) and r.error:
            rows.append({**base, "check": "not valid", "note": r.error[:200]})
    if len(churn):
        lv = churn_levels if len(churn_levels) else pd.DataFrame(columns=["runtime"])
        for rt, g in churn.groupby("runtime", sort=False):
            gl = lv[lv["runtime"] == rt] if "runtime" in lv else lv
            for x in _level_checks(g, gl, ["mode", "repeat"], lambda r: f"2. {rt} {r.mode} (repeat {int(r.repeat)})",
                                   busy_threshold(busy_load)):
                rows.append({**x, "section": "2", "runtime": rt})
    for r in lazy.itertuples() if len(lazy) else []:
        base = {"section": "3", "cell": r.name,
                "level": f"3. Zipf {r.alpha:g}, capacity {int(r.capacity)} ({r.capacity_ratio:.0%})"}
        if not r.valid:
            why = []
            if r.late_p99_ms == r.late_p99_ms:
                why.append(f"requests sent late: p99 {r.late_p99_ms:.1f} ms")
            if r.no_header:
                why.append(f"{int(r.no_header)} requests unanswered")
            rows.append({**base, "check": "not valid", "note": "; ".join(why) or "no measured request"})
        if r.errors:
            rows.append({**base, "check": "errors", "note": f"{int(r.errors)} errors of {int(r.requests)} requests"})
        if not r.counts_agree:
            rows.append({**base, "check": "counts differ",
                         "note": f"cold starts: client {int(r.cold_starts_client)}, server {int(r.cold_starts_server)}"})
    return notes_frame(rows, keys)


def bullets(notes: pd.DataFrame) -> str:
    """The notes as Markdown bullets ("- level: note"), one per note."""
    return "\n".join(f"- {r.level}: {r.note}" if r.check not in ("not valid",)
                     else f"- **{r.level}: not valid** — {r.note}" for r in notes.itertuples())


def table(notes: pd.DataFrame) -> pd.DataFrame:
    """The notes as the reader sees them: mark, level, check, note (key columns dropped)."""
    return notes[COLUMNS].set_index("mark") if len(notes) else pd.DataFrame(columns=COLUMNS).set_index("mark")
