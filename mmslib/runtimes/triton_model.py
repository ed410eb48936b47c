"""Triton python-backend ``model.py`` serving one mmslib workload model.

This file is a template: :meth:`mmslib.runtimes.triton.TritonRuntime.write_model`
copies it to ``store/<name>/1/model.py`` with ``MMSLIB_PATH`` set to the
directory holding the ``mmslib`` package, next to the model's artifact in
``store/<name>/1/artifact`` (written by ``workload.write_artifact``).

It runs inside Triton's python-backend stub (one process per model), which
embeds the ``.venv-triton`` interpreter in isolated mode: PYTHONPATH is
ignored, so ``initialize`` puts ``MMSLIB_PATH`` on ``sys.path`` itself before
importing mmslib. ``execute`` turns the request's tensors into numpy arrays,
calls the workload predictor and returns its outputs with the datatypes of
the model's config (BYTES outputs as numpy object arrays of bytes).
"""
import json
import os
import sys

import numpy as np
import triton_python_backend_utils as pb_utils

MMSLIB_PATH = None  # set when the template is written into the store

_NP_OF_TRITON = {
    "TYPE_FP32": np.float32, "TYPE_FP64": np.float64, "TYPE_FP16": np.float16,
    "TYPE_INT8": np.int8, "TYPE_INT16": np.int16, "TYPE_INT32": np.int32, "TYPE_INT64": np.int64,
    "TYPE_UINT8": np.uint8, "TYPE_BOOL": np.bool_, "TYPE_STRING": np.object_,
}


def _as_bytes_array(a):
    a = np.asarray(a)
    if a.dtype == np.object_:
        flat = [x if isinstance(x, bytes) else str(x).encode("utf-8") for x in a.ravel()]
    else:
        flat = [x.encode("utf-8") if isinstance(x, str) else bytes(x) if isinstance(x, (bytes, np.bytes_))
                else str(x).encode("utf-8") for x in a.ravel().tolist()]
    return np.array(flat, dtype=np.object_).reshape(a.shape)


class TritonPythonModel:
    def initialize(self, args):
        if MMSLIB_PATH and MMSLIB_PATH not in sys.path:
            sys.path.append(MMSLIB_PATH)
        from mmslib.workloads import load_artifact

        config = json.loads(args["model_config"])
        self.model_name = args["model_name"]
        version_dir = os.path.join(args["model_repository"], args["model_version"])
        self.predictor = load_artifact(os.path.join(version_dir, "artifact"))
        self.input_names = [i["name"] for i in config["input"]]
        self.output_types = {o["name"]: _NP_OF_TRITON.get(o["data_type"], np.float32)
                             for o in config["output"]}

    def _run(self, request):
        inputs = {}
        for name in self.input_names:
            t = pb_utils.get_input_tensor_by_name(request, name)
            if t is None:
                raise ValueError(f"model {self.model_name}: missing input {name!r}")
            inputs[name] = t.as_numpy()
        outputs = self.predictor.predict(inputs)
        tensors = []
        for name, arr in outputs.items():
            dt = self.output_types.get(name)
            if dt is None:
                continue  # not in the config: Triton would reject it
            arr = _as_bytes_array(arr) if dt is np.object_ else np.ascontiguousarray(arr, dtype=dt)
            tensors.append(pb_utils.Tensor(name, arr))
        return pb_utils.InferenceResponse(output_tensors=tensors)

    def execute(self, requests):
        responses = []
        for request in requests:
            try:
                responses.append(self._run(request))
            except Exception as e:  # one bad request must not fail the others
                responses.append(pb_utils.InferenceResponse(
                    output_tensors=[], error=pb_utils.TritonError(f"{type(e).__name__}: {e}")))
        return responses

    def finalize(self):
        self.predictor = None
