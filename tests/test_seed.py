"""Tests for mmslib.seed: the seed's published results as data."""

from pathlib import Path

import pandas as pd
import pytest

from mmslib import seed

# The seed's markdown, where a checkout has it beside the repository: an extra check only (the seed's
# figures' one home is mmslib/seed.py; nothing else here needs anything outside the repository).
SEED_MD = Path(__file__).resolve().parent.parent.parent / "shared" / "seed" / "BENCHMARK.md"
NUMERIC = ["client_qps", "qps_per_isvc", "qps_per_model", "mean", "p50", "p90", "p95", "p99", "max"]
STATS = ["mean", "p50", "p90", "p95", "p99", "max"]


@pytest.mark.parametrize("fn, workload, mode, rows", [
    (seed.simple_string_traditional, "simple_string", "traditional", 11),
    (seed.simple_string_mms, "simple_string", "mms", 7),
    (seed.bert_traditional, "bert", "traditional", 8),
    (seed.bert_mms, "bert", "mms", 5),
])
def test_tables_shape(fn, workload, mode, rows):
    df = fn()
    assert len(df) == rows
    assert list(df.columns) == seed.LATENCY_COLUMNS
    assert set(df.workload) == {workload} and set(df["mode"]) == {mode} and set(df.source) == {"seed"}
    assert not df[NUMERIC].isna().any().any()
    assert all(df[c].dtype == "float64" for c in NUMERIC)
    assert df.client_qps.is_monotonic_increasing


def test_seed_latency_all_and_filters():
    df = seed.seed_latency()
    assert len(df) == 11 + 7 + 8 + 5
    assert df.groupby(["workload", "mode"]).size().to_dict() == {
        ("bert", "mms"): 5, ("bert", "traditional"): 8, ("simple_string", "mms"): 7,
        ("simple_string", "traditional"): 11}
    assert len(seed.seed_latency("bert")) == 13
    assert len(seed.seed_latency(mode="mms")) == 12
    assert len(seed.seed_latency("simple_string", "traditional")) == 11
    with pytest.raises(ValueError):
        seed.seed_latency("resnet")


def _row(df, qps):
    r = df[df.client_qps == qps]
    assert len(r) == 1
    return r.iloc[0]


def test_spot_values():
    st = seed.simple_string_traditional()
    r = _row(st, 25)
    assert (r.qps_per_isvc, r.qps_per_model) == (5.0, 5.0)
    assert [r[c] for c in STATS] == [3.763, 3.669, 4.089, 4.222, 4.511, 43.877]
    assert _row(st, 1500)["max"] == 1039.0
    assert _row(st, 2500)[["mean", "p99"]].tolist() == [11.796, 217.911]

    sm = seed.simple_string_mms()
    r = _row(sm, 500)
    assert (r.qps_per_isvc, r.qps_per_model) == (500.0, 100.0)
    assert [r[c] for c in STATS] == [260.202, 2.846, 1298.0, 2025.0, 2241.0, 2475.0]

    bt = seed.bert_traditional()
    r = _row(bt, 200)
    assert r.qps_per_isvc == 40.0 and r["max"] == 1616.0  # "1.616s"
    assert _row(bt, 5)["mean"] == 33.845

    bm = seed.bert_mms()
    assert _row(bm, 10)["max"] == 266.965  # "266.965m" typo
    r = _row(bm, 40)
    assert (r.qps_per_isvc, r.qps_per_model, r.p95) == (40.0, 8.0, 87.01)


def test_units_are_ms():
    df = seed.seed_latency()
    # all latencies in ms: simple_string ~3 ms, bert ~30 ms medians; nothing in seconds left
    assert df[STATS].min().min() > 2.0
    assert df[STATS].max().max() < 3000.0
    assert (df.groupby("workload").p50.median() > 0).all()
    assert df[df.workload == "bert"].p50.between(20, 40).all()
    assert df[df.workload == "simple_string"].p50.between(2, 4).all()
    assert (df.p50 <= df.p90).all() and (df.p90 <= df.p95).all() and (df.p95 <= df.p99).all()
    assert (df.p99 <= df["max"]).all()


def test_qps_relations():
    df = seed.seed_latency()
    trad = df[df["mode"] == "traditional"]
    assert (trad.client_qps == 5 * trad.qps_per_isvc).all()
    assert (trad.qps_per_isvc == trad.qps_per_model).all()
    mms = df[df["mode"] == "mms"]
    assert (mms.client_qps == mms.qps_per_isvc).all()
    assert (mms.client_qps == 5 * mms.qps_per_model).all()


def test_notes_record_cleaning():
    text = "\n".join(seed.seed_notes())
    assert "266.965m" in text and "1.616s" in text
    assert "simple_string/traditional" in text and "no unit" in text
    assert seed.seed_notes() is not seed.notes


def test_functions_return_copies():
    a = seed.bert_mms()
    a.loc[0, "mean"] = -1.0
    assert seed.bert_mms().loc[0, "mean"] == 30.978


@pytest.mark.skipif(not SEED_MD.exists(), reason="../shared/seed/BENCHMARK.md not beside this checkout")
def test_transcription_matches_seed_markdown():
    assert seed.check_against_markdown(SEED_MD) == []


def test_check_against_markdown_detects_change(tmp_path):
    fake = tmp_path / "b.md"
    fake.write_text("\n".join(raw.replace("43.877", "43.878") for raw in seed.RAW_TABLES.values()))
    missing = seed.check_against_markdown(fake)
    assert len(missing) == 1 and "43.878" not in missing[0] and "43.877" in missing[0]


def test_stress_summary():
    df = seed.seed_stress_summary()
    v = df.set_index(["mode", "quantity"]).value
    assert v["traditional", "isvcs"] == 352 and v["mms", "isvcs"] == 6
    assert v["mms", "models"] == 10_000
    assert v["traditional", "cpu_total"] == 387 and v["traditional", "memory_total"] == 211
    assert v["traditional", "queue_proxy_cpu"] == 352 and v["traditional", "queue_proxy_memory"] == 176
    assert v["mms", "cpu_total"] == 66 and v["mms", "memory_total"] == 63
    assert v["mms", "queue_proxy_cpu"] == 6 and v["mms", "queue_proxy_memory"] == 3
    assert v["mms", "more_models_pct"] == 2800
    a = df.set_index(["mode", "quantity"]).approximate
    assert a["mms", "models"] and not a["traditional", "isvcs"]
    assert not df.value.isna().any() and set(df.source) == {"seed"}


def test_stress_summary_consistent_with_planner():
    from mmslib.planner import MiB, ClusterLimits, plan, seed_specs

    s = seed.seed_stress_summary().set_index(["mode", "quantity"]).value
    specs = seed_specs()
    t = plan(ClusterLimits(), specs["traditional"], models_wanted=int(s["traditional", "isvcs"]))
    assert round(t.reserved_cpu) == s["traditional", "cpu_total"]
    assert round(t.reserved_memory_bytes / MiB / 1000) == s["traditional", "memory_total"]
    assert t.sidecar_cpu == s["traditional", "queue_proxy_cpu"]
    m = plan(ClusterLimits(), specs["mms"], models_wanted=1)
    assert m.reserved_cpu == s["mms", "cpu_total"]
    assert round(m.reserved_memory_gib) == s["mms", "memory_total"]
    assert round(m.sidecar_memory_bytes / 2**30) == s["mms", "queue_proxy_memory"]


def test_saturation():
    df = seed.seed_saturation()
    assert len(df) == 4
    q = df.set_index(["workload", "mode"]).client_qps
    assert q["simple_string", "traditional"] == 2500 and q["simple_string", "mms"] == 500
    assert q["bert", "traditional"] == 200 and q["bert", "mms"] == 40
    b = df.set_index(["workload", "mode"]).behaviour
    assert b["simple_string", "mms"] == "starts_scaling_at"
    assert b["bert", "mms"] == "no_scaling_up_to"
    # the tables stop at the saturation rates
    lat = seed.seed_latency()
    top = lat.groupby(["workload", "mode"]).client_qps.max()
    for (w, m), rate in q.items():
        assert top[w, m] == rate


def test_environment():
    env = seed.seed_environment()
    assert env["kfserving"] == "v0.5.1" and env["knative"] == "v0.17.0" and env["istio"] == "v1.7.x"
    assert env["model_server"] == "Triton"
    st = env["stress_test"]
    assert st["model"]["size_bytes"] == 700 and st["model"]["framework"] == "tensorflow"
    assert st["model"]["name"] == "simple_string"
    assert st["queue_proxy"] == {"cpu": "1", "memory": "500Mi"}
    assert st["traditional_predictor"] == {"cpu": "100m", "memory": "100Mi"}
    assert st["mms_predictor"] == {"cpu": "10", "memory": "10Gi"}
    assert env["performance_test"]["simple_string"]["qps"] == [5, 10, 20, 30, 40, 50, 100]
    env["kfserving"] = "changed"
    assert seed.seed_environment()["kfserving"] == "v0.5.1"


def test_cluster_limits_published():
    c = seed.seed_cluster_limits()
    assert c["max_pods"] == c["max_pods_per_node"] * c["nodes"] == 660
    assert (c["max_ips"], c["max_services"], c["etcd_bytes"], c["memory_per_node"]) == (2048, 2000, "65Mi", "0.55Ti")
    assert isinstance(seed.seed_latency(), pd.DataFrame)
