"""Each runtime through both notebooks with small parameters (real servers, real k6)."""
import subprocess
from pathlib import Path

import pytest

from conftest import papermill

ROOT = Path(__file__).resolve().parent.parent


def _env_or_skip(runtime):
    from mmslib.errors import DependencyError
    from mmslib.runtimes import get_runtime
    try:
        get_runtime(runtime).check_available()
    except DependencyError as e:
        r = subprocess.run(["bash", str(ROOT / "scripts" / "setup-runtime-env.sh"), runtime],
                           capture_output=True, text=True, timeout=900)
        if r.returncode != 0:
            pytest.skip(f"{runtime} environment could not be created: {e}; {r.stderr[-500:]}")


def _papermill(nb, out, *args):
    r = papermill(nb, out, *args)
    assert r.returncode == 0, r.stderr[-3000:]
    import scrapbook as sb
    return sb.read_notebook(str(out)).scraps


@pytest.mark.parametrize("runtime", ["triton", "mlserver"])
def test_stress_and_performance_notebooks(runtime, tmp_path, no_leftovers):
    _env_or_skip(runtime)
    scraps = _papermill("stress.ipynb", tmp_path / "s.ipynb", "-p", "runtime", runtime, "-p", "models", "12",
                        "-p", "memory_budget", "600Mi", "-p", "verify_sample", "4",
                        "-p", "output_dir", str(tmp_path / "s"))
    s = scraps["stress_summary"].data.set_index("mode")
    assert (s["runtime"] == runtime).all()
    assert s.loc["mms", "models_deployed"] == 12 and s.loc["mms", "verify_ok"]
    assert s.loc["traditional", "models_deployed"] >= 1
    if runtime == "triton":  # a python-backend stub process per model is part of the cost
        assert s.loc["mms", "processes"] >= 12
    scraps = _papermill("performance.ipynb", tmp_path / "p.ipynb", "-p", "runtime", runtime, "-p", "models", "2",
                        "-p", "qps", "[20]", "-p", "duration_s", "2", "-p", "warmup_s", "1",
                        "-p", "output_dir", str(tmp_path / "p"))
    summ = scraps["perf_summary"].data
    assert len(summ) == 2 and (summ["errors"] == 0).all() and (summ["n"] > 0).all()
    assert (summ["server_requests"] > 0).all()  # the runtime's own metrics were read
