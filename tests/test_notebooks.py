"""Every notebook: its parameters cell holds its params class's defaults, each
parameter with a comment (what ``papermill --help-notebook`` prints), and the
Jupytext source ``notebooks/<name>.py`` and ``notebooks/<name>.ipynb`` agree.

The notebooks are the ``py:percent`` sources paired with ``.ipynb`` files;
after editing either, ``make notebooks`` (``jupytext --sync``) updates the other.
"""
from __future__ import annotations

import ast
import io
import tokenize
from dataclasses import asdict
from pathlib import Path

import pytest

jupytext = pytest.importorskip("jupytext")
import nbformat  # noqa: E402

from mmslib import params  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NB = ROOT / "notebooks"
SOURCES = sorted(p.stem for p in NB.glob("*.py"))
NOTEBOOKS = sorted(set(SOURCES) | {p.stem for p in NB.glob("*.ipynb")})
FIX = "edit notebooks/{0}.py, then run `make notebooks` (jupytext --sync)"


def parameters_cell(nb) -> str:
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"{len(cells)} cells tagged 'parameters' (want exactly one)"
    return cells[0].source


def parse_parameters(source: str):
    """(values, uncommented): the literal value of every ``name = value`` in the
    cell, and the names whose line carries no comment."""
    tree = ast.parse(source)
    comments = {t.start[0] for t in tokenize.generate_tokens(io.StringIO(source).readline)
                if t.type == tokenize.COMMENT}
    values, uncommented = {}, []
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name, value = node.targets[0].id, node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            name, value = node.target.id, node.value
        else:
            raise AssertionError(f"line {node.lineno}: only `name = literal  # comment` lines belong here")
        values[name] = ast.literal_eval(value)
        if not any(line in comments for line in range(node.lineno, node.end_lineno + 1)):
            uncommented.append(name)
    return values, uncommented


def disagreements(values: dict, defaults: dict) -> list:
    """What differs between a parameters cell and the params class's defaults, in words."""
    out = [f"{k}: missing (default {defaults[k]!r})" for k in defaults if k not in values]
    out += [f"{k}: not a parameter of the class" for k in values if k not in defaults]
    out += [f"{k}: cell has {values[k]!r}, default is {defaults[k]!r}" for k in defaults
            if k in values and (values[k] != defaults[k] or type(values[k]) is not type(defaults[k]))
            and not (isinstance(values[k], (int, float)) and not isinstance(values[k], bool)
                     and type(defaults[k]) in (int, float) and values[k] == defaults[k])]
    return out


def cells(nb):
    return [(c.cell_type, c.source.strip()) for c in nb.cells]


#: Every notebook with a params class: the experiments, and the report (which measures nothing).
PARAMS = {**params.EXPERIMENTS, **({"report": params.ReportParams} if hasattr(params, "ReportParams") else {})}


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_parameters_cell_holds_the_defaults(name):
    src = NB / f"{name}.py"
    if not src.exists():
        pytest.skip(f"notebooks/{name}.py not written yet")
    nb = jupytext.read(src)
    values, _ = parse_parameters(parameters_cell(nb))
    diff = disagreements(values, asdict(PARAMS[name]()))
    assert not diff, f"notebooks/{name}.py parameters cell vs {PARAMS[name].__name__}: " \
                     + "; ".join(diff) + " -- " + FIX.format(name)
    if name in params.EXPERIMENTS:  # ... and an experiment validates them with that class, by name
        assert any(f'validated("{name}", globals())' in c.source for c in nb.cells if c.cell_type == "code"), \
            f"notebooks/{name}.py must validate its parameters with mmslib.notebook.validated({name!r}, globals())"


def test_every_notebook_has_a_params_class():
    assert set(SOURCES) <= set(PARAMS), f"notebooks without a params class: {sorted(set(SOURCES) - set(PARAMS))}"


@pytest.mark.parametrize("name", SOURCES)
def test_every_parameter_has_a_comment(name):
    _, uncommented = parse_parameters(parameters_cell(jupytext.read(NB / f"{name}.py")))
    assert not uncommented, f"notebooks/{name}.py: parameters without a comment: {uncommented}"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_source_and_notebook_in_sync(name):
    py, ipynb = NB / f"{name}.py", NB / f"{name}.ipynb"
    assert py.exists() and ipynb.exists(), f"notebooks/{name}: both .py and .ipynb must be committed -- " \
                                           + FIX.format(name)
    nb = nbformat.read(str(ipynb), as_version=4)
    assert nb.metadata.get("jupytext", {}).get("formats") == "ipynb,py:percent", \
        f"notebooks/{name}.ipynb is not paired with its .py (jupytext formats ipynb,py:percent)"
    assert cells(jupytext.read(py)) == cells(nb), f"notebooks/{name}.py and .ipynb differ -- " + FIX.format(name)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), \
        f"notebooks/{name}.ipynb is committed with outputs: clear them"


def test_the_checks_can_fail():
    """A stale default, a parameter too many or too few, and a missing comment are all caught."""
    cell = 'models = 9  # how many\nhosts = 1\nextra = "x"  # not a parameter\n'
    values, uncommented = parse_parameters(cell)
    assert uncommented == ["hosts"]
    diff = disagreements(values, {"models": 10, "hosts": 1, "seed": 0})
    assert sorted(diff) == sorted(["seed: missing (default 0)", "extra: not a parameter of the class",
                                   "models: cell has 9, default is 10"])
    assert disagreements({"x": 1.0, "y": "1", "z": True}, {"x": 1, "y": 1, "z": 1}) == [
        "y: cell has '1', default is 1", "z: cell has True, default is 1"]
    with pytest.raises(AssertionError, match="only `name = literal"):
        parse_parameters("import os\n")


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_parameters_cell_is_the_generated_one(name):
    """The cell is what `python -m mmslib.paramcell` writes from the class (defaults written once:
    change a default in mmslib/params.py, run `make notebooks`)."""
    from mmslib import paramcell
    src = NB / f"{name}.py"
    if not src.exists():
        pytest.skip(f"notebooks/{name}.py not written yet")
    assert not paramcell.rewrite(src, PARAMS[name], check=True), \
        f"notebooks/{name}.py parameters cell is not the generated one -- run `make notebooks`"


def test_the_generator_writes_defaults_drops_stale_and_adds_missing():
    from dataclasses import dataclass, field

    from mmslib import paramcell

    @dataclass
    class P:
        models: int = 12
        modes: list = field(default_factory=lambda: ["mms"])
        tag: str = field(default="x", metadata={"doc": "a tag"})

    cell = "# Section\nmodels = 9  # how many\ngone = 1  # no longer a parameter\nmodes = []  # which"
    out = paramcell.render(cell, *paramcell.defaults_of(P))
    assert out.splitlines() == ["# Section", "models = 12  # how many", 'modes = ["mms"]  # which',
                                'tag = "x"  # a tag']
    assert paramcell.render(out, *paramcell.defaults_of(P)) == out
