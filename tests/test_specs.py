"""mmslib.quantity and mmslib.specs: one exact parser, one spec type, the seed's specs from seed.py."""
from fractions import Fraction

import pytest

from mmslib import params, planner, quantity, resources, seed, specs
from mmslib.errors import ParamError


def test_one_parser_everywhere():
    # the planner's and the resources' names are the same objects, not copies
    assert planner.parse_cpu is quantity.parse_cpu and planner.parse_memory is quantity.parse_memory
    assert planner.ServiceSpec is specs.ServiceSpec is resources.ServerSpec
    assert planner.Container is specs.Container is resources.ContainerSpec
    assert quantity.exact("0.55Ti") == Fraction(55, 100) * 2**40
    assert quantity.parse_memory("0.55Ti") == 604731395277          # fractional bytes round up
    assert quantity.cpu_exact("100m") * 3 == Fraction(3, 10)         # exact, not 0.30000000000000004
    assert quantity.format_memory(1 << 20) == "1Mi" and quantity.format_memory(1000) == "1000"
    with pytest.raises(ParamError, match="model_memory") as e:
        quantity.parse_memory("100m", "model_memory")                # milli-bytes: a typo for M/Mi
    assert e.value.name == "model_memory"


def test_seed_specs_come_from_seed_py():
    s = seed.STRESS_SPECS
    t, m = specs.SEED["traditional"], specs.SEED["mms"]
    assert (t.predictor.cpu, t.predictor.memory) == (s["traditional_predictor"]["cpu"], s["traditional_predictor"]["memory"])
    assert (m.predictor.cpu, m.predictor.memory) == (s["mms_predictor"]["cpu"], s["mms_predictor"]["memory"])
    assert [(c.cpu, c.memory) for c in t.sidecars] == [(s["queue_proxy"]["cpu"], s["queue_proxy"]["memory"])]
    d = params.StressParams()
    assert (d.traditional_predictor_cpu, d.mms_predictor_memory, d.sidecar_memory) == (
        s["traditional_predictor"]["cpu"], s["mms_predictor"]["memory"], s["queue_proxy"]["memory"])
    # the seed's published totals: 352 ISVCs -> 387.2 CPU, 211,200 MiB; 6 hosts -> 66 CPU
    assert t.reserved(352) == {"reserved_cpu": 387.2, "reserved_memory_mib": 211200.0,
                               "reserved_sidecar_cpu": 352.0, "reserved_sidecar_memory_mib": 176000.0}
    assert m.reserved(6)["reserved_cpu"] == 66.0
    assert planner.seed_specs()["traditional"].isvc == t


def test_for_params_one_builder_for_objects_and_dicts():
    p = params.stress(traditional_predictor_cpu="250m", sidecar_cpu="0", output_dir="/tmp/x")
    from_obj = specs.for_params(p)
    from_dict = specs.for_params(p.to_dict())
    assert from_obj == from_dict
    assert from_obj["traditional"].cpu == Fraction(1, 4) and from_obj["traditional"].sidecars == ()
    assert specs.for_params({}) == specs.SEED                       # a run without the keys: the seed's
    # the former ServerSpec form: a list of containers, sidecars after the first
    legacy = resources.ServerSpec([resources.ContainerSpec("predictor", "1", "1Gi"),
                                   resources.ContainerSpec("queue-proxy", "1", "500Mi")])
    assert legacy.name == "server" and [c.sidecar for c in legacy.containers] == [False, True]
    assert legacy.reserved(2)["reserved_sidecar_cpu"] == 2.0
    with pytest.raises(ParamError, match="predictor.cpu"):
        resources.ServerSpec([resources.ContainerSpec("predictor", "lots", "1Gi")])
