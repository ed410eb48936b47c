"""Workloads: what a model computes, independent of the runtime serving it.

A workload writes a small per-model artifact into the model store (a directory
per model, like a storageUri), loads a predictor from such a directory, and
makes requests whose correct answers it knows.

A new workload is one module here, ``<name>.py``, defining ``WORKLOAD`` (a
:class:`Workload`) and, when it depends on parameters (e.g. the device),
``from_params(params) -> Workload``; add its name to ``WORKLOADS``.
Experiments get it with :func:`get_workload` and never branch on its name.

A workload whose models differ from one another (a user's repository, ``repository.py``) sets
``sample_for`` (the request for one model: experiments ask :meth:`Workload.sample`),
``facts_for`` (each model's family and size: :meth:`Workload.facts`, recorded per stress step)
and ``lay_out`` (it writes its models into a runtime's store itself:
:meth:`mmslib.runtimes.Runtime.write_model` defers to it).
"""
from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np

ARTIFACT_FILE = "mmslib-model.json"


@dataclass(frozen=True)
class TensorSpec:
    name: str
    datatype: str  # V2 datatype: BYTES, FP32, INT32, ...
    shape: List[int]

    def to_dict(self) -> dict:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


@dataclass
class Sample:
    """One request's inputs and the outputs a correct server returns."""

    inputs: Dict[str, np.ndarray]
    expected: Dict[str, np.ndarray]


class Predictor:
    """A loaded model: pure compute on numpy tensors."""

    inputs: List[TensorSpec]
    outputs: List[TensorSpec]

    def predict(self, inputs: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:  # pragma: no cover
        raise NotImplementedError


@dataclass
class Workload:
    """Interface every workload module implements (see simple_string)."""

    name: str
    inputs: List[TensorSpec]
    outputs: List[TensorSpec]
    # Memory a model declares for admission (TrainedModel spec.model.memory), bytes.
    memory_estimate_bytes: int
    write_payload: Callable[[Path], None]
    load_predictor: Callable[[Path], Predictor]
    make_sample: Callable[[np.random.Generator], Sample]
    check: Callable[[Dict[str, np.ndarray], Dict[str, np.ndarray]], bool]
    framework: str = "custom"  # KServe modelFormat name for manifests
    extra: dict = field(default_factory=dict)
    description: str = ""      # one line for reports: what a model computes
    artifact_bytes: int = 0    # about what one model's artifact weighs on disk
    exact: bool = True         # answers comparable element by element, so the load generator checks each request
    packages: tuple = ()       # distributions that compute it (versions recorded with every run)
    load_cycles_default: int = 1000  # coldstart: load/unload cycles per runtime when ``cycles`` is not given
    # A workload whose models differ (a user's repository): the request for one model, its facts,
    # and its own layout in a runtime's store. None: make_sample, the declaration, the runtime's layout.
    sample_for: Optional[Callable[[str, np.random.Generator], Sample]] = None
    facts_for: Optional[Callable[[str], dict]] = None
    lay_out: Optional[Callable[[object, Path, str], Path]] = None  # (runtime, store, model) -> its folder

    def sample(self, model: str, rng: np.random.Generator) -> Sample:
        """A request for ``model`` and what its answer must be (:attr:`sample_for`, else ``make_sample``)."""
        return self.sample_for(model, rng) if self.sample_for is not None else self.make_sample(rng)

    def facts(self, model: str = "") -> dict:
        """What the results record per model: ``family`` (the family; a user's model: its format),
        ``artifact_bytes`` (what one artifact weighs) and, for a user's repository, ``source_model``."""
        out = {"family": self.extra.get("family", self.name), "artifact_bytes": int(self.artifact_bytes)}
        if self.facts_for is not None:
            out.update(self.facts_for(model))
        return out

    def write_artifact(self, model_dir: Path, model_name: str) -> Path:
        """Write the model's artifact directory; returns it."""
        model_dir = Path(model_dir)
        model_dir.mkdir(parents=True, exist_ok=True)
        self.write_payload(model_dir)
        (model_dir / ARTIFACT_FILE).write_text(
            json.dumps({"workload": self.name, "model": model_name}))
        return model_dir


WORKLOADS = ("simple_string", "bert", "sklearn_forest", "lightgbm_trees", "onnx_mlp", "repository")


def get_workload(name: str, params=None) -> Workload:
    """The workload ``name``; with ``params`` (an experiment's validated
    parameters), the one those parameters ask for (e.g. bert on ``params.device``)."""
    from ..errors import ParamError

    if name not in WORKLOADS:
        raise ParamError("workload", name, ", ".join(WORKLOADS))
    mod = importlib.import_module(f"{__name__}.{name}")
    if params is not None and hasattr(mod, "from_params"):
        return mod.from_params(params)
    return mod.WORKLOAD


def sized_workloads() -> tuple:
    """Workloads whose model size is a parameter (``model_size``): those whose
    ``from_params`` reads it, declared by ``SIZED = True`` in their module."""
    return tuple(n for n in WORKLOADS if getattr(importlib.import_module(f"{__name__}.{n}"), "SIZED", False))


def load_artifact(model_dir: Path) -> Predictor:
    """Load the predictor for an artifact directory, whatever its workload."""
    meta = json.loads((Path(model_dir) / ARTIFACT_FILE).read_text())
    return get_workload(meta["workload"]).load_predictor(Path(model_dir))
