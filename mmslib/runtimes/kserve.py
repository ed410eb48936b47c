"""KServe's Python ModelServer (the ``kserve`` package) as a runtime."""
from __future__ import annotations

import json
import sys
from typing import Dict, List, Optional, Tuple

from ..errors import DependencyError
from . import Runtime, ServerConfig


class KServeRuntime(Runtime):
    name = "kserve"

    def check_available(self) -> None:
        try:
            import kserve  # noqa: F401
        except ImportError as e:  # pragma: no cover
            raise DependencyError(f"runtime 'kserve' needs the kserve package: pip install kserve ({e})")

    def command(self, cfg: ServerConfig) -> Tuple[List[str], Optional[Dict[str, str]]]:
        cfg.workdir.mkdir(parents=True, exist_ok=True)
        path = cfg.workdir / f"{cfg.name}.json"
        path.write_text(json.dumps({
            "store": str(cfg.store), "http_port": cfg.http_port, "grpc_port": cfg.grpc_port,
            "models": list(cfg.models), "max_threads": cfg.threads,
            "max_asyncio_workers": cfg.threads}))
        return [sys.executable, "-m", "mmslib.runtimes.kserve_server", str(path)], None


RUNTIME = KServeRuntime()
