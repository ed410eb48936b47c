"""The module graph: no import circle, no experiment imports another, the report and the notebooks'
helpers import no experiment module, and no module imports another's private names (issue #24)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "mmslib"
EXPERIMENTS = {"mmslib.stress", "mmslib.performance", "mmslib.traffic", "mmslib.coldstart"}


def _module(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path):
    """(imported module, names, line, at top level) for every import of an mmslib module."""
    mod = _module(path)
    pkg = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text())
    top = set(id(n) for n in tree.body)
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("mmslib"):
                continue
            names = [a.name for a in node.names]
            # "from . import x" imports the module mmslib.x
            if not node.module:
                for n in names:
                    out.append((f"{target}.{n}", [], node.lineno, id(node) in top))
            else:
                out.append((target, names, node.lineno, id(node) in top))
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("mmslib"):
                    out.append((a.name, [], node.lineno, id(node) in top))
    return out


FILES = sorted(p for p in PKG.rglob("*.py"))
MODULES = {_module(p): p for p in FILES}


def _resolve(target: str) -> str:
    while target and target not in MODULES:
        target = target.rsplit(".", 1)[0] if "." in target else ""
    return target


def test_no_import_circle_among_top_level_imports():
    graph = {m: set() for m in MODULES}
    for m, p in MODULES.items():
        for target, _, _, top in _imports(p):
            t = _resolve(target)
            if top and t and t != m:
                graph[m].add(t)
    # a package's __init__ re-exporting its submodules is not a circle of nouns
    for m in graph:
        graph[m] = {t for t in graph[m] if not (t.startswith(m + ".") or m.startswith(t + "."))}
    seen, stack, cycles = {}, [], []

    def visit(m):
        seen[m] = 1
        stack.append(m)
        for t in sorted(graph[m]):
            if seen.get(t) == 1:
                cycles.append(stack[stack.index(t):] + [t])
            elif t not in seen:
                visit(t)
        stack.pop()
        seen[m] = 2

    for m in sorted(graph):
        if m not in seen:
            visit(m)
    assert not cycles, "import circles: " + "; ".join(" -> ".join(c) for c in cycles[:5])


def test_no_experiment_imports_another_and_the_report_imports_none():
    bad = []
    for m, p in MODULES.items():
        for target, _, line, _ in _imports(p):
            t = _resolve(target)
            if t in EXPERIMENTS and t != m and (m in EXPERIMENTS or m.startswith("mmslib.report")
                                                 or m in ("mmslib.validity", "mmslib.narrative", "mmslib.notebook")):
                bad.append(f"{p.relative_to(PKG.parent)}:{line} imports {t}")
    assert not bad, "\n".join(bad)


def test_no_module_imports_another_modules_private_names():
    bad = []
    for m, p in MODULES.items():
        for target, names, line, _ in _imports(p):
            for n in names:
                if n.startswith("_") and not n.startswith("__"):
                    bad.append(f"{p.relative_to(PKG.parent)}:{line} imports {target}.{n}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(PKG.parent)))
def test_a_module_over_700_lines_says_why_it_is_one_noun(path):
    lines = path.read_text().count("\n")
    if lines <= 700:
        return
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    assert "one noun" in doc.lower(), f"{path.name}: {lines} lines and no 'one noun' reason in its docstring"
