"""The documentation holds together: every relative link in README.md and docs/*.md resolves
(a file, or a file and a heading's anchor as GitHub renders it), README stays a newcomer's page
(at most 250 lines, the two quick-start commands), and every docs page is linked from README."""
from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

#: Pages other helpers are writing while this test was written: a link to one of them may point at
#: nothing until it appears (then its anchors are checked like any other page's). Remove a name once
#: its page is committed.
PENDING: set = set()

_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HTML_ANCHOR = re.compile(r"""<a\s+(?:id|name)=["']([^"']+)["']""")


def prose_lines(text: str):
    """(line number, line) of every line outside fenced code blocks, inline code removed."""
    fenced = False
    for i, line in enumerate(text.splitlines(), 1):
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield i, re.sub(r"`[^`]*`", "`code`", line)


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading (github-slugger): the rendered text lower-cased, every
    character but letters, digits, marks, '_', '-' and spaces dropped, spaces made '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)       # a link renders as its text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").replace("*", "")
    out = []
    for ch in text.lower():
        if ch.isalnum() or ch in "_- " or unicodedata.category(ch).startswith("M"):
            out.append("-" if ch == " " else ch)
    return "".join(out)


def anchors(text: str) -> set:
    """Every anchor a Markdown page offers: its headings' slugs (repeats get -1, -2, ...) and HTML ids."""
    seen, out = {}, set()
    fenced = False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if fenced:
            continue
        out.update(_HTML_ANCHOR.findall(line))
        m = _HEADING.match(line)
        if m:
            s = slug(m.group(2))
            n = seen.get(s, 0)
            seen[s] = n + 1
            out.add(s if n == 0 else f"{s}-{n}")
    return out


def broken_links(page: Path, root: Path = ROOT, pending=frozenset()) -> list:
    """What is wrong with each relative link of ``page``, in words ("README.md:12: ..."):
    a missing file (outside ``pending``), or an anchor no heading of its target has."""
    out = []
    text = page.read_text()
    for lineno, line in prose_lines(text):
        for target in _LINK.findall(line):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):          # http:, https:, mailto:
                continue
            path, _, frag = target.partition("#")
            where = f"{page.relative_to(root)}:{lineno}: ({target})"
            if not path:
                dest = page
            elif path.startswith("/"):                                     # GitHub: from the repository root
                dest = root / path.lstrip("/")
            else:
                dest = page.parent / path
            dest = dest.resolve()
            try:
                rel = dest.relative_to(root.resolve()).as_posix()
            except ValueError:
                out.append(f"{where} leaves the repository")
                continue
            if not dest.exists():
                if rel not in pending:
                    out.append(f"{where} no such file: {rel}")
                continue
            if frag and dest.is_file() and dest.suffix == ".md" and frag not in anchors(dest.read_text()):
                out.append(f"{where} no heading in {rel} has the anchor #{frag}")
    return out


PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(page):
    bad = broken_links(page, pending=PENDING)
    assert not bad, "broken links:\n" + "\n".join(bad)


def test_readme_is_short_and_keeps_the_quick_start():
    text = (ROOT / "README.md").read_text()
    n = len(text.splitlines())
    assert n <= 250, f"README.md has {n} lines (at most 250): move detail to a docs/ page and link it"
    quick = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", quick, re.S)
    assert block, "README.md's Quick start lost its command block"
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines()]
    assert commands == ["make demo", "make test"], f"quick-start commands changed: {commands}"


def test_every_docs_page_is_linked_from_the_readme():
    linked = {t.partition("#")[0] for _, line in prose_lines((ROOT / "README.md").read_text())
              for t in _LINK.findall(line)}
    pages = {p.relative_to(ROOT).as_posix() for p in DOCS.glob("*.md")} | PENDING
    assert not pages - linked, f"docs pages README.md does not link: {sorted(pages - linked)}"


def test_the_checks_can_fail(tmp_path):
    """A missing file, a wrong anchor and a link out of the repository are reported; a heading's
    anchor is GitHub's (inline code, punctuation and repeats as github-slugger makes them)."""
    assert slug("What a run writes (`output_dir`)") == "what-a-run-writes-output_dir"
    assert slug("First contact with a cluster: `params/k8s-smoke.yaml`") == \
        "first-contact-with-a-cluster-paramsk8s-smokeyaml"
    assert slug("mmslib — multi-model serving vs traditional serving, measured") == \
        "mmslib--multi-model-serving-vs-traditional-serving-measured"
    assert slug("Results on this machine (2 cores, 24 GiB, KServe 0.21 Python ModelServer)") == \
        "results-on-this-machine-2-cores-24-gib-kserve-021-python-modelserver"
    assert anchors("# A\n## A\n```\n# not a heading\n```\n<a id=\"x\"></a>\n") == {"a", "a-1", "x"}
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "b.md").write_text("# Title\n## Some part\n")
    page = tmp_path / "README.md"
    page.write_text("[ok](docs/b.md#some-part) [top](#intro) `[code](nowhere.md)`\n# Intro\n"
                    "[gone](docs/c.md) [wrong](docs/b.md#other-part) [out](../x.md) [later](docs/p.md)\n"
                    "```\n[in a block](nowhere.md)\n```\n[web](https://example.com/x.md)\n")
    bad = broken_links(page, root=tmp_path, pending={"docs/p.md"})
    assert bad == ["README.md:3: (docs/c.md) no such file: docs/c.md",
                   "README.md:3: (docs/b.md#other-part) no heading in docs/b.md has the anchor #other-part",
                   "README.md:3: (../x.md) leaves the repository"]
