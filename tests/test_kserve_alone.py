"""A clone that stands alone: the Kubernetes tests pass with nothing beside the repository.

KServe's CRD files (``shared/kserve-crds`` beside some checkouts) are only an extra check; the
double takes its schemas from the installed kserve SDK and mmslib looks at nothing outside the
repository. Shown the way a new user meets it: the repository's files copied into an empty folder
(so no ``../shared``), ``MMSLIB_KSERVE_CRDS`` unset, and Kubernetes tests run there.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# tests that touch every part: API errors, pruning and schemas (the double), manifests from the backend
# accepted by the double, and the CRD-only extra check, which must skip (not fail)
TESTS = [
    "tests/test_k8s_double.py::test_errors_409_404_422_400_403",
    "tests/test_kserve_backend.py::test_dry_run_writes_valid_manifests_and_calls_nothing",
    "tests/test_kserve_backend.py::test_dry_run_catches_an_invalid_manifest",
]


def _repo_files():
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                         capture_output=True, check=True).stdout.decode()
    return [f for f in out.split("\0") if f and (ROOT / f).is_file()]


def test_nothing_outside_the_repository_is_referenced():
    """No code path in mmslib or the double names a folder beside the repository."""
    pat = re.compile(r"\.\./shared|parent\s*/\s*\"shared\"|/work/shared")
    bad = [str(p.relative_to(ROOT)) for d in ("mmslib", "tests/k8s_double") for p in (ROOT / d).rglob("*.py")
           if pat.search(p.read_text())]
    assert bad == []


def test_no_file_names_a_path_of_one_machine():
    """No file in the repository (code, tests, notebooks, README links, Makefile) names an absolute
    /work path or links to a folder beside the repository; what lies beside it is an extra check only
    (tests/test_seed.py, tests/k8s_fixtures.py), found relative to the repository root."""
    pat = re.compile(r"/work/|\]\(\.\./")
    text = (".py", ".md", ".ipynb", ".yaml", ".yml", ".toml", ".js", ".sh", ".cfg", ".txt", "Makefile")
    bad = [f for f in _repo_files() if f.endswith(text) and f not in ("tests/test_kserve_alone.py", "tests/test_docs.py")   # (these name them)
           and pat.search((ROOT / f).read_text(errors="replace"))]
    assert bad == []


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="needs a git checkout")
def test_k8s_tests_pass_in_a_clone_with_nothing_beside_it(tmp_path):
    clone = tmp_path / "clone"
    for f in _repo_files():
        if f.startswith(("outputs/", "notebooks/")) or f.endswith(".ipynb"):
            continue
        dst = clone / f
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, dst)
    assert not (clone.parent / "shared").exists()
    env = {k: v for k, v in os.environ.items() if k not in ("MMSLIB_KSERVE_CRDS", "PYTEST_ADDOPTS")}
    env["PYTHONPATH"] = str(clone)          # the clone's mmslib, not the checkout's
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *TESTS],
                       cwd=clone, env=env, capture_output=True, text=True, timeout=300)
    tail = (r.stdout + r.stderr)[-4000:]
    assert r.returncode == 0, tail
    assert re.search(r"\b2 passed, 1 skipped\b", r.stdout), tail
    assert "not beside this checkout" in r.stdout, tail
