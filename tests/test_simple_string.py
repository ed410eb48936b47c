import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient

from mmslib import v2
from mmslib.workloads import get_workload, load_artifact
from mmslib.errors import ParamError

W = get_workload("simple_string")


def test_artifact_roundtrip_and_predict(tmp_path):
    d = W.write_artifact(tmp_path / "m0", "m0")
    assert (d / "config.json").stat().st_size >= 700  # the seed's 700 B model
    pred = load_artifact(d)
    out = pred.predict({"INPUT0": np.array([[b"1", b"5"]], dtype=object), "INPUT1": np.array([[b"1", b"7"]], dtype=object)})
    assert out["OUTPUT0"].tolist() == [[b"2", b"12"]]
    assert out["OUTPUT1"].tolist() == [[b"0", b"-2"]]


def test_sample_and_check():
    s = W.make_sample(np.random.default_rng(1))
    assert s.inputs["INPUT0"].shape == (1, 16)
    assert W.check(s.expected, s.expected)
    wrong = {k: v.copy() for k, v in s.expected.items()}
    wrong["OUTPUT0"][0, 0] = b"-999999"
    assert not W.check(wrong, s.expected)


def test_unknown_workload():
    with pytest.raises(ParamError, match="workload"):
        get_workload("resnet")


def test_v2_codec_roundtrip():
    s = W.make_sample(np.random.default_rng(2))
    body = v2.request_body(s.inputs)
    assert body["inputs"][0]["datatype"] == "BYTES" and body["inputs"][0]["shape"] == [1, 16]
    back = {t["name"]: v2.decode_tensor(t) for t in body["inputs"]}
    assert np.array_equal(back["INPUT0"], s.inputs["INPUT0"])
    f = v2.encode_tensor("x", np.arange(6, dtype=np.float32).reshape(2, 3))
    assert f["datatype"] == "FP32" and v2.decode_tensor(f).shape == (2, 3)


def test_kserve_server_rest_grpc_tritonclient(kserve_server):
    """A real KServe server answers simple_string over V2 REST and gRPC via tritonclient."""
    url = kserve_server["url"].replace("http://", "")
    c = httpclient.InferenceServerClient(url)
    # KServe treats a body-less request without a JSON content type as binary.
    H = {"Content-Type": "application/json"}
    assert c.is_model_ready("m0", headers=H)
    a = np.array([[str(i) for i in range(16)]], dtype=object)
    b = np.array([["1"] * 16], dtype=object)
    ins = []
    for name, arr in (("INPUT0", a), ("INPUT1", b)):
        i = httpclient.InferInput(name, [1, 16], "BYTES")
        i.set_data_from_numpy(arr, binary_data=False)
        ins.append(i)
    r = c.infer("m1", ins, outputs=[httpclient.InferRequestedOutput("OUTPUT0", binary_data=False),
                                    httpclient.InferRequestedOutput("OUTPUT1", binary_data=False)], headers=H)
    assert [int(x) for x in r.as_numpy("OUTPUT0").ravel()] == [i + 1 for i in range(16)]
    assert [int(x) for x in r.as_numpy("OUTPUT1").ravel()] == [i - 1 for i in range(16)]
    g = grpcclient.InferenceServerClient(kserve_server["grpc"])
    gins = []
    for name, arr in (("INPUT0", a), ("INPUT1", b)):
        i = grpcclient.InferInput(name, [1, 16], "BYTES")
        i.set_data_from_numpy(arr)
        gins.append(i)
    gr = g.infer("m0", gins)
    # tritonclient 2.73's grpc as_numpy() fails under numpy 2 for bytes_contents
    # (np.array(copy=False)); read the decoded proto instead.
    out = {o.name: o for o in gr.get_response().outputs}
    assert [int(x) for x in out["OUTPUT0"].contents.bytes_contents] == [i + 1 for i in range(16)]
    assert [int(x) for x in out["OUTPUT1"].contents.bytes_contents] == [i - 1 for i in range(16)]


def test_kserve_server_load_unload_and_loopback(kserve_server):
    import psutil
    W.write_artifact(kserve_server["store"] / "late", "late")
    c = v2.V2Client(kserve_server["url"])
    assert not c.model_ready("late")
    assert c.load("late").status_code == 200
    assert c.model_ready("late")
    s = W.make_sample(np.random.default_rng(3))
    assert W.check(c.infer("late", s.inputs), s.expected)
    assert c.load("no-such-model").status_code >= 400
    assert c.unload("late").status_code == 200
    assert not c.model_ready("late")
    # Bound to loopback only.
    conns = [x for x in psutil.Process(kserve_server["proc"].pid).connections(kind="tcp") if x.status == "LISTEN"]
    assert conns and all(x.laddr.ip in ("127.0.0.1", "::ffff:127.0.0.1") for x in conns), conns
