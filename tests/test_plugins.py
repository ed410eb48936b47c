"""Typed plug-in contracts: what every runtime, workload and backend declares, so that no
experiment or report branches on a plug-in's name."""
import math
from pathlib import Path
from types import SimpleNamespace

import pytest

from mmslib import metadata, server_metrics
from mmslib.backends.base import Backend, Usage
from mmslib.runtimes import RUNTIMES, MetricSpec, get_runtime, version_keys
from mmslib.workloads import WORKLOADS, get_workload

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", RUNTIMES)
def test_runtime_declares_packages_and_metrics(name):
    rt = get_runtime(name)
    assert rt.packages and all(isinstance(p, str) for p in rt.packages)
    assert isinstance(rt.metrics, MetricSpec) and "server_ms" in rt.metrics.parts
    assert set(rt.packages) <= set(metadata.packages())            # recorded with every run
    assert version_keys()[name] == rt.packages


def test_server_metrics_reads_the_runtimes_spec_not_a_table_of_names():
    assert not hasattr(server_metrics, "SPECS")
    spec = MetricSpec("reqs", {"server_ms": (("t_seconds_sum", 1e3),)})
    d = server_metrics.delta(spec, {"reqs": 10, "t_seconds_sum": 1.0}, {"reqs": 30, "t_seconds_sum": 1.5})
    assert d == {"server_requests": 20, "server_ms": pytest.approx(25.0)}
    assert server_metrics.delta(None, {}, {}) == {} and server_metrics.delta("nope", {}, {}) == {}


@pytest.mark.parametrize("name", WORKLOADS)
def test_workload_declares_description_size_packages(name):
    import importlib
    w = get_workload(name)
    per_model = getattr(importlib.import_module(f"mmslib.workloads.{name}"), "NEEDS_PARAMS", False)  # sizes per model
    assert w.name == name and len(w.description) > 20 and (w.artifact_bytes > 0 or per_model)
    assert set(w.packages) <= set(metadata.packages())


def test_simple_string_artifact_weighs_what_it_declares(tmp_path):
    from mmslib import seed
    w = get_workload("simple_string")
    d = w.write_artifact(tmp_path / "m0", "m0")
    assert (d / "config.json").stat().st_size == w.artifact_bytes == seed.MODEL_SIZE_BYTES
    assert w.exact


def test_get_workload_takes_what_the_params_ask_for():
    pytest.importorskip("onnxruntime")
    assert get_workload("bert", SimpleNamespace(device="cpu")).extra["device"] == "cpu"
    assert get_workload("bert").extra["device"] == "auto"
    assert get_workload("simple_string", SimpleNamespace(device="auto")) is get_workload("simple_string")
    assert not get_workload("bert").exact


def test_no_experiment_branches_on_a_plugin_name():
    for f in ("stress.py", "performance.py"):
        text = (ROOT / "mmslib" / f).read_text()
        for needle in ('== "bert"', "!= \"bert\"", '== "simple_string"', 'backend == "local"', 'backend == "kserve"',
                       "hasattr(backend"):
            assert needle not in text, f"mmslib/{f} branches on a plug-in: {needle}"


def test_no_module_compares_with_a_plugin_name_outside_the_plugin():
    """Anywhere in mmslib but the plug-in's own module(s), params validation included: no ``== "bert"``,
    ``"local" !=``, ``in ("simple_string", ...)`` (a declaration on the plug-in says it instead)."""
    import re
    from mmslib.backends import BACKENDS
    names = "|".join(sorted(set(BACKENDS) | set(RUNTIMES) | set(WORKLOADS)))
    q = rf"""["'](?:{names})["']"""
    pat = re.compile(rf"""(?:==|!=)\s*{q}|{q}\s*(?:==|!=)|\bin\s*[\(\[\{{]\s*{q}""")
    own = [f"mmslib/{kind}/{n}" for kind, ns in (("backends", BACKENDS), ("runtimes", RUNTIMES),
                                                 ("workloads", WORKLOADS)) for n in ns]
    found = []
    for p in sorted((ROOT / "mmslib").rglob("*.py")):
        rel = p.relative_to(ROOT).as_posix()
        if any(rel == o + ".py" or rel.startswith(o + "_") for o in own):
            continue
        found += [f"{rel}:{i}: {ln.strip()}" for i, ln in enumerate(p.read_text().splitlines(), 1) if pat.search(ln)]
    assert found == []


def test_backend_base_offers_pids_metrics_and_typed_usage():
    class Nothing(Backend):
        def deploy_traditional(self, models): return iter(())
        def start_hosts(self, n): return []
        def deploy_mms(self, models): return iter(())
        def endpoints(self): return []
        def verify(self, sample=100, seed=0): return None
        def usage(self): return Usage(servers=0, memory_mib=None)
        def close(self): pass
    b = Nothing()
    assert b.pids() == [] and b.metrics_urls() == [] and b.metric_spec() is None
    row = b.usage().as_row()
    assert row["servers"] == 0 and math.isnan(row["memory_mib"]) and row["pending"] == 0


def test_backends_declare_what_reports_say_about_them():
    from mmslib import backends
    from mmslib.errors import ParamError
    assert backends.describe("local") == {"on_cluster": False, "servers_are": "server processes",
                                          "memory_measure": "PSS of the server processes"}
    k = backends.describe("kserve")
    assert k["on_cluster"] is True and k["servers_are"] == "pods"
    assert backends.backend_class("local").__name__ == "LocalBackend"
    with pytest.raises(ParamError, match="backend"):
        backends.describe("nomad")


# -- backends own their options and declare what they run (issue #24) ------------------------------

def test_each_backend_owns_its_options_and_params_carries_them_by_name():
    import dataclasses
    from mmslib import params
    from mmslib.backends import BACKENDS, backend_class, option_fields, options_class
    names = {f.name for f in dataclasses.fields(params.StressParams)}
    for b in BACKENDS:
        cls = options_class(b)
        assert backend_class(b).options is cls
        for f in dataclasses.fields(cls) if cls else ():
            assert f.name in names and len(f.metadata["doc"]) > 10, f.name   # -p <name> works, with its description
    assert {f.name for f in option_fields()} >= {"namespace", "storage_uri", "dry_run", "tm_batch", "autoscale"}
    p = params.stress(autoscale="true", tm_batch="64", kubelet_sync_s=5)      # as papermill -p passes them
    assert p.autoscale is True and p.tm_batch == 64


@pytest.mark.parametrize("raw,name", [
    ({"tm_batch": 0}, "tm_batch"), ({"modelmesh_count": "some"}, "modelmesh_count"),
    ({"namespace": 3}, "namespace"), ({"dry_run": True}, "dry_run"),                # dry_run: kserve's only
    ({"backend": "kserve", "namespace": "Not_A_Label"}, "namespace"),
    ({"backend": "kserve", "runtime": "triton"}, "runtime"), ({"mms_engine": "modelmesh"}, "mms_engine"),
    ({"backend": "kserve", "mms_engine": "lazy"}, "mms_engine"), ({"device": "cpu"}, "device")])
def test_a_backends_option_or_declaration_refuses_by_the_parameters_name(raw, name):
    from mmslib import params
    from mmslib.errors import ParamError
    with pytest.raises(ParamError) as e:
        params.stress(**raw)
    assert e.value.name == name


def test_params_checks_what_a_new_backend_declares_not_its_name(monkeypatch):
    """A backend registered with its declarations alone (no line in params.py) is checked by them."""
    import sys
    import types
    from mmslib import backends, params
    from mmslib.errors import ParamError

    class Nomad(Backend):
        name = "nomad"
        on_cluster = True
        supports_protocols = ("grpc",)
        mms_engines = ("modelmesh",)
        runtimes = ("triton",)
    for m in ("deploy_traditional", "start_hosts", "deploy_mms", "endpoints", "verify", "usage", "close"):
        setattr(Nomad, m, lambda self, *a: None)
    Nomad.__abstractmethods__ = frozenset()
    mod = types.ModuleType("mmslib.backends.nomad")
    mod.Nomad = Nomad
    monkeypatch.setitem(sys.modules, "mmslib.backends.nomad", mod)
    monkeypatch.setitem(backends.BACKENDS, "nomad", None)
    ok = dict(backend="nomad", runtime="triton", mms_engine="modelmesh", protocol="grpc")
    assert params.performance(**ok).backend == "nomad"
    for bad, name in (({"protocol": "rest"}, "protocol"), ({"runtime": "kserve"}, "runtime"),
                      ({"mms_engine": "trainedmodel"}, "mms_engine")):
        with pytest.raises(ParamError) as e:
            params.performance(**{**ok, **bad})
        assert e.value.name == name and "backend 'nomad'" in str(e.value)
    with pytest.raises(ParamError, match="local"):    # on a cluster: no cold starts measured here
        params.coldstart(backend="nomad")
