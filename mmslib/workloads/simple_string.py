"""Triton's ``simple_string`` example over the Open Inference Protocol.

Inputs INPUT0 and INPUT1: BYTES [1,16], each element a decimal integer.
Outputs OUTPUT0 = INPUT0 + INPUT1 and OUTPUT1 = INPUT0 - INPUT1, as BYTES.
The artifact is a ~700 B file (like the seed's 700 B TensorFlow model): the
model's config, which the server reads when it loads the model. A config with
``service_ms`` (:func:`with_service_ms`; the coldstart parameter ``service_ms``)
makes each prediction hold the server that long (a blocking sleep: a known
per-request service time that costs no CPU, for measurements under load).
"""
from __future__ import annotations

import dataclasses
import functools
import json
import time
from pathlib import Path
from typing import Dict

import numpy as np

from ..seed import MODEL_SIZE_BYTES
from . import Predictor, Sample, TensorSpec, Workload

PARAMETERS = ("service_ms",)   # the experiment parameters it reads (params checks them generically)
SHAPE = [1, 16]
INPUTS = [TensorSpec("INPUT0", "BYTES", SHAPE), TensorSpec("INPUT1", "BYTES", SHAPE)]
OUTPUTS = [TensorSpec("OUTPUT0", "BYTES", SHAPE), TensorSpec("OUTPUT1", "BYTES", SHAPE)]
CONFIG_FILE = "config.json"
ARTIFACT_BYTES = MODEL_SIZE_BYTES  # the seed's model size (700 B); the config is padded to it


def _write(model_dir: Path, service_ms: float = 0.0) -> None:
    config = {
        "name": "simple_string",
        "platform": "mmslib_simple_string",
        "max_batch_size": 0,
        "input": [t.to_dict() for t in INPUTS],
        "output": [t.to_dict() for t in OUTPUTS],
        "note": "OUTPUT0 = INPUT0 + INPUT1, OUTPUT1 = INPUT0 - INPUT1, "
                "elements are decimal integers as strings",
    }
    if service_ms > 0:
        config["service_ms"] = float(service_ms)
    text = json.dumps(config, indent=1)
    # Pad to the seed's model size (700 B) so artifacts weigh what it says.
    (model_dir / CONFIG_FILE).write_text(text + " " * max(0, ARTIFACT_BYTES - len(text)))


def _as_ints(a: np.ndarray) -> np.ndarray:
    flat = [int(x.decode() if isinstance(x, (bytes, bytearray)) else x) for x in np.asarray(a).ravel()]
    return np.array(flat, dtype=np.int64).reshape(np.asarray(a).shape)


def _as_bytes(a: np.ndarray) -> np.ndarray:
    return np.array([str(int(x)).encode() for x in a.ravel()], dtype=object).reshape(a.shape)


class SimpleStringPredictor(Predictor):
    inputs = INPUTS
    outputs = OUTPUTS

    def __init__(self, model_dir: Path):
        self.config = json.loads((Path(model_dir) / CONFIG_FILE).read_text())
        if self.config.get("platform") != "mmslib_simple_string":
            raise ValueError(f"{model_dir}: not a simple_string artifact")
        self.service_s = float(self.config.get("service_ms", 0.0)) / 1e3

    def predict(self, inputs: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        try:
            a, b = _as_ints(inputs["INPUT0"]), _as_ints(inputs["INPUT1"])
        except KeyError as e:
            raise ValueError(f"missing input {e}") from None
        if a.shape != b.shape:
            raise ValueError(f"INPUT0 shape {a.shape} != INPUT1 shape {b.shape}")
        if self.service_s > 0:
            time.sleep(self.service_s)  # blocking: holds the server (an event loop) like compute would
        return {"OUTPUT0": _as_bytes(a + b), "OUTPUT1": _as_bytes(a - b)}


def make_sample(rng: np.random.Generator) -> Sample:
    a = rng.integers(0, 1000, size=SHAPE)
    b = rng.integers(0, 1000, size=SHAPE)
    return Sample(inputs={"INPUT0": _as_bytes(a), "INPUT1": _as_bytes(b)},
                  expected={"OUTPUT0": _as_bytes(a + b), "OUTPUT1": _as_bytes(a - b)})


def check(outputs: Dict[str, np.ndarray], expected: Dict[str, np.ndarray]) -> bool:
    try:
        return all(np.array_equal(_as_ints(outputs[k]), _as_ints(v)) for k, v in expected.items())
    except (KeyError, ValueError):
        return False


WORKLOAD = Workload(
    name="simple_string",
    inputs=INPUTS,
    outputs=OUTPUTS,
    memory_estimate_bytes=1 << 20,  # declared 1Mi, as a TrainedModel would
    write_payload=_write,
    load_predictor=SimpleStringPredictor,
    make_sample=make_sample,
    check=check,
    framework="triton",
    description="Triton's simple_string: OUTPUT0 = INPUT0 + INPUT1, OUTPUT1 = INPUT0 - INPUT1 (BYTES [1,16])",
    artifact_bytes=ARTIFACT_BYTES,
    load_cycles_default=1000,  # a load takes milliseconds: 1,000 cycles show a leak per cycle
)


def with_service_ms(service_ms: float) -> Workload:
    """simple_string whose every prediction takes ``service_ms`` ms (0: the plain workload)."""
    if not service_ms:
        return WORKLOAD
    return dataclasses.replace(WORKLOAD, write_payload=functools.partial(_write, service_ms=float(service_ms)),
                               description=WORKLOAD.description + f", {float(service_ms):g} ms per request")


def from_params(params) -> Workload:
    """simple_string with the experiment's ``service_ms`` (coldstart), if it has one."""
    return with_service_ms(float(getattr(params, "service_ms", 0.0) or 0.0))
