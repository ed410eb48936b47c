"""The report as HTML people can open anywhere: interactive tables with nothing fetched at view
time, a table of contents, and an exporter that leaves no network reference in the page.

- :func:`offline_tables` once, then :func:`table` for each wide table: itables (DataTables)
  in offline mode (``connected=False``: the library is embedded in the notebook), sortable,
  searchable and scrollable; plain pandas HTML where itables is missing.
- :func:`contents` the table of contents; :func:`anchor` the target each section starts with.
- :func:`to_html` an executed notebook as ``--no-input`` HTML, then :func:`strip_remote` removes
  the references nbconvert's template makes to CDNs (require.js, MathJax), which this report
  does not need; :func:`remote_references` lists any that remain (a test checks there are none).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable, List, Sequence, Tuple, Union

import pandas as pd

_ITABLES = {"on": False}


def offline_tables() -> bool:
    """Switch on interactive tables in offline mode; False when itables is not installed."""
    try:
        from itables import init_notebook_mode
    except ImportError:
        return False
    init_notebook_mode(all_interactive=False, connected=False)
    _ITABLES["on"] = True
    return True


def table(df: pd.DataFrame, caption: str = "", max_rows: int = 25):
    """Display ``df`` as an interactive table (itables, offline) or, without itables, as HTML.
    Returns what was displayed (None after itables' own display)."""
    from IPython.display import HTML, display
    if _ITABLES["on"] and len(df):
        from itables import show
        show(df, caption=caption or None, scrollX=True, pageLength=max_rows,
             lengthMenu=[10, 25, 100, -1], classes="display compact nowrap")
        return None
    obj = HTML(f"<div style='overflow-x:auto'>{df.to_html(max_rows=200)}</div>")
    display(obj)
    return obj


def anchor(name: str) -> str:
    """The HTML anchor a section heading carries (``<a id="...">``), from its name."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def contents(sections: Sequence[Union[str, Tuple[str, int]]]) -> str:
    """A markdown table of contents: a linked line per section (``(name, level)`` indents)."""
    lines = ["**Contents**", ""]
    for s in sections:
        name, level = (s, 1) if isinstance(s, str) else s
        lines.append(f"{'  ' * (level - 1)}- [{name}](#{anchor(name)})")
    return "\n".join(lines)


_REMOTE = re.compile(r"""<(script|link|img|iframe)\b[^>]*\b(?:src|href)\s*=\s*["']\s*(?:https?:)?//[^"']*["'][^>]*>""",
                     re.I)


_REMOTE_CODE = re.compile(r"""(?:\bimport\(\s*|\burl\(\s*|@import\s+)["']?(?:https?:)?//[^"')\s]+""", re.I)


def remote_references(html: str) -> List[str]:
    """Every place in ``html`` that would fetch something over the network when the page is opened:
    a script, stylesheet, image or frame with an http(s) or protocol-relative address, a dynamic
    ``import("http...")``, a CSS ``url(http...)`` or ``@import``."""
    return [m.group(0) for m in _REMOTE.finditer(html)] + [m.group(0) for m in _REMOTE_CODE.finditer(html)]


def strip_remote(html: str) -> str:
    """``html`` without the tags that would fetch over the network (a remote script tag and its
    closing tag are dropped whole)."""
    html = re.sub(r"""<script\b[^>]*\bsrc\s*=\s*["']\s*(?:https?:)?//[^"']*["'][^>]*>\s*</script>""", "", html,
                  flags=re.I)
    return _REMOTE.sub("", html)


def to_html(notebook: Union[str, Path], out: Union[str, Path, None] = None, no_input: bool = True) -> Path:
    """An executed notebook as a self-contained HTML page (inputs hidden; images inline; no remote
    references). Returns the HTML path (default: beside the notebook)."""
    import nbformat
    from nbconvert import HTMLExporter

    nb_path = Path(notebook)
    out = Path(out) if out else nb_path.with_suffix(".html")
    exp = HTMLExporter(exclude_input=no_input, exclude_input_prompt=no_input, exclude_output_prompt=no_input,
                       mathjax_url="", require_js_url="", jquery_url="", mermaid_js_url="",
                       mermaid_layout_elk_js_url="", jupyter_widgets_base_url="")
    import warnings
    with warnings.catch_warnings():  # glued scraps (scrapbook) have no HTML form: not worth a warning
        warnings.filterwarnings("ignore", message=".*is not able to be represented", category=UserWarning)
        body, _ = exp.from_notebook_node(nbformat.read(str(nb_path), as_version=4))
    out.write_text(strip_remote(body))
    return out


def figure_count(html: str) -> int:
    """Figures embedded in ``html`` (inline PNG/SVG images)."""
    return len(re.findall(r"<img\b[^>]*src=\"data:image/", html)) + len(re.findall(r"<svg\b", html))


def section_ids(html: str) -> Iterable[str]:
    return re.findall(r"""<a\s+id=["']([^"']+)["']""", html)
