"""The install files agree with each other, and every params set is valid."""
import tomllib
from pathlib import Path

import pytest
import yaml

from mmslib import params

ROOT = Path(__file__).resolve().parent.parent


def test_environment_yml_mirrors_pyproject():
    pp = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    want = set(pp["dependencies"]) | set(pp["optional-dependencies"]["bert"]) | set(pp["optional-dependencies"]["test"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert set(pip) - {"-e ."} == want
    assert "python=3.11" in env["dependencies"]
    assert all("==" in d for d in want), "every dependency is pinned"


@pytest.mark.parametrize("path", sorted((ROOT / "params").glob("*.yaml")), ids=lambda p: p.name)
def test_params_sets_validate(path, tmp_path):
    data = params.load_yaml(path)
    if path.name.startswith("seed-cluster"):
        from mmslib.planner import load_cluster_limits
        assert load_cluster_limits(path).nodes == 6
        return
    build = params.performance if path.name.startswith(("perf", "soak")) else params.stress
    build = params.coldstart if path.name.startswith("coldstart") else build
    build = params.traffic if path.name.startswith("traffic") else build
    p = build(**data, output_dir=str(tmp_path / "o"))
    assert p.to_dict()
