"""Seldon MLServer process serving mmslib workloads from a model store.

Run as ``python -m mmslib.runtimes.mlserver_server CONFIG.json`` with the
interpreter of ``.venv-mlserver`` (MLServer pins an older fastapi than kserve,
so it has its own env; see :mod:`mmslib.runtimes.mlserver`). The config names
the store, the ports and the models to load at start (traditional serving);
more models are loaded by name through the V2 repository extension
(``POST /v2/repository/models/<name>/load``).

MLServer is started programmatically (what ``mlserver start`` does, minus the
settings files):

- ``parallel_workers=0``: models run in the server process (MLServer's default
  pool of inference worker processes does not start with current uvloop, and
  one process per server is what the other runtimes do);
- an in-memory model repository, :class:`StoreRepository`: ``find(name)``
  looks at ``store/<name>`` only and makes its ``ModelSettings`` once (the stock
  ``SchemalessModelRepository`` globs and re-parses every model's
  ``model-settings.json`` on every load, which makes loading N models O(N^2));
- :class:`WorkloadModel`, an ``MLModel`` that wraps the mmslib workload
  predictor loaded from the model's artifact;
- REST and gRPC bound to 127.0.0.1; no metrics server; logging at WARNING.

REST speaks JSON only (MLServer has no binary tensor extension on REST).
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Dict, List

import numpy as np
from mlserver import MLModel
from mlserver.errors import InferenceError, ModelNotFound
from mlserver.repository import ModelRepository
from mlserver.settings import ModelParameters, ModelSettings
from mlserver.types import InferenceRequest, InferenceResponse, MetadataTensor, ResponseOutput

from mmslib.workloads import ARTIFACT_FILE, load_artifact

_NP = {"FP32": np.float32, "FP64": np.float64, "FP16": np.float16, "INT8": np.int8,
       "INT16": np.int16, "INT32": np.int32, "INT64": np.int64, "UINT8": np.uint8,
       "UINT16": np.uint16, "UINT32": np.uint32, "UINT64": np.uint64, "BOOL": np.bool_}

QUIET_LOGGERS = ("mlserver", "mlserver.rest", "mlserver.grpc", "uvicorn", "uvicorn.access",
                 "uvicorn.error", "opentelemetry")


def _flatten(data) -> list:
    if hasattr(data, "root"):  # TensorData
        data = data.root
    if isinstance(data, (bytes, bytearray, str)) or not isinstance(data, (list, tuple)):
        return [data]
    out: list = []
    for x in data:
        out.extend(_flatten(x))
    return out


def decode_input(inp) -> np.ndarray:
    """A V2 request input (JSON ``data`` or unpacked raw contents) as numpy."""
    flat = _flatten(inp.data)
    shape = [int(d) for d in inp.shape]
    if inp.datatype == "BYTES":
        arr = np.array([x.encode("utf-8") if isinstance(x, str) else bytes(x) for x in flat], dtype=object)
    else:
        arr = np.asarray(flat, dtype=_NP[inp.datatype])
    return arr.reshape(shape)


def encode_output(name: str, arr: np.ndarray, datatype: str) -> ResponseOutput:
    arr = np.asarray(arr)
    if datatype == "BYTES":
        data = [x.decode("utf-8") if isinstance(x, (bytes, bytearray, np.bytes_)) else str(x)
                for x in arr.ravel()]
    else:
        data = arr.astype(_NP[datatype], copy=False).ravel().tolist()
    return ResponseOutput(name=name, shape=list(arr.shape), datatype=datatype, data=data)


class WorkloadModel(MLModel):
    """An mmslib workload model: the predictor of the artifact at ``parameters.uri``."""

    async def load(self) -> bool:
        model_dir = Path(self._settings.parameters.uri)
        # Off the event loop: a big model's load must not stall other requests.
        self.predictor = await asyncio.to_thread(load_artifact, model_dir)
        self._out_types: Dict[str, str] = {t.name: t.datatype for t in self.predictor.outputs}
        self._settings.inputs = [MetadataTensor(**t.to_dict()) for t in self.predictor.inputs]
        self._settings.outputs = [MetadataTensor(**t.to_dict()) for t in self.predictor.outputs]
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        try:
            inputs = {i.name: decode_input(i) for i in payload.inputs}
            outputs = self.predictor.predict(inputs)
        except (ValueError, KeyError, TypeError) as e:  # a bad request: HTTP 400, not a 500
            raise InferenceError(f"model {self.name}: {type(e).__name__}: {e}") from None
        return InferenceResponse(
            model_name=self.name, model_version=self.version, id=payload.id,
            outputs=[encode_output(n, a, self._out_types.get(n, "FP32")) for n, a in outputs.items()])

    async def unload(self) -> bool:
        self.predictor = None
        return True


#: MLServer's own settings file: a model directory holding one is served by the
#: runtime it names (e.g. ``mlserver_sklearn.SKLearnModel`` for the sklearn family,
#: or a user's MLServer model) instead of the mmslib predictor.
MODEL_SETTINGS = "model-settings.json"


def _is_model(d: Path) -> bool:
    return (d / ARTIFACT_FILE).is_file() or (d / MODEL_SETTINGS).is_file()


class StoreRepository(ModelRepository):
    """Models are the directories ``store/<name>`` holding an mmslib artifact or
    MLServer's ``model-settings.json`` (which then says how to serve it; its
    ``parameters.uri`` is relative to the directory; the name is the directory's)."""

    def __init__(self, root: str, **_):
        self.root = Path(root)
        self._settings: Dict[str, ModelSettings] = {}

    def _settings_for(self, name: str) -> ModelSettings:
        s = self._settings.get(name)
        if s is None:
            native = self.root / name / MODEL_SETTINGS
            if native.is_file():
                s = ModelSettings.parse_file(str(native))
                s.name = name
            else:
                s = ModelSettings(name=name, implementation=WorkloadModel,
                                  parameters=ModelParameters(uri=str(self.root / name)))
            self._settings[name] = s
        return s

    async def list(self) -> List[ModelSettings]:
        try:
            names = sorted(e.name for e in os.scandir(self.root) if e.is_dir() and _is_model(Path(e.path)))
        except FileNotFoundError:
            names = []
        return [self._settings_for(n) for n in names]

    async def find(self, name: str) -> List[ModelSettings]:
        if "/" in name or name in ("", ".", "..") or not _is_model(self.root / name):
            raise ModelNotFound(name)
        return [self._settings_for(name)]


async def serve(cfg: dict) -> None:
    from mlserver import MLServer
    from mlserver.settings import Settings

    store = Path(cfg["store"]).resolve()
    settings = Settings(
        debug=False,
        parallel_workers=0,
        host=cfg.get("host", "127.0.0.1"),
        http_port=int(cfg["http_port"]),
        grpc_port=int(cfg["grpc_port"]),
        metrics_endpoint="/metrics" if cfg.get("metrics_port") else None,
        metrics_port=int(cfg.get("metrics_port") or 8082),
        model_repository_implementation="mmslib.runtimes.mlserver_server.StoreRepository",
        model_repository_root=str(store),
        load_models_at_startup=False,
    )
    server = MLServer(settings)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    repo = StoreRepository(str(store))
    models = [(await repo.find(m))[0] for m in cfg.get("models", [])]
    if cfg.get("started_file"):
        Path(cfg["started_file"]).write_text(str(time.time()))
    await server.start(models)


def main(config_path: str) -> None:
    cfg = json.loads(Path(config_path).read_text())
    # MLServer reads ./.env and keeps scratch dirs under the working directory.
    workdir = Path(cfg.get("workdir") or Path(config_path).parent)
    workdir.mkdir(parents=True, exist_ok=True)
    os.chdir(workdir)
    try:
        import uvloop  # what `mlserver start` runs on
        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    asyncio.run(serve(cfg))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python -m mmslib.runtimes.mlserver_server CONFIG.json", file=sys.stderr)
        sys.exit(2)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    # Run the package's copy of this module, so that the classes MLServer imports
    # by name (repository, model implementation) are the ones used here.
    from mmslib.runtimes import mlserver_server
    mlserver_server.main(sys.argv[1])
