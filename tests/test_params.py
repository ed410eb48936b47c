"""Bad input gets one clear error naming the parameter, before anything starts."""
import pytest

from mmslib import params
from mmslib.errors import ParamError

STRESS_BAD = [
    ({"backend": "docker"}, "backend", "local | kserve"),
    ({"runtime": "torchserve"}, "runtime", "kserve | triton | mlserver"),
    ({"workload": "resnet"}, "workload", "simple_string"),
    ({"modes": ["traditional", "serverless"]}, "modes", "traditional"),
    ({"modes": []}, "modes", "non-empty"),
    ({"modes": ["mms", "mms"]}, "modes", "at most once"),
    ({"models": 0}, "models", "integer"),
    ({"models": -5}, "models", "integer"),
    ({"models": "ten"}, "models", "integer"),
    ({"models": 2.5}, "models", "integer"),
    ({"models": True}, "models", "integer"),
    ({"hosts": 0}, "hosts", "integer"),
    ({"deploy_concurrency": 0}, "deploy_concurrency", "integer"),
    ({"deploy_timeout_s": 0}, "deploy_timeout_s", "number"),
    ({"deploy_timeout_s": "fast"}, "deploy_timeout_s", "number"),
    ({"memory_budget": "lots"}, "memory_budget", "memory quantity"),
    ({"memory_budget": "100Ti"}, "memory_budget", "machine's memory"),
    ({"memory_budget": "0"}, "memory_budget", "positive"),
    ({"time_limit_s": -1}, "time_limit_s", "number"),
    ({"traditional_predictor_cpu": "a lot"}, "traditional_predictor_cpu", "cpu quantity"),
    ({"mms_predictor_memory": "10GB!"}, "mms_predictor_memory", "memory quantity"),
    ({"sidecar_memory": "-5Mi"}, "sidecar_memory", "memory quantity"),
    ({"model_memory": "0"}, "model_memory", "positive"),
    ({"resume": "maybe"}, "resume", "true | false"),
    ({"device": "tpu"}, "device", "auto | cpu | cuda"),
    ({"device": "cpu"}, "device", "only the bert workload"),
    ({"dry_run": True}, "dry_run", "backend 'kserve'"),
    ({"mms_engine": "modelmesh"}, "mms_engine", "trainedmodel"),
    ({"backend": "kserve", "namespace": "Bad_NS"}, "namespace", "DNS-1123"),
    ({"backend": "kserve", "kubeconfig": "/nonexistent/kubeconfig"}, "kubeconfig", "kubeconfig file"),
    ({"backend": "kserve", "runtime": "triton"}, "runtime", "serving_runtime"),
    ({"backend": "kserve", "ingress_port": 70000}, "ingress_port", "integer"),
    ({"modelz": 10}, "modelz", "known parameters"),
    ({"output_dir": ""}, "output_dir", "directory"),
]

PERF_BAD = [
    ({"qps": []}, "qps", "non-empty"),
    ({"qps": [10, -1]}, "qps", "> 0"),
    ({"qps": [10, 10]}, "qps", "distinct"),
    ({"qps": "fast"}, "qps", "list"),
    ({"duration_s": 0}, "duration_s", "> 0"),
    ({"duration_s": 5, "warmup_s": 5}, "warmup_s", "shorter than duration_s"),
    ({"warmup_s": -1}, "warmup_s", ">= 0"),
    ({"protocol": "websocket"}, "protocol", "rest | grpc"),
    ({"traffic": "pareto"}, "traffic", "uniform | zipf"),
    ({"zipf_skew": 0}, "zipf_skew", "> 0"),
    ({"slo_p99_ms": 0}, "slo_p99_ms", "> 0"),
    ({"repeats": 0}, "repeats", "integer"),
    ({"cpu_isolation": 2}, "cpu_isolation", "true | false"),
    ({"models": 0}, "models", "integer"),
    ({"backend": "kserve", "protocol": "grpc"}, "protocol", "rest with backend 'kserve'"),
]


@pytest.mark.parametrize("bad,name,allowed", STRESS_BAD, ids=[f"stress-{b[1]}-{i}" for i, b in enumerate(STRESS_BAD)])
def test_stress_bad_input(bad, name, allowed, tmp_path):
    bad = dict(bad)
    bad.setdefault("output_dir", str(tmp_path / "out")) if "output_dir" not in bad else None
    with pytest.raises(ParamError) as e:
        params.stress(**bad)
    assert e.value.name == name
    assert allowed in str(e.value), str(e.value)
    assert f"'{name}'" in str(e.value)


@pytest.mark.parametrize("bad,name,allowed", PERF_BAD, ids=[f"perf-{b[1]}-{i}" for i, b in enumerate(PERF_BAD)])
def test_performance_bad_input(bad, name, allowed, tmp_path):
    with pytest.raises(ParamError) as e:
        params.performance(output_dir=str(tmp_path / "out"), **bad)
    assert e.value.name == name
    assert allowed in str(e.value), str(e.value)


def test_output_dir_is_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ParamError, match="output_dir"):
        params.stress(output_dir=str(f))


def test_defaults_valid_and_key_stable(tmp_path):
    a = params.stress(output_dir=str(tmp_path / "a"))
    b = params.stress(output_dir=str(tmp_path / "b"), resume=True)
    assert a.models == 10000 and a.modes == ["traditional", "mms"]
    assert a.key() == b.key()  # where and resume don't change what is measured
    assert params.stress(models=5).key() != a.key()
    p = params.performance(qps=25)
    assert p.qps == [25.0] and p.duration_s == 60.0
    assert params.performance().qps == params.SEED_QPS


def test_memory_budget_auto():
    p = params.stress()
    assert p.memory_budget_bytes(8 << 30) == 4 << 30
    assert params.stress(memory_budget="1Gi").memory_budget_bytes(8 << 30) == 1 << 30


def test_load_yaml(tmp_path):
    with pytest.raises(ParamError, match="params_file"):
        params.load_yaml(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a\n- b\n")
    with pytest.raises(ParamError, match="mapping"):
        params.load_yaml(bad)


def test_lists_given_as_strings_by_papermill():
    assert params.performance(qps="[20, 60]").qps == [20.0, 60.0]
    assert params.performance(qps="20,60").qps == [20.0, 60.0]
    assert params.stress(modes="mms").modes == ["mms"]
    assert params.stress(modes="[mms, traditional]").modes == ["mms", "traditional"]
    with pytest.raises(ParamError, match="qps"):
        params.performance(qps="[20, x]")
