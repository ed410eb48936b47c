"""The double's ingress gateway: V2 REST by Host header, answered in-process.

``Host: <isvc>.<ns>.<domain>`` reaches a Ready InferenceService: a
single-model one serves the model named like it; a multi-model host serves
its Ready TrainedModels. ``Host: modelmesh-serving.<ns>`` serves the Ready
ModelMesh InferenceServices of that namespace. Unknown hosts get 404 (as an
Istio gateway), unknown models 404 with a JSON error. Each model's artifact
is written with the workload's ``write_artifact`` into a temp dir and loaded
with its ``load_predictor``, so answers are the real workload's.
"""
from __future__ import annotations

import json
import shutil
import tempfile
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Dict, Optional, Set, Tuple

from mmslib import v2
from mmslib.workloads import get_workload

from .controller import is_mms_host, is_modelmesh, is_ready


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512


class Ingress:
    def __init__(self, double):
        self.d = double
        self.workload = get_workload(double.workload)
        self.tmp = Path(tempfile.mkdtemp(prefix="k8s-double-models-"))
        self._predictors: Dict[str, object] = {}
        self._plock = threading.Lock()
        self._routes: Dict[str, Tuple[str, Set[str]]] = {}
        self._routes_rv = -1
        self._rlock = threading.Lock()
        self._httpd: Optional[_Server] = None
        self.requests = 0

    # -- routing ------------------------------------------------------------
    def routes(self) -> Dict[str, Tuple[str, Set[str]]]:
        """{hostname: (server name, {models})}, rebuilt when the store changed."""
        store = self.d.store
        if store.rv == self._routes_rv:
            return self._routes
        with self._rlock:
            if store.rv == self._routes_rv:
                return self._routes
            isvc_t = self.d.type_for("serving.kserve.io", "inferenceservices")
            tm_t = self.d.type_for("serving.kserve.io", "trainedmodels")
            routes: Dict[str, Tuple[str, Set[str]]] = {}
            with store.lock:
                rv = store.rv
                isvcs = store.items(isvc_t) if isvc_t else []
                tms = store.items(tm_t) if tm_t else []
            by_host: Dict[Tuple[str, str], Set[str]] = {}
            for tm in tms:
                if is_ready(tm):
                    k = (tm["metadata"]["namespace"], tm["spec"]["inferenceService"])
                    by_host.setdefault(k, set()).add(tm["metadata"]["name"])
            for isvc in isvcs:
                if not is_ready(isvc):
                    continue
                ns, name = isvc["metadata"]["namespace"], isvc["metadata"]["name"]
                st = isvc.get("status") or {}
                if is_modelmesh(isvc):
                    rest = ((st.get("components") or {}).get("predictor") or {}).get("restUrl") or st.get("url", "")
                    host = urllib.parse.urlsplit(rest).hostname or ""
                    routes.setdefault(host, ("modelmesh-serving", set()))[1].add(name)
                    continue
                models = by_host.get((ns, name), set()) if is_mms_host(isvc) else {name}
                for url in (st.get("url"), ((st.get("components") or {}).get("predictor") or {}).get("url")):
                    host = urllib.parse.urlsplit(url or "").hostname
                    if host:
                        routes[host] = (name, set(models))
            self._routes, self._routes_rv = routes, rv
            return routes

    def predictor(self, model: str):
        p = self._predictors.get(model)
        if p is not None:
            return p
        with self._plock:
            p = self._predictors.get(model)
            if p is None:
                d = self.workload.write_artifact(self.tmp / model, model)
                p = self.workload.load_predictor(d)
                self._predictors[model] = p
            return p

    # -- lifecycle ----------------------------------------------------------
    def start(self) -> None:
        ingress = self

        class H(_Handler):
            pass
        H.ingress = ingress
        self._httpd = _Server(("127.0.0.1", 0), H)
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                         name="k8s-double-ingress", daemon=True).start()

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def host(self) -> str:
        return "127.0.0.1"

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        shutil.rmtree(self.tmp, ignore_errors=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True     # headers and body are separate writes: no 40 ms delayed-ACK stalls
    ingress: Ingress = None
    server_version = "istio-envoy-double"

    def log_message(self, *args):
        pass

    def _send(self, code: int, body=None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(code)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)

    def _target(self):
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0].strip().lower()
        return self.ingress.routes().get(host)

    def _read(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def _handle(self, method: str) -> None:
        ing = self.ingress
        ing.requests += 1
        body = self._read() if method == "POST" else b""
        target = self._target()
        if target is None:
            return self._send(404)
        server, models = target
        parts = [p for p in urllib.parse.urlsplit(self.path).path.split("/") if p]
        try:
            if parts in (["v2", "health", "live"], ["v2", "health", "ready"]):
                return self._send(200, {"live": True} if parts[-1] == "live" else {"ready": True})
            if parts == ["v2"] and method == "GET":
                return self._send(200, {"name": server, "version": "double", "extensions": []})
            if parts == ["v2", "repository", "index"] and method == "POST":
                return self._send(200, [{"name": m, "version": "1", "state": "READY"} for m in sorted(models)])
            if len(parts) >= 3 and parts[:2] == ["v2", "models"]:
                model = parts[2]
                rest = parts[3:]
                if len(rest) >= 2 and rest[0] == "versions":
                    rest = rest[2:]
                if model not in models:
                    return self._send(404, {"error": f"Model with name {model} does not exist."})
                if rest == [] and method == "GET":
                    return self._send(200, {"name": model, "versions": ["1"], "platform": server,
                                            "inputs": [t.to_dict() for t in ing.workload.inputs],
                                            "outputs": [t.to_dict() for t in ing.workload.outputs]})
                if rest == ["ready"] and method == "GET":
                    return self._send(200, {"name": model, "ready": True})
                if rest == ["infer"] and method == "POST":
                    return self._infer(model, body)
            return self._send(404, {"error": f"not found: {method} {self.path}"})
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _infer(self, model: str, body: bytes) -> None:
        try:
            req = json.loads(body or b"{}")
            inputs = {t["name"]: v2.decode_tensor(t) for t in req.get("inputs", [])}
        except (ValueError, KeyError, TypeError) as e:
            return self._send(400, {"error": f"invalid request: {e}"})
        try:
            out = self.ingress.predictor(model).predict(inputs)
        except (ValueError, KeyError, TypeError) as e:
            return self._send(400, {"error": str(e)})
        resp = {"model_name": model, "model_version": "1",
                "outputs": [v2.encode_tensor(k, v) for k, v in out.items()]}
        if isinstance(req, dict) and req.get("id"):
            resp["id"] = req["id"]
        self._send(200, resp)
