"""Server-side time read from a real server's own metrics after real requests."""
import numpy as np

from mmslib import server_metrics, v2
from mmslib.workloads import get_workload

TRITON_TEXT = """# HELP nv_inference_request_success Number of successful inference requests
# TYPE nv_inference_request_success counter
nv_inference_request_success{model="a",version="1"} 10
nv_inference_request_success{model="b",version="1"} 30
# TYPE nv_inference_request_duration_us counter
nv_inference_request_duration_us{model="a",version="1"} 20000
nv_inference_request_duration_us{model="b",version="1"} 60000
# TYPE nv_inference_queue_duration_us counter
nv_inference_queue_duration_us{model="a",version="1"} 4000
"""


def test_parse_and_delta_triton_text():
    before = {}
    after = server_metrics.parse(TRITON_TEXT)
    assert after["nv_inference_request_success"] == 40
    d = server_metrics.delta("triton", before, after)
    assert d["server_requests"] == 40
    assert d["server_ms"] == 80000 / 1000 / 40  # 2 ms per request
    assert d["queue_ms"] == 4000 / 1000 / 40
    assert d["compute_ms"] is None  # not exposed in this text


def test_kserve_server_metrics_after_real_requests(kserve_server):
    urls = [kserve_server["url"] + "/metrics"]
    before = server_metrics.scrape(urls)
    w = get_workload("simple_string")
    c = v2.V2Client(kserve_server["url"])
    rng = np.random.default_rng(0)
    for i in range(25):
        s = w.make_sample(rng)
        assert w.check(c.infer("m0" if i % 2 else "m1", s.inputs), s.expected)
    after = server_metrics.scrape(urls)
    d = server_metrics.delta("kserve", before, after)
    assert d["server_requests"] == 25
    assert 0 < d["server_ms"] < 50 and 0 < d["compute_ms"] <= d["server_ms"]


def test_unreachable_metrics_give_nothing():
    assert server_metrics.scrape(["http://127.0.0.1:9/metrics"], timeout=0.5) == {}
    assert server_metrics.delta("kserve", {}, {}) == {"server_requests": 0.0, "server_ms": None, "compute_ms": None}
