"""The runtimes with their own environment (today triton and mlserver), on real servers on 127.0.0.1.

The runtimes tested are those of the registry that declare an environment (``Runtime.env``:
``requirements/<env>.txt`` -> ``.venv-<env>``); a session fixture creates a missing one with
``scripts/setup-runtime-env.sh`` and skips that runtime's tests, saying why, when it cannot be created.

Per runtime: V2 REST and gRPC inference through tritonclient, load / unload /
list through the repository REST API, a LocalBackend round trip (traditional,
then multi-model) that must leave no process behind, and one bert model when
the bert workload is there. Memory and load-time figures are printed (run with
``-s`` to see them), not asserted.
"""
from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
import requests

from mmslib.backends.local import LocalBackend
from mmslib.errors import DependencyError
from mmslib.procs import Supervisor, free_port, tree_pids
from mmslib.runtimes import RUNTIMES as REGISTRY, ServerConfig, env_dir, envs, get_runtime
from mmslib.v2 import V2Client
from mmslib.workloads import TensorSpec, get_workload
from mmslib.runtimes.triton import shm_regions as _shm_regions

ROOT = Path(__file__).resolve().parents[1]
SETUP = ROOT / "scripts" / "setup-runtime-env.sh"
RUNTIMES = tuple(envs())   # every runtime that declares its own environment
SS = get_workload("simple_string")
HAVE_BERT = importlib.util.find_spec("mmslib.workloads.bert") is not None
SERVER_MARKERS = ("tritonserver", "triton_python_backend_stub", "mmslib-triton-launcher",
                  "mmslib.runtimes.mlserver_server")

# ---------------------------------------------------------------- environments

_env_state: dict = {}


def ensure_env(name: str):
    """The runtime, its env created by the set-up script if missing; skip if impossible."""
    if name not in _env_state:
        rt = get_runtime(name)
        try:
            rt.check_available()
            _env_state[name] = ("ok", "")
        except DependencyError:
            t0 = time.monotonic()
            r = subprocess.run(["bash", str(SETUP), rt.env], capture_output=True, text=True, timeout=900)
            took = time.monotonic() - t0
            if r.returncode != 0:
                tail = "\n".join((r.stdout + r.stderr).strip().splitlines()[-5:])
                _env_state[name] = ("skip", f"cannot create the {name} env with "
                                    f"`bash scripts/setup-runtime-env.sh {name}` "
                                    f"(exit {r.returncode}):\n{tail}")
            else:
                try:
                    rt.check_available()
                    _env_state[name] = ("ok", f"created in {took:.0f} s")
                    print(f"\n[{name}] env created in {took:.0f} s: {r.stdout.strip().splitlines()[-1:]}")
                except DependencyError as e:
                    _env_state[name] = ("skip", f"{name} env created but unusable: {e}")
    state, why = _env_state[name]
    if state == "skip":
        pytest.skip(why)
    return get_runtime(name)


@pytest.fixture(scope="session", params=RUNTIMES)
def runtime(request):
    return ensure_env(request.param)


# ---------------------------------------------------------------- helpers

def ours(marker: str) -> list:
    """Live (non-zombie) server processes whose command line mentions ``marker``."""
    out = []
    for p in psutil.process_iter(["pid", "cmdline", "status"]):
        if p.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        cmd = " ".join(p.info["cmdline"] or [])
        if marker in cmd and any(k in cmd for k in SERVER_MARKERS):
            out.append((p.info["pid"], cmd[:160]))
    return out


def wait_gone(marker: str, timeout: float = 10.0) -> list:
    deadline = time.monotonic() + timeout
    while True:
        left = ours(marker)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def start_server(rt, sup: Supervisor, store: Path, workdir: Path, name: str, models, timeout=120.0):
    cfg = ServerConfig(name=name, store=store, workdir=workdir, http_port=free_port(),
                       grpc_port=free_port(), models=list(models))
    argv, env = rt.command(cfg)
    proc = sup.spawn(argv, name=name, env=env)
    client = V2Client(f"http://127.0.0.1:{cfg.http_port}", timeout=60)
    t0 = time.monotonic()
    while True:
        if proc.poll() is not None:
            pytest.fail(f"{rt.name} server exited with {proc.returncode}:\n{sup.log_tail(name, 30)}")
        ready = all(client.model_ready(m) for m in models) if models else client.server_live()
        if ready and client.session.get(client.base_url + "/v2/health/ready", timeout=5).status_code == 200:
            break
        if time.monotonic() - t0 > timeout:
            pytest.fail(f"{rt.name} server not ready in {timeout} s:\n{sup.log_tail(name, 30)}")
        time.sleep(0.05)
    return {"proc": proc, "cfg": cfg, "client": client, "url": client.base_url,
            "grpc": f"127.0.0.1:{cfg.grpc_port}", "start_s": time.monotonic() - t0}


def infer_http(url: str, model: str, inputs: dict, outputs, binary: bool) -> dict:
    import tritonclient.http as httpclient
    from tritonclient.utils import np_to_triton_dtype
    c = httpclient.InferenceServerClient(url.replace("http://", ""), network_timeout=60)
    try:
        ins = []
        for k, v in inputs.items():
            i = httpclient.InferInput(k, list(v.shape), np_to_triton_dtype(v.dtype))
            i.set_data_from_numpy(v, binary_data=binary)
            ins.append(i)
        outs = [httpclient.InferRequestedOutput(o, binary_data=binary) for o in outputs]
        res = c.infer(model, ins, outputs=outs)
        return {o: res.as_numpy(o) for o in outputs}
    finally:
        c.close()


def infer_grpc(addr: str, model: str, inputs: dict, outputs) -> dict:
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import np_to_triton_dtype
    c = grpcclient.InferenceServerClient(addr)
    try:
        ins = []
        for k, v in inputs.items():
            i = grpcclient.InferInput(k, list(v.shape), np_to_triton_dtype(v.dtype))
            i.set_data_from_numpy(v)
            ins.append(i)
        res = c.infer(model, ins, outputs=[grpcclient.InferRequestedOutput(o) for o in outputs],
                      client_timeout=60)
        return {o: res.as_numpy(o) for o in outputs}
    finally:
        c.close()


def ready_names(c: V2Client) -> set:
    """Models the repository index says are READY (Triton lists never-loaded models without a state)."""
    return {m["name"] for m in c.repository_index() if str(m.get("state", "")).upper() == "READY"}


def mib(x: float) -> str:
    return f"{x:.1f} MiB"


# ---------------------------------------------------------------- no server needed

def test_every_environment_is_declared_by_its_runtime_and_set_up_by_name():
    """A runtime's environment is its module's ``env`` plus requirements/<env>.txt: the set-up script,
    the Makefile and these tests name no runtime, and every requirements file belongs to a runtime."""
    assert RUNTIMES == ("triton", "mlserver")          # what the registry declares today
    reqs = {p.stem for p in (ROOT / "requirements").glob("*.txt")}
    assert {get_runtime(n).env for n in RUNTIMES} == reqs
    for n in RUNTIMES:
        rt = get_runtime(n)
        assert env_dir(rt.env) == ROOT / f".venv-{rt.env}"
    script, make = SETUP.read_text(), (ROOT / "Makefile").read_text()
    envs_target = make.split("\nenvs:")[1].split("\n\n")[0]
    for n in REGISTRY:
        assert not re.search(rf"\b{n}\b", script.split("set -euo pipefail")[1]), f"setup script names {n}"
        assert not re.search(rf"\b{n}\b", envs_target), f"Makefile envs names {n}"
    out = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-m", "mmslib.runtimes", "envs"],
                         capture_output=True, text=True, cwd=ROOT, check=True).stdout.split()
    assert out == [get_runtime(n).env for n in RUNTIMES]


def test_setup_script_refuses_an_environment_no_runtime_lists(tmp_path):
    r = subprocess.run(["bash", str(SETUP), "nosuchruntime"], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "MMSLIB_NOSUCHRUNTIME_VENV": str(tmp_path / "v")})
    assert r.returncode != 0 and "requirements/nosuchruntime.txt" in r.stderr


@pytest.mark.parametrize("name", RUNTIMES)
def test_missing_env_names_the_setup_command(name, monkeypatch, tmp_path):
    monkeypatch.setenv(f"MMSLIB_{get_runtime(name).env.upper()}_VENV", str(tmp_path / "nowhere"))
    rt = type(get_runtime(name))()  # fresh: nothing cached
    with pytest.raises(DependencyError) as e:
        rt.check_available()
    assert f"bash scripts/setup-runtime-env.sh {name}" in str(e.value)
    with pytest.raises(DependencyError):
        LocalBackend(rt, SS, tmp_path / "work")


def test_triton_config_pbtxt_types():
    from mmslib.runtimes.triton import config_pbtxt
    text = config_pbtxt("m1", [TensorSpec("text", "BYTES", [1])],
                        [TensorSpec("embedding", "FP32", [1, 384])])
    assert 'name: "m1"' in text and 'backend: "python"' in text and "max_batch_size: 0" in text
    assert re.search(r'name: "text"\s+data_type: TYPE_STRING\s+dims: \[ 1 \]', text)
    assert re.search(r'name: "embedding"\s+data_type: TYPE_FP32\s+dims: \[ 1, 384 \]', text)
    assert "KIND_CPU" in text and "count: 1" in text
    with pytest.raises(ValueError):
        config_pbtxt("m", [TensorSpec("x", "COMPLEX", [1])], [])


def test_triton_stub_copied_to_a_writable_backend_dir(tmp_path, monkeypatch):
    """The python stub goes next to libtriton_python.so, or into a cached copy if read-only."""
    from mmslib.runtimes import triton
    ts = tmp_path / "tritonserver"
    (ts / "backends" / "python").mkdir(parents=True)
    (ts / "backends" / "python" / "libtriton_python.so").write_bytes(b"backend")
    for v in ("3.10", "3.11"):
        (ts / "python_backend_stubs" / v).mkdir(parents=True)
        (ts / "python_backend_stubs" / v / triton.STUB).write_bytes(f"stub {v}".encode())
    rt = triton.TritonRuntime()
    # read-only package: a copy of the backends dir in the user cache
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(triton, "_writable", lambda p: False)
    copy = rt._backend_dir(ts, "3.11")
    assert copy != ts / "backends" and str(copy).startswith(str(tmp_path / "cache"))
    assert (copy / "python" / triton.STUB).read_bytes() == b"stub 3.11"
    assert (copy / "python" / "libtriton_python.so").read_bytes() == b"backend"
    assert not (ts / "backends" / "python" / triton.STUB).exists()
    assert rt._backend_dir(ts, "3.11") == copy  # idempotent
    # writable: in place, executable
    monkeypatch.setattr(triton, "_writable", lambda p: True)
    assert rt._backend_dir(ts, "3.10") == ts / "backends"
    stub = ts / "backends" / "python" / triton.STUB
    assert stub.read_bytes() == b"stub 3.10" and os.access(stub, os.X_OK)
    with pytest.raises(DependencyError, match="setup-runtime-env.sh triton"):
        rt._backend_dir(ts, "3.99")


# ---------------------------------------------------------------- one server per runtime

@pytest.fixture(scope="module")
def server(runtime, tmp_path_factory):
    """A server of ``runtime`` started with model s0; s1 and s2 are in the store only."""
    tmp = tmp_path_factory.mktemp(f"{runtime.name}-server")
    store = tmp / "store"
    runtime.prepare_store(store)
    for m in ("s0", "s1", "s2"):
        runtime.write_model(store, SS, m)
    with Supervisor(log_dir=tmp / "logs") as sup:
        srv = start_server(runtime, sup, store, tmp / "servers", "srv", ["s0"])
        srv.update(rt=runtime, sup=sup, store=store, tmp=tmp)
        yield srv
    assert wait_gone(str(tmp)) == []


def _sample(seed=0):
    return SS.make_sample(np.random.default_rng(seed))


@pytest.mark.slow
def test_rest_inference_tritonclient(server):
    s = _sample(1)
    out = infer_http(server["url"], "s0", s.inputs, ["OUTPUT0", "OUTPUT1"], binary=False)
    assert SS.check(out, s.expected), out
    # The check can fail: a wrong answer is caught.
    assert not SS.check({"OUTPUT0": out["OUTPUT1"], "OUTPUT1": out["OUTPUT0"]}, s.expected)
    if server["rt"].name == "triton":  # Triton also has the binary tensor extension
        s = _sample(2)
        assert SS.check(infer_http(server["url"], "s0", s.inputs, ["OUTPUT0", "OUTPUT1"], binary=True),
                        s.expected)
    # and mmslib's own JSON client
    s = _sample(3)
    assert SS.check(server["client"].infer("s0", s.inputs), s.expected)


@pytest.mark.slow
def test_grpc_inference_tritonclient(server):
    for seed in (4, 5):
        s = _sample(seed)
        out = infer_grpc(server["grpc"], "s0", s.inputs, ["OUTPUT0", "OUTPUT1"])
        assert SS.check(out, s.expected), out


@pytest.mark.slow
def test_bad_request_is_an_error_not_a_crash(server):
    c = server["client"]
    r = c.session.post(f"{server['url']}/v2/models/s0/infer", json={"inputs": [
        {"name": "INPUT0", "shape": [1, 16], "datatype": "BYTES", "data": ["x"] * 16},
        {"name": "INPUT1", "shape": [1, 16], "datatype": "BYTES", "data": ["1"] * 16}]}, timeout=30)
    assert r.status_code >= 400
    s = _sample(6)
    assert SS.check(c.infer("s0", s.inputs), s.expected)  # still serving


@pytest.mark.slow
def test_load_unload_list_by_name(server):
    c = server["client"]
    assert not c.model_ready("s1")
    index = {m["name"]: m for m in c.repository_index(ready_only=False)}
    assert {"s0", "s1", "s2"} <= set(index), index  # the store's models are listed
    assert ready_names(c) == {"s0"}
    t0 = time.monotonic()
    r = c.load("s1")
    print(f"\n[{server['rt'].name}] load s1: HTTP {r.status_code} in {time.monotonic() - t0:.3f} s")
    assert r.status_code == 200, r.text
    assert c.model_ready("s1")
    assert ready_names(c) == {"s0", "s1"}
    s = _sample(7)
    assert SS.check(c.infer("s1", s.inputs), s.expected)
    s = _sample(8)
    assert SS.check(infer_grpc(server["grpc"], "s1", s.inputs, ["OUTPUT0", "OUTPUT1"]), s.expected)

    r = c.unload("s1")
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 20  # Triton unloads in the background
    while c.model_ready("s1") and time.monotonic() < deadline:
        time.sleep(0.05)
    ready = c.session.get(f"{server['url']}/v2/models/s1/ready", timeout=10)
    assert ready.status_code in (400, 404), ready.status_code
    with pytest.raises(requests.HTTPError):
        c.infer("s1", _sample(9).inputs)
    assert ready_names(c) == {"s0"}
    assert c.model_ready("s0")  # the other model is untouched

    # Unknown names are refused.
    assert c.load("no-such-model").status_code >= 400
    # Reload after unload works.
    assert c.load("s1").status_code == 200
    assert c.model_ready("s1")
    assert c.unload("s1").status_code == 200


@pytest.mark.slow
def test_triton_stub_per_model(server):
    if server["rt"].name != "triton":
        pytest.skip("python-backend stubs are Triton's")
    c = server["client"]

    def argv_of(pid):
        try:
            return psutil.Process(pid).cmdline()
        except psutil.Error:  # exited meanwhile
            return []

    def stubs(model):
        """The live stubs serving ``model``: a stub's first argument is its model's
        ``<store>/<model>/<version>/model.py``. Counted by model, a stub of another
        model that is still exiting cannot be miscounted."""
        out = []
        for p in tree_pids(server["proc"].pid):
            argv = argv_of(p)
            if argv and argv[0].endswith("triton_python_backend_stub") and len(argv) > 1 \
                    and Path(argv[1]).parts[-3:-2] == (model,):
                out.append(p)
        return out

    per_model = server["rt"].processes_per_model
    assert per_model == 1
    assert stubs("s2") == []                      # never loaded before
    assert len(stubs("s0")) == per_model          # loaded at start
    assert c.load("s2").status_code == 200
    assert len(stubs("s2")) == per_model
    assert len(stubs("s0")) == per_model          # the other model's stub is untouched
    assert c.unload("s2").status_code == 200
    deadline = time.monotonic() + 60  # unloading ends the stub asynchronously; slow on a busy machine
    while stubs("s2") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert stubs("s2") == []
    assert len(stubs("s0")) == per_model


# ---------------------------------------------------------------- LocalBackend

def _usage(b) -> dict:
    u = b.usage()
    return {"processes": u.processes, "rss_mib": u.rss_mib, "pss_mib": u.memory_mib, "uss_mib": u.uss_mib}


def _diff(a: dict, b: dict) -> dict:
    return {k: a[k] - b.get(k, 0) for k in ("processes", "rss_mib", "pss_mib", "uss_mib")}


@pytest.mark.slow
def test_local_backend_round_trip(runtime, tmp_path):
    name = runtime.name
    work = tmp_path / "work"
    b = LocalBackend(runtime, SS, work, deploy_concurrency=2)
    launched = []
    try:
        evs = list(b.deploy_traditional(["a", "b"]))
        assert [e.ok for e in evs] == [True, True], [e.error for e in evs]
        v = b.verify()
        assert v.ok, v.failures
        u_trad = _usage(b)
        launched += b.pids()
        trad_load = [e.seconds for e in evs]

        hosts = b.start_hosts(1)
        assert hosts[0].ok
        u_host = _usage(b)
        models = [f"m{i:02d}" for i in range(10)]
        t0 = time.monotonic()
        evs = list(b.deploy_mms(models))
        mms_wall = time.monotonic() - t0
        assert sorted(e.model for e in evs if e.ok) == models, [e.error for e in evs if not e.ok]
        v = b.verify()
        assert v.ok and v.expected == 12 and v.listed == 12, v.failures
        u_mms = _usage(b)
        launched += b.pids()

        host = _diff(u_host, u_trad)
        loaded = _diff(u_mms, u_host)
        mms_load = [e.seconds for e in evs]
        print(f"\n[{name}] simple_string, LocalBackend, 2 cores:"
              f"\n  traditional: 2 servers, {u_trad['processes']} processes;"
              f" per model RSS {mib(u_trad['rss_mib'] / 2)}, PSS {mib(u_trad['pss_mib'] / 2)},"
              f" USS {mib(u_trad['uss_mib'] / 2)}; start-to-ready per model"
              f" {np.mean(trad_load):.2f} s (each of {[round(x, 2) for x in trad_load]})"
              f"\n  mms host, empty: {host['processes']} processes, RSS {mib(host['rss_mib'])},"
              f" PSS {mib(host['pss_mib'])}, USS {mib(host['uss_mib'])}; started in {hosts[0].seconds:.2f} s"
              f"\n  mms, 10 models loaded: +{loaded['processes']} processes; per model"
              f" RSS +{mib(loaded['rss_mib'] / 10)}, PSS +{mib(loaded['pss_mib'] / 10)},"
              f" USS +{mib(loaded['uss_mib'] / 10)}; whole host per model"
              f" PSS {mib((host['pss_mib'] + loaded['pss_mib']) / 10)};"
              f" load per model mean {np.mean(mms_load):.3f} s, max {max(mms_load):.3f} s"
              f" (2 concurrent; 10 loads in {mms_wall:.2f} s)")
        assert loaded["processes"] == 10 * runtime.processes_per_model
    finally:
        b.close()
    left = wait_gone(str(work))
    assert left == [], f"{name}: processes left after close(): {left}"
    assert [p for p in set(launched) if psutil.pid_exists(p)
            and psutil.Process(p).status() != psutil.STATUS_ZOMBIE] == []
    assert list(_shm_regions(launched)) == [], "shared memory left in /dev/shm"


# ---------------------------------------------------------------- bert

@pytest.fixture(scope="module")
def bert_workload():
    if not HAVE_BERT:
        pytest.skip("mmslib/workloads/bert.py is not there")
    from mmslib.workloads import bert
    try:
        bert.source_model_dir()
    except DependencyError as e:
        pytest.skip(str(e))
    return bert.make_workload("cpu")


@pytest.mark.slow
def test_bert_model(runtime, bert_workload, tmp_path):
    store = tmp_path / "store"
    runtime.prepare_store(store)
    t0 = time.monotonic()
    runtime.write_model(store, bert_workload, "bert0")
    write_s = time.monotonic() - t0
    with Supervisor(log_dir=tmp_path / "logs") as sup:
        srv = start_server(runtime, sup, store, tmp_path / "servers", "bert", [])
        c = srv["client"]
        base = _mem(srv)
        t0 = time.monotonic()
        r = c.load("bert0")
        load_s = time.monotonic() - t0
        assert r.status_code == 200, r.text
        s = bert_workload.make_sample(np.random.default_rng(0))
        out = c.infer("bert0", s.inputs)
        assert bert_workload.check(out, s.expected)
        assert out["embedding"].shape == (1, 384)
        s2 = bert_workload.make_sample(np.random.default_rng(3))
        out = infer_grpc(srv["grpc"], "bert0", s2.inputs, ["embedding"])
        assert bert_workload.check(out, s2.expected)
        if s2.expected["embedding"].tobytes() != s.expected["embedding"].tobytes():
            assert not bert_workload.check(out, s.expected)  # a different sentence fails the check
        loaded = _mem(srv)
        print(f"\n[{runtime.name}] bert (ONNX, CPU): artifact written in {write_s:.1f} s; load {load_s:.2f} s;"
              f" server empty RSS {mib(base['rss_mib'])}; +1 bert model: RSS"
              f" +{mib(loaded['rss_mib'] - base['rss_mib'])}, PSS +{mib(loaded['pss_mib'] - base['pss_mib'])},"
              f" USS +{mib(loaded['uss_mib'] - base['uss_mib'])}, processes"
              f" {base['processes']} -> {loaded['processes']}")
    assert wait_gone(str(tmp_path)) == []


def _mem(srv) -> dict:
    from mmslib import resources
    return resources.memory_of(tree_pids(srv["proc"].pid))
