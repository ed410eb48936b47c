"""An ONNX multi-layer perceptron run by ONNX Runtime: the onnx family.

Knobs (``make_workload(**knobs)``): ``n_features`` (20), ``width`` (units per
hidden layer, 290: ~1 MiB), ``depth`` (hidden layers, 4). The graph is MatMul + Add +
Relu per hidden layer, then MatMul + Add to one output, with He-scaled random
float32 weights (seed 0), built with ``onnx.helper`` (opset 17): nothing is
trained or downloaded. The artifact weighs 4 B per weight:
``4 * (F*w + (depth-1)*w*w + (depth+1)*w + 1)`` plus ~1 KiB; ``model_size``
(an experiment parameter) picks ``width`` for that size (4 hidden layers:
1 MiB ~ 290 units, 10 MiB ~ 930, 100 MiB ~ 2,950).

Artifact: ``model.onnx``. Served by mmslib's predictor on every runtime (ONNX
Runtime on CPU; intra-op threads ``MMSLIB_ORT_THREADS``, default 1; memory
arena off, as the bert workload). MLServer has no ONNX runtime of its own.
Building needs the ``onnx`` package (the main environment); serving needs only
``onnxruntime``. See :mod:`mmslib.workloads.families` for the interface.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Dict, Optional

import numpy as np

from . import families

NAME = "onnx_mlp"
SIZED = True  # takes the model_size parameter (mmslib.workloads.sized_workloads)
DEFAULTS = {"n_features": 20, "width": 290, "depth": 4}
OPSET = 17
IR_VERSION = 9
BYTES_FIXED = 700


def _weights(k: Dict) -> int:
    F, w, d = k["n_features"], k["width"], k["depth"]
    return F * w + (d - 1) * w * w + (d + 1) * w + 1


def estimate_bytes(k: Dict) -> int:
    return int(BYTES_FIXED + 60 * k["depth"] + 4 * _weights(k))


def _build(k: Dict, path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(families.TRAIN_SEED)
    F, w, d = k["n_features"], k["width"], k["depth"]
    nodes, inits = [], []
    prev, fan_in = families.INPUT, F
    for i in range(d + 1):
        out = 1 if i == d else w
        W = (rng.standard_normal((fan_in, out)) * math.sqrt(2.0 / fan_in)).astype(np.float32)
        b = (0.01 * rng.standard_normal(out)).astype(np.float32)
        inits += [numpy_helper.from_array(W, f"W{i}"), numpy_helper.from_array(b, f"b{i}")]
        last = i == d
        mm, add = f"mm{i}", (families.OUTPUT if last else f"add{i}")
        nodes += [helper.make_node("MatMul", [prev, f"W{i}"], [mm]), helper.make_node("Add", [mm, f"b{i}"], [add])]
        if not last:
            nodes.append(helper.make_node("Relu", [add], [f"relu{i}"]))
            prev = f"relu{i}"
        fan_in = out
    graph = helper.make_graph(
        nodes, "mmslib_mlp",
        [helper.make_tensor_value_info(families.INPUT, TensorProto.FLOAT, ["N", F])],
        [helper.make_tensor_value_info(families.OUTPUT, TensorProto.FLOAT, ["N", 1])], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="mmslib")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def _load(path: Path):
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, int(os.environ.get("MMSLIB_ORT_THREADS", "1") or 1))
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.enable_cpu_mem_arena = False
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def predict(x: np.ndarray) -> np.ndarray:
        return sess.run([families.OUTPUT], {families.INPUT: x})[0]
    return predict


FAMILY = families.Family(
    name=NAME, model_file="model.onnx", output_datatype="FP32", build=_build, load=_load,
    packages=("onnxruntime", "onnx"), framework="onnx", mlserver_implementation=None, rtol=1e-5,
    describe=lambda k: (f"ONNX MLP in ONNX Runtime: {k['depth']} hidden layers of {k['width']} ReLU units; "
                        f"input FP32 [1,{k['n_features']}] -> predict FP32 [1,1]"),
    estimate_bytes=estimate_bytes,
    memory_factor=1.0, memory_base=8 << 20,  # measured (kserve, mlserver): 2 MiB per model at 1 MiB, 17-22 at 10, 102 at 100 (docs/models.md)
)


def knobs_for(size_bytes: Optional[int] = None, **given) -> Dict:
    """Validated knobs; with ``size_bytes``, ``width`` chosen for that artifact size."""
    k = families.check_knobs(NAME, given, DEFAULTS)
    k["n_features"] = families.knob_int(k, "n_features", 1, 100_000)
    k["depth"] = families.knob_int(k, "depth", 1, 64)
    if size_bytes is not None and "width" not in given:
        a, b = k["depth"] - 1, k["n_features"] + k["depth"] + 1
        c = (size_bytes - BYTES_FIXED - 60 * k["depth"]) / 4 - 1
        w = c / b if a == 0 else (-b + math.sqrt(b * b + 4 * a * max(c, 0))) / (2 * a)
        k["width"] = max(1, int(round(w)))
    k["width"] = families.knob_int(k, "width", 1, 65_536)
    return k


make_workload, from_params, WORKLOAD = families.plugin(FAMILY, knobs_for)
