"""Load generator: real k6 against a real local KServe ModelServer."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from mmslib import k6proc, loadgen
from mmslib.backends.local import serve
from mmslib.errors import DependencyError, MmsError, ParamError
from mmslib.loadgen import (RECORD_COLUMNS, Target, build_script, k6_binary, parse_k6_csv,
                            run_level, target_sequence, traffic_weights)
from mmslib.v2 import request_body

ROOT = Path(__file__).resolve().parents[1]
MODELS = ["m0", "m1", "m2", "m3"]
pytestmark = pytest.mark.timeout(180)  # a hung k6 or server fails the test, not the session


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, http_port, grpc_port, sample):
        self.http_port, self.grpc_port, self.sample = http_port, grpc_port, sample
        self.body = request_body(sample.inputs)

    def rest(self, model, **kw):
        kw.setdefault("expect", self.sample.expected)
        return Target(f"http://127.0.0.1:{self.http_port}/v2/models/{model}/infer", model, self.body, **kw)

    def grpc(self, model, **kw):
        kw.setdefault("expect", self.sample.expected)
        return Target(f"127.0.0.1:{self.grpc_port}", model, self.body, protocol="grpc", **kw)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One KServe ModelServer (simple_string m0..m3) on free loopback ports; always stopped."""
    with serve("simple_string", MODELS, tmp_path_factory.mktemp("loadgen-server")) as backend:
        srv = backend.server()
        yield Server(srv.http_port, srv.grpc_port, backend.workload.make_sample(np.random.default_rng(0)))


def _metric(result, name):
    return result.summary["metrics"][name]


def _check_records(r, qps, n_models_hit, metric):
    rec = r.records
    assert list(rec.columns) == RECORD_COLUMNS
    assert rec["t_unix"].dtype == np.float64 and rec["latency_ms"].dtype == np.float64
    assert rec["status"].dtype == np.int64 and rec["ok"].dtype == bool and rec["warmup"].dtype == bool
    assert all(isinstance(x, str) for x in rec["model"]) and all(isinstance(x, str) for x in rec["endpoint"])
    # open loop at the target rate: every scheduled iteration ran, one request each
    assert r.dropped_iterations == 0
    assert len(rec) == r.iterations == round(qps * (r.warmup_s + r.duration_s))
    assert abs(r.achieved_qps - qps) <= 0.03 * qps
    # records agree with k6's own summary
    m = _metric(r, metric)
    assert len(rec) == m["count"]
    if metric == "http_req_duration":  # REST: duration plus the wait for a connection (blocked)
        b = _metric(r, "http_req_blocked")
        assert b["count"] == m["count"] and b["max"] > 0
        assert rec["latency_ms"].mean() == pytest.approx(m["avg"] + b["avg"], rel=1e-6)
        assert m["max"] <= rec["latency_ms"].max() <= m["max"] + b["max"] + 1e-9
        assert m["min"] <= rec["latency_ms"].min() <= m["min"] + b["max"] + 1e-9
    else:
        assert rec["latency_ms"].mean() == pytest.approx(m["avg"], rel=1e-6)
        assert rec["latency_ms"].max() == pytest.approx(m["max"], rel=1e-9)
        assert rec["latency_ms"].min() == pytest.approx(m["min"], rel=1e-9)
    assert int(rec["ok"].sum()) == _metric(r, "checks")["passes"]
    # warm-up rows: the first warmup_s seconds of the schedule, kept and marked
    assert int(rec["warmup"].sum()) == round(qps * r.warmup_s)
    t = rec["t_unix"].to_numpy()
    assert (np.diff(t) >= 0).all()
    assert t[-1] - t[0] == pytest.approx(r.warmup_s + r.duration_s - 1 / qps, abs=0.5)
    assert rec.loc[rec["warmup"], "t_unix"].max() < rec.loc[~rec["warmup"], "t_unix"].min()
    assert abs(time.time() - t[-1]) < 120
    assert rec["model"].nunique() == n_models_hit


# --------------------------------------------------------------------------- no k6 needed

def test_traffic_weights():
    u = traffic_weights(7)
    assert u.sum() == pytest.approx(1.0) and np.allclose(u, 1 / 7)
    for s in (0.5, 1.1, 2.0):
        z = traffic_weights(10, "zipf", s)
        assert z.sum() == pytest.approx(1.0)
        assert (np.diff(z) < 0).all()
        assert z[0] / z[1] == pytest.approx(2 ** s)
        assert z[0] / z[9] == pytest.approx(10 ** s)
    assert np.allclose(traffic_weights(4, "zipf", 0.0), 0.25)
    assert traffic_weights(1, "zipf") == pytest.approx([1.0])
    with pytest.raises(ParamError):
        traffic_weights(3, "pareto")
    with pytest.raises(ParamError):
        traffic_weights(0)
    with pytest.raises(ParamError):
        traffic_weights(3, "zipf", -1)


def test_target_sequence_follows_weights_and_seed():
    w = traffic_weights(5, "zipf", 1.1)
    seq = target_sequence(w, 200_000, seed=3)
    assert np.allclose(np.bincount(seq, minlength=5) / len(seq), w, atol=0.005)
    assert (target_sequence(w, 1000, seed=3) == seq[:1000]).all()
    assert not (target_sequence(w, 1000, seed=4) == seq[:1000]).all()


def _targets():
    body = {"inputs": [{"name": "INPUT0", "shape": [1], "datatype": "BYTES", "data": ["1"]}]}
    return [Target("http://127.0.0.1:8000/v2/models/a/infer", "a", body),
            Target("127.0.0.1:9000", "b", body, protocol="grpc", headers={"X-Token": "t"},
                   expect={"OUT": np.array([b"2"], dtype=object)})]


def test_script_content():
    script, data = build_script(_targets(), qps=250, duration_s=60, warmup_s=5, traffic="zipf",
                                skew=1.3, seed=7, pre_allocated_vus=20, max_vus=80, timeout_s=3)
    cfg = json.loads(script.split("const CFG = ", 1)[1].split(";\n", 1)[0])
    assert "executor: 'constant-arrival-rate'" in script
    assert cfg["rate"] == 250 and cfg["timeUnit"] == "1s"
    # 65 s of schedule, ending half an interval early so k6 starts exactly 250 * 65 iterations
    assert cfg["duration"] == f"{int(65e6 - 2000)}us"
    assert cfg["preAllocatedVUs"] == 20 and cfg["maxVUs"] == 80
    assert cfg["timeout"] == "3000000us" and cfg["seed"] == 7
    assert cfg["warmupMs"] == pytest.approx(5000 - 2)
    assert cfg["cum"] == pytest.approx(np.cumsum(traffic_weights(2, "zipf", 1.3)).tolist())
    assert cfg["grpcAddrs"] == ["127.0.0.1:9000"]
    assert Path(cfg["protoDir"], cfg["protoFile"]).is_file()
    assert cfg["grpcMethod"] == "inference.GRPCInferenceService/ModelInfer"
    # per-request tags and the iteration id the parser joins on
    for needle in ("model: t.m", "endpoint: t.e", "warmup: warm", "metadata.rid", "check(null, { ok:",
                   "systemTags: ['status', 'error_code']", "c.invoke("):
        assert needle in script, needle
    assert [t["u"] for t in data["targets"]] == ["http://127.0.0.1:8000/v2/models/a/infer", "127.0.0.1:9000"]
    assert [t["m"] for t in data["targets"]] == ["a", "b"]
    assert [t["e"] for t in data["targets"]] == ["http://127.0.0.1:8000", "127.0.0.1:9000"]
    assert [t["p"] for t in data["targets"]] == ["rest", "grpc"]
    assert data["headers"][data["targets"][0]["h"]] == {"Content-Type": "application/json"}
    assert data["headers"][data["targets"][1]["h"]] == {"x-token": "t"}
    assert data["targets"][0]["x"] == -1 and data["expects"][data["targets"][1]["x"]] == {"OUT": ["2"]}
    assert json.loads(data["bodies"][data["targets"][0]["b"]])["inputs"][0]["data"] == ["1"]
    # a fractional rate becomes rate per timeUnit
    script, _ = build_script(_targets(), qps=2.5, duration_s=2)
    cfg = json.loads(script.split("const CFG = ", 1)[1].split(";\n", 1)[0])
    assert (cfg["rate"], cfg["timeUnit"]) == (5, "2s")


def test_bad_input_is_rejected_before_anything_starts(tmp_path):
    ts = _targets()
    body = ts[0].body
    bad = [
        (lambda: Target("http://127.0.0.1:1/v2/models/a/infer", "a", body, protocol="soap"), "protocol"),
        (lambda: Target("127.0.0.1:1", "a", body), "url"),
        (lambda: Target("http://h:1/x", "a&b", body), "model"),
        (lambda: Target("127.0.0.1:1", "a", {"inputs": [{"name": "x", "datatype": "FP16", "shape": [1],
                                                         "data": [1]}]}, protocol="grpc"), "datatype"),
        (lambda: Target("http://h:1/x", "a", {"nope": 1}), "body"),
    ]
    for make, name in bad:
        with pytest.raises(ParamError) as e:
            make()
        assert e.value.name == name
    # a missing k6 would raise DependencyError: ParamError comes first, so nothing started
    missing = str(tmp_path / "no-k6")
    cases = [
        (dict(targets=[], qps=10, duration_s=2), "targets"),
        (dict(targets=ts, qps=0, duration_s=2), "qps"),
        (dict(targets=ts, qps=-5, duration_s=2), "qps"),
        (dict(targets=ts, qps=10, duration_s=2, warmup_s=2), "duration_s"),
        (dict(targets=ts, qps=10, duration_s=2, warmup_s=3), "duration_s"),
        (dict(targets=ts, qps=10, duration_s=2, traffic="pareto"), "traffic"),
        (dict(targets=ts, qps=10, duration_s=2, traffic="zipf", skew=-1), "skew"),
        (dict(targets=ts, qps=10, duration_s=2, pre_allocated_vus=10, max_vus=5), "max_vus"),
        (dict(targets=ts, qps=10, duration_s=2, timeout_s=0), "timeout_s"),
        (dict(targets=ts, qps=10, duration_s=2, cpu_affinity=[10_000]), "cpu_affinity"),
        (dict(targets=["http://x"], qps=10, duration_s=2), "targets"),
    ]
    for kw, name in cases:
        with pytest.raises(ParamError) as e:
            run_level(workdir=tmp_path / "wd", k6_path=missing, **kw)
        assert e.value.name == name, kw
    assert not (tmp_path / "wd").exists()


def test_k6_binary(tmp_path):
    assert os.access(k6_binary(), os.X_OK)
    with pytest.raises(DependencyError, match="k6"):
        k6_binary(str(tmp_path / "missing-k6"))
    with pytest.raises(DependencyError, match="k6"):
        run_level(_targets()[:1], qps=5, duration_s=1, k6_path=str(tmp_path / "missing-k6"))


PROTO_CHECK = """
import subprocess, sys
from google.protobuf import descriptor_pb2
from kserve.protocol.grpc import grpc_predict_v2_pb2
from mmslib.proto import PREDICT_V2_PATH, PREDICT_V2_PROTO, PROTO_DIR
out = sys.argv[1]
assert PREDICT_V2_PATH.is_file()
subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTO_DIR}",
                f"--descriptor_set_out={out}", PREDICT_V2_PROTO], check=True)
fds = descriptor_pb2.FileDescriptorSet()
fds.ParseFromString(open(out, "rb").read())
ours = fds.file[0]

def strip(m):  # protoc fills json_name; generated modules do not carry it
    for f in m.field:
        f.ClearField("json_name")
    for n in m.nested_type:
        strip(n)
for m in ours.message_type:
    strip(m)
theirs = descriptor_pb2.FileDescriptorProto()
grpc_predict_v2_pb2.DESCRIPTOR.CopyToProto(theirs)
assert ours == theirs, "the shipped proto differs from kserve's"
assert [m.name for m in ours.service[0].method][:6] == [
    "ServerLive", "ServerReady", "ModelReady", "ServerMetadata", "ModelMetadata", "ModelInfer"]
print("same")
"""


def test_proto_is_kserves_open_inference_protocol(tmp_path):
    """The shipped .proto compiles to the same descriptor as kserve's generated module.
    In a subprocess: kserve's and tritonclient's generated modules both register
    ``inference.*`` with protobuf and cannot share one process."""
    pytest.importorskip("grpc_tools")
    r = subprocess.run([sys.executable, "-c", PROTO_CHECK, str(tmp_path / "fds.pb")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "same", r.stderr[-2000:]


def test_parse_joins_checks_and_handles_failures(tmp_path):
    csv = tmp_path / "k6.csv"
    csv.write_text(
        "metric_name,timestamp,metric_value,error_code,status,extra_tags,metadata\n"
        "http_reqs,1700000000500000,1.000000,,200,model=a&endpoint=E&warmup=true,rid=0\n"
        "http_req_blocked,1700000000500000,5.000000,,200,model=a&endpoint=E&warmup=true,rid=0\n"
        "http_req_duration,1700000000500000,250.000000,,200,warmup=true&model=a&endpoint=E,rid=0\n"
        "checks,1700000000500100,1.000000,,,endpoint=E&model=a&warmup=true,rid=0\n"
        "iteration_duration,1700000000500100,300.000000,,,endpoint=E&model=a&warmup=true,rid=0\n"
        "iterations,1700000000500100,1.000000,,,,rid=0\n"
        "http_req_duration,1700000001000000,0.000000,1212,0,model=b&endpoint=E&warmup=false,rid=1\n"
        "checks,1700000001000100,0.000000,,,model=b&endpoint=E&warmup=false,rid=1\n"
        "grpc_req_duration,1700000002000000,2.000000,,5,model=c&endpoint=G&warmup=false,rid=3\n"
        "mms_unsent,1700000003000000,10.000000,,14,model=d&endpoint=G&warmup=false,rid=2\n"
        "checks,1700000003000100,0.000000,,,model=d&endpoint=G&warmup=false,rid=2\n"
        "http_req_blocked,1700000004000000,40.000000,,200,model=e&endpoint=E&warmup=false,rid=4\n"
        "http_req_duration,1700000004000000,20.000000,,200,model=e&endpoint=E&warmup=false,rid=4\n"
        "iteration_duration,1700000004000100,50.000000,,,model=e&endpoint=E&warmup=false,rid=4\n"
        "vus,1700000004000000,1.000000,,,,\n")
    df = parse_k6_csv(csv)
    assert list(df.columns) == RECORD_COLUMNS
    assert df["model"].tolist() == ["a", "b", "c", "d", "e"]
    # a REST request's latency includes its wait for a connection (http_req_blocked, same rid),
    # at most its iteration's duration (rid=4: 40 + 20 > 50)
    assert df["latency_ms"].tolist() == pytest.approx([255.0, 0.0, 2.0, 10.0, 50.0])
    assert df["t_unix"].tolist() == pytest.approx([1700000000.245, 1700000001.0, 1700000001.998, 1700000002.99,
                                                   1700000003.95], abs=1e-6, rel=0)
    assert df["status"].tolist() == [200, 0, 5, 14, 200]
    assert df["ok"].tolist() == [True, False, False, False, False]  # rid=3, 4 have no check: not ok
    assert df["warmup"].tolist() == [True, False, False, False, False]
    assert df["endpoint"].tolist() == ["E", "E", "G", "G", "E"]
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(MmsError):
        parse_k6_csv(tmp_path / "bad.csv")


def test_parse_is_fast_enough(tmp_path):
    """50k requests (700k CSV rows) in k6's format: ~0.2 s here; per-row Python would take
    seconds. The budget is 10 s for 1 M requests; this allows 5x that (shared 2-core box)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import loadgen_bench
    finally:
        sys.path.pop(0)
    path = tmp_path / "synth.csv"
    loadgen_bench.synth_k6_csv(path, 50_000)
    t = time.perf_counter()
    df = parse_k6_csv(path)
    dt = time.perf_counter() - t
    assert len(df) == 50_000 and df["ok"].all()
    assert dt < 10.0 * 0.05 * 5


# --------------------------------------------------------------------------- real k6, real server

def test_rest_run_matches_k6_summary(server, tmp_path):
    targets = [server.rest("m0"), server.rest("m1")]
    r = run_level(targets, qps=20, duration_s=3, warmup_s=1, seed=5, workdir=tmp_path)
    _check_records(r, 20, 2, "http_req_duration")
    rec = r.records
    assert rec["ok"].all() and (rec["status"] == 200).all()
    assert set(rec["endpoint"]) == {f"http://127.0.0.1:{server.http_port}"}
    assert len(rec) == _metric(r, "http_reqs")["count"]
    # the script picks targets exactly as target_sequence says
    expect = np.bincount(target_sequence(traffic_weights(2), len(rec), seed=5), minlength=2)
    assert rec["model"].value_counts().reindex(["m0", "m1"]).tolist() == expect.tolist()
    assert (tmp_path / loadgen.SCRIPT_FILE).is_file() and r.workdir == str(tmp_path)


def test_grpc_run(server):
    targets = [server.grpc("m0"), server.grpc("m1")]
    r = run_level(targets, qps=20, duration_s=1.5, warmup_s=0.5)
    _check_records(r, 20, 2, "grpc_req_duration")
    assert r.records["ok"].all() and (r.records["status"] == 0).all()
    assert set(r.records["endpoint"]) == {f"127.0.0.1:{server.grpc_port}"}
    assert r.workdir is None


def test_wrong_answer_is_not_ok(server):
    wrong = {k: np.full(v.shape, b"0", dtype=object) for k, v in server.sample.expected.items()}
    targets = [server.rest("m0"), server.rest("m1", expect=wrong), server.grpc("m2", expect=wrong),
               server.rest("m3", expect=None)]
    r = run_level(targets, qps=40, duration_s=1.0)
    rec = r.records
    assert rec["model"].nunique() == 4 and (rec["status"].isin([0, 200])).all()
    by = rec.groupby("model")["ok"]
    assert by.all()["m0"] and by.all()["m3"]
    assert not by.any()["m1"] and not by.any()["m2"]
    assert int(rec["ok"].sum()) == _metric(r, "checks")["passes"]
    assert int((~rec["ok"]).sum()) == _metric(r, "checks")["fails"]


def test_zipf_hits_the_hot_model_more(server):
    targets = [server.rest(m, expect=None) for m in MODELS]
    r = run_level(targets, qps=60, duration_s=1.5, traffic="zipf", skew=1.5, seed=1)
    counts = r.records["model"].value_counts().reindex(MODELS, fill_value=0)
    assert counts["m0"] > counts["m1"] > counts["m3"]
    expect = np.bincount(target_sequence(traffic_weights(4, "zipf", 1.5), len(r.records), seed=1),
                         minlength=4)
    assert counts.tolist() == expect.tolist()


@pytest.fixture
def fake_grpc_server():
    """An in-process Open Inference Protocol gRPC server (kserve's generated stubs)
    answering in raw_output_contents (as Triton does) or typed contents; it
    records the requests it got."""
    from concurrent import futures

    import grpc
    # tritonclient's generated stubs: the same inference.GRPCInferenceService
    # (kserve's copy cannot be imported beside tritonclient.grpc in one process).
    from tritonclient.grpc import service_pb2 as pb
    from tritonclient.grpc import service_pb2_grpc as pbg

    outputs = [("OUT_S", "BYTES", [b"12", b"-3"]), ("OUT_F", "FP32", [1.5, -2.25]),
               ("OUT_I", "INT64", [7, -8]), ("OUT_B", "BOOL", [True, False])]
    seen = []

    class Servicer(pbg.GRPCInferenceServiceServicer):
        def ModelInfer(self, request, context):
            seen.append(request)
            resp = pb.ModelInferResponse(model_name=request.model_name, id=request.id)
            for name, dt, vals in outputs:
                o = resp.outputs.add(name=name, datatype=dt, shape=[len(vals)])
                if request.model_name.startswith("raw"):
                    if dt == "BYTES":
                        raw = b"".join(len(v).to_bytes(4, "little") + v for v in vals)
                    else:
                        raw = np.array(vals, dtype={"FP32": "<f4", "INT64": "<i8", "BOOL": "?"}[dt]).tobytes()
                    resp.raw_output_contents.append(raw)
                elif dt == "BYTES":
                    o.contents.bytes_contents.extend(vals)
                else:
                    getattr(o.contents, {"FP32": "fp32_contents", "INT64": "int64_contents",
                                         "BOOL": "bool_contents"}[dt]).extend(vals)
            return resp

    srv = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    pbg.add_GRPCInferenceServiceServicer_to_server(Servicer(), srv)
    port = srv.add_insecure_port("127.0.0.1:0")
    srv.start()
    try:
        yield f"127.0.0.1:{port}", {n: v for n, _, v in outputs}, seen
    finally:
        srv.stop(0)


def test_grpc_request_conversion_and_output_decoding(fake_grpc_server):
    addr, values, seen = fake_grpc_server
    body = {"inputs": [{"name": "A", "shape": [1, 3], "datatype": "BYTES", "data": ["x", "yz", "é"]},
                       {"name": "B", "shape": [2], "datatype": "FP32", "data": [0.5, -1.0]},
                       {"name": "C", "shape": [2, 1], "datatype": "INT64", "data": [[3], [-4]]},
                       {"name": "D", "shape": [1], "datatype": "BOOL", "data": [True]}]}
    right = {k: np.array(v, dtype=object) for k, v in values.items()}
    wrong = dict(right, OUT_F=[1.5, 2.25])
    targets = [Target(addr, "raw", body, protocol="grpc", expect=right),
               Target(addr, "typed", body, protocol="grpc", expect=right),
               Target(addr, "raw_wrong", body, protocol="grpc", expect=wrong),
               Target(addr, "typed_wrong", body, protocol="grpc", expect=dict(right, OUT_S=["12", "3"]))]
    r = run_level(targets, qps=40, duration_s=1)
    ok = r.records.groupby("model")["ok"].agg(["all", "any", "size"])
    assert ok.loc["raw", "all"] and ok.loc["typed", "all"]
    assert not ok.loc["raw_wrong", "any"] and not ok.loc["typed_wrong", "any"]
    assert (r.records["status"] == 0).all()
    req = seen[0]
    assert [t.name for t in req.inputs] == ["A", "B", "C", "D"]
    assert list(req.inputs[0].contents.bytes_contents) == ["x".encode(), b"yz", "é".encode()]
    assert list(req.inputs[0].shape) == [1, 3] and req.inputs[0].datatype == "BYTES"
    assert list(req.inputs[1].contents.fp32_contents) == [0.5, -1.0]
    assert list(req.inputs[2].contents.int64_contents) == [3, -4]
    assert list(req.inputs[3].contents.bool_contents) == [True]
    assert {q.model_name for q in seen} == {"raw", "typed", "raw_wrong", "typed_wrong"}


def _watch_affinity(marker: str, seen: list, stop: threading.Event):
    """Every 0.1 s: the CPU masks of all threads of the k6 run for this workdir."""
    while not stop.is_set():
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
                if marker.encode() in cmd and b"k6" in cmd and b" run " in cmd:
                    seen.append([os.sched_getaffinity(int(t)) for t in os.listdir(f"/proc/{pid}/task")])
            except OSError:
                pass
        time.sleep(0.1)


@pytest.mark.parametrize("use_taskset", [True, False])
def test_unreachable_server_gives_failed_rows_not_a_crash(tmp_path, monkeypatch, use_taskset):
    if not use_taskset:  # the fallback: pin the threads of the started process
        real_which = k6proc.shutil.which
        monkeypatch.setattr(k6proc.shutil, "which", lambda n: None if n == "taskset" else real_which(n))
    dead_http, dead_grpc = _free_port(), _free_port()
    body = {"inputs": [{"name": "INPUT0", "shape": [1], "datatype": "BYTES", "data": ["1"]}]}
    targets = [Target(f"http://127.0.0.1:{dead_http}/v2/models/x/infer", "x", body),
               Target(f"127.0.0.1:{dead_grpc}", "y", body, protocol="grpc")]
    seen, stop = [], threading.Event()
    watcher = threading.Thread(target=_watch_affinity, args=(str(tmp_path), seen, stop), daemon=True)
    watcher.start()
    try:
        r = run_level(targets, qps=10, duration_s=1.0, timeout_s=1, cpu_affinity=[0], workdir=tmp_path)
    finally:
        stop.set()
        watcher.join()
    rec = r.records
    # 1 s is k6's shortest scenario and it starts one more iteration at its end: it sends nothing
    assert len(rec) == 10 and r.iterations == 11 and not rec["ok"].any()
    assert set(rec.loc[rec["model"] == "x", "status"]) == {0}       # no HTTP response
    assert set(rec.loc[rec["model"] == "y", "status"]) == {14}      # gRPC UNAVAILABLE
    assert r.cpu_affinity == [0]
    assert seen and all(m == {0} for m in seen[-1])  # every k6 thread pinned
    if use_taskset:
        assert all(m == {0} for snap in seen for m in snap)
    assert "connection refused" in r.k6_stderr_tail


def test_k6_failure_raises_with_k6_message(monkeypatch, server):
    js = loadgen._JS
    monkeypatch.setattr(loadgen, "_JS", js.replace("export default function", "export default funct1on"))
    with pytest.raises(MmsError) as e:
        run_level([server.rest("m0")], qps=5, duration_s=1)
    assert "exit code 107" in str(e.value) and "Unexpected token" in str(e.value)
    # an exception in some iterations: k6 exits 0, but requests are missing
    needle = "const t = TARGETS[pick(it)];"
    assert needle in js
    monkeypatch.setattr(loadgen, "_JS", js.replace(needle, needle + " if (it % 3 === 1) throw new Error('boom');"))
    with pytest.raises(MmsError) as e:
        run_level([server.rest("m0")], qps=6, duration_s=1)
    assert "failed on 2 of 6 iterations" in str(e.value) and "boom" in str(e.value)


def test_k6_is_stopped_on_keyboard_interrupt(monkeypatch, server, tmp_path):
    started = []
    real_popen = subprocess.Popen

    class Popen(real_popen):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            started.append(self)

        def wait(self, timeout=None):
            if timeout is not None and timeout > 30:  # run_level's wait for the whole test
                time.sleep(1.0)
                raise KeyboardInterrupt
            return super().wait(timeout)

    monkeypatch.setattr(k6proc.subprocess, "Popen", Popen)
    with pytest.raises(KeyboardInterrupt):
        run_level([server.rest("m0")], qps=5, duration_s=20, workdir=tmp_path)
    assert len(started) == 1
    proc = started[0]
    assert proc.poll() is not None  # reaped: terminated, not left running
    with pytest.raises(ProcessLookupError):
        os.killpg(proc.pid, 0)


# --------------------------------------------------------------------------- schedule replay

from mmslib import arrivals, records as record_schema  # noqa: E402


def test_replay_keeps_a_gamma_schedule(server, tmp_path):
    """Bursty (Gamma, CV 2) arrivals at a low rate: every request is sent at
    its scheduled time (lateness small), answers checked, schema exact."""
    models = ["m0", "m1", "m2"]
    s = arrivals.make_schedule(models, 25, 4, warmup_s=1, arrival="gamma", cv=2.0, popularity="zipf",
                               zipf_alpha=1.0, seed=3)
    r = loadgen.replay([server.rest(m) for m in models], s, workdir=tmp_path)
    rec = r.records
    assert list(rec.columns) == record_schema.REPLAY_COLUMNS
    assert {c: str(rec[c].dtype) for c in rec.columns} == record_schema.REPLAY
    assert r.scheduled == len(s) == len(rec) == r.sent and r.unsent == 0
    assert rec["ok"].all() and (rec["status"] == 200).all()
    assert rec["model"].tolist() == s.frame()["model"].tolist()
    assert rec["warmup"].tolist() == s.warmup.tolist()
    assert r.schedule_hash == s.hash()
    # the achieved schedule is the planned one: send - scheduled = lateness, never negative
    # (nothing is sent early); at 25 requests/s k6 idles between requests, so even a busy
    # 2-core machine keeps it far below the 40 ms mean gap
    late = rec["lateness_ms"].to_numpy()
    assert late.min() >= 0 and np.percentile(late, 50) < 20 and np.percentile(late, 99) < 100
    assert np.allclose(rec["t_unix"] - rec["scheduled_unix"], late / 1e3, atol=1e-6)
    assert np.allclose(rec["latency_sched_ms"], late + rec["latency_ms"])
    # the bursts survive: sent gaps follow the scheduled gaps
    sent_gaps, sched_gaps = np.diff(rec["t_unix"]), np.diff(s.offset_s)
    assert np.corrcoef(sent_gaps, sched_gaps)[0, 1] > 0.9
    assert r.cpu_s > 0 and r.wall_s >= s.span_s - 0.5
    assert (tmp_path / loadgen.LOG_FILE).is_file()


def test_replay_failures_are_misses_not_gaps(server):
    wrong = {k: np.full(v.shape, b"0", dtype=object) for k, v in server.sample.expected.items()}
    dead = Target(f"http://127.0.0.1:{_free_port()}/v2/models/x/infer", "x", server.body)
    targets = [server.rest("m0"), server.rest("m1", expect=wrong), dead, server.grpc("m2")]
    s = arrivals.make_schedule(["m0", "m1", "x", "m2"], 40, 1.5, arrival="poisson", seed=2)
    r = loadgen.replay(targets, s)
    rec = r.records
    assert r.unsent == 0 and rec["latency_ms"].notna().all()
    by = rec.groupby("model")
    assert by["ok"].all()["m0"] and by["ok"].all()["m2"]         # REST and gRPC answers checked
    assert not by["ok"].any()["m1"] and not by["ok"].any()["x"]  # wrong answer; refused connection
    assert set(rec.loc[rec["model"] == "x", "status"]) == {0}
    assert set(rec.loc[rec["model"] == "m2", "status"]) == {0}   # gRPC OK


def test_replay_bad_input(server):
    s = arrivals.make_schedule(["m0", "m1"], 10, 1, seed=0)
    with pytest.raises(ParamError, match="targets"):
        loadgen.replay([server.rest("m1"), server.rest("m0")], s)  # not in the schedule's order
    with pytest.raises(ParamError, match="timeout_s"):
        loadgen.replay([server.rest("m0"), server.rest("m1")], s, timeout_s=0)


def test_replay_never_sends_early_and_times_are_sub_millisecond(server):
    """A few hundred Poisson requests: every one sent at or after its scheduled time (lateness
    >= 0), send times with fractional milliseconds (k6's nanosecond execution clock, not
    Date.now()'s whole milliseconds), and the timer wake-ups counted."""
    s = arrivals.make_schedule(["m0", "m1"], 150, 2, arrival="poisson", seed=11)
    targets = [server.rest("m0"), server.rest("m1")]
    # the script gets the very float64 offsets (ms) the records subtract: no rounding between
    _, _, sched = loadgen.build_replay(targets, s)
    assert json.loads(json.dumps(sched))["off"] == (s.offset_s * 1e3).tolist()
    r = loadgen.replay(targets, s)
    rec = r.records
    assert len(s) > 250 and r.unsent == 0 and rec["ok"].all()
    late = rec["lateness_ms"].to_numpy()
    assert (late >= 0).all(), f"{(late < 0).sum()} requests sent early, by up to {-late.min():.3f} ms"
    sent_ms = late + s.offset_s * 1e3  # send time after the level's start, as the generator wrote it
    frac = np.abs(sent_ms - np.round(sent_ms))
    assert (frac > 1e-3).mean() > 0.9, "send times are whole milliseconds"
    lat = rec["latency_ms"].to_numpy()
    assert (np.abs(lat - np.round(lat)) > 1e-3).mean() > 0.9
    assert r.clock_resolution_ms == 1e-6
    assert r.timer_wakeups > 0 and 0 <= r.early_wakeups <= r.timer_wakeups
    assert r.early_wakeups == 0 or r.most_early_ms > 0


class ConnectionGate:
    """Two HTTP/1.1 servers on 127.0.0.1 answering any POST with 200 and a small JSON body.
    'gated' listens with a backlog of 0 whose one queue slot a connection held here fills: the
    kernel drops a client's SYN, and the client, blocked on its connection, tries again after
    Linux's initial SYN timeout (1 s). 'trigger' answers at once, and its first request opens
    the gate ``delay_s`` later (``opened_at``, epoch s, taken before the queue is drained).
    Answer times (epoch s, after the last byte is written) are kept per server."""

    def __init__(self, delay_s: float = 0.3):
        self.delay_s, self.opened_at = delay_s, None
        self.answers = {"trigger": [], "gated": []}
        self.stop, self._opening = threading.Event(), threading.Lock()
        self.gated = socket.socket()
        self.gated.bind(("127.0.0.1", 0))
        self.gated.listen(0)
        self.filler = socket.create_connection(self.gated.getsockname())
        self.trigger = socket.socket()
        self.trigger.bind(("127.0.0.1", 0))
        self.trigger.listen(64)
        self.threads = [threading.Thread(target=self._accept, args=(self.trigger, "trigger"), daemon=True)]
        for t in self.threads:
            t.start()

    def url(self, name):
        sock = self.gated if name == "gated" else self.trigger
        return f"http://127.0.0.1:{sock.getsockname()[1]}/v2/models/{name}/infer"

    def targets(self):
        body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1.0]}]}
        return [Target(self.url("trigger"), "trigger", body), Target(self.url("gated"), "gated", body)]

    def _open(self):
        time.sleep(self.delay_s)
        self.opened_at = time.time()
        self.gated.settimeout(None)
        filler, _ = self.gated.accept()
        filler.close()
        self._accept(self.gated, "gated")

    def _accept(self, ls, name):
        ls.settimeout(0.2)
        while not self.stop.is_set():
            try:
                c, _ = ls.accept()
            except (socket.timeout, OSError):
                continue
            threading.Thread(target=self._serve, args=(c, name), daemon=True).start()

    def _serve(self, c, name):
        c.settimeout(10)
        buf = b""
        try:
            while not self.stop.is_set():
                while b"\r\n\r\n" not in buf:
                    more = c.recv(65536)
                    if not more:
                        return
                    buf += more
                head, _, buf = buf.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    k, _, v = line.partition(b":")
                    if k.strip().lower() == b"content-length":
                        length = int(v)
                while len(buf) < length:
                    more = c.recv(65536)
                    if not more:
                        return
                    buf += more
                buf = buf[length:]
                out = b'{"outputs":[]}'
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                          % (len(out), out))
                self.answers[name].append(time.time())
                if name == "trigger":
                    with self._opening:
                        if not self.threads[1:]:
                            self.threads.append(threading.Thread(target=self._open, daemon=True))
                            self.threads[-1].start()
        except OSError:
            return
        finally:
            c.close()

    def close(self):
        self.stop.set()
        for s in (self.filler, self.gated, self.trigger):
            s.close()
        for t in self.threads:
            t.join(timeout=5)


@pytest.fixture
def gate():
    g = ConnectionGate()
    try:
        yield g
    finally:
        g.close()


def _gated_requests_waited(gate, rec):
    """The requests to the gated server sent before it opened: each completed after it opened,
    at a time the server answered, so its latency holds the time it was blocked."""
    g = rec[rec["model"] == "gated"]
    assert rec["ok"].all() and gate.opened_at is not None
    before = g[g["t_unix"] < gate.opened_at - 0.005]
    assert len(before) >= 1
    done = (before["t_unix"] + before["latency_ms"] / 1e3).to_numpy()
    assert (done >= gate.opened_at).all()
    assert (before["latency_ms"] >= 500).all(), before["latency_ms"].tolist()
    answers = np.array(gate.answers["gated"])
    assert np.abs(done[:, None] - answers[None, :]).min(axis=1).max() < 0.02  # each one an answer
    return before


@pytest.mark.parametrize("generator", ["k6", "go"])
def test_replay_latency_includes_the_wait_for_a_connection(gate, generator):
    """REST latency runs from the send to the answer, including the time a request was blocked
    waiting for its connection (k6's timings.duration leaves that out)."""
    from mmslib import gogen
    if generator == "go" and gogen.go_tool() is None:
        pytest.skip("no Go toolchain: apt-get install golang-go (or set MMSLIB_GO)")
    s = arrivals.Schedule(np.array([0.0, 0.05, 0.06]), np.array([0, 1, 1], dtype=np.int32),
                          np.zeros(3, dtype=bool), ("trigger", "gated"), 0.1)
    r = loadgen.replay(gate.targets(), s, generator=generator, timeout_s=5)
    rec = r.records
    before = _gated_requests_waited(gate, rec)
    assert len(before) == 2
    assert (rec["lateness_ms"] >= 0).all() and (rec["lateness_ms"] < 50).all()
    assert np.allclose(rec["latency_sched_ms"], rec["lateness_ms"] + rec["latency_ms"])


def test_run_level_latency_includes_the_wait_for_a_connection(gate):
    """The constant-rate level: a REST request's latency is k6's http_req_blocked +
    http_req_duration, and its t_unix the time it asked for a connection."""
    w = traffic_weights(2)
    seed = next(sd for sd in range(1000) if (lambda q: q[0] == 0 and 1 in q[1:2])(target_sequence(w, 10, sd)))
    r = run_level(gate.targets(), qps=10, duration_s=1, seed=seed, timeout_s=5)
    assert len(r.records) == 10
    _gated_requests_waited(gate, r.records)
    assert r.clock_resolution_ms == 1e-3
