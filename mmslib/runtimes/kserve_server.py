"""KServe ModelServer process serving mmslib workloads from a model store.

Run as ``python -m mmslib.runtimes.kserve_server CONFIG.json``. The config
names the store, the ports, the concurrency and the models to load at start
(traditional serving); more models are loaded by name through the V2 repository
extension (``POST /v2/repository/models/<name>/load``), which this repository
subclass implements (the stock ``ModelRepository.load()`` does nothing).
REST and gRPC bind 127.0.0.1 only (the stock server binds all interfaces).
"""
from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path


def main(config_path: str) -> None:
    cfg = json.loads(Path(config_path).read_text())
    host = cfg.get("host", "127.0.0.1")
    # kserve parses sys.argv at import time: hide ours.
    sys.argv = sys.argv[:1]
    import kserve
    from kserve import InferRequest, InferResponse, Model, ModelRepository, ModelServer
    from kserve.protocol.grpc import server as grpc_server_mod
    from kserve.protocol.infer_type import InferOutput
    from kserve.protocol.rest import server as rest_server_mod

    from mmslib.workloads import load_artifact

    logging.getLogger().setLevel(logging.WARNING)
    for name in ("kserve", "uvicorn", "uvicorn.access", "kserve.trace"):
        logging.getLogger(name).setLevel(logging.WARNING)

    store = Path(cfg["store"])

    class WorkloadModel(Model):
        def __init__(self, name: str, model_dir: Path):
            super().__init__(name)
            self.model_dir = model_dir
            self.predictor = None

        def load(self) -> bool:
            self.predictor = load_artifact(self.model_dir)
            self.ready = True
            return True

        def get_input_types(self):
            return [t.to_dict() for t in self.predictor.inputs]

        def get_output_types(self):
            return [t.to_dict() for t in self.predictor.outputs]

        async def predict(self, payload, headers=None, response_headers=None):
            if not isinstance(payload, InferRequest):
                raise ValueError("this model speaks the V2 protocol only")
            inputs = {i.name: i.as_numpy() for i in payload.inputs}
            outputs = self.predictor.predict(inputs)
            infer_outputs = []
            for name, arr in outputs.items():
                spec = next((t for t in self.predictor.outputs if t.name == name), None)
                dt = spec.datatype if spec else "FP32"
                out = InferOutput(name=name, shape=list(arr.shape), datatype=dt)
                out.set_data_from_numpy(arr, binary_data=False)
                infer_outputs.append(out)
            return InferResponse(response_id=payload.id or "", model_name=self.name,
                                 infer_outputs=infer_outputs)

    class StoreRepository(ModelRepository):
        """Loads a model by name from ``store/<name>`` (its storageUri)."""

        def __init__(self):
            super().__init__(models_dir=str(store))

        def load(self, name: str) -> bool:
            model_dir = store / name
            if not model_dir.is_dir():
                raise FileNotFoundError(f"no artifact for model {name!r} in {store}")
            model = WorkloadModel(name, model_dir)
            model.load()
            self.update(model)
            return model.ready

        load_model = load

    # Bind to loopback only.
    orig_config = rest_server_mod.uvicorn.Config

    def loopback_config(*args, **kwargs):
        kwargs["host"] = host
        return orig_config(*args, **kwargs)

    rest_server_mod.uvicorn.Config = loopback_config
    orig_start = grpc_server_mod.GRPCServer.start

    async def grpc_start(self, max_workers):
        server_fn = grpc_server_mod.aio.server

        def patched_server(*a, **k):
            srv = server_fn(*a, **k)
            add = srv.add_insecure_port

            def add_loopback(addr):
                return add(f"{host}:{self._port}")
            srv.add_insecure_port = add_loopback
            return srv
        grpc_server_mod.aio.server = patched_server
        try:
            await orig_start(self, max_workers)
        finally:
            grpc_server_mod.aio.server = server_fn

    grpc_server_mod.GRPCServer.start = grpc_start

    repo = StoreRepository()
    models = []
    for name in cfg.get("models", []):
        m = WorkloadModel(name, store / name)
        m.load()
        models.append(m)
    server = ModelServer(
        http_port=int(cfg["http_port"]),
        grpc_port=int(cfg["grpc_port"]),
        registered_models=repo,
        enable_grpc=bool(cfg.get("grpc", True)),
        max_threads=int(cfg.get("max_threads", 1)),
        max_asyncio_workers=int(cfg.get("max_asyncio_workers", 1)),
        enable_latency_logging=False,
        enable_docs_url=False,
    )
    del kserve
    # ModelServer configures logging itself: quiet it afterwards (a log line per
    # request would cost more than the simple_string model does).
    for name in ("kserve", "uvicorn", "uvicorn.access", "uvicorn.error", "kserve.trace"):
        lg = logging.getLogger(name)
        lg.setLevel(logging.WARNING)
    if cfg.get("started_file"):
        Path(cfg["started_file"]).write_text(str(time.time()))
    # ModelServer.start() insists on at least one ready model only when given some.
    server.start(models)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python -m mmslib.runtimes.kserve_server CONFIG.json", file=sys.stderr)
        sys.exit(2)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main(sys.argv[1])
