"""The double's ingress gateway: V2 REST by Host header (and by path with a path template).

What is reachable is what KServe's ingress reconcilers create
(pkg/controller/v1beta1/inferenceservice/reconcilers/ingress at kserve/kserve aaac4e294dae):

- ``Host: <status.url host>`` (Knative: ``<isvc>.<ns>.<domain>``; Standard/RawDeployment:
  ``<isvc>-<ns>.<ingressDomain>``, domain.go with DefaultDomainTemplate) reaches a Ready
  InferenceService; with ``pathTemplate`` set (ingress_reconciler.go + path.go GenerateUrlPath) also
  ``Host: <ingressDomain>`` and path ``<rendered template>/...``, rewritten to ``/...``;
- what a server answers for is what it has loaded: a single-model Triton server the model
  directories under its storageUri (the repository root), any other runtime the ISVC's name; a
  multi-model host only what its agent has loaded (``Controller.loaded_models``), not what is Ready;
- ModelMesh InferenceServices get no ingress route at all: they are reached through the
  ``modelmesh-serving`` Service (here: :attr:`Ingress.modelmesh_port`, its REST proxy; the model is
  the ``mm-vmodel-id`` header, else the path's model name).

Unknown hosts get 404 (as an Istio gateway), unknown models 404 with a JSON error. Answers come
from the workload's own predictor, so they are the real model's.
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

from .controller import is_mms_host, is_modelmesh, is_ready, is_triton, predictor_model


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
        self._mm: Optional[_Server] = None
        self.requests = 0

    # -- routing ------------------------------------------------------------
    def routes(self) -> Dict[str, Tuple[str, str, str]]:
        """{hostname or "path:<prefix>": (namespace, isvc name, kind)}, rebuilt when the store changed."""
        store = self.d.store
        if store.rv == self._routes_rv:
            return self._routes
        with self._rlock:
            if store.rv == self._routes_rv:
                return self._routes
            isvc_t = self.d.type_for("serving.kserve.io", "inferenceservices")
            cfg = self.d.config
            routes: Dict[str, Tuple[str, str, str]] = {}
            with store.lock:
                rv = store.rv
                isvcs = store.items(isvc_t) if isvc_t else []
            for isvc in isvcs:
                if not is_ready(isvc) or is_modelmesh(isvc):
                    continue
                ns, name = isvc["metadata"]["namespace"], isvc["metadata"]["name"]
                st = isvc.get("status") or {}
                kind = "mms" if is_mms_host(isvc) else ("triton" if is_triton(isvc) else "single")
                for url in (st.get("url"), ((st.get("components") or {}).get("predictor") or {}).get("url")):
                    u = urllib.parse.urlsplit(url or "")
                    if u.hostname and u.path.strip("/"):      # a path-based URL (pathTemplate): by path
                        routes[f"path:{u.path.rstrip('/')}"] = (ns, name, kind)
                    elif u.hostname:
                        routes[u.hostname] = (ns, name, kind)
            self._routes, self._routes_rv = routes, rv
            return routes

    def served(self, ns: str, name: str, kind: str) -> Set[str]:
        """The models the server of ISVC ``name`` answers for now."""
        if kind == "mms":
            return self.d.controller.loaded_models(ns, name)
        if kind == "triton":
            isvc_t = self.d.type_for("serving.kserve.io", "inferenceservices")
            isvc = self.d.store.get(isvc_t, ns, name) or {}
            return self.d.controller.triton_repository(predictor_model(isvc).get("storageUri") or "")[0]
        return {name}

    def modelmesh_models(self) -> Set[str]:
        isvc_t = self.d.type_for("serving.kserve.io", "inferenceservices")
        loaded = self.d.controller.modelmesh_loaded()
        return {i["metadata"]["name"] for i in (self.d.store.items(isvc_t) if isvc_t else [])
                if is_modelmesh(i) and is_ready(i) and i["metadata"]["name"] in loaded}

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

        class M(_Handler):
            modelmesh = True
        M.ingress = ingress
        self._mm = _Server(("127.0.0.1", 0), M)
        threading.Thread(target=self._mm.serve_forever, kwargs={"poll_interval": 0.1},
                         name="k8s-double-modelmesh", daemon=True).start()

    @property
    def modelmesh_port(self) -> int:
        """The ``modelmesh-serving`` Service's REST proxy (as after ``kubectl port-forward svc/modelmesh-serving``)."""
        return self._mm.server_address[1]

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def host(self) -> str:
        return "127.0.0.1"

    def stop(self) -> None:
        for attr in ("_httpd", "_mm"):
            srv = getattr(self, attr, None)
            if srv is not None:
                srv.shutdown()
                srv.server_close()
                setattr(self, attr, None)
        shutil.rmtree(self.tmp, ignore_errors=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True     # headers and body are separate writes: no 40 ms delayed-ACK stalls
    ingress: Ingress = None
    modelmesh = False
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

    def _target(self, path: str):
        """(server, models, path after the route's prefix) or None."""
        ing = self.ingress
        if self.modelmesh:
            vid = self.headers.get("mm-vmodel-id")
            models = ing.modelmesh_models()
            return ("modelmesh-serving", ({vid} & models) if vid else models, path)
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0].strip().lower()
        routes = ing.routes()
        r = routes.get(host)
        if r is None and host == ing.d.config.ingress_domain.lower():
            for k, v in routes.items():
                if k.startswith("path:") and (path + "/").startswith(k[5:] + "/"):
                    r, path = v, path[len(k) - 5:] or "/"
                    break
        if r is None:
            return None
        return (r[1], ing.served(*r), path)

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
        target = self._target(urllib.parse.urlsplit(self.path).path)
        if target is None:
            return self._send(404)
        server, models, path = target
        parts = [p for p in path.split("/") if p]
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
