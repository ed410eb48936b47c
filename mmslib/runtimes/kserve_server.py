"""KServe ModelServer process serving mmslib workloads from a model store.

Run as ``python -m mmslib.runtimes.kserve_server CONFIG.json``. The config
names the store, the ports, the concurrency and the models to load at start
(traditional serving); more models are loaded by name through the V2 repository
extension (``POST /v2/repository/models/<name>/load``), which this repository
subclass implements (the stock ``ModelRepository.load()`` does nothing).
REST and gRPC bind 127.0.0.1 only (the stock server binds all interfaces).

Lazy mode (config ``"lazy": {"capacity": N}``), as ModelMesh does inside each
of its pods: the host holds at most ``capacity`` models; a request for a model
that is in the store but not loaded loads it (the request waits), first
unloading the least recently used model that is not serving a request. Every
inference response says whether it waited for a load, in the header
``x-mms-cold-start: 1`` (REST; gRPC: trailing metadata), and the server counts
the same requests (``GET /v2/mms/lazy``, and Prometheus counters
``mms_lazy_requests_total{result="hit"|"cold"}``, ``mms_lazy_loads_total``,
``mms_lazy_evictions_total`` on ``/metrics``). A request that arrives while
another request's load of its model is in progress also waits: it is a cold
start too. Loads run one at a time, in a thread (the event loop keeps serving
loaded models meanwhile).
"""
from __future__ import annotations

import asyncio
import collections
import json
import logging
import os
import re
import sys
import time
from pathlib import Path
from urllib.parse import unquote

COLD_HEADER = "x-mms-cold-start"
STATS_PATH = "/v2/mms/lazy"
_INFER_PATH = re.compile(r"^/v2/models/([^/]+)(?:/versions/[^/]+)?/infer$")


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

    class LazyRepository(StoreRepository):
        """At most ``capacity`` models loaded; load on first request, evict LRU."""

        def __init__(self, capacity: int):
            super().__init__()
            from prometheus_client import Counter
            self.capacity = int(capacity)
            self.lru: "collections.OrderedDict[str, None]" = collections.OrderedDict()  # oldest first
            self.inflight: "collections.Counter[str]" = collections.Counter()
            self.counts = {"requests": 0, "hits": 0, "cold_starts": 0, "loads": 0,
                           "load_failures": 0, "evictions": 0, "unknown": 0}
            self.load_seconds: "collections.deque[float]" = collections.deque(maxlen=100_000)
            self.evicted: "collections.deque[str]" = collections.deque(maxlen=1000)
            self._lock = None
            self._unpinned = None
            self._loading: dict = {}  # model -> asyncio.Event set when its load ends
            self._m_req = Counter("mms_lazy_requests", "Inference requests by lazy-load result", ["result"])
            self._m_loads = Counter("mms_lazy_loads", "Models loaded by the lazy repository")
            self._m_evict = Counter("mms_lazy_evictions", "Models evicted (least recently used)")

        def _sync(self):
            if self._lock is None:  # created in the server's event loop
                self._lock = asyncio.Lock()
                self._unpinned = asyncio.Event()

        def preload(self, model) -> None:
            self.update(model)
            self.lru[model.name] = None

        async def _make_room(self) -> None:
            while len(self.lru) >= self.capacity:
                victim = next((m for m in self.lru if self.inflight[m] == 0), None)
                if victim is None:  # every loaded model is serving: wait for one to finish
                    self._unpinned.clear()
                    await self._unpinned.wait()
                    continue
                del self.lru[victim]
                model = self.models.get(victim)
                super().unload(victim)
                if model is not None:
                    model.predictor = None
                self.counts["evictions"] += 1
                self.evicted.append(victim)
                self._m_evict.inc()

        async def _load_locked(self, name: str) -> None:
            await self._make_room()
            model = WorkloadModel(name, store / name)
            t0 = time.perf_counter()
            try:
                await asyncio.to_thread(model.load)
            except Exception:
                self.counts["load_failures"] += 1
                raise
            self.load_seconds.append(time.perf_counter() - t0)
            self.update(model)
            self.lru[name] = None
            self.counts["loads"] += 1
            self._m_loads.inc()

        async def acquire(self, name: str):
            """Before an inference on ``name``: True (waited for a load: a cold
            start), False (was loaded), None (not in the store). On True/False
            the model is pinned (not evictable) until :meth:`release`. A pin is
            taken only once the model is loaded, never while waiting: a waiter
            holding a pin could keep the loader from making room (deadlock)."""
            self._sync()
            if name in self.lru:
                self._pin(name)
                self.counts["requests"] += 1
                self.counts["hits"] += 1
                self._m_req.labels(result="hit").inc()
                return False
            if not (store / name).is_dir():
                self.counts["unknown"] += 1
                return None
            self.counts["requests"] += 1
            self.counts["cold_starts"] += 1
            self._m_req.labels(result="cold").inc()
            while name not in self.lru:
                loading = self._loading.get(name)
                if loading is not None:  # another request is loading it: wait for that load
                    await loading.wait()
                    continue
                async with self._lock:
                    if name in self.lru:
                        break
                    done = self._loading[name] = asyncio.Event()
                    try:
                        await self._load_locked(name)
                        self._pin(name)  # no await between the load and the pin
                        return True
                    finally:
                        del self._loading[name]
                        done.set()
            self._pin(name)
            return True

        def _pin(self, name: str) -> None:
            self.inflight[name] += 1
            self.lru.move_to_end(name)

        def release(self, name: str) -> None:
            self.inflight[name] -= 1
            if self.inflight[name] <= 0:
                del self.inflight[name]
                if self._unpinned is not None:
                    self._unpinned.set()

        async def load(self, name: str) -> bool:  # POST /v2/repository/models/<name>/load
            self._sync()
            if not (store / name).is_dir():
                raise FileNotFoundError(f"no artifact for model {name!r} in {store}")
            async with self._lock:
                if name not in self.lru:
                    await self._load_locked(name)
                self.lru.move_to_end(name)
            return True

        load_model = load

        def unload(self, name: str):  # POST /v2/repository/models/<name>/unload
            super().unload(name)
            self.lru.pop(name, None)

        def stats(self) -> dict:
            return {"capacity": self.capacity, "loaded": list(self.lru), **self.counts,
                    "evicted_recent": list(self.evicted), "load_seconds": list(self.load_seconds)}

    class LazyMiddleware:
        """ASGI: lazy-load before a REST inference; mark the response."""

        def __init__(self, app, repo):
            self.app, self.repo = app, repo

        async def __call__(self, scope, receive, send):
            m = _INFER_PATH.match(scope.get("path", "")) if scope["type"] == "http" else None
            if m is None or scope.get("method") != "POST":
                return await self.app(scope, receive, send)
            name = unquote(m.group(1))
            try:
                cold = await self.repo.acquire(name)
            except Exception as e:  # the load failed: say so, marked as the cold start it was
                body = json.dumps({"error": f"lazy load of {name} failed: {e}"}).encode()
                await send({"type": "http.response.start", "status": 503,
                            "headers": [(b"content-type", b"application/json"), (COLD_HEADER.encode(), b"1"),
                                        (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
            if cold is None:  # not in the store: kserve answers 404
                return await self.app(scope, receive, send)
            flag = b"1" if cold else b"0"

            async def marked(msg):
                if msg["type"] == "http.response.start":
                    msg = dict(msg)
                    msg["headers"] = list(msg.get("headers", [])) + [(COLD_HEADER.encode(), flag)]
                await send(msg)
            try:
                await self.app(scope, receive, marked)
            finally:
                self.repo.release(name)

    def _serve_lazily(repo, models) -> None:
        """Wire the lazy repository into the stock server: REST middleware, gRPC
        servicer, the stats route; ``models`` loaded at start count as loaded."""
        from kserve.model_server import app
        from kserve.protocol.grpc import servicer as servicer_mod
        from starlette.responses import JSONResponse

        for m in models[-repo.capacity:]:
            repo.preload(m)
        app.add_middleware(LazyMiddleware, repo=repo)

        async def lazy_stats():
            return JSONResponse(repo.stats())
        app.add_api_route(STATS_PATH, lazy_stats, methods=["GET"])

        orig_infer = servicer_mod.InferenceServicer.ModelInfer

        async def model_infer(self, request, context):
            cold = await repo.acquire(request.model_name)
            try:
                response = await orig_infer(self, request, context)
                if cold is not None:  # after: kserve reads the trailing metadata as request headers
                    context.set_trailing_metadata(((COLD_HEADER, "1" if cold else "0"),))
                return response
            finally:
                if cold is not None:
                    repo.release(request.model_name)
        servicer_mod.InferenceServicer.ModelInfer = model_infer

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

    lazy = cfg.get("lazy")
    repo = LazyRepository(int(lazy["capacity"])) if lazy else StoreRepository()
    models = []
    for name in cfg.get("models", []):
        m = WorkloadModel(name, store / name)
        m.load()
        models.append(m)
    if lazy:
        _serve_lazily(repo, models)
        models = []
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
