"""Validity notes gathered into one table per experiment (marks in the main tables), and every
executed experiment notebook opening with its answer: the helpers on known data, the notebooks'
order of sections, and one real performance run read back from its executed notebook."""
from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from mmslib import narrative, notebook, params, validity

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENT_NOTEBOOKS = sorted(params.EXPERIMENTS)


def _perf_summary():
    rows = []
    for mode in ("traditional", "mms"):
        for q in (25.0, 50.0):
            rows.append(dict(mode=mode, qps=q, repeat=0, valid=not (mode == "mms" and q == 50.0),
                             invalid_reason="achieved 40 of 50 QPS" if (mode == "mms" and q == 50.0) else "",
                             errors=3 if (mode == "traditional" and q == 50.0) else 0, n=1500, n_lat=1497,
                             few_samples=q == 25.0, p50=2.0 if mode == "traditional" else 1.5,
                             p99=9.0 if mode == "traditional" else 7.0))
    levels = pd.DataFrame([dict(mode=m, qps=q, repeat=0, loadavg_before=3.0 if q == 50.0 else 0.1, error="")
                           for m in ("traditional", "mms") for q in (25.0, 50.0)])
    return pd.DataFrame(rows), levels


def test_performance_notes_one_row_per_level_and_check_with_marks():
    summary, levels = _perf_summary()
    notes = validity.performance(summary, levels, busy_load=1.0)
    got = [(r.mark, r.level, r.check) for r in notes.itertuples()]
    assert got == [
        ("[1]", "traditional @ 25 QPS (repeat 0)", "few samples"),
        ("[2]", "traditional @ 50 QPS (repeat 0)", "errors"),
        ("[2]", "traditional @ 50 QPS (repeat 0)", "busy machine"),
        ("[3]", "mms @ 25 QPS (repeat 0)", "few samples"),
        ("[4]", "mms @ 50 QPS (repeat 0)", "not valid"),
        ("[4]", "mms @ 50 QPS (repeat 0)", "busy machine"),
    ]
    assert notes.loc[notes["check"] == "busy machine", "note"].iloc[0] == \
        "load average 3.00 before the level (> 1): the machine was busy"
    assert notes.loc[notes["check"] == "not valid", "note"].iloc[0] == "achieved 40 of 50 QPS"
    # the marks land on the right rows of a table of one mode, and nowhere else
    table = pd.DataFrame({"Client side QPS": [25.0, 50.0], "p99": [1.0, 2.0]})
    marked = validity.mark(table, notes, {"Client side QPS": "qps"}, mode="mms")
    assert list(marked.columns) == ["notes", "Client side QPS", "p99"]
    assert marked["notes"].tolist() == ["[3]", "[4]"]
    # a table of every mode: matched on mode and rate; an integer rate matches a float one
    both = validity.mark(pd.DataFrame({"mode": ["traditional", "mms"], "qps": [50, 60]}), notes,
                         {"mode": "mode", "qps": "qps"})
    assert both["notes"].tolist() == ["[2]", ""]
    # no key in common: no row marked (never every row)
    assert validity.mark(pd.DataFrame({"x": [1]}), notes, {"y": "qps"})["notes"].tolist() == [""]
    # the old bulleted warnings are the same notes
    warn = narrative.performance_warnings(summary, levels, busy_load=1.0)
    assert warn.count("\n") == len(notes) - 1 and "**mms @ 50 QPS (repeat 0): not valid**" in warn


def test_summary_sentence_counts_levels_and_kinds():
    summary, levels = _perf_summary()
    notes = validity.performance(summary, levels, busy_load=1.0)
    s = validity.summary_sentence(notes, 4)
    assert s.startswith("4 of 4 level(s) carry validity notes (few samples: 2, errors: 1, busy machine: 2, "
                        "not valid: 1)")
    assert validity.summary_sentence(notes.iloc[0:0], 4) == "All 4 level(s) passed every validity check."
    assert validity.table(notes).index.name == "mark"


def test_traffic_notes_nan_cv_and_early_stopping():
    s = pd.DataFrame([
        dict(models=5, mode="mms", rate=50.0, cv=float("nan"), repeat=0, search=False, valid=True,
             invalid_reason="", errors=0, n=141, n_eff=141.0, share=1.0, lo=0.9742, hi=1.0,
             decision="not enough data", few_queries=True, min_queries=459),
        dict(models=5, mode="traditional", rate=50.0, cv=4.0, repeat=0, search=False, valid=False,
             invalid_reason="lateness p99 11.0 ms > 10 ms", errors=2, n=900, few_queries=False, min_queries=662,
             decision="not valid"),
    ])
    notes = validity.traffic(s)
    assert notes["check"].tolist() == ["not enough data", "not valid", "errors"]
    assert notes["note"].iloc[0] == ("attainment 100.00%, 95% interval [97.42%, 100.00%] (n_eff 141 of 141) straddles "
                                     "the target; MLPerf's early-stopping rule alone would need 459 requests")
    assert notes["level"].iloc[0] == "mms, 5 models @ 50/s (repeat 0)"
    marked = validity.mark(s[["models", "mode", "rate", "cv", "repeat", "search"]], notes,
                           {k: k for k in ("models", "mode", "rate", "cv", "repeat", "search")})
    assert marked["notes"].tolist() == ["[1]", "[2]"]   # a NaN CV matches a NaN CV


def test_stress_notes_and_marks_per_mode_column():
    s = pd.DataFrame([
        dict(mode="traditional", models_deployed=117, stop_reason="memory budget", stop_detail="",
             verified_expected=117, verified_listed=117, verified_sampled=100, verified_correct=100, verify_ok=True,
             verify_failures=""),
        dict(mode="mms", models_deployed=4000, stop_reason="time limit", stop_detail="time_limit_s=600 reached",
             verified_expected=4000, verified_listed=3999, verified_sampled=100, verified_correct=99,
             verify_ok=False, verify_failures="m00017 missing"),
    ])
    notes = validity.stress(s)
    assert notes["check"].tolist() == ["not verified", "stopped early"]
    assert "3,999 of 4,000 models listed, 99 of 100 sampled answered correctly: m00017 missing" in notes["note"].iloc[0]
    t = pd.DataFrame({"traditional": [117], "mms": [4000]}, index=["models"])
    m = validity.mark_columns(t, notes, "mode")
    assert m.loc["notes"].tolist() == ["", "[1]"]


def test_coldstart_notes_per_section():
    cycles = pd.DataFrame([dict(runtime="kserve", cycles=10, load_failed=1, unload_failed=0, error="")])
    churn = pd.DataFrame([dict(runtime="kserve", mode="churn", qps=20.0, repeat=0, valid=True, invalid_reason="",
                               errors=0, n=60, n_lat=60, few_samples=True)])
    lazy = pd.DataFrame([dict(name="a1_c2", alpha=1.0, capacity=2, capacity_ratio=0.25, valid=False,
                              late_p99_ms=80.0, no_header=0, errors=0, requests=64, counts_agree=False,
                              cold_starts_client=10, cold_starts_server=11)])
    notes = validity.coldstart(cycles, churn, pd.DataFrame(), lazy)
    assert [(r.mark, r.check) for r in notes.itertuples()] == [
        ("[1]", "errors"), ("[2]", "few samples"), ("[3]", "not valid"), ("[3]", "counts differ")]
    assert validity.mark(lazy, notes, {"name": "cell"}, section="3")["notes"].tolist() == ["[3]"]
    assert validity.mark(cycles, notes, {"runtime": "runtime"}, section="1")["notes"].tolist() == ["[1]"]


def test_performance_headline_answers_first():
    summary, _ = _perf_summary()
    sat = pd.DataFrame([dict(mode="mms", max_ok_qps=25.0, first_fail_qps=50.0),
                        dict(mode="traditional", max_ok_qps=50.0, first_fail_qps=np.nan)])
    p = params.performance(qps=[25, 50], duration_s=20, warmup_s=3)
    notes = validity.performance(summary, pd.DataFrame(), busy_load=1.0)
    text = narrative.performance_headline(summary, sat, p, notes)
    assert text.startswith("Within p99 <= 100 ms with no errors, traditional serving held **50 QPS** (the highest "
                           "tested) and multi-model serving held **25 QPS** (5 simple_string models, REST")
    assert "2 rates, 25 to 50 QPS, 20 s per level" in text
    assert "At 25 QPS, the highest rate every mode ran validly, p50 / p99 latency was 2.00 / 9.00 ms traditional " \
           "serving; 1.50 / 7.00 ms multi-model serving." in text
    assert "carry validity notes" in text
    same = pd.DataFrame([dict(mode="mms", max_ok_qps=25.0, first_fail_qps=50.0),
                         dict(mode="traditional", max_ok_qps=25.0, first_fail_qps=50.0)])
    assert "both modes held **25 QPS** (" in narrative.performance_headline(summary, same, p)
    none = same.assign(max_ok_qps=np.nan)
    assert "with no errors, neither mode is shown to hold any tested rate (" in \
        narrative.performance_headline(summary, none, p)
    one = same.assign(max_ok_qps=[np.nan, 25.0])
    assert "traditional serving held **25 QPS** and multi-model serving is not shown to hold any tested rate" in \
        narrative.performance_headline(summary, one, p)


def test_coldstart_headline_one_bullet_per_section():
    cs = pd.DataFrame([dict(runtime="kserve", load_p50_ms=6.6, unload_p50_ms=6.5)])
    leak = pd.DataFrame([dict(runtime="kserve", verdict="flat")])
    cmp_ = pd.DataFrame([dict(runtime="kserve", p99_diff=-4.1, p99_beyond_spread="unknown (1 repeat)")])
    lazy = pd.DataFrame(dict(hit_rate=[0.469, 0.982], attainment=[1.0, 0.95], counts_agree=[True, True]))
    cluster = pd.DataFrame(dict(models=[10000, 1000000], hosts_needed=[3, np.nan]))
    text = narrative.coldstart_headline(cs, leak, cmp_, lazy, "**Simulation**, validated", cluster, 25.0)
    assert text.splitlines() == [
        "- **Load and unload** (p50, ms): kserve 6.6 / 6.5, memory flat.",
        "- **Loading while serving**: kserve: p99 -4.1 ms with churn (beyond run-to-run spread: unknown (1 repeat)).",
        "- **More models than memory** (2 cells): hit rate 46.9% to 98.2%, SLO attainment (25 ms) 95.0% to 100.0%; "
        "client and server cold-start counts agree in 2 of 2 cells.",
        "- **Simulation**, validated",
        "- **Cluster** (simulated): 10,000 models: 3 host(s); 1,000,000 models: not reachable.",
    ]


def test_setting_line_names_only_the_changed_parameters():
    p = params.build("performance", {"qps": [25], "duration_s": 3, "warmup_s": 1})
    assert notebook.changed_params(p) == {"qps": [25.0], "duration_s": 3.0, "warmup_s": 1.0}
    assert notebook.setting_line(p).startswith("*Parameters* (not at their defaults): `qps` [25], "
                                               "`duration_s` 3, `warmup_s` 1.")
    t = notebook.setting_table(p)
    assert t.loc["qps", "changed"] == "*" and t.loc["models", "changed"] == ""
    assert set(t.index) == set(p.to_dict())
    assert "all at their defaults" in notebook.setting_line(params.build("stress", {}))


def _sections(name):
    import jupytext
    nb = jupytext.read(ROOT / "notebooks" / f"{name}.py")
    heads = [m.group(1).strip() for c in nb.cells if c.cell_type == "markdown"
             for m in re.finditer(r"^##\s+(.+)$", c.source, re.M)]
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    return heads, code


@pytest.mark.parametrize("name", EXPERIMENT_NOTEBOOKS)
def test_notebook_opens_with_the_answer_and_closes_with_the_setting(name):
    heads, code = _sections(name)
    assert heads[0] == "The answer", f"notebooks/{name}.py: first section is {heads[0]!r}, not 'The answer'"
    assert heads[-1] == "Setting", f"notebooks/{name}.py: last section is {heads[-1]!r}, not 'Setting'"
    assert "Validity notes" in heads and heads.index("Validity notes") < heads.index("Setting")
    assert not any("P.to_dict()" in c for c in code), "the full parameter table belongs in Setting"
    assert any("setting_line(P)" in c for c in code) and any("setting_table(P)" in c for c in code)
    assert any("with quiet_when_done():" in c for c in code), "the run's progress lines would open the page"
    assert any(f"validity.{name}(" in c for c in code) and any("validity_section(notes)" in c for c in code)


def _text(output) -> str:
    """What an output shows in the HTML page: its Markdown, else its HTML, else its plain text."""
    data = output.get("data", {})
    for kind in ("text/markdown", "text/html", "text/plain"):
        if kind in data:
            return "".join(data[kind])
    return "".join(output.get("text", ""))


def test_executed_performance_notebook_reads_answer_first(tmp_path, no_leftovers):
    """A real run (servers, k6, papermill): the answer and its figure come before any table, the
    parameters show as one line, the notes are one table with marks in the latency tables, and
    every parameter is in the closing Setting section."""
    from conftest import papermill
    out = tmp_path / "p.ipynb"
    res = papermill("performance.ipynb", out, "-p", "qps", "[20]", "-p", "duration_s", "3", "-p", "warmup_s", "1",
                    "-p", "output_dir", tmp_path / "run", timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    check_answer_first(json.loads(out.read_text()))


def check_answer_first(nb: dict) -> None:
    """The order an executed performance notebook must show (see the test above)."""
    seq = []   # (kind, text) of every markdown cell and every output, in page order
    for c in nb["cells"]:
        if c["cell_type"] == "markdown":
            seq.append(("md", "".join(c["source"])))
        for o in c.get("outputs", []):
            kind = "img" if "image/png" in o.get("data", {}) else "table" if "text/html" in o.get("data", {}) else "text"
            seq.append((kind, _text(o)))

    def at(pred, what):
        found = [i for i, (k, t) in enumerate(seq) if pred(k, t)]
        assert found, f"the executed notebook shows no {what}"
        return found[0]
    answer = at(lambda k, t: k == "md" and "## The answer" in t, "answer section")
    first_table = at(lambda k, t: k == "table", "table")
    first_img = at(lambda k, t: k == "img", "figure")
    assert answer < first_img < first_table, seq[:first_table + 1]
    assert at(lambda k, t: "Within p99 <= 100 ms" in t, "headline") < first_img
    assert at(lambda k, t: "*Parameters* (not at their defaults)" in t, "parameter line") < answer
    assert not any("levels:" in t for k, t in seq[:answer]), "progress lines left above the answer"
    notes_at = at(lambda k, t: k == "md" and "## Validity notes" in t, "validity notes")
    setting = at(lambda k, t: k == "md" and "## Setting" in t, "setting section")
    assert first_table < notes_at < setting
    assert "<th>sample_interval_s</th>" in seq[setting + 2][1]       # the full parameter table, at the end
    # 20 QPS x 2 s measured: too few samples for a stable p99, in both modes: marked and listed
    tables = "".join(t for k, t in seq[answer:notes_at] if k == "table")
    assert "<th>notes</th>" in tables and "[1]" in tables and "[2]" in tables
    listed = "".join(t for k, t in seq[notes_at:setting])
    assert len(re.findall(r"only \d+ samples: p99 is unstable", listed)) == 2, listed
