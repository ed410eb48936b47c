"""KServe's Python ModelServer (the ``kserve`` package) as a runtime."""
from __future__ import annotations

import importlib.util
import json
import sys
from typing import Dict, List, Optional, Tuple

from ..errors import DependencyError
from . import MetricSpec, Runtime, ServerConfig


class KServeRuntime(Runtime):
    name = "kserve"
    lazy_loading = True
    packages = ("kserve",)
    # request_predict_seconds (+ pre/postprocess) histograms per model: the model's own time,
    # the HTTP stack not included.
    metrics = MetricSpec("request_predict_seconds_count", {
        "server_ms": (("request_predict_seconds_sum", 1e3), ("request_preprocess_seconds_sum", 1e3),
                      ("request_postprocess_seconds_sum", 1e3)),
        "compute_ms": (("request_predict_seconds_sum", 1e3),),
    })

    def check_available(self) -> None:
        # find_spec, not import: kserve's generated protobuf modules clash with
        # tritonclient.grpc's in one process, and the server runs in its own.
        if importlib.util.find_spec("kserve") is None:  # pragma: no cover
            raise DependencyError("runtime 'kserve' needs the kserve package: pip install -e . (kserve==0.21.0)")

    def command(self, cfg: ServerConfig) -> Tuple[List[str], Optional[Dict[str, str]]]:
        cfg.workdir.mkdir(parents=True, exist_ok=True)
        path = cfg.workdir / f"{cfg.name}.json"
        path.write_text(json.dumps({
            "store": str(cfg.store), "http_port": cfg.http_port, "grpc_port": cfg.grpc_port,
            "models": list(cfg.models), "max_threads": cfg.threads,
            "max_asyncio_workers": cfg.threads,
            "lazy": {"capacity": cfg.lazy_capacity} if cfg.lazy_capacity > 0 else None}))
        return [sys.executable, "-m", "mmslib.runtimes.kserve_server", str(path)], None


RUNTIME = KServeRuntime()
