"""What the realistic model families share (sklearn_forest, lightgbm_trees, onnx_mlp).

A family is a workload with size knobs: a model trained (or, for the MLP, drawn)
offline from synthetic data with a fixed seed, so the same knobs give the same
model, byte for byte. Nothing is downloaded.

V2 interface (every family, every runtime)
    input  ``input``    FP32 [1, n_features]   one row of features
    output ``predict``  FP32/FP64 [1, 1]       the model's prediction for that row
MLServer's own sklearn and lightgbm runtimes answer exactly this (``predict``,
a 1-D prediction as [N, 1]), so a family model is served by them unchanged.

Artifact (one directory per model, a real copy of the model file)
    ``model.joblib`` | ``model.txt`` | ``model.onnx``   the model, as its library writes it
    ``mmslib-family.json``    family, knobs, tensors, file, the libraries' versions
    ``model-settings.json``   MLServer's settings where MLServer has a runtime for
                              the format (mlserver_sklearn.SKLearnModel,
                              mlserver_lightgbm.LightGBMModel); the mlserver runtime
                              then serves the model with it instead of mmslib's predictor

Build cache: a model is built once per knobs and library versions into
``$MMSLIB_FAMILY_CACHE`` or ``${XDG_CACHE_HOME:-~/.cache}/mmslib/families/<key>/``
(built in a temporary folder, renamed into place atomically), and every model
of a run copies it. Answers: ``make_sample`` draws a feature row and predicts it
with the cached model loaded back from its file (the same code path a server
runs); ``check`` compares element by element, to ``rtol`` (1e-9 for the trees'
float64 sums, 1e-5 for the MLP's float32), and the load generator checks each
request (``exact``).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple

import numpy as np

from ..errors import DeployError, ParamError
from . import Predictor, Sample, TensorSpec, Workload

CONFIG_FILE = "mmslib-family.json"
MLSERVER_SETTINGS = "model-settings.json"
INPUT = "input"
OUTPUT = "predict"
FORMAT = "mmslib-family-v1"  # bump when what a build writes changes
TRAIN_SEED = 0

_NP = {"FP32": np.float32, "FP64": np.float64}


def version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "none"


def cache_root() -> Path:
    if os.environ.get("MMSLIB_FAMILY_CACHE"):
        return Path(os.environ["MMSLIB_FAMILY_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mmslib" / "families"


def synthetic_data(n_samples: int, n_features: int, seed: int = TRAIN_SEED) -> Tuple[np.ndarray, np.ndarray]:
    """Features ~ N(0, 1) (float32) and a smooth, noisy target of them (float64)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, n_features)).astype(np.float32)
    k = min(3, n_features)
    y = np.sin(X[:, 0]) + (X[:, 1] * X[:, k - 1] if n_features > 1 else 0.0) \
        + 0.5 * X[:, :k].sum(axis=1) + 0.1 * rng.standard_normal(n_samples)
    return X, y.astype(np.float64)


@dataclass(frozen=True)
class Family:
    """One family: how to build a model from knobs and how to load it back."""

    name: str
    model_file: str
    output_datatype: str                              # FP64 (trees) or FP32 (MLP)
    build: Callable[[Dict, Path], None]               # knobs, path of model_file to write
    load: Callable[[Path], Callable[[np.ndarray], np.ndarray]]  # model file -> predict(x [N,F]) -> [N]
    packages: Tuple[str, ...]                         # libraries that build and run it (versions in the key)
    framework: str                                    # KServe modelFormat
    mlserver_implementation: Optional[str]            # MLServer's own runtime for the format, if any
    rtol: float
    describe: Callable[[Dict], str]
    estimate_bytes: Callable[[Dict], int]             # artifact size the knobs give (declared)
    memory_factor: float                              # in-memory size per artifact byte (measured, docs/models.md)
    memory_base: int                                  # plus this much per model (bytes, measured)


_lock = threading.Lock()


def cache_key(fam: Family, knobs: Dict) -> str:
    parts = {"format": FORMAT, "family": fam.name, "knobs": knobs, "seed": TRAIN_SEED,
             "versions": {p: version(p) for p in fam.packages}}
    return f"{fam.name}-" + hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:20]


def built(fam: Family, knobs: Dict) -> Path:
    """The cached build of ``knobs``: a folder with the model file and the config; built on first use."""
    target = cache_root() / cache_key(fam, knobs)
    if (target / CONFIG_FILE).is_file():
        return target
    with _lock:
        if (target / CONFIG_FILE).is_file():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=target.name + ".", suffix=".tmp", dir=target.parent))
        try:
            fam.build(dict(knobs), tmp / fam.model_file)
            config = {
                "platform": "mmslib_family", "family": fam.name, "knobs": knobs,
                "model_file": fam.model_file, "bytes": (tmp / fam.model_file).stat().st_size,
                "input": [tensor_in(knobs).to_dict()], "output": [tensor_out(fam).to_dict()],
                "versions": {p: version(p) for p in fam.packages}, "train_seed": TRAIN_SEED,
            }
            (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=1))
            os.chmod(tmp, 0o755)
            try:
                os.replace(tmp, target)  # atomic: readers see no folder or a whole one
            except OSError:              # another process built it first
                if not (target / CONFIG_FILE).is_file():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def tensor_in(knobs: Dict) -> TensorSpec:
    return TensorSpec(INPUT, "FP32", [1, int(knobs["n_features"])])


def tensor_out(fam: Family) -> TensorSpec:
    return TensorSpec(OUTPUT, fam.output_datatype, [1, 1])


def write_payload(fam: Family, knobs: Dict, model_dir: Path) -> None:
    src = built(fam, knobs)
    model_dir = Path(model_dir)
    for name in (fam.model_file, CONFIG_FILE):
        tmp = model_dir / (name + ".part")
        shutil.copyfile(src / name, tmp)  # a real copy (own inode), as a downloaded model would be
        os.replace(tmp, model_dir / name)
    if fam.mlserver_implementation:
        settings = {
            "name": model_dir.name, "implementation": fam.mlserver_implementation,
            "parameters": {"uri": f"./{fam.model_file}"},
            "inputs": [tensor_in(knobs).to_dict()], "outputs": [tensor_out(fam).to_dict()],
        }
        (model_dir / MLSERVER_SETTINGS).write_text(json.dumps(settings, indent=1))


class FamilyPredictor(Predictor):
    """A family model loaded from its artifact directory (any family: the config says which)."""

    def __init__(self, model_dir: Path, fam: Family):
        model_dir = Path(model_dir)
        path = model_dir / CONFIG_FILE
        if not path.is_file():
            raise DeployError(f"{model_dir}: no {CONFIG_FILE}; not a {fam.name} artifact")
        self.config = json.loads(path.read_text())
        if self.config.get("family") != fam.name:
            raise DeployError(f"{model_dir}: a {self.config.get('family')!r} artifact, not {fam.name!r}")
        self.inputs = [TensorSpec(**t) for t in self.config["input"]]
        self.outputs = [TensorSpec(**t) for t in self.config["output"]]
        self.n_features = int(self.inputs[0].shape[-1])
        self._dtype = _NP[self.outputs[0].datatype]
        self._predict = fam.load(model_dir / self.config["model_file"])

    def predict(self, inputs: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        if INPUT not in inputs:
            raise ValueError(f"missing input {INPUT!r} (got {sorted(inputs)})")
        x = np.asarray(inputs[INPUT], dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"input {INPUT!r} must be FP32 [N, {self.n_features}], got shape {list(x.shape)}")
        y = np.asarray(self._predict(x)).reshape(-1, 1).astype(self._dtype, copy=False)
        return {OUTPUT: y}


_references: Dict[str, FamilyPredictor] = {}


def reference(fam: Family, knobs: Dict) -> FamilyPredictor:
    """The cached build loaded back from its file (memoised): what makes expected answers."""
    key = cache_key(fam, knobs)
    with _lock:
        pred = _references.get(key)
    if pred is None:
        pred = FamilyPredictor(built(fam, knobs), fam)
        with _lock:
            _references[key] = pred
    return pred


def make_workload(fam: Family, knobs: Dict, memory_estimate_bytes: Optional[int] = None) -> Workload:
    """The workload of ``fam`` with ``knobs`` (validated by the family module)."""
    knobs = dict(sorted(knobs.items()))
    art = int(fam.estimate_bytes(knobs))

    def make_sample(rng: np.random.Generator) -> Sample:
        x = rng.standard_normal((1, int(knobs["n_features"]))).astype(np.float32)
        return Sample(inputs={INPUT: x}, expected=reference(fam, knobs).predict({INPUT: x}))

    def check(outputs: Dict[str, np.ndarray], expected: Dict[str, np.ndarray]) -> bool:
        try:
            got = np.asarray(outputs[OUTPUT], dtype=np.float64)
            want = np.asarray(expected[OUTPUT], dtype=np.float64)
        except (KeyError, TypeError, ValueError):
            return False
        return got.shape == want.shape and bool(np.allclose(got, want, rtol=fam.rtol, atol=fam.rtol))

    mem = memory_estimate_bytes if memory_estimate_bytes is not None else \
        int(fam.memory_base + fam.memory_factor * art)
    return Workload(
        name=fam.name,
        inputs=[tensor_in(knobs)],
        outputs=[tensor_out(fam)],
        memory_estimate_bytes=max(1 << 20, -(-mem // (1 << 20)) << 20),  # whole MiB, at least 1
        write_payload=lambda d: write_payload(fam, knobs, d),
        load_predictor=lambda d: FamilyPredictor(d, fam),
        make_sample=make_sample,
        check=check,
        framework=fam.framework,
        extra={"family": fam.name, "knobs": knobs, "model_file": fam.model_file,
               "mlserver_implementation": fam.mlserver_implementation},
        description=fam.describe(knobs),
        artifact_bytes=art,
        exact=True,  # deterministic: the load generator checks every answer (to 1e-6, relative)
        packages=fam.packages,
        load_cycles_default=200 if art > (8 << 20) else 1000,
    )


def knob_int(knobs: Dict, name: str, lo: int, hi: int) -> int:
    """An integer knob, checked: ParamError names it."""
    v = knobs[name]
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= int(v) <= hi:
        raise ParamError(name, v, f"an integer from {lo} to {hi}")
    return int(v)


def check_knobs(family: str, given: Dict, defaults: Dict) -> Dict:
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ParamError(unknown[0], given[unknown[0]], f"a knob of {family}: " + ", ".join(sorted(defaults)))
    return {**defaults, **given}


def size_bytes(params) -> Optional[int]:
    """``params.model_size`` in bytes, or None (the family's default size)."""
    size = getattr(params, "model_size", None)
    if size in (None, ""):
        return None
    from ..quantity import parse_memory
    return int(parse_memory(size))


def plugin(fam: Family, knobs_for: Callable):
    """A family module's plug-in functions, the same for every family: ``make_workload(size_bytes=None,
    **knobs)``, ``from_params(params)`` (the size from ``model_size``) and the default ``WORKLOAD``."""
    def make(size_bytes: Optional[int] = None, **knobs) -> Workload:
        return make_workload(fam, knobs_for(size_bytes, **knobs))

    def from_params(params) -> Workload:
        return make(size_bytes(params))
    return make, from_params, make()
