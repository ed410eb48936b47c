"""The notebooks' parameters cells, written from the params classes, so that a default is written once.

Each ``notebooks/<name>.py`` has one cell tagged ``parameters`` (papermill injects its overrides
after it). Its values are the defaults of the experiment's params class (:data:`mmslib.params.EXPERIMENTS`;
the report's :class:`mmslib.params.ReportParams`); its comments and section headings are the
notebook's own words. :func:`render` rewrites every ``name = value  # comment`` line with the class's
default, drops a line whose parameter the class no longer has, and appends a parameter the cell
lacks (with its field's ``doc`` metadata as the comment). ``python -m mmslib.paramcell`` (run by
``make notebooks`` before the Jupytext sync) rewrites every notebook; ``--check`` only says which
would change (``tests/test_notebooks.py`` checks the same).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Dict, List, Tuple

LINE = re.compile(r"^(?P<name>[A-Za-z_]\w*) = (?P<value>.*?)(?P<comment>\s+#.*)?$")
NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def literal(v) -> str:
    """A default as the cell writes it: strings in double quotes, lists of literals, Python's
    None/True/False and numbers."""
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(literal(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {literal(x)}" for k, x in v.items()) + "}"
    return repr(v)


def defaults_of(cls) -> Tuple[Dict[str, object], Dict[str, str]]:
    """(default per field, comment per field) of a params dataclass (``doc`` field metadata)."""
    inst = cls()
    values = {f.name: getattr(inst, f.name) for f in fields(cls) if f.init}
    docs = {f.name: str(f.metadata.get("doc", "")) for f in fields(cls) if f.init}
    return values, docs


def render(source: str, defaults: Dict[str, object], docs: Dict[str, str]) -> str:
    """The cell ``source`` with every parameter line set to ``defaults`` (see the module doc)."""
    out: List[str] = []
    seen = set()
    for line in source.splitlines():
        m = LINE.match(line)
        if not m:
            out.append(line)
            continue
        name = m.group("name")
        if name not in defaults:
            continue
        seen.add(name)
        out.append(f"{name} = {literal(defaults[name])}{m.group('comment') or ''}")
    for name, v in defaults.items():
        if name not in seen:
            out.append(f"{name} = {literal(v)}  # {docs.get(name) or 'see mmslib/params.py'}")
    return "\n".join(out)


def notebook_classes() -> Dict[str, type]:
    from . import params
    return {**params.EXPERIMENTS, "report": params.ReportParams}


def rewrite(path: Path, cls, check: bool = False) -> bool:
    """Rewrite the parameters cell of the Jupytext source ``path``; True when it changed (or, with
    ``check``, would change)."""
    import jupytext
    nb = jupytext.read(path)
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    if len(cells) != 1:
        raise ValueError(f"{path}: {len(cells)} cells tagged 'parameters' (want exactly one)")
    new = render(cells[0].source, *defaults_of(cls))
    if new == cells[0].source:
        return False
    if not check:
        cells[0].source = new
        jupytext.write(nb, path, fmt="py:percent")
    return True


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mmslib.paramcell", description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="change nothing; exit 1 if a cell is stale")
    a = ap.parse_args(argv)
    stale = [name for name, cls in sorted(notebook_classes().items())
             if (NOTEBOOKS / f"{name}.py").exists() and rewrite(NOTEBOOKS / f"{name}.py", cls, a.check)]
    for name in stale:
        print(f"notebooks/{name}.py: parameters cell {'is stale' if a.check else 'rewritten'}")
    return 1 if (a.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
