"""Your own models (#23 part 2) as a workload: ``workload: repository`` with ``model_repository: PATH``.

The folder is read by :mod:`mmslib.repository` (Triton, MLServer or plain-file layout; each
model's V2 inputs and outputs from its own metadata). An experiment deploying ``models`` models
serves replica ``N`` (``m00000``, ``m00001``, ...; coldstart's ``cycle0``, ...: the number at the
end of the name) as user model ``N mod k`` of the ``k`` in the folder, under the replica's name:

- Triton layout: a copy of ``<model>/`` (config.pbtxt's ``name`` set to the replica's); MLServer
  layout: a copy of ``<model>/`` (model-settings.json's ``name`` set): served as they are;
- plain files: the runtime's own layout (:meth:`mmslib.runtimes.Runtime.write_model`) around a copy
  of the file, served by :class:`RepositoryPredictor` (scikit-learn, LightGBM, ONNX Runtime) or, on
  MLServer, by MLServer's own sklearn / lightgbm runtime (a model-settings.json next to it).

Requests (:meth:`Workload.sample`): per user model, the ``inputs_file``'s V2 request bodies, or
four generated from its metadata (dynamic dimensions from ``shape``), each replica drawing from
its user model's. Answers: outputs, datatypes and fixed dimensions as the metadata declares, and
each (user model, request) answered as it was the first time, by every replica (the models are
taken to be deterministic). The load generator checks the status only (``exact = False``).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np

from ..errors import DeployError, ParamError
from . import Predictor, Sample, TensorSpec, Workload

NAME = "repository"
NEEDS_PARAMS = True            # a workload of the model_repository parameter: WORKLOAD alone serves nothing
PARAMETERS = ("model_repository", "inputs_file", "shape")  # the parameters it reads; model_repository required
CONFIG_FILE = "mmslib-repository.json"
MLSERVER_SETTINGS = "model-settings.json"
POOL = 4                       # generated requests per user model
#: MLServer's own runtimes for plain files (the rest: mmslib's predictor)
MLSERVER_NATIVE = {"sklearn": "mlserver_sklearn.SKLearnModel", "lightgbm": "mlserver_lightgbm.LightGBMModel"}
PACKAGES = ("scikit-learn", "lightgbm", "onnx", "onnxruntime")
_NP = {"BOOL": np.bool_, "UINT8": np.uint8, "INT8": np.int8, "INT32": np.int32, "INT64": np.int64,
       "FP16": np.float16, "FP32": np.float32, "FP64": np.float64}


def replica_index(model: str) -> int:
    """The number a model's name ends with (``m00007`` -> 7, ``cycle2`` -> 2); 0 without one."""
    m = re.search(r"(\d+)$", model or "")
    return int(m.group(1)) if m else 0


# ---------------------------------------------------------------- serving a plain file

class RepositoryPredictor(Predictor):
    """A plain model file (scikit-learn, LightGBM, ONNX) loaded from its artifact directory."""

    def __init__(self, model_dir: Path):
        model_dir = Path(model_dir)
        path = model_dir / CONFIG_FILE
        if not path.is_file():
            raise DeployError(f"{model_dir}: no {CONFIG_FILE}; not a repository model's artifact")
        self.config = json.loads(path.read_text())
        self.inputs = [TensorSpec(**t) for t in self.config["inputs"]]
        self.outputs = [TensorSpec(**t) for t in self.config["outputs"]]
        f = model_dir / self.config["file"]
        fmt = self.config["format"]
        if fmt == "sklearn":
            import joblib
            est = joblib.load(f)
            self._run = lambda x: {self.outputs[0].name: est.predict(self._one(x)).reshape(-1, 1)}
        elif fmt == "lightgbm":
            import lightgbm as lgb
            booster = lgb.Booster(model_file=str(f))
            self._run = lambda x: {self.outputs[0].name: np.asarray(booster.predict(self._one(x))).reshape(-1, 1)}
        elif fmt == "onnx":
            import onnxruntime as ort
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = max(1, int(os.environ.get("MMSLIB_ORT_THREADS", "1") or 1))
            opts.inter_op_num_threads = 1
            opts.log_severity_level = 3
            sess = ort.InferenceSession(str(f), opts, providers=["CPUExecutionProvider"])
            names = [t.name for t in self.outputs]
            self._run = lambda x: dict(zip(names, sess.run(names, {
                t.name: np.asarray(x[t.name], dtype=_NP.get(t.datatype, np.float32)) for t in self.inputs})))
        else:
            raise DeployError(f"{model_dir}: no predictor for format {fmt!r}")

    def _one(self, inputs: Dict[str, np.ndarray]) -> np.ndarray:
        t = self.inputs[0]
        if t.name not in inputs:
            raise ValueError(f"missing input {t.name!r} (got {sorted(inputs)})")
        x = np.asarray(inputs[t.name], dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != t.shape[-1]:
            raise ValueError(f"input {t.name!r} must be FP32 [N, {t.shape[-1]}], got shape {list(x.shape)}")
        return x

    def predict(self, inputs: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        missing = [t.name for t in self.inputs if t.name not in inputs]
        if missing:
            raise ValueError(f"missing inputs {missing} (got {sorted(inputs)})")
        out = self._run(inputs)
        types = {t.name: t.datatype for t in self.outputs}
        return {k: (np.asarray(v).astype(object) if types.get(k) == "BYTES" else
                    np.asarray(v, dtype=_NP.get(types.get(k), None))) for k, v in out.items()}


def _plain_payload(m, model_dir: Path) -> None:
    model_dir = Path(model_dir)
    tmp = model_dir / (m.path.name + ".part")
    shutil.copyfile(m.path, tmp)  # a real copy (own inode), as a downloaded model would be
    os.replace(tmp, model_dir / m.path.name)
    config = {"source_model": m.name, "format": m.format, "file": m.path.name,
              "inputs": [t.to_dict() for t in m.inputs], "outputs": [t.to_dict() for t in m.outputs]}
    (model_dir / CONFIG_FILE).write_text(json.dumps(config, indent=1))
    if m.format in MLSERVER_NATIVE:  # read by the mlserver runtime only (its own sklearn / lightgbm runtime)
        settings = {"name": model_dir.name, "implementation": MLSERVER_NATIVE[m.format],
                    "parameters": {"uri": f"./{m.path.name}"},
                    "inputs": config["inputs"], "outputs": config["outputs"]}
        (model_dir / MLSERVER_SETTINGS).write_text(json.dumps(settings, indent=1))


def _plain_workload(m) -> Workload:
    """One plain user model as a workload the runtimes lay out as usual (Triton: its tensors in config.pbtxt)."""
    return Workload(name=NAME, inputs=list(m.inputs), outputs=list(m.outputs), memory_estimate_bytes=1 << 20,
                    write_payload=lambda d: _plain_payload(m, d), load_predictor=RepositoryPredictor,
                    make_sample=_unconfigured, check=_unconfigured, artifact_bytes=m.bytes)


# ---------------------------------------------------------------- native layouts: a renamed copy

def _renamed_triton(folder: Path, name: str) -> None:
    from ..repository import renamed_config
    cfg = folder / "config.pbtxt"
    cfg.write_text(renamed_config(cfg.read_text(), name))


def _renamed_mlserver(folder: Path, name: str) -> None:
    f = folder / MLSERVER_SETTINGS
    settings = json.loads(f.read_text())
    settings["name"] = name
    f.write_text(json.dumps(settings, indent=1))


RENAME = {"triton": _renamed_triton, "mlserver": _renamed_mlserver}


def copy_native(m, store: Path, name: str) -> Path:
    """A copy of user model ``m``'s folder as ``store/name``, its declared name set to ``name``
    (written beside and renamed into place, so a half-written copy is never seen)."""
    target = store / name
    store.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=store))
    try:
        shutil.copytree(m.path, tmp / "m", ignore=shutil.ignore_patterns("__pycache__", ".*"))
        RENAME[m.layout](tmp / "m", name)
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp / "m", target)  # the runtime sees no folder or a whole one
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


# ---------------------------------------------------------------- the workload

def _unconfigured(*_a, **_k):
    raise ParamError("model_repository", None, "a folder of your models (workload 'repository' serves "
                                               "the models of model_repository)")


class _Expected(dict):
    """What a request's answer must be: the declared outputs, and the first answer to the same
    request of the same user model (``key``)."""

    def __init__(self, key, spec):
        super().__init__()
        self.key, self.spec = key, spec


def make_workload(models: Sequence, pools: List[List[Dict[str, np.ndarray]]],
                  description: str = "") -> Workload:
    """The workload serving ``models`` (:func:`mmslib.repository.scan`), round-robin over them,
    with ``pools[i]``: the requests of model ``i``."""
    from ..repository import answer_mismatch, same_answer
    models = list(models)
    k = len(models)
    plain = {i: _plain_workload(m) for i, m in enumerate(models) if m.layout == "plain"}
    first: Dict[tuple, Dict[str, np.ndarray]] = {}
    lock = threading.Lock()

    def user(model: str) -> int:
        return replica_index(model) % k

    def sample_for(model: str, rng: np.random.Generator) -> Sample:
        i = user(model)
        j = int(rng.integers(len(pools[i])))
        return Sample(inputs=pools[i][j], expected=_Expected((i, j), models[i].outputs))

    def check(outputs: Dict[str, np.ndarray], expected) -> bool:
        if not isinstance(expected, _Expected):
            return False
        if answer_mismatch(outputs, expected.spec):
            return False
        with lock:
            was = first.setdefault(expected.key, {n: np.array(a, copy=True) for n, a in outputs.items()})
        return same_answer(was, outputs)

    def lay_out(runtime, store: Path, model: str) -> Path:
        i = user(model)
        if i in plain:
            return runtime.write_model(store, plain[i], model)
        return copy_native(models[i], Path(store), model)

    def facts_for(model: str) -> dict:
        m = models[user(model)]
        return {"family": m.format, "artifact_bytes": int(m.bytes), "source_model": m.name}

    biggest = max(m.bytes for m in models)
    mem = (1 << 20) + biggest
    names = ", ".join(f"{m.name} ({m.format})" for m in models[:4]) + (f", +{k - 4} more" if k > 4 else "")
    processes = any(m.layout == "triton" for m in models)
    return Workload(
        name=NAME,
        inputs=list(models[0].inputs or []), outputs=list(models[0].outputs or []),
        memory_estimate_bytes=-(-mem // (1 << 20)) << 20,  # 1 MiB + the biggest artifact, whole MiB
        write_payload=_unconfigured, load_predictor=RepositoryPredictor,
        make_sample=lambda rng: sample_for("", rng), check=check,
        extra={"family": models[0].format, "models": [m.name for m in models],
               "formats": [m.format for m in models], "bytes": [int(m.bytes) for m in models],
               "interfaces": [m.interface() for m in models]},
        description=description or f"your models ({k}: {names}), served round-robin",
        artifact_bytes=int(round(sum(m.bytes for m in models) / k)),
        exact=False,  # answers unknown ahead: verify() checks them against the metadata and first answers
        packages=PACKAGES,
        load_cycles_default=200 if biggest > (8 << 20) or processes else 1000,
        sample_for=sample_for, facts_for=facts_for, lay_out=lay_out,
    )


_cache: Dict[tuple, Workload] = {}
_cache_lock = threading.Lock()


def _signature(path: Path) -> tuple:
    """Changes when a file of the repository does (name, size, mtime)."""
    root = Path(path)
    if not root.is_dir():
        return ()
    return tuple(sorted((str(f.relative_to(root)), f.stat().st_size, f.stat().st_mtime_ns)
                        for f in root.rglob("*") if f.is_file()))


def from_params(p) -> Workload:
    """The workload of ``p.model_repository`` on ``p.runtime`` (``p.inputs_file``, ``p.shape``,
    ``p.seed``). Every problem is a ParamError, before anything starts."""
    from .. import repository as repo
    path = getattr(p, "model_repository", None)
    if path in (None, ""):
        _unconfigured()
    runtimes = _runtimes(p)
    inputs_file = getattr(p, "inputs_file", None) or None
    shape = getattr(p, "shape", None)
    seed = int(getattr(p, "seed", 0) or 0)
    key = (str(Path(str(path)).expanduser().resolve()), tuple(runtimes), str(inputs_file),
           json.dumps(repo.parse_shape(shape), sort_keys=True), seed, _signature(Path(str(path)).expanduser()),
           _signature(Path(str(inputs_file)).parent) if inputs_file else ())
    with _cache_lock:
        if key in _cache:
            w = _cache[key]
            return w
    models = repo.scan(path)
    for param, runtime in runtimes:
        repo.check_runtime(models, runtime, param)
    repo.check_sendable(models, path)
    pools = repo.request_pools(models, inputs_file, shape, seed, POOL)
    w = make_workload(models, pools)
    with _cache_lock:
        _cache[key] = w
    return w


def _runtimes(p) -> List[tuple]:
    """(parameter, runtime) pairs the experiment serves the models on: ``runtime``; coldstart:
    ``runtimes`` for its load_unload and churn sections, ``runtime`` for its lazy section; none on a
    cluster backend (the cluster's serving runtime loads them from ``storage_uri``: the backend checks)."""
    from ..backends import describe
    if describe(getattr(p, "backend", None) or "local")["on_cluster"]:
        return []
    sections = getattr(p, "sections", None)
    if sections is None:
        return [("runtime", getattr(p, "runtime", "kserve"))]
    out = [("runtimes", r) for r in (getattr(p, "runtimes", None) or ()) if {"load_unload", "churn"} & set(sections)]
    return out + ([("runtime", p.runtime)] if "lazy" in sections else [])


#: Without ``model_repository``: what the plug-in is (for reports and the recorded versions) and
#: the predictor the servers load plain files with; it has no models to serve.
WORKLOAD = Workload(
    name=NAME, inputs=[], outputs=[], memory_estimate_bytes=1 << 20,
    write_payload=_unconfigured, load_predictor=RepositoryPredictor, make_sample=_unconfigured,
    check=_unconfigured,
    description="your own models (model_repository): Triton, MLServer or plain-file layout, served as they are",
    artifact_bytes=0, exact=False, packages=PACKAGES,
)
