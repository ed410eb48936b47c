"""Parameters as a shell user types them, and the `mmslib` command."""
from __future__ import annotations

import re

import pytest

from mmslib import params
from mmslib.errors import ParamError


@pytest.mark.parametrize("typed,expected", [
    ("true", True), ("TRUE", True), ("True", True), ("yes", True), ("On", True), ("1", True), (1, True),
    ("false", False), ("No", False), ("off", False), ("0", False), (0, False), (" false ", False),
])
def test_booleans_as_typed(typed, expected, tmp_path):
    p = params.performance(output_dir=str(tmp_path / "o"), cpu_isolation=typed, resume=typed)
    assert p.cpu_isolation is expected and p.resume is expected


@pytest.mark.parametrize("typed", ["maybe", 2, "", "tru", 0.5])
def test_bad_booleans_say_what_to_type(typed, tmp_path):
    with pytest.raises(ParamError) as e:
        params.performance(output_dir=str(tmp_path / "o"), cpu_isolation=typed)
    assert e.value.name == "cpu_isolation" and "allowed: true | false" in str(e.value)


@pytest.mark.parametrize("typed,expected", [
    ("25", 25), ("1e3", 1000), ("1_000", 1000), (" 40 ", 40), (1e3, 1000), ("2.0", 2)])
def test_integers_as_typed(typed, expected, tmp_path):
    assert params.stress(output_dir=str(tmp_path / "o"), models=typed).models == expected


@pytest.mark.parametrize("typed,expected", [("25", 25.0), ("2.5", 2.5), ("1e3", 1000.0), ("1_000", 1000.0)])
def test_numbers_as_typed(typed, expected, tmp_path):
    assert params.performance(output_dir=str(tmp_path / "o"), warmup_s=0, duration_s=typed).duration_s == expected


@pytest.mark.parametrize("typed", ["fast", "nan", "inf", "1e", True, "2.5.1"])
def test_bad_numbers(typed, tmp_path):
    with pytest.raises(ParamError) as e:
        params.performance(output_dir=str(tmp_path / "o"), duration_s=typed)
    assert e.value.name == "duration_s"


@pytest.mark.parametrize("typed", ["[25, 50]", "25,50", "25, 50", "25 50", [25, 50], "[25,50]", "25;50"[:0] + "25,50,"])
def test_lists_as_typed(typed, tmp_path):
    assert params.performance(output_dir=str(tmp_path / "o"), qps=typed).qps == [25.0, 50.0]


def test_single_values_and_word_lists(tmp_path):
    assert params.performance(output_dir=str(tmp_path / "o"), qps="25").qps == [25.0]
    assert params.performance(output_dir=str(tmp_path / "o"), qps=25).qps == [25.0]
    assert params.stress(output_dir=str(tmp_path / "o"), modes="mms traditional").modes == ["mms", "traditional"]
    assert params.stress(output_dir=str(tmp_path / "o"), modes="traditional,mms").modes == ["traditional", "mms"]
    assert params.stress(output_dir=str(tmp_path / "o"), memory_budget="none").memory_budget is None
    assert params.stress(output_dir=str(tmp_path / "o"), model_memory="None").model_memory is None


def _first_alternative(allowed: str) -> str:
    """The first thing the 'allowed' text offers, as the user would type it."""
    return re.split(r" \| | \(", allowed)[0].strip()


@pytest.mark.parametrize("name,bad,exp", [
    ("resume", "perhaps", "stress"), ("backend", "docker", "stress"), ("runtime", "torchserve", "stress"),
    ("workload", "resnet", "stress"), ("device", "tpu", "stress"), ("protocol", "websocket", "performance"),
    ("traffic", "pareto", "performance"), ("cpu_isolation", "2", "performance"), ("mms_engine", "x", "stress"),
])
def test_every_allowed_text_can_be_typed_back(name, bad, exp, tmp_path):
    build = getattr(params, exp)
    with pytest.raises(ParamError) as e:
        build(output_dir=str(tmp_path / "o"), **{name: bad})
    typed = _first_alternative(e.value.allowed)
    build(output_dir=str(tmp_path / "o"), **{name: typed})  # accepted as typed, no error


def test_examples_in_number_and_list_errors_are_accepted(tmp_path):
    with pytest.raises(ParamError) as e:
        params.performance(output_dir=str(tmp_path / "o"), duration_s="soon")
    examples = re.search(r"\(e\.g\. (.*)\)", e.value.allowed).group(1).split(", ")
    assert len(examples) >= 3
    for x in examples:
        params.performance(output_dir=str(tmp_path / "o"), warmup_s=0, duration_s=x)
    with pytest.raises(ParamError) as e:
        params.performance(output_dir=str(tmp_path / "o"), qps="fast")
    for x in re.findall(r'(?:e\.g\. |or )"?([^"()]+?)"?(?: or|\))', e.value.allowed):
        assert params.performance(output_dir=str(tmp_path / "o"), qps=x).qps == [25.0, 50.0]
    with pytest.raises(ParamError) as e:
        params.stress(output_dir=str(tmp_path / "o"), modes="[]")
    typed = re.search(r"\(e\.g\. (.*)\)", e.value.allowed).group(1)
    assert params.stress(output_dir=str(tmp_path / "o"), modes=typed).modes == ["traditional", "mms"]


# ---------------------------------------------------------------- the mmslib command

import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402

from mmslib import cli  # noqa: E402
from runfactory import perf_run  # noqa: E402


@pytest.mark.parametrize("cmd", [[], ["run"], ["report"], ["compare"], ["export"], ["cleanup"]])
def test_help_for_each_command(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(cmd + ["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: mmslib") and (not cmd or cmd[0] in out)


def test_console_script_is_declared():
    import tomllib
    from pathlib import Path
    meta = tomllib.loads((Path(cli.__file__).parent.parent / "pyproject.toml").read_text())
    assert meta["project"]["scripts"]["mmslib"] == "mmslib.cli:main"


def test_run_refuses_a_bad_parameter_before_starting_anything(tmp_path, capsys):
    assert cli.main(["run", "performance", "-p", "qps", "fast", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "parameter 'qps': got 'fast'" in err and not (tmp_path / "o").exists()
    assert cli.main(["run", "nonsense"]) == 2
    assert "unknown experiment 'nonsense'" in capsys.readouterr().err


def test_compare_and_export_commands(tmp_path, capsys):
    rng = np.random.default_rng(4)
    # one repeat each: the difference is shown, no verdict, and --fail-if-worse does not fire on it
    a1 = perf_run(tmp_path / "a1", lambda m, q: rng.lognormal(np.log(10), 0.3, 1000), modes=("mms",))
    b1 = perf_run(tmp_path / "b1", lambda m, q: rng.lognormal(np.log(10), 0.3, 1000) + 4, modes=("mms",))
    assert cli.main(["compare", str(a1.path), str(b1.path), "--fail-if-worse"]) == 0
    assert "needs >= 3 repeats per run" in capsys.readouterr().out
    # three repeats each, B 4 ms slower in every one: beyond the run-to-run spread
    a = perf_run(tmp_path / "a", lambda m, q: rng.lognormal(np.log(10), 0.3, 1000), modes=("mms",), repeats=3)
    b = perf_run(tmp_path / "b", lambda m, q: rng.lognormal(np.log(10), 0.3, 1000) + 4, modes=("mms",), repeats=3)
    assert cli.main(["compare", str(a.path), str(b.path)]) == 0
    out = capsys.readouterr().out
    assert "beyond run-to-run spread" in out and "p50 at mode mms, qps 25" in out
    assert cli.main(["compare", str(a.path), str(b.path), "--fail-if-worse"]) == 1  # B is 4 ms slower
    assert cli.main(["compare", str(b.path), str(a.path), "--fail-if-worse"]) == 0  # A is faster: not worse
    capsys.readouterr()
    assert cli.main(["compare", str(a.path), str(b.path), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert {r["stat"] for r in rows} == {"p50", "p99", "attainment"}
    assert cli.main(["compare", str(a.path), str(tmp_path)]) == 2
    assert cli.main(["export", str(a.path), "--percentiles", "50,99.9"]) == 0
    assert "p99.9" in (a.path / "summary.csv").read_text().splitlines()[0]


def test_cleanup_delegates_to_the_k8s_cleanup(tmp_path):
    p = subprocess.run([sys.executable, "-m", "mmslib.cli", "cleanup", "--run-id", "abc123", "--namespace", "ns",
                        "--kubeconfig", str(tmp_path / "missing-kubeconfig"), "--timeout", "1"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "error:" in p.stderr  # mmslib.k8s's own message about the kubeconfig


def test_mmslib_run_executes_the_notebook_and_writes_html_and_records(tmp_path, no_leftovers):
    """The console script as a user types it: a real performance run (real servers, real k6,
    real papermill kernel) with parameters spelled as on a shell; the executed notebook, its HTML
    and a complete run directory come out, and nothing it started is left running."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from mmslib.rundir import Run
    exe = Path(sys.executable).parent / "mmslib"
    argv = [str(exe)] if exe.exists() else [sys.executable, "-m", "mmslib.cli"]
    out = tmp_path / "o"
    p = subprocess.run(argv + ["run", "performance", "-p", "models", "1", "-p", "qps", "10", "-p", "duration_s", "1.5",
                               "-p", "warmup_s", "0.3", "-p", "modes", "traditional,mms", "--out", str(out)],
                       capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    assert f"wrote {out / 'performance.ipynb'} and {out / 'performance.html'}" in p.stdout
    nb = json.loads((out / "performance.ipynb").read_text())
    assert not [c for c in nb["cells"] if c.get("cell_type") == "code"
                for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert (out / "performance.html").stat().st_size > 50_000  # plots and tables inline
    run = Run.load(out / "run")
    assert run.status == "complete" and run.params["models"] == 1 and run.params["qps"] == [10]
    assert sorted(run.summary["mode"]) == ["mms", "traditional"]
    recs = run.records
    # 10 QPS for 1.5 s measured (+0.3 s warm-up) per mode: about 15 measured requests each, all answered
    for mode in ("traditional", "mms"):
        m = recs[(recs["mode"] == mode) & ~recs["warmup"]]
        assert 12 <= len(m) <= 18 and m["ok"].all(), (mode, len(m))
    assert run.meta["writer"]["pid"] != os.getpid()  # the notebook's kernel wrote it
