"""The report: every run directory in a folder (and/or listed), recomputed from the records,
beside the seed's published results.

One noun per module:

- :mod:`.collection` the runs (``collect``, ``read``; ``Runs``, ``Run``)
- :mod:`.tables` stress / performance / saturation side by side, the seed's table layout
- :mod:`.seedside` the seed's published rows beside ours (``with_seed``, ``seed_setting``)
- :mod:`.facts` one run: facts, setting vs the seed's, metadata
- :mod:`.headline` the answer first (``answer``, ``headline``, ``headline_table``)
- :mod:`.capacity` the capacity planner on the seed's cluster
- :mod:`.simulation` cold starts at cluster scale: the coldstart runs' simulator tables, labelled
- :mod:`.families` models per host by family and size, cold start vs model size (simple_string the reference)
- :mod:`.family_sim` the coldstart run's cluster question asked of every measured family and size (simulation)
- :mod:`.figures` figures with the seed overlaid; latency histogram and percentile spectrum
- :mod:`.html` offline interactive tables, table of contents, offline HTML export
- :mod:`.labels` labels and number formats

``notebooks/report.py`` only calls these and displays the results; :func:`write_tables` writes
the report's tables as CSV + JSON, like every run's summary (:mod:`mmslib.export`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import pandas as pd

from .. import compare as _compare
from .. import export as _export
from .capacity import CapacitySection, capacity_section
from .collection import Run, Runs, collect, read
from .facts import differences_in_setting, run_facts, run_metadata
from .families import FamiliesSection, families_section
from .family_sim import FamilySimulation, family_simulation
from .headline import HEADLINE_ROWS, answer, headline, headline_table
from .labels import LATENCY_STATS, MODE_LABEL, MODES, RUN_COLUMNS, RUN_KEYS, STRESS_COLUMNS, format_table
from .seedside import seed_setting, with_seed
from .simulation import SimulationSection, simulation_section
from .tables import performance_side_by_side, performance_tables, saturation_side_by_side, stress_side_by_side

__all__ = [
    "Run", "Runs", "CapacitySection", "collect", "read", "stress_side_by_side", "performance_side_by_side",
    "performance_tables", "saturation_side_by_side", "with_seed", "seed_setting", "differences_in_setting",
    "run_facts", "run_metadata", "answer", "headline", "headline_table", "capacity_section", "format_table",
    "SimulationSection", "simulation_section", "FamiliesSection", "families_section",
    "FamilySimulation", "family_simulation",
    "comparison", "pick_comparison", "write_tables", "RUN_KEYS", "RUN_COLUMNS", "MODES", "MODE_LABEL",
    "STRESS_COLUMNS", "LATENCY_STATS", "HEADLINE_ROWS",
]


def pick_comparison(runs: Runs, which: Optional[Sequence[str]] = None) -> Optional[List[Run]]:
    """The two runs to compare: ``which`` (two run keys, run ids or paths), else, among performance
    runs of the same workload, runtime and backend, the pair sharing the most levels (mode, rate),
    the latest first; None when no two share a level."""
    if which:
        which = list(which)
        if len(which) != 2:
            from ..errors import ParamError
            raise ParamError("compare", which, "two runs (keys, run ids or run directories), or [] for automatic")
        out = []
        for w in which:
            try:
                out.append(runs.get(str(w)))
            except KeyError:
                out.append(read(w))
        return out
    perf = runs.of("performance")

    def levels(r):
        return set(map(tuple, r.performance[["mode", "qps"]].drop_duplicates().to_numpy().tolist())) \
            if len(r.performance) else set()
    best, best_key = None, (0, -1, -1)
    for j, b in enumerate(perf):
        for i, a in enumerate(perf[:j]):
            if any(a.row[k] != b.row[k] for k in ("workload", "runtime", "backend")):
                continue
            key = (len(levels(a) & levels(b)), j, i)  # most shared levels, then the latest
            if key[0] and key > best_key:
                best, best_key = [a, b], key
    return best


def comparison(runs: Runs, which: Optional[Sequence[str]] = None) -> Optional[Dict[str, object]]:
    """``{"a", "b", "table", "text"}``: :func:`mmslib.compare.compare` of the two runs
    :func:`pick_comparison` chooses (report's SLO if set); None when there are not two."""
    pair = pick_comparison(runs, which)
    if not pair:
        return None
    a, b = pair
    t = _compare.compare(a.directory, b.directory, slo_ms=runs.slo_ms)
    return {"a": a, "b": b, "table": t, "text": _compare.verdict_text(t, a.key, b.key)}


def write_tables(runs: Runs, out_dir: Union[str, Path]) -> List[Path]:
    """The report's tables as ``<name>.csv`` + ``<name>.json`` in ``out_dir`` (runs, levels,
    stress, performance, saturation, headline, models per host, cold start vs size): the same format as every
    run's summary."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ctx = {"input_dir": str(runs.folder) if runs.folder else None,
           "percentiles": [p if p == "max" else float(p) for p in runs.percentiles], "slo_ms": runs.slo_ms}
    tables = {"report_runs": runs.runs, "report_levels": runs.levels, "report_stress": stress_side_by_side(runs),
              "report_performance": performance_side_by_side(runs), "report_saturation": saturation_side_by_side(runs),
              "report_headline": headline_table(runs).reset_index()}
    fam = families_section(runs)
    tables.update(report_models_per_host=fam.models_per_host, report_cold_start_vs_size=fam.cold_start)
    paths: List[Path] = []
    for name, df in tables.items():
        paths += list(_export.write_table(pd.DataFrame(df), out, name, **ctx))
    return paths
