"""Cold starts on real servers: the lazy LRU repository, bad input, the notebook end to end.

Every server is a real process on 127.0.0.1; traffic is real (k6 for section 2,
the asyncio replayer for section 3). Sizes are small: a few models, a few seconds.
"""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import requests

from mmslib import coldstart, params, v2
from mmslib.backends.local import LocalBackend
from mmslib.errors import DeployError, ParamError
from mmslib.rundir import RunDir
from mmslib.runtimes import get_runtime
from mmslib.runtimes.kserve_server import COLD_HEADER, STATS_PATH
from mmslib.workloads import get_workload

from conftest import papermill


GRPC_CLIENT = """
import sys, grpc
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
call = grpc.insecure_channel(sys.argv[1]).unary_unary(
    "/inference.GRPCInferenceService/ModelInfer", request_serializer=pb.ModelInferRequest.SerializeToString,
    response_deserializer=pb.ModelInferResponse.FromString)
for m in sys.argv[2:]:
    r = pb.ModelInferRequest(model_name=m)
    for name in ("INPUT0", "INPUT1"):
        t = r.inputs.add(name=name, datatype="BYTES", shape=[1, 16])
        t.contents.bytes_contents.extend([b"3"] * 16)
    resp, c = call.with_call(r, timeout=60)
    print(f"{m}:{dict(c.trailing_metadata()).get('x-mms-cold-start')}:{resp.outputs[0].name}")
"""


def _infer(url: str, model: str, body: dict):
    r = requests.post(f"{url}/v2/models/{model}/infer", json=body, timeout=60)
    return r.status_code, r.headers.get(COLD_HEADER), r


def test_lazy_host_loads_on_first_request_and_evicts_least_recently_used(tmp_path, no_leftovers):
    wl = get_workload("simple_string")
    sample = wl.make_sample(np.random.default_rng(0))
    body = v2.request_body(sample.inputs)
    backend = LocalBackend(get_runtime("kserve"), wl, tmp_path, lazy_capacity=2)
    try:
        backend.start_hosts(1)
        backend.register_lazy(["A", "B", "C", "D"])
        url = backend.server().rest_url
        seen = []
        for m in ["A", "B", "C", "A"]:          # capacity 2: C evicts A, so A is cold again
            status, cold, r = _infer(url, m, body)
            assert status == 200 and wl.check(v2.decode_outputs(r.json()), sample.expected)
            seen.append((m, cold))
        assert seen == [("A", "1"), ("B", "1"), ("C", "1"), ("A", "1")]
        st = requests.get(url + STATS_PATH, timeout=10).json()
        assert st["evicted_recent"] == ["A", "B"]     # C evicted A; A's reload evicted B
        assert st["loaded"] == ["C", "A"]             # least recently used first
        # a hit refreshes recency: A (hit) then D evicts C, not A
        assert _infer(url, "A", body)[1] == "0"
        assert _infer(url, "D", body)[1] == "1"
        st = requests.get(url + STATS_PATH, timeout=10).json()
        assert st["loaded"] == ["A", "D"] and st["evicted_recent"][-1] == "C"
        # an unknown model is the server's 404, unmarked and uncounted
        status, cold, _ = _infer(url, "nope", body)
        assert status == 404 and cold is None
        # client and server agree: 5 cold starts, 1 hit, 6 requests; Prometheus says the same
        assert (st["cold_starts"], st["hits"], st["requests"], st["loads"]) == (5, 1, 6, 5)
        metrics = requests.get(url + "/metrics", timeout=10).text
        assert 'mms_lazy_requests_total{result="cold"} 5.0' in metrics
        assert 'mms_lazy_requests_total{result="hit"} 1.0' in metrics
        assert "mms_lazy_evictions_total 3.0" in metrics
        # the repository API keeps the bound too: loading C evicts A (least recently used)
        assert requests.post(url + "/v2/repository/models/C/load", json={}, timeout=30).status_code == 200
        st = requests.get(url + STATS_PATH, timeout=10).json()
        assert st["loaded"] == ["D", "C"] and st["cold_starts"] == 5
        # gRPC: the same repository, the flag in the trailing metadata (a subprocess: kserve's
        # generated protobuf modules clash with tritonclient's in one process)
        out = subprocess.run([sys.executable, "-c", GRPC_CLIENT, f"127.0.0.1:{backend.server().grpc_port}", "C", "A"],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        assert out.stdout.split() == ["C:0:OUTPUT0", "A:1:OUTPUT0"]
        st = requests.get(url + STATS_PATH, timeout=10).json()
        assert (st["cold_starts"], st["hits"], st["loaded"]) == (6, 2, ["C", "A"])
    finally:
        backend.close()


def test_lazy_host_under_a_burst_keeps_its_bound_and_its_counts(tmp_path, no_leftovers):
    """300 requests in half a second over 8 models, capacity 2: every request is
    answered (no deadlock between loads waiting for room and requests waiting for
    loads), correctly, and client and server count the same cold starts."""
    from mmslib import simulate
    wl = get_workload("simple_string")
    sample = wl.make_sample(np.random.default_rng(1))
    names = [f"b{i}" for i in range(8)]
    backend = LocalBackend(get_runtime("kserve"), wl, tmp_path, lazy_capacity=2)
    try:
        backend.start_hosts(1)
        backend.register_lazy(names)
        url = backend.server().rest_url
        sched = simulate.arrival_schedule(600.0, 0.5, 8, 0.0, seed=3, models=names)
        recs = coldstart.replay([f"{url}/v2/models/{m}/infer" for m in names], sched,
                                v2.request_body(sample.inputs), lambda out: wl.check(out, sample.expected),
                                timeout_s=60)
        st = requests.get(url + STATS_PATH, timeout=10).json()
    finally:
        backend.close()
    assert len(recs) == len(sched) and (recs["cold"] >= 0).all() and recs["ok"].all()
    assert int((recs["cold"] == 1).sum()) == st["cold_starts"] and len(recs) == st["requests"]
    assert len(st["loaded"]) == 2 and st["loads"] - st["evictions"] == 2
    assert st["cold_starts"] >= st["loads"] > 2


def test_lazy_mode_refused_where_it_cannot_work(tmp_path):
    for rt in ("triton", "mlserver"):
        with pytest.raises(ParamError, match="no lazy loading") as e:
            params.coldstart(runtime=rt)
        assert e.value.name == "mms_engine"
    with pytest.raises(ParamError, match="coldstart"):
        params.performance(mms_engine="lazy")
    with pytest.raises(DeployError, match="no lazy loading"):
        LocalBackend(get_runtime("mlserver"), get_workload("simple_string"), tmp_path, lazy_capacity=2)


@pytest.mark.parametrize("raw,name", [
    (dict(capacity=[0]), "capacity"), (dict(capacity=[41]), "capacity"), (dict(capacity=["0%"]), "capacity"),
    (dict(capacity=["150%"]), "capacity"), (dict(capacity=["512Ki"]), "capacity"),   # < one 1 MiB model
    (dict(models=5, capacity=[6]), "capacity"), (dict(cycles=0), "cycles"), (dict(churn_per_s=-1), "churn_per_s"),
    (dict(sections=["lazy", "bogus"]), "sections"), (dict(runtimes=["kserve", "kserve"]), "runtimes"),
    (dict(mms_engine="trainedmodel"), "mms_engine"), (dict(backend="kserve"), "backend"),
    (dict(zipf_alpha=[-1]), "zipf_alpha"), (dict(warmup_s=30), "warmup_s"),
])
def test_bad_input_is_one_clear_error(raw, name):
    with pytest.raises(ParamError) as e:
        params.coldstart(**raw)
    assert e.value.name == name


def test_default_cycles_are_the_workloads_declaration(monkeypatch):
    """``cycles`` None: the workload declares its default (no branch on its name in params)."""
    assert params.coldstart(workload="simple_string").cycles_count() == 1000
    assert params.coldstart(workload="bert").cycles_count() == 100
    assert params.coldstart(workload="bert", cycles=7).cycles_count() == 7
    import dataclasses
    from mmslib.workloads import simple_string
    monkeypatch.setattr(simple_string, "WORKLOAD", dataclasses.replace(simple_string.WORKLOAD, load_cycles_default=3))
    assert params.coldstart(workload="simple_string").cycles_count() == 3


def test_capacity_as_count_percentage_or_memory():
    p = params.coldstart(models=20, capacity="2, 25%, 8Mi, 100%")   # simple_string declares 1 MiB
    assert p.capacity_counts() == [2, 5, 8, 20]
    assert params.coldstart(mms_engine="trainedmodel", sections=["load_unload"]).mms_engine == "trainedmodel"


SMALL = dict(runtimes="[kserve]", cycles=8, resident_models=2, churn_models=2, churn_per_s=5, qps=20,
             duration_s=3, warmup_s=1, repeats=1, models=6, capacity="[2, 6]", zipf_alpha="[1.0]",
             cluster_models="[600]", cluster_qps=50, cluster_duration_s=20, slo_ms=50)


def test_notebook_end_to_end_small_then_resume(tmp_path, no_leftovers):
    out = tmp_path / "run"
    args = []
    for k, v in {**SMALL, "output_dir": out}.items():
        args += ["-p", k, str(v)]
    res = papermill("coldstart.ipynb", tmp_path / "out.ipynb", *args, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]

    p = params.coldstart(**{k: v for k, v in SMALL.items()}, output_dir=str(out))
    rd = RunDir(out, "coldstart", p.to_dict(), p.key(), resume=True)
    r = coldstart.load(rd, p)
    # section 1: every cycle loaded and unloaded, PSS recorded, a verdict
    cs = r.cycle_summary().set_index("runtime")
    assert cs.loc["kserve", "load_n"] == 8 and cs.loc["kserve", "unload_n"] == 8
    assert cs.loc["kserve", "load_failed"] == 0 and cs.loc["kserve", "pss_before_mib"] > 10
    assert set(r.leak_audit()["verdict"]) <= {"flat", "grows"}
    # section 2: both conditions ran; churn loaded models only in the churn run
    ops = r.churn_ops
    assert set(ops["mode"]) == {"churn"} and ops.loc[ops["op"] == "load", "ok"].all()
    assert ops["op"].eq("load").sum() >= 5
    s = r.churn_summary().set_index("mode")
    assert s.loc["no_churn", "n"] == 60 and s.loc["churn", "n"] == 60     # 20 QPS x 3 s measured
    assert s.loc["no_churn", "errors"] == 0 and s.loc["churn", "errors"] == 0
    assert r.churn_compare()["p99_beyond_spread"].iloc[0] == "unknown (1 repeat)"
    # section 3: client and server counts agree exactly, in every cell
    lz = r.lazy_summary().set_index("capacity")
    assert lz["counts_agree"].all() and (lz["no_header"] == 0).all() and (lz["errors"] == 0).all()
    assert (lz["cold_starts_client"] == lz["cold_starts_server"]).all()
    # with room for every model, each model is loaded at most once and nothing is evicted
    assert lz.loc[6, "evictions"] == 0 and lz.loc[6, "loads"] <= 6
    assert lz.loc[2, "hit_rate"] < lz.loc[6, "hit_rate"]
    # the simulator was validated on the other cell
    v = r.validation()
    assert len(v) == 1 and v["name"].iloc[0] == "a1_c2"
    assert 0 <= v["hit_rate_simulated"].iloc[0] <= 1
    # the executed notebook glued its tables
    nb = json.loads((tmp_path / "out.ipynb").read_text())
    glued = {k for c in nb["cells"] for o in c.get("outputs", [])
             for k in o.get("metadata", {}).get("scrapbook", {}).values() if isinstance(k, str)}
    assert {"lazy_summary", "simulator_validation", "cluster"} <= glued
    # ... and wrote section 4's tables into the run directory, where the report reads them
    assert rd.load("simulator_validation")["name"].tolist() == ["a1_c2"]
    assert rd.load("cluster")["models"].tolist() == [600]

    # resume: nothing is measured again (no server starts), the records are the same
    before = {f: f.stat().st_mtime_ns for f in out.rglob("*.parquet")}
    r2 = coldstart.run(params.coldstart(**SMALL, output_dir=str(out), resume=True), progress=False)
    assert {f: f.stat().st_mtime_ns for f in out.rglob("*.parquet")} == before
    pd.testing.assert_frame_equal(r2.lazy_summary(), r.lazy_summary())
