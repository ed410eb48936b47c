"""Tests for mmslib.planner: seed totals, binding limits, quantities, etcd, CPU inference."""

from fractions import Fraction
from pathlib import Path

import pandas as pd
import pytest

from mmslib.errors import ParamError
from mmslib.planner import (
    GB, GiB, MiB, ClusterLimits, Container, ModeSpec, ServiceSpec, compare_with_measured,
    configmap_entry_bytes, etcd_fill_models, etcd_growth_table, etcd_retained_bytes, infer_cpu_per_node,
    infer_model_memory, load_cluster_limits, parse_cpu, parse_memory, plan, plan_table, seed_specs,
)

ROOT = Path(__file__).resolve().parents[1]
SEED_YAML = ROOT / "params" / "seed-cluster.yaml"


@pytest.fixture(scope="module")
def seed_limits():
    return load_cluster_limits(SEED_YAML)


@pytest.fixture(scope="module")
def specs():
    return seed_specs()


# ---------------------------------------------------------------- quantities

@pytest.mark.parametrize("q, cores", [
    ("100m", 0.1), ("1", 1.0), ("10", 10.0), ("1.5", 1.5), ("250m", 0.25), (2, 2.0), (0.5, 0.5),
    ("1e3", 1000.0), ("0", 0.0), ("1k", 1000.0),
])
def test_parse_cpu(q, cores):
    assert parse_cpu(q) == cores


@pytest.mark.parametrize("q, n_bytes", [
    ("100Mi", 100 * 2**20), ("500Mi", 500 * 2**20), ("10Gi", 10 * 2**30), ("500M", 500_000_000),
    ("1", 1), ("1Ki", 1024), ("16G", 16 * 10**9), ("65Mi", 68_157_440), ("1Mi", 1_048_576),
    ("0.55Ti", 604_731_395_277),  # 0.55 * 2**40 = 604731395276.8, rounded up like Kubernetes
    ("1e3", 1000), (4096, 4096),
])
def test_parse_memory(q, n_bytes):
    assert parse_memory(q) == n_bytes


@pytest.mark.parametrize("bad", ["", "abc", "10 Gi", "10GB", "1.2.3", "-1", "Mi", "10Gib", None, True, "1x"])
def test_parse_cpu_rejects(bad):
    with pytest.raises(ParamError) as ei:
        parse_cpu(bad, "predictor.cpu")
    assert ei.value.name == "predictor.cpu"
    assert isinstance(ei.value, ValueError)
    assert repr(bad) in str(ei.value)


@pytest.mark.parametrize("bad", ["100m", "5u", "GB", "1 Gi", -5, "nan", float("inf")])
def test_parse_memory_rejects(bad):
    with pytest.raises(ParamError):
        parse_memory(bad)


# ------------------------------------------------------------- seed figures

def test_traditional_seed_totals_exact(seed_limits, specs):
    r = plan(seed_limits, specs["traditional"], models_wanted=352)
    assert r.isvcs == 352 and r.pods == 352
    assert r.reserved_cpu == 387.2
    assert r.reserved_memory_bytes == 211_200 * MiB
    assert r.reserved_memory_mib == 211_200.0
    assert r.sidecar_cpu == 352.0
    assert r.sidecar_memory_bytes == 176_000 * MiB
    # the seed's loose units: "387 CPU and 211 GB", "352 CPU and 176 GB"
    assert round(r.reserved_cpu) == 387
    assert round(r.reserved_memory_mib / 1000) == 211
    assert r.reserved_memory_gib == pytest.approx(206.25)
    assert r.reserved_memory_gb == pytest.approx(221.4592, abs=1e-4)
    assert r.sidecar_cpu_share == pytest.approx(352 / 387.2)
    assert r.sidecar_memory_share == pytest.approx(500 / 600)
    assert r.services == 352 * 4 and r.ips == 352 * 3


def test_mms_seed_totals_exact(seed_limits, specs):
    r = plan(seed_limits, specs["mms"])
    assert r.hosts == 6 and r.isvcs == 6 and r.pods == 6
    assert r.reserved_cpu == 66.0
    assert r.reserved_memory_bytes == 64_440 * MiB
    assert r.sidecar_cpu == 6.0
    assert r.sidecar_memory_bytes == 3_000 * MiB
    # the seed's "66 CPU and 63 GB": 63 is GiB here
    assert round(r.reserved_memory_gib) == 63
    assert r.reserved_memory_gb == pytest.approx(67.57023744)


def test_seed_binding_limits(seed_limits, specs):
    trad = plan(seed_limits, specs["traditional"])
    assert trad.binding_limit == "services"
    assert trad.max_models == 500  # ~2000 services / 4 per ISVC
    assert trad.per_limit["pods"] == 660
    assert trad.per_limit["ips"] == 682  # 2048 // 3
    assert trad.per_limit["memory"] == 5767  # floor(6 * 0.55Ti / 600Mi)
    assert trad.per_limit["cpu"] is None  # CPU per node not published
    assert min(v for v in trad.per_limit.values() if v is not None) >= 352  # seed's 352 is consistent

    mms = plan(seed_limits, specs["mms"])
    assert mms.binding_limit == "etcd"  # no compaction, quadratic growth
    per = {r.limit: r for r in mms.limits}
    assert per["pods"].status == "no_model_limit"
    assert per["trainedmodel_memory"].status == "unknown"
    assert per["configmap_size"].models_per_host == (1_048_576 - 12) // 157
    assert per["configmap_size"].max_models == 6 * ((1_048_576 - 12) // 157)
    expected = etcd_fill_models("65Mi", hosts=6, entry_bytes=157, revision_overhead_bytes=524)
    assert mms.max_models == expected
    assert 2000 < expected < 2600


def test_inferred_cpu_makes_352_bind(specs):
    inf = infer_cpu_per_node(352, specs["traditional"].isvc, nodes=6)
    assert inf.lower_exact == Fraction(352 * 11, 60)
    assert inf.upper_exact == Fraction(353 * 11, 60)
    assert inf.lower == pytest.approx(64.5333333)
    assert inf.upper == pytest.approx(64.7166667)
    assert inf.reproduces_exactly and inf.predicted_max == 352
    for cpu, expect in (("64.6", 352), (inf.lower_exact, 352), ("64.53", 351), ("64.72", 353)):
        lim = ClusterLimits(nodes=6, max_pods_per_node=110, cpu_per_node=cpu, memory_per_node="0.55Ti",
                            max_ips=2048, max_services=2000, etcd_bytes="65Mi")
        r = plan(lim, specs["traditional"])
        assert r.per_limit["cpu"] == expect
    lim = ClusterLimits(nodes=6, max_pods_per_node=110, cpu_per_node="64.6", memory_per_node="0.55Ti",
                        max_ips=2048, max_services=2000)
    r = plan(lim, specs["traditional"])
    assert r.binding_limit == "cpu" and r.max_models == 352 and r.reserved_cpu == 387.2


def test_infer_cpu_per_node_checks_other_limits(seed_limits, specs):
    inf = infer_cpu_per_node(352, specs["traditional"].isvc, 6, limits=seed_limits)
    assert inf.other_limits["services"] == 500 and inf.other_limits["pods"] == 660
    assert inf.cpu_binds_first is True
    assert infer_cpu_per_node(600, limits=seed_limits).cpu_binds_first is False  # services would bind at 500


def test_infer_cpu_per_node_per_node_packing():
    inf = infer_cpu_per_node(352, nodes=6, packing="per_node")
    assert (inf.lower, inf.upper) == (64.9, 66.0)
    assert inf.predicted_max == 354 and not inf.reproduces_exactly
    assert infer_cpu_per_node(354, nodes=6, packing="per_node").reproduces_exactly


def test_infer_model_memory():
    inf = infer_model_memory(10_000, 6, "10Gi")
    assert inf.per_host == 1667 and inf.predicted_models == 10_002
    assert inf.lower_mib == pytest.approx(10240 / 1668)
    assert inf.upper_mib == pytest.approx(10240 / 1667)
    mm = int(inf.upper_bytes)
    r = plan(ClusterLimits(), seed_specs(model_memory=mm)["mms"])
    assert r.per_limit["trainedmodel_memory"] == 10_002


# ------------------------------------------------------- binding-limit logic

def _one_pod_spec(**kw):
    return ServiceSpec("t", (Container("p", "500m", "1Gi"), Container("qp", "500m", "1Gi", sidecar=True)), **kw)


BASE = dict(nodes=10, max_pods_per_node=100, cpu_per_node="100", memory_per_node="200Gi", max_ips=10_000,
            max_services=10_000, etcd_bytes="1Gi")


@pytest.mark.parametrize("override, limit, expect", [
    (dict(max_pods_per_node=5), "pods", 50),
    (dict(max_ips=30), "ips", 10),            # 1 pod IP + 2 ClusterIPs per ISVC
    (dict(max_services=41), "services", 10),  # 4 Services per ISVC
    (dict(cpu_per_node="2.5"), "cpu", 25),    # 1 CPU per ISVC
    (dict(memory_per_node="3Gi"), "memory", 15),  # 2Gi per ISVC
    (dict(etcd_bytes="1Mi"), "etcd", 16),     # 64 KiB per ISVC
])
def test_traditional_each_limit_binds(override, limit, expect):
    lim = ClusterLimits(**{**BASE, **override})
    r = plan(lim, ModeSpec("traditional", _one_pod_spec(etcd_bytes="64Ki")))
    assert r.binding_limit == limit
    assert r.binding_limits == (limit,)
    assert r.max_models == expect
    table = r.limits_table
    assert table.loc[table.binds, "limit"].tolist() == [limit]
    others = table[~table.binds & table.max_models.notna()]
    assert (others.max_models > expect).all()


def test_ties_all_bind():
    lim = ClusterLimits(nodes=1, max_pods_per_node=10, max_services=40)
    r = plan(lim, ModeSpec("traditional", _one_pod_spec()))
    assert r.max_models == 10 and set(r.binding_limits) == {"pods", "services"}
    assert r.binding_limit == "pods"


def test_per_node_packing():
    lim = ClusterLimits(nodes=3, cpu_per_node="2.5", packing="per_node")
    spec = ServiceSpec("t", (Container("p", "1", "1Mi"), Container("q", "1", "1Mi", sidecar=True)))
    assert plan(lim, ModeSpec("traditional", spec)).per_limit["cpu"] == 3   # 3 nodes x floor(2.5 / 2)
    lim2 = ClusterLimits(nodes=3, cpu_per_node="2.5")
    assert plan(lim2, ModeSpec("traditional", spec)).per_limit["cpu"] == 3  # floor(7.5 / 2)
    lim3 = ClusterLimits(nodes=3, cpu_per_node="3.5", packing="per_node")
    assert plan(lim3, ModeSpec("traditional", spec)).per_limit["cpu"] == 3  # aggregate would say 5


def test_ip_accounting_without_service_ips():
    lim = ClusterLimits(max_ips=30, count_service_ips=False)
    r = plan(lim, ModeSpec("traditional", _one_pod_spec()))
    assert r.per_limit["ips"] == 30


def _mms(**kw):
    host = ServiceSpec("h", (Container("p", "10", "10Gi"), Container("qp", "1", "500Mi", sidecar=True)))
    return ModeSpec("mms", host, **{"hosts": 6, **kw})


@pytest.mark.parametrize("limits_kw, mode_kw, limit, expect", [
    (dict(etcd_bytes="1Gi", etcd_compaction=True), dict(model_memory="1Gi"), "trainedmodel_memory", 60),
    (dict(etcd_bytes="1Gi", etcd_compaction=True, configmap_max_bytes=1011),
     dict(model_memory="1Mi", configmap_entry_bytes=100), "configmap_size", 54),
    (dict(etcd_bytes=6 * (100 * 5 * 6 // 2)), dict(model_memory="1Mi", configmap_entry_bytes=100,
                                                   configmap_overhead_bytes=0, etcd_revision_overhead_bytes=0),
     "etcd", 30),
    (dict(nodes=2, max_pods_per_node=2, etcd_bytes="1Gi", etcd_compaction=True),
     dict(model_memory="1Gi"), "pods", 40),
])
def test_mms_each_limit_binds(limits_kw, mode_kw, limit, expect):
    r = plan(ClusterLimits(**limits_kw), _mms(**mode_kw))
    assert r.binding_limit == limit
    assert r.max_models == expect


def test_mms_hosts_derived_from_models_wanted():
    r = plan(ClusterLimits(), _mms(hosts=None, model_memory="1Gi"), models_wanted=25)
    assert r.hosts == 3 and r.max_models == 30 and r.fits
    assert r.reserved_cpu == 33.0


def test_models_wanted_fits_flag(seed_limits, specs):
    assert plan(seed_limits, specs["traditional"], 400).fits is True
    assert plan(seed_limits, specs["traditional"], 501).fits is False


# --------------------------------------------------------------- etcd model

def test_configmap_entry_bytes():
    entry = ('{"modelName":"simple-string-00000","modelSpec":{"storageUri":'
             '"gs://kfserving-examples/models/triton/simple_string","framework":"tensorflow","memory":"1Mi"}}')
    assert configmap_entry_bytes() == len(entry) + 1 == 157
    assert configmap_entry_bytes(model_name="m") == 157 - len("simple-string-00000") + 1


def test_etcd_retained_hand_calculation():
    # H=2, e=10, o=1, 5 models round-robin: host A revisions of 1,2,3 entries, host B 1,2.
    kw = dict(hosts=2, entry_bytes=10, revision_overhead_bytes=1)
    assert etcd_retained_bytes(5, compaction=False, **kw) == (11 + 21 + 31) + (11 + 21)
    assert etcd_retained_bytes(5, compaction=True, **kw) == 31 + 21
    # compaction every 2 writes: last at write 4; write 5 superseded host A's 2-entry revision.
    assert etcd_retained_bytes(5, compaction=2, **kw) == 31 + 21 + 21
    assert etcd_retained_bytes(4, compaction=2, **kw) == 21 + 21
    assert etcd_retained_bytes(0, **kw) == 0
    assert etcd_retained_bytes(3, base_bytes=7, **kw) == 7 + 11 + 21 + 11


def test_etcd_fill_hand_calculation():
    # 65 MiB = 68,157,440 B; 100 B/entry, 1 host, no overhead, no compaction:
    # 100 * n(n+1)/2 <= 68,157,440 -> n(n+1) <= 1,363,148.8 -> n = 1167 (1167*1168 = 1,363,056).
    assert etcd_fill_models("65Mi", hosts=1, entry_bytes=100, revision_overhead_bytes=0) == 1167
    # with compaction after every write: 100 n <= 68,157,440 -> 681,574
    assert etcd_fill_models("65Mi", hosts=1, entry_bytes=100, revision_overhead_bytes=0, compaction=True) == 681_574
    # 2 hosts, o = 50: f(n) = 100 n(n+1)/2 + 50 n = 50 n (n+2); B(N) = sum over hosts.
    n = etcd_fill_models(1_000_000, hosts=2, entry_bytes=100, revision_overhead_bytes=50)
    kw = dict(hosts=2, entry_bytes=100, revision_overhead_bytes=50)
    assert etcd_retained_bytes(n, **kw) <= 1_000_000 < etcd_retained_bytes(n + 1, **kw)
    assert n == 198  # 2 f(99) = 999,900 <= 1e6; N=199: f(100) + f(99) = 510,000 + 499,950 > 1e6


def test_etcd_fill_periodic_compaction_matches_brute_force():
    kw = dict(hosts=3, entry_bytes=20, revision_overhead_bytes=5)
    cap = 5_000
    for w in (1, 4, 7):
        n = etcd_fill_models(cap, compaction=w, **kw)
        assert all(etcd_retained_bytes(i, compaction=w, **kw) <= cap for i in range(n + 1))
        assert etcd_retained_bytes(n + 1, compaction=w, **kw) > cap
    assert etcd_fill_models(cap, compaction=1, **kw) == etcd_fill_models(cap, compaction=True, **kw)
    never = etcd_fill_models(cap, compaction=False, **kw)
    assert never < etcd_fill_models(cap, compaction=7, **kw) < etcd_fill_models(cap, compaction=True, **kw)


def test_etcd_growth_table_quadratic():
    df = etcd_growth_table([100, 200], hosts=1, entry_bytes=100, revision_overhead_bytes=0)
    never = df[df.compaction == "False"].set_index("models").retained_bytes
    assert never[100] == 100 * 100 * 101 // 2 and never[200] == 100 * 200 * 201 // 2
    assert list(df.columns) == ["models", "compaction", "retained_bytes", "retained_MiB"]


# --------------------------------------------------------- params / tables

def test_load_seed_yaml(seed_limits):
    assert seed_limits.nodes == 6 and seed_limits.max_pods_per_node == 110 and seed_limits.total_pods == 660
    assert seed_limits.max_ips == 2048 and seed_limits.max_services == 2000
    assert seed_limits.memory_per_node_bytes == parse_memory("0.55Ti")
    assert seed_limits.etcd_bytes_int == 65 * MiB
    assert seed_limits.configmap_max_bytes_int == MiB
    assert seed_limits.cpu_per_node is None and seed_limits.etcd_compaction is False


def test_yaml_matches_seed_dataset(seed_limits):
    from mmslib.seed import seed_cluster_limits

    pub = seed_cluster_limits()
    for k in ("nodes", "max_pods_per_node", "max_pods", "max_ips", "max_services"):
        assert getattr(seed_limits, k) == pub[k]
    assert seed_limits.memory_per_node_bytes == parse_memory(pub["memory_per_node"])
    assert seed_limits.etcd_bytes_int == parse_memory(pub["etcd_bytes"])


@pytest.mark.parametrize("data, name", [
    ({"nodes": 0}, "nodes"), ({"nodes": -1}, "nodes"), ({"max_ips": 2.5}, "max_ips"),
    ({"memory_per_node": "lots"}, "memory_per_node"), ({"cpu_per_node": "0"}, "cpu_per_node"),
    ({"packing": "tight"}, "packing"), ({"bogus": 1}, "bogus"), ({"etcd_compaction": 0}, "etcd_compaction"),
    ({"baseline_pods": -3}, "baseline_pods"),
])
def test_load_cluster_limits_rejects(data, name):
    with pytest.raises(ParamError) as ei:
        load_cluster_limits(data)
    assert ei.value.name == name


def test_load_cluster_limits_missing_file(tmp_path):
    with pytest.raises(ParamError):
        load_cluster_limits(tmp_path / "nope.yaml")


def test_spec_validation():
    with pytest.raises(ParamError):
        ServiceSpec("x", ())
    with pytest.raises(ParamError):
        ServiceSpec("x", (Container("p", "1", "1Gi"),), pods=0)
    with pytest.raises(ParamError):
        Container("p", "one", "1Gi")
    with pytest.raises(ParamError):
        ModeSpec("serverless", _one_pod_spec())
    with pytest.raises(ParamError):
        ModeSpec("traditional", _one_pod_spec(), hosts=3)
    with pytest.raises(ParamError):
        ModeSpec("mms", _one_pod_spec(), hosts=0)
    with pytest.raises(ParamError):
        plan(ClusterLimits(), ModeSpec("traditional", _one_pod_spec()), models_wanted=-1)


def test_plan_table(seed_limits):
    df = plan_table(seed_limits)
    assert list(df.columns) == ["mode", "limit", "capacity", "capacity_unit", "per_isvc", "max_isvcs",
                                "models_per_host", "max_models", "status", "binds", "note"]
    assert set(df["mode"]) == {"traditional", "mms"}
    assert df.binds.dtype == bool
    binds = df[df.binds].set_index("mode").limit
    assert binds["traditional"] == "services" and binds["mms"] == "etcd"
    assert df.groupby("mode").binds.sum().tolist() == [1, 1]
    assert str(df.max_models.dtype) == "Int64"


def test_compare_with_measured(specs):
    lim = ClusterLimits(nodes=6, max_pods_per_node=110, cpu_per_node="64.6", memory_per_node="0.55Ti",
                        max_ips=2048, max_services=2000)
    r = plan(lim, specs["traditional"])
    df = compare_with_measured(r, 352, measured_reserved_cpu=387, measured_reserved_memory="211G")
    d = df.set_index("quantity")
    assert d.loc["max_models", "difference"] == 0
    assert d.loc["reserved_cpu", "predicted"] == pytest.approx(387.2)
    assert d.loc["reserved_cpu", "difference"] == pytest.approx(0.2)
    assert d.loc["reserved_memory", "predicted"] == 211_200.0
    assert d.loc["reserved_memory", "measured"] == pytest.approx(211e9 / MiB)
    assert list(df.columns) == ["quantity", "unit", "predicted", "measured", "difference", "relative_difference"]

    m = plan(lim, specs["mms"])
    dm = compare_with_measured(m, 10_000, measured_reserved_cpu=66, measured_reserved_memory="63Gi",
                               measured_isvcs=6).set_index("quantity")
    assert dm.loc["reserved_cpu", "difference"] == 0
    assert dm.loc["reserved_memory", "predicted"] == 64_440.0
    assert dm.loc["isvcs", "predicted"] == 6
    with pytest.raises(ParamError):
        compare_with_measured(m, 0)


def test_memory_constants():
    assert (MiB, GiB, GB) == (2**20, 2**30, 10**9)
    assert isinstance(plan_table(ClusterLimits(max_pods=10)), pd.DataFrame)
