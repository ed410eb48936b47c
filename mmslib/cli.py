"""The ``mmslib`` command: run an experiment notebook, build the report, compare two runs, export a
run's summary, clean up a cluster run.

    mmslib run performance -p qps 25,50 -p duration_s 20 --out outputs/perf
    mmslib run stress -f params/stress-quick.yaml
    mmslib report outputs                 # every run directory under outputs -> outputs/report.html
    mmslib compare outputs/before outputs/after
    mmslib export outputs/perf/run --percentiles 50,99,99.9,max
    mmslib cleanup --run-id 1a2b3c4d5e6f --namespace mms-bench

``run`` and ``report`` are thin layers over papermill (parameters as typed: ``-p dry_run true``,
``-p qps "[25, 50]"``) and an offline ``--no-input`` HTML export; the executed notebook and its HTML
are written even when the notebook fails, and the exit status is papermill's (non-zero on any error,
``fail_on_slo`` included).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"


def _experiments() -> Dict[str, Any]:
    from .params import EXPERIMENTS
    return dict(EXPERIMENTS)


def _pairs(ps: Optional[Sequence[Sequence[str]]]) -> Dict[str, str]:
    return {k: v for k, v in (ps or [])}


def _execute(notebook: Path, out_dir: Path, name: str, parameters: Dict[str, Any], html: bool = True) -> int:
    """papermill ``notebook`` -> ``out_dir/<name>.ipynb`` (+ ``.html``); 0, or 1 when it failed."""
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    from .report.html import to_html

    out_dir.mkdir(parents=True, exist_ok=True)
    out_nb = out_dir / f"{name}.ipynb"
    status = 0
    try:
        pm.execute_notebook(str(notebook), str(out_nb), parameters=parameters, log_output=True,
                            progress_bar=False, cwd=str(ROOT))
    except PapermillExecutionError as e:
        print(f"error: {notebook.name} failed in cell {e.exec_count}: {e.ename}: {e.evalue}", file=sys.stderr)
        status = 1
    if html and out_nb.exists():
        h = to_html(out_nb)
        print(f"wrote {out_nb} and {h}")
    return status


def cmd_run(a) -> int:
    from .errors import ParamError
    from .params import load_yaml
    exps = _experiments()
    if a.experiment not in exps:
        print(f"error: unknown experiment {a.experiment!r}; one of: {', '.join(sorted(exps))}", file=sys.stderr)
        return 2
    raw: Dict[str, Any] = {}
    for f in a.file or []:
        raw.update(load_yaml(f))
    raw.update(_pairs(a.param))
    out = Path(a.out or f"outputs/{a.experiment}")
    raw.setdefault("output_dir", str(out / "run"))
    try:  # refuse bad input before starting a kernel (the notebook checks again)
        getattr(__import__("mmslib.params", fromlist=["x"]), a.experiment)(**dict(raw))
    except ParamError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    nb = NOTEBOOKS / f"{a.experiment}.ipynb"
    return _execute(nb, out, a.experiment, raw, html=not a.no_html)


def cmd_report(a) -> int:
    from .errors import ParamError
    from .params import report as report_params
    raw: Dict[str, Any] = {"input_dir": str(Path(a.input_dir).resolve())}
    if a.runs:
        raw["runs"] = [str(Path(r).resolve()) for r in a.runs]
    raw.update(_pairs(a.param))
    try:
        report_params(**dict(raw))
    except ParamError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = Path(a.out or a.input_dir)
    return _execute(NOTEBOOKS / "report.ipynb", out, "report", raw, html=not a.no_html)


def cmd_compare(a) -> int:
    import pandas as pd

    from .compare import compare, verdict_text
    from .rundir import Run, RunFormatError
    try:
        ra, rb = Run.load(a.run_a), Run.load(a.run_b)
    except RunFormatError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    t = compare(ra, rb, slo_ms=a.slo_ms)
    if a.json:
        from .export import rows_of
        import json
        print(json.dumps({"a": str(ra.path), "b": str(rb.path), "rows": rows_of(t)}, indent=1))
    else:
        with pd.option_context("display.width", 200, "display.max_columns", 30, "display.precision", 4):
            print(t.to_string(index=False))
        print()
        print(verdict_text(t, f"A ({ra.path})", f"B ({rb.path})"))
    if a.fail_if_worse:
        from .compare import worse
        bad = worse(t)
        if len(bad):
            print(f"B is worse than A beyond the run-to-run spread in {len(bad)} comparison(s) "
                  f"(Holm-adjusted, family-wise 5%)", file=sys.stderr)
            return 1
    return 0


def cmd_export(a) -> int:
    from .errors import ParamError
    from .export import write_run_summary
    from .rundir import RunFormatError
    try:
        t = write_run_summary(a.run, percentiles=a.percentiles, slo_ms=a.slo_ms if a.slo_ms is not None else "run")
    except (RunFormatError, ParamError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {Path(a.run) / 'summary.csv'} and {Path(a.run) / 'summary.json'} ({len(t)} rows)")
    return 0


def cmd_cleanup(a) -> int:
    args = [sys.executable, "-m", "mmslib.k8s", "cleanup", "--run-id", a.run_id, "--namespace", a.namespace]
    if a.kubeconfig:
        args += ["--kubeconfig", a.kubeconfig]
    if a.context:
        args += ["--context", a.context]
    args += ["--timeout", str(a.timeout)]
    return subprocess.call(args)


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="mmslib", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="Run `mmslib COMMAND --help` for each command's options.")
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    def params_opts(p):
        p.add_argument("-p", "--param", nargs=2, action="append", metavar=("NAME", "VALUE"),
                       help="a parameter as typed on a shell: -p dry_run true, -p qps 25,50, -p qps '[25, 50]'")
        p.add_argument("--out", help="folder for the executed notebook and its HTML")
        p.add_argument("--no-html", action="store_true", help="skip the HTML export")

    r = sub.add_parser("run", help="run an experiment notebook (papermill) and export it as HTML",
                       description="Run notebooks/<EXPERIMENT>.ipynb with parameters; writes OUT/<EXPERIMENT>.ipynb, "
                                   "OUT/<EXPERIMENT>.html and the run directory (output_dir, default OUT/run). "
                                   "Exits non-zero when the notebook fails (a bad parameter, an error, fail_on_slo).")
    r.add_argument("experiment", help="stress | performance | ... (mmslib.params.EXPERIMENTS)")
    r.add_argument("-f", "--file", action="append", help="a YAML file of parameters (params/*.yaml); -p wins")
    params_opts(r)
    r.set_defaults(fn=cmd_run)

    rp = sub.add_parser("report", help="build the report from run directories (papermill + HTML)",
                        description="Scan INPUT_DIR for run directories (and --runs), recompute every table and "
                                    "figure from the records, write OUT/report.ipynb and OUT/report.html "
                                    "(opens offline) and the report's tables as CSV + JSON.")
    rp.add_argument("input_dir")
    rp.add_argument("--runs", nargs="+", help="more run directories to include")
    params_opts(rp)
    rp.set_defaults(fn=cmd_report)

    c = sub.add_parser("compare", help="compare two runs per level and mode (p50, p99, SLO attainment)",
                       description="Per level and mode, B - A in p50, p99 and SLO attainment with a 95%% interval, "
                                   "and whether the difference is beyond the run-to-run spread.")
    c.add_argument("run_a")
    c.add_argument("run_b")
    c.add_argument("--slo-ms", type=float, default=None, help="SLO for attainment (default: run A's)")
    c.add_argument("--json", action="store_true", help="print JSON rows instead of a table")
    c.add_argument("--fail-if-worse", action="store_true",
                   help="exit 1 when B is worse than A beyond the run-to-run spread (for CI; needs >= 3 "
                        "repeats per run, family-wise 5%% over every level and statistic)")
    c.set_defaults(fn=cmd_compare)

    e = sub.add_parser("export", help="(re)write a run's summary.csv and summary.json",
                       description="Recompute a run's per-level summary from its records and write summary.csv "
                                   "and summary.json beside them (e.g. for runs made before they existed).")
    e.add_argument("run")
    e.add_argument("--percentiles", default=None, help="e.g. 50,90,95,99,max (the default)")
    e.add_argument("--slo-ms", type=float, default=None, help="SLO for attainment (default: the run's own)")
    e.set_defaults(fn=cmd_export)

    k = sub.add_parser("cleanup", help="delete what a cluster run left behind (python -m mmslib.k8s cleanup)",
                       description="Delete every KServe object carrying the run's label (the run id is in meta.json).")
    k.add_argument("--run-id", required=True)
    k.add_argument("--namespace", default="default")
    k.add_argument("--kubeconfig", default=None)
    k.add_argument("--context", default=None)
    k.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the objects to go")
    k.set_defaults(fn=cmd_cleanup)
    return ap


def main(argv: Optional[List[str]] = None) -> int:
    a = parser().parse_args(argv)
    return int(a.fn(a) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
