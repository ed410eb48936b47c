"""Bring your own model repository (#23 part 2): what is in a user's folder, which
runtime can serve each model, and the requests to send it.

A repository is a folder in one of three layouts, recognised in this order:

``triton``    ``<model>/config.pbtxt`` (a Triton model repository). Served by the
              triton runtime; this Triton (nvidia-pytriton's) has the python backend only.
``mlserver``  ``<model>/model-settings.json`` (MLServer's layout). Served by the mlserver
              runtime with the implementation the settings name.
``plain``     model files at the top (or one per sub-folder): ``*.joblib`` / ``*.pkl``
              (scikit-learn), ``*.txt`` (LightGBM), ``*.json`` / ``*.ubj`` (XGBoost),
              ``*.onnx`` (ONNX Runtime). The model's name is the file's stem.

:func:`scan` reads the folder and each model's interface (V2 tensors: name,
datatype, shape with -1 for a dynamic dimension) from its own metadata:
config.pbtxt's input/output, model-settings.json's inputs/outputs, or the model
file (a scikit-learn model's ``n_features_in_``, LightGBM's ``num_feature()``,
an ONNX graph's inputs). :func:`check_runtime` says, before anything starts,
whether the chosen runtime can serve every model, naming the model and the
runtimes that could. :func:`generated_inputs` makes a request body from the
tensors (dynamic dimensions from ``shape``, as perf_analyzer's ``--shape``);
:func:`read_inputs_file` reads a user's file of V2 request bodies and checks each
against the model's tensors; :func:`request_pools` gives each model the requests an
experiment sends it (the file's, or generated), :func:`answer_mismatch` and
:func:`same_answer` judge its answers. Every problem is a :class:`ParamError` naming the
parameter (``model_repository``, ``runtime``, ``inputs_file``, ``shape``).

The experiments serve a repository through the ``repository`` workload
(:mod:`mmslib.workloads.repository`: ``workload: repository``, ``model_repository: PATH``).
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from .errors import ParamError
from .workloads import TensorSpec

LAYOUTS = ("triton", "mlserver", "plain")
#: file suffix -> (format, the runtimes that serve it here)
PLAIN_FORMATS = {
    ".joblib": ("sklearn", ("kserve", "triton", "mlserver")),
    ".pkl": ("sklearn", ("kserve", "triton", "mlserver")),
    ".txt": ("lightgbm", ("kserve", "triton", "mlserver")),
    ".onnx": ("onnx", ("kserve", "triton", "mlserver")),
    ".json": ("xgboost", ()),
    ".ubj": ("xgboost", ()),
}
TRITON_BACKENDS = ("python",)   # what the bundled tritonserver has
V2_DATATYPES = ("BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
                "FP16", "FP32", "FP64", "BYTES")
_TRITON_TYPE = {"TYPE_" + ("STRING" if d == "BYTES" else d): d for d in V2_DATATYPES}
_ONNX_TYPE = {1: "FP32", 2: "UINT8", 3: "INT8", 4: "UINT16", 5: "INT16", 6: "INT32", 7: "INT64", 8: "BYTES",
              9: "BOOL", 10: "FP16", 11: "FP64", 12: "UINT32", 13: "UINT64"}
_NP = {"BOOL": np.bool_, "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32, "UINT64": np.uint64,
       "INT8": np.int8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64, "FP16": np.float16,
       "FP32": np.float32, "FP64": np.float64}


@dataclass
class RepoModel:
    """One model of a user's repository."""

    name: str
    layout: str                  # triton | mlserver | plain
    format: str                  # triton:<backend> | mlserver:<implementation> | sklearn | lightgbm | onnx | xgboost
    path: Path                   # its folder (triton, mlserver) or file (plain)
    runtimes: tuple              # runtimes here that can serve it
    inputs: Optional[List[TensorSpec]] = None   # None: its metadata does not say
    outputs: Optional[List[TensorSpec]] = None
    why_not: str = ""            # why no runtime can serve it, when none can
    extra: dict = field(default_factory=dict)
    bytes: int = 0               # what its files weigh (its folder, or its file)

    def interface(self) -> tuple:
        """Its inputs as (name, datatype, shape) tuples: models alike take the same requests."""
        return tuple((t.name, t.datatype, tuple(t.shape)) for t in self.inputs or ())


def folder_bytes(path: Path) -> int:
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.name.startswith("."))


def _bad(path, allowed: str) -> ParamError:
    return ParamError("model_repository", str(path), allowed)


def scan(path) -> List[RepoModel]:
    """The models of the repository at ``path`` (ParamError: missing folder, unknown layout, unreadable model)."""
    root = Path(str(path)).expanduser()
    if not root.exists():
        raise _bad(path, "an existing folder (this path does not exist)")
    if not root.is_dir():
        raise _bad(path, "a folder holding models (this is a file)")
    subdirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    triton = [d for d in subdirs if (d / "config.pbtxt").is_file()]
    mls = [d for d in subdirs if (d / "model-settings.json").is_file()]
    if triton and mls:
        raise _bad(path, f"one layout: it mixes Triton ({triton[0].name}/config.pbtxt) and MLServer "
                         f"({mls[0].name}/model-settings.json) models")
    if triton or mls:
        models = [_triton_model(d) for d in triton] or [_mlserver_model(d) for d in mls]
        for m in models:
            m.bytes = folder_bytes(m.path)
        return models
    files = [f for f in sorted(root.iterdir()) if f.is_file() and f.suffix in PLAIN_FORMATS]
    for d in subdirs:  # one model file per sub-folder: the folder names it
        inside = [f for f in sorted(d.iterdir()) if f.is_file() and f.suffix in PLAIN_FORMATS]
        if len(inside) == 1:
            files.append(inside[0])
    if not files:
        raise _bad(path, "a model repository: Triton (<model>/config.pbtxt), MLServer "
                         "(<model>/model-settings.json) or model files (" + ", ".join(
                             "*" + s for s in PLAIN_FORMATS) + "); found none of these")
    models = [_plain_model(f, name=f.parent.name if f.parent != root else f.stem) for f in files]
    for m in models:
        m.bytes = folder_bytes(m.path)
    names = [m.name for m in models]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise _bad(path, f"one file per model name ({dup[0]!r} is given twice)")
    return models


# ---------------------------------------------------------------- triton

def _top_level(text: str):
    """(line, depth) for each line of a config.pbtxt: depth 0 is the model's own fields."""
    depth = 0
    for line in text.splitlines(keepends=True):
        yield line, depth
        code = re.sub(r'"[^"]*"|#.*', "", line)
        depth += code.count("{") + code.count("[") - code.count("}") - code.count("]")


def _pbtxt_field(text: str, key: str) -> Optional[str]:
    """A field of the model itself (not of an input, output or instance group)."""
    for line, depth in _top_level(text):
        m = re.match(rf'\s*{key}\s*:\s*"?([^"\n]*)"?', line)
        if depth == 0 and m:
            return m.group(1).strip()
    return None


def renamed_config(text: str, name: str) -> str:
    """config.pbtxt with the model's ``name`` set to ``name`` (Triton wants the folder's name)."""
    out, done = [], False
    for line, depth in _top_level(text):
        m = re.match(r'(\s*name\s*:\s*)"[^"]*"(.*)$', line, re.S)
        if depth == 0 and m and not done:
            line, done = f'{m.group(1)}"{name}"{m.group(2)}', True
        out.append(line)
    return "".join(out) if done else f'name: "{name}"\n' + text


def _pbtxt_tensors(text: str, kind: str, batch: bool, where: Path) -> List[TensorSpec]:
    m = re.search(rf"^\s*{kind}\s*\[(.*?)^\s*\]", text, re.M | re.S)
    if not m:
        return []
    out = []
    for block in re.findall(r"\{(.*?)\}", m.group(1), re.S):
        name = re.search(r'name\s*:\s*"([^"]+)"', block)
        dt = re.search(r"data_type\s*:\s*(\w+)", block)
        dims = re.search(r"dims\s*:\s*\[([^\]]*)\]", block)
        if not (name and dt and dims) or dt.group(1) not in _TRITON_TYPE:
            raise _bad(where, f"a config.pbtxt whose {kind} tensors each have a name, a data_type "
                              f"({', '.join(_TRITON_TYPE)}) and dims")
        shape = [int(x) for x in dims.group(1).replace(",", " ").split()]
        out.append(TensorSpec(name.group(1), _TRITON_TYPE[dt.group(1)], ([-1] if batch else []) + shape))
    return out


def _triton_model(d: Path) -> RepoModel:
    text = (d / "config.pbtxt").read_text()
    backend = _pbtxt_field(text, "backend") or _pbtxt_field(text, "platform") or "?"
    batch = int(_pbtxt_field(text, "max_batch_size") or 0) > 0
    ok = backend in TRITON_BACKENDS
    return RepoModel(
        name=_pbtxt_field(text, "name") or d.name, layout="triton", format=f"triton:{backend}", path=d,
        runtimes=("triton",) if ok else (),
        inputs=_pbtxt_tensors(text, "input", batch, d / "config.pbtxt"),
        outputs=_pbtxt_tensors(text, "output", batch, d / "config.pbtxt"),
        why_not="" if ok else (f"Triton backend {backend!r}: this Triton has the "
                               f"{', '.join(TRITON_BACKENDS)} backend only; give the model file as a plain "
                               "artifact (e.g. model.onnx) for kserve | triton | mlserver"))


# ---------------------------------------------------------------- mlserver

def _settings_tensors(items, where: Path) -> Optional[List[TensorSpec]]:
    if not items:
        return None
    try:
        return [TensorSpec(t["name"], t["datatype"], [int(x) for x in t["shape"]]) for t in items]
    except (KeyError, TypeError, ValueError):
        raise _bad(where, "a model-settings.json whose inputs/outputs have name, datatype and shape") from None


def _mlserver_model(d: Path) -> RepoModel:
    f = d / "model-settings.json"
    try:
        s = json.loads(f.read_text())
    except ValueError as e:
        raise _bad(f, f"valid JSON ({e})") from None
    impl = s.get("implementation") or "?"
    return RepoModel(name=d.name, layout="mlserver", format=f"mlserver:{impl}", path=d, runtimes=("mlserver",),
                     inputs=_settings_tensors(s.get("inputs"), f), outputs=_settings_tensors(s.get("outputs"), f),
                     extra={"implementation": impl})


# ---------------------------------------------------------------- plain files

def _plain_model(f: Path, name: str) -> RepoModel:
    fmt, runtimes = PLAIN_FORMATS[f.suffix]
    m = RepoModel(name=name, layout="plain", format=fmt, path=f, runtimes=runtimes)
    try:
        if fmt == "sklearn":
            import joblib
            est = joblib.load(f)
            n = getattr(est, "n_features_in_", None)
            if n is None or not hasattr(est, "predict"):
                raise ValueError("not a fitted scikit-learn model (no n_features_in_ / predict)")
            out = "FP64"
            classes = getattr(est, "classes_", None)
            if classes is not None:  # a classifier: predict answers its labels
                kind = np.asarray(classes).dtype.kind
                out = "INT64" if kind in "iub" else "FP64" if kind == "f" else "BYTES"
            m.inputs = [TensorSpec("input", "FP32", [-1, int(n)])]
            m.outputs = [TensorSpec("predict", out, [-1, 1])]
        elif fmt == "lightgbm":
            import lightgbm as lgb
            n = lgb.Booster(model_file=str(f)).num_feature()
            m.inputs = [TensorSpec("input", "FP32", [-1, int(n)])]
            m.outputs = [TensorSpec("predict", "FP64", [-1, 1])]
        elif fmt == "onnx":
            import onnx
            g = onnx.load(str(f), load_external_data=False).graph
            init = {i.name for i in g.initializer}

            def spec(v):
                t = v.type.tensor_type
                dims = [d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim]
                return TensorSpec(v.name, _ONNX_TYPE.get(t.elem_type, "FP32"), dims)
            m.inputs = [spec(v) for v in g.input if v.name not in init]
            m.outputs = [spec(v) for v in g.output]
        else:
            m.why_not = "XGBoost models need the xgboost package, which no environment here has"
    except ParamError:
        raise
    except Exception as e:  # a file of that suffix that its library cannot read
        raise _bad(f, f"a readable {fmt} model ({type(e).__name__}: {e})") from None
    return m


# ---------------------------------------------------------------- runtimes

def check_runtime(models: Sequence[RepoModel], runtime: str, param: str = "runtime") -> None:
    """ParamError (on ``param``) naming the first model ``runtime`` cannot serve, and the runtimes that could."""
    for m in models:
        if runtime in m.runtimes:
            continue
        could = " | ".join(m.runtimes)
        allowed = f"{could} (model {m.name!r}, {m.format}, is served by {could} only)" if could else \
            f"none can serve model {m.name!r} ({m.format}): {m.why_not}"
        raise ParamError(param, runtime, allowed)


# ---------------------------------------------------------------- requests

def _concrete(t: TensorSpec, shape: Optional[Dict[str, List[int]]]) -> List[int]:
    given = (shape or {}).get(t.name)
    if given is not None:
        ok = len(given) == len(t.shape) and all(g > 0 and (d < 0 or d == g) for g, d in zip(given, t.shape))
        if not ok:
            raise ParamError("shape", {t.name: given}, f"a shape for input {t.name!r} that fits {t.shape} "
                                                       "(-1: any size > 0)")
        return list(given)
    return [1 if d < 0 else d for d in t.shape]


#: V2 datatypes mmslib's codec (:mod:`mmslib.v2`) sends and reads back.
SENDABLE = ("BOOL", "UINT8", "INT8", "INT32", "INT64", "FP16", "FP32", "FP64", "BYTES")


def check_sendable(models: Sequence[RepoModel], path) -> None:
    """ParamError naming a model whose inputs or outputs have a datatype mmslib cannot send or read."""
    for m in models:
        for kind, ts in (("input", m.inputs), ("output", m.outputs)):
            for t in ts or ():
                if t.datatype not in SENDABLE:
                    raise _bad(path, f"models whose tensors mmslib sends and reads ({', '.join(SENDABLE)}): "
                                     f"model {m.name!r} {kind} {t.name!r} is {t.datatype}")


def generated_arrays(tensors: Sequence[TensorSpec], rng: np.random.Generator,
                     shape: Optional[Dict[str, List[int]]] = None) -> Dict[str, np.ndarray]:
    """One request's inputs for ``tensors``: dynamic dimensions 1 unless ``shape`` names them;
    floats ~ N(0, 1), integers 0..9, booleans, short strings."""
    arrays = {}
    for t in tensors:
        dims = _concrete(t, shape)
        if t.datatype == "BYTES":
            arrays[t.name] = np.array([f"s{int(x)}".encode() for x in rng.integers(0, 1000, size=int(np.prod(dims)))],
                                      dtype=object).reshape(dims)
        elif t.datatype == "BOOL":
            arrays[t.name] = rng.integers(0, 2, size=dims).astype(bool)
        elif t.datatype.startswith("FP"):
            arrays[t.name] = rng.standard_normal(dims).astype(_NP[t.datatype])
        else:
            arrays[t.name] = rng.integers(0, 10, size=dims).astype(_NP[t.datatype])
    return arrays


def generated_inputs(tensors: Sequence[TensorSpec], rng: np.random.Generator,
                     shape: Optional[Dict[str, List[int]]] = None) -> dict:
    """A V2 request body for ``tensors`` (:func:`generated_arrays`)."""
    from .v2 import request_body
    return request_body(generated_arrays(tensors, rng, shape))


_SHAPE_ALLOWED = ('input shapes as perf_analyzer\'s --shape: "NAME:D1,D2" (several separated by spaces or ";"), '
                  "a mapping {NAME: [D1, D2]}, or None")


def parse_shape(value) -> Optional[Dict[str, List[int]]]:
    """The ``shape`` parameter: None, ``"x:4,3"``, ``"x:4,3 y:2"``, ``["x:4,3"]`` or ``{"x": [4, 3]}``."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "null", "~")):
        return None
    items = []
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, (str, list, tuple)):
        parts = re.split(r"[;\s]+", value.strip()) if isinstance(value, str) else list(value)
        for part in parts:
            if not isinstance(part, str) or part.count(":") != 1:
                raise ParamError("shape", value, _SHAPE_ALLOWED)
            name, dims = part.split(":")
            items.append((name.strip(), dims))
    else:
        raise ParamError("shape", value, _SHAPE_ALLOWED)
    out = {}
    for name, dims in items:
        if isinstance(dims, str):
            dims = [d for d in re.split(r"[,x\s]+", dims.strip()) if d]
        try:
            dims = [int(d) for d in dims]
        except (TypeError, ValueError):
            raise ParamError("shape", value, _SHAPE_ALLOWED) from None
        if not name or not dims or any(d < 1 for d in dims) or name in out:
            raise ParamError("shape", value, _SHAPE_ALLOWED + " (each input once, every dimension >= 1)")
        out[str(name)] = dims
    return out or None


def _load_inputs(path):
    p = Path(str(path)).expanduser()
    if not p.is_file():
        raise ParamError("inputs_file", str(path), "an existing file of V2 request bodies (JSON)")
    text = p.read_text()
    try:
        return json.loads(text)
    except ValueError:
        try:
            return [json.loads(ln) for ln in text.splitlines() if ln.strip()]
        except ValueError as e:
            raise ParamError("inputs_file", str(path), f"JSON: a list of V2 request bodies, or JSON lines ({e})") from None


def read_inputs_file(path, model: RepoModel) -> List[dict]:
    """The V2 request bodies in ``path`` for ``model``, each checked against its inputs: a JSON
    list of bodies, ``{"requests": [...]}``, one body, JSON lines, or, per model,
    ``{"models": {"<model>": [...] | {"requests": [...]}}}``."""
    data = _load_inputs(path)
    if isinstance(data, dict) and isinstance(data.get("models"), dict):
        per = data["models"]
        if model.name not in per:
            raise ParamError("inputs_file", str(path), f'requests for model {model.name!r} under "models" '
                                                       f"(the file names {', '.join(sorted(per)) or 'none'})")
        data = per[model.name]
    if isinstance(data, dict):
        data = data.get("requests", [data])
    if not isinstance(data, list) or not data or not all(isinstance(b, dict) for b in data):
        raise ParamError("inputs_file", str(path), 'a non-empty list of V2 request bodies ({"inputs": [...]})')
    for i, body in enumerate(data):
        why = _mismatch(body, model.inputs)
        if why:
            raise ParamError("inputs_file", str(path), f"requests that fit model {model.name!r}: request {i}: {why}")
    return data


def body_arrays(body: dict) -> Dict[str, np.ndarray]:
    """A (checked) V2 request body's inputs as numpy arrays."""
    out = {}
    for t in body["inputs"]:
        flat = _flat(t["data"])
        if t["datatype"] == "BYTES":
            arr = np.array([x.encode() if isinstance(x, str) else bytes(x) for x in flat], dtype=object)
        else:
            arr = np.asarray(flat, dtype=_NP[t["datatype"]])
        out[t["name"]] = arr.reshape(t["shape"])
    return out


def request_pools(models: Sequence[RepoModel], inputs_file=None, shape=None, seed: int = 0,
                  pool: int = 4) -> List[List[Dict[str, np.ndarray]]]:
    """Per model, the requests to send it (inputs as arrays): the inputs file's, or ``pool``
    generated from its metadata (``shape`` for dynamic dimensions). ParamError: an inputs file
    that does not fit, a ``shape`` naming no input or not fitting one, a model whose metadata
    declares no inputs (then an inputs file is needed)."""
    shape = parse_shape(shape)
    if inputs_file is not None:
        if shape:
            raise ParamError("shape", shape, "None with inputs_file (the file's requests carry their shapes)")
        for m in models:
            for body in read_inputs_file(inputs_file, m):
                for t in body["inputs"]:
                    if t["datatype"] not in SENDABLE:
                        raise ParamError("inputs_file", str(inputs_file),
                                         f"inputs of datatypes mmslib sends ({', '.join(SENDABLE)}): "
                                         f"input {t['name']!r} is {t['datatype']}")
        return [[body_arrays(b) for b in read_inputs_file(inputs_file, m)] for m in models]
    names = {t.name for m in models for t in m.inputs or ()}
    for name in shape or {}:
        if name not in names:
            raise ParamError("shape", {name: shape[name]}, "shapes of the models' inputs: " + ", ".join(sorted(names)))
    out = []
    for i, m in enumerate(models):
        if m.inputs is None:
            raise ParamError("inputs_file", None, f"a file of V2 request bodies: model {m.name!r} declares no inputs "
                                                  f"in its metadata ({m.layout} layout), so none can be generated")
        rng = np.random.default_rng([seed, i])
        out.append([generated_arrays(m.inputs, rng, shape) for _ in range(pool)])
    return out


# ---------------------------------------------------------------- answers

def answer_mismatch(outputs: Dict[str, np.ndarray], spec: Optional[Sequence[TensorSpec]]) -> str:
    """Why ``outputs`` (decoded) do not fit the declared ``spec`` (names, datatypes, fixed
    dimensions); "" when they do or the metadata declares no outputs."""
    if not spec:
        return ""
    want = {t.name: t for t in spec}
    if set(outputs) != set(want):
        return f"outputs {sorted(outputs)}, the model declares {sorted(want)}"
    for name, t in want.items():
        a = np.asarray(outputs[name])
        dt = np.dtype(object) if t.datatype == "BYTES" else np.dtype(_NP[t.datatype])
        if a.dtype != dt and not (t.datatype == "BYTES" and a.dtype.kind in "OSU"):
            return f"output {name!r} is {a.dtype}, the model declares {t.datatype}"
        if a.ndim != len(t.shape) or any(d >= 0 and g != d for g, d in zip(a.shape, t.shape)):
            return f"output {name!r} has shape {list(a.shape)}, the model declares {t.shape}"
    return ""


def same_answer(a: Dict[str, np.ndarray], b: Dict[str, np.ndarray], rtol: float = 1e-6) -> bool:
    """Whether two answers to one request agree (floats to ``rtol``, the rest exactly)."""
    if set(a) != set(b):
        return False
    for k in a:
        x, y = np.asarray(a[k]), np.asarray(b[k])
        if x.shape != y.shape:
            return False
        if x.dtype.kind == "f" and y.dtype.kind == "f":
            if not np.allclose(x, y, rtol=rtol, atol=rtol, equal_nan=True):
                return False
        elif not np.array_equal(x, y):
            return False
    return True


def _mismatch(body: dict, tensors: Optional[Sequence[TensorSpec]]) -> str:
    ins = body.get("inputs")
    if not isinstance(ins, list) or not ins:
        return 'no "inputs" list'
    by_name = {}
    for t in ins:
        if not isinstance(t, dict) or not {"name", "datatype", "shape", "data"} <= set(t):
            return 'each input needs "name", "datatype", "shape" and "data"'
        by_name[t["name"]] = t
    if tensors is None:  # the model's metadata says nothing: the body must at least be well formed
        tensors = [TensorSpec(t["name"], t["datatype"], [-1] * len(t["shape"])) for t in ins]
    want = {t.name: t for t in tensors}
    if set(by_name) != set(want):
        return f"inputs {sorted(by_name)}, the model's are {sorted(want)}"
    for name, t in want.items():
        got = by_name[name]
        if got["datatype"] != t.datatype:
            return f"input {name!r} is {got['datatype']}, the model's is {t.datatype}"
        shape = got["shape"]
        if not isinstance(shape, list) or len(shape) != len(t.shape) or any(
                not isinstance(g, int) or g < 1 or (d >= 0 and g != d) for g, d in zip(shape, t.shape)):
            return f"input {name!r} has shape {shape}, the model's is {t.shape} (-1: any size)"
        n = len(_flat(got["data"]))
        if n != math.prod(shape):
            return f"input {name!r} has {n} values for shape {shape} ({math.prod(shape)})"
    return ""


def _flat(x) -> list:
    if isinstance(x, list):
        out = []
        for y in x:
            out.extend(_flat(y))
        return out
    return [x]
