"""The Go replay generator (mmslib.gogen) with the real Go toolchain, against real
servers on 127.0.0.1: a KServe ModelServer, and a tiny in-test HTTP server whose
answers are known (right, wrong, numbers written differently, errors, slow)."""
from __future__ import annotations

import json
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from mmslib import arrivals, gogen, k6proc, loadgen, params, records as record_schema
from mmslib.backends.local import serve
from mmslib.errors import ParamError
from mmslib.targets import Target
from mmslib.procs import free_port
from mmslib.v2 import request_body

needs_go = pytest.mark.skipif(gogen.go_tool() is None,
                              reason="no Go toolchain: apt-get install golang-go (or set MMSLIB_GO)")
MODELS = ["m0", "m1", "m2"]


@pytest.fixture(scope="module")
def kserve(tmp_path_factory):
    """One KServe ModelServer (simple_string m0..m2) on free loopback ports; always stopped."""
    with serve("simple_string", MODELS, tmp_path_factory.mktemp("gogen-server")) as backend:
        srv = backend.server()
        sample = backend.workload.make_sample(np.random.default_rng(0))
        body = request_body(sample.inputs)
        yield [Target(f"{srv.rest_url}/v2/models/{m}/infer", m, body, expect=sample.expected) for m in MODELS]


# The in-test server's answer per model (outputs "y" expected to be [1.0, 2.5]).
ANSWERS = {
    "right": (200, {"outputs": [{"name": "y", "data": [1.0, 2.5]}]}),
    "ints": (200, {"outputs": [{"name": "other", "data": [7]}, {"name": "y", "data": [1, 2.5000000001]}]}),
    "nested": (200, {"outputs": [{"name": "y", "shape": [2, 1], "data": [[1.0], [2.5]]}]}),
    "wrong": (200, {"outputs": [{"name": "y", "data": [1.0, 2.6]}]}),
    "short": (200, {"outputs": [{"name": "y", "data": [1.0]}]}),
    "missing": (200, {"outputs": [{"name": "z", "data": [1.0, 2.5]}]}),
    "garbage": (200, "not json"),
    "error": (500, {"error": "boom"}),
    "slow": (200, {"outputs": [{"name": "y", "data": [1.0, 2.5]}]}),
    "chunked": (200, {"outputs": [{"name": "y", "data": [1.0, 2.5]}]}),   # Transfer-Encoding: chunked
    "close": (200, {"outputs": [{"name": "y", "data": [1.0, 2.5]}]}),     # Connection: close, then closes
    "chunkedwrong": (200, {"outputs": [{"name": "y", "data": [2.5, 1.0]}]}),
    "stale": (200, {"outputs": [{"name": "y", "data": [1.0, 2.5]}]}),     # closes without saying so
}
EXPECT = {"y": [1.0, 2.5]}


@pytest.fixture(scope="module")
def canned():
    """A threaded HTTP/1.1 server on 127.0.0.1 answering /v2/models/NAME/infer from ANSWERS
    ('slow' after 0.5 s); the bodies it received are kept per model."""
    got = {}

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            model = self.path.split("/")[3]
            got.setdefault(model, []).append(self.rfile.read(int(self.headers["Content-Length"])))
            if model == "slow":
                time.sleep(0.5)
            code, ans = ANSWERS[model]
            out = (ans if isinstance(ans, str) else json.dumps(ans)).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            if model.startswith("chunked"):  # three chunks, a chunk extension, a trailer
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                k = len(out) // 3
                for part, ext in ((out[:k], b""), (out[k:2 * k], b";x=1"), (out[2 * k:], b"")):
                    self.wfile.write(b"%x%s\r\n%s\r\n" % (len(part), ext, part))
                self.wfile.write(b"0\r\nX-Trailer: t\r\n\r\n")
                return
            if model == "close":
                self.send_header("Connection", "close")
                self.close_connection = True
            if model == "stale":  # as a server whose keep-alive timeout ran out: the client cannot know
                self.close_connection = True
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    srv.daemon_threads = True
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    try:
        yield srv.server_address[1], got
    finally:
        srv.shutdown()
        srv.server_close()


def _canned_target(port, model, expect=EXPECT):
    body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1.0]}]}
    return Target(f"http://127.0.0.1:{port}/v2/models/{model}/infer", model, body, expect=expect)


@needs_go
def test_go_replay_keeps_a_gamma_schedule(kserve, tmp_path):
    """Bursty (Gamma, CV 2) arrivals at a low rate against KServe: every request sent at its
    scheduled time, answers checked, records complete in the schema."""
    s = arrivals.make_schedule(MODELS, 25, 4, warmup_s=1, arrival="gamma", cv=2.0, popularity="zipf",
                               zipf_alpha=1.0, seed=5)
    r = loadgen.replay(kserve, s, workdir=tmp_path, generator="go")
    rec = r.records
    assert r.generator == "go" and r.k6_exit_code == 0
    assert list(rec.columns) == record_schema.REPLAY_COLUMNS
    assert {c: str(rec[c].dtype) for c in rec.columns} == record_schema.REPLAY
    assert r.scheduled == len(s) == len(rec) == r.sent and r.unsent == 0 and len(s) > 50
    assert rec["ok"].all() and (rec["status"] == 200).all()
    assert rec["model"].tolist() == s.frame()["model"].tolist()
    assert rec["warmup"].tolist() == s.warmup.tolist() and r.schedule_hash == s.hash()
    # Lateness: the dispatcher sends only what is due, so a request is never early; at 25
    # requests/s (40 ms mean gap) the generator idles between requests, so even a busy 2-core
    # machine keeps it far below the gaps.
    late = rec["lateness_ms"].to_numpy()
    assert late.min() >= 0 and np.percentile(late, 50) < 5 and np.percentile(late, 99) < 40
    assert np.allclose(rec["t_unix"] - rec["scheduled_unix"], late / 1e3, atol=1e-6)
    assert np.allclose(rec["latency_sched_ms"], late + rec["latency_ms"])
    assert (rec["latency_ms"] > 0).all()
    # times to the nanosecond, not k6's millisecond: send offsets are not whole milliseconds
    assert (np.abs(late - np.round(late)) > 1e-3).mean() > 0.9
    sent_gaps, sched_gaps = np.diff(rec["t_unix"]), np.diff(s.offset_s)
    assert np.corrcoef(sent_gaps, sched_gaps)[0, 1] > 0.9
    assert r.cpu_s > 0 and r.wall_s >= s.span_s - 0.5
    assert (tmp_path / gogen.RECORDS_FILE).is_file()


@needs_go
def test_go_never_sends_early(canned):
    """A few hundred Poisson requests: every one at or after its scheduled time (the dispatcher
    no longer sends what is due within the next half millisecond); its wake-ups counted."""
    port, _ = canned
    s = arrivals.make_schedule(["right"], 200, 2, arrival="poisson", seed=4)
    r = loadgen.replay([_canned_target(port, "right")], s, generator="go", timeout_s=5)
    late = r.records["lateness_ms"].to_numpy()
    assert len(s) > 300 and r.unsent == 0 and r.records["ok"].all()
    assert (late >= 0).all(), f"{(late < 0).sum()} requests sent early, by up to {-late.min():.3f} ms"
    assert r.clock_resolution_ms == 1e-6
    assert r.timer_wakeups > 0 and r.early_wakeups == 0
    # the program gets whole nanoseconds rounded up: never due before the offset
    ns = gogen.offsets_ns(s.offset_s)
    assert (ns >= s.offset_s * 1e9).all() and (ns - s.offset_s * 1e9 < 1).all()


@needs_go
def test_go_replay_checks_answers(canned):
    """Exact answers are ok (numbers to a relative 1e-6, nested data flattened, other outputs
    ignored, chunked bodies, servers closing the connection after each answer); wrong, short,
    missing, unparsable answers and errors are not; a refused connection is status 0; without
    expected outputs only the status counts."""
    port, got = canned
    names = ["right", "ints", "nested", "chunked", "close", "wrong", "short", "missing", "garbage", "error",
             "chunkedwrong", "dead", "nocheck"]
    dead_port = free_port()
    targets = [_canned_target(port, m) for m in names[:11]]
    targets.append(Target(f"http://127.0.0.1:{dead_port}/v2/models/dead/infer", "dead", targets[0].body,
                          expect=EXPECT))
    targets.append(Target(f"http://127.0.0.1:{port}/v2/models/wrong/infer", "nocheck", targets[0].body))
    s = arrivals.make_schedule(names, 60, 1.5, arrival="poisson", seed=2)
    r = loadgen.replay(targets, s, generator="go", timeout_s=5)
    rec = r.records
    assert r.unsent == 0 and rec["latency_ms"].notna().all() and len(rec) == len(s)
    ok = rec.groupby("model")["ok"].agg(["all", "any", "size"])
    assert set(ok.index) == set(names), "every target got requests"
    for m in ("right", "ints", "nested", "chunked", "close", "nocheck"):
        assert ok.loc[m, "all"], m
    for m in ("wrong", "short", "missing", "garbage", "error", "chunkedwrong", "dead"):
        assert not ok.loc[m, "any"], m
    st = rec.groupby("model")["status"].agg(set)
    assert st["error"] == {500} and st["dead"] == {0} and st["wrong"] == {200}
    # the server got the target's body, byte for byte as the k6 replay sends it
    sent_body = json.dumps(targets[0].body, separators=(",", ":")).encode()
    assert set(got["right"]) == {sent_body}


@needs_go
def test_go_open_loop_and_in_flight_bound(canned, tmp_path):
    """Open loop: requests to a server answering in 0.5 s still go out on schedule; beyond
    max_inflight a request is not sent (recorded, never silently missing)."""
    port, _ = canned
    exe = gogen.binary()
    data, _ = k6proc.tables([_canned_target(port, "slow")])
    offs = np.arange(20) * 0.01  # 20 requests, 10 ms apart: all 20 in flight at once
    cfg = gogen.write_inputs(tmp_path, data, offs, np.zeros(20, dtype=int), timeout_s=5, max_inflight=8)
    p = subprocess.run([exe, str(cfg)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    g = gogen.read_records(tmp_path / gogen.RECORDS_FILE)
    assert g["n"] == 20 and g["sent"].sum() == 8 and g["sent"][:8].all()
    assert np.isnan(g["latency_ms"][8:]).all() and (g["status"][8:] == 0).all() and not g["ok"][8:].any()
    assert (g["latency_ms"][:8] >= 450).all() and g["ok"][:8].all()
    # the first 8 went out on time although none had been answered yet
    assert (np.abs(g["send_ms"][:8] - offs[:8] * 1e3) < 40).all()


@needs_go
def test_go_resends_once_on_a_stale_connection(canned):
    """A kept-alive connection the server closed without saying so: the request goes again on a
    new connection (as net/http's client does), so no request fails for it."""
    port, _ = canned
    s = arrivals.make_schedule(["stale"], 20, 1, arrival="constant")
    r = loadgen.replay([_canned_target(port, "stale")], s, generator="go", timeout_s=5)
    assert r.unsent == 0 and len(r.records) == 20 and r.records["ok"].all(), r.k6_stderr_tail


def test_bad_generator_is_a_param_error(monkeypatch, canned):
    port, _ = canned
    s = arrivals.make_schedule(["right"], 10, 1, seed=0)
    t = [_canned_target(port, "right")]
    with pytest.raises(ParamError, match="generator.*'vegeta'.*k6, go"):
        loadgen.replay(t, s, generator="vegeta")
    with pytest.raises(ParamError, match="generator"):
        params.traffic(generator="wrk")
    with pytest.raises(ParamError, match="generator.*REST only"):
        params.traffic(generator="go", protocol="grpc")
    monkeypatch.setenv("MMSLIB_GO", "/nonexistent/go")  # no Go toolchain
    with pytest.raises(ParamError, match="generator.*apt-get install golang-go"):
        params.traffic(generator="go")
    with pytest.raises(ParamError, match="generator.*apt-get install golang-go"):
        loadgen.replay(t, s, generator="go")
    assert params.traffic().generator == "k6"


@needs_go
def test_traffic_experiment_with_the_go_generator(tmp_path, no_leftovers):
    """traffic.run(generator='go'): a local multi-model server, the level's records written by
    the Go generator (every request sent and answered correctly), the generator in levels."""
    from mmslib import traffic

    p = params.traffic(models=[2], modes=["mms"], rates=[30], cv=[2], duration_s=1.5, warmup_s=0.5,
                       popularity="uniform", slo_ms=200, lateness_p99_ms=50, generator="go",
                       offered_tolerance=1.0,  # a 2 s bursty level rarely offers its nominal rate: not tested here
                       output_dir=str(tmp_path / "traffic"))
    res = traffic.run(p, progress=False)
    lv = res.levels
    assert len(lv) == 1 and lv["generator"].tolist() == ["go"] and lv["error"].tolist() == [""]
    assert lv["unsent"].iloc[0] == 0 and lv["cpu_s"].iloc[0] > 0
    rec = res.records
    sched = traffic.schedule_for(p, traffic.Level(2, "mms", 30.0, 2.0, 0, False))
    assert len(rec) == len(sched) > 20 and rec["rid"].tolist() == list(range(len(sched)))
    assert rec["model"].tolist() == sched.frame()["model"].tolist()
    assert rec["ok"].all() and rec["latency_ms"].notna().all()
    assert (rec["lateness_ms"] >= 0).all()
    assert bool(res.summary["valid"].iloc[0])
