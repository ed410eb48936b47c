"""Open Inference Protocol (V2) JSON codec and a small REST client.

Used by every runtime's client side: the deploy step (load/unload/ready/list)
and verification inferences. Load traffic itself goes through k6.
"""
from __future__ import annotations

from typing import Dict, Iterable, List

import numpy as np
import requests

JSON = {"Content-Type": "application/json"}

_NP = {"FP32": np.float32, "FP64": np.float64, "INT32": np.int32, "INT64": np.int64,
       "INT8": np.int8, "UINT8": np.uint8, "BOOL": np.bool_, "FP16": np.float16}


def _datatype(a: np.ndarray) -> str:
    if a.dtype == object or a.dtype.kind in "SU":
        return "BYTES"
    for name, t in _NP.items():
        if a.dtype == t:
            return name
    raise TypeError(f"no V2 datatype for numpy dtype {a.dtype}")


def encode_tensor(name: str, a: np.ndarray) -> dict:
    a = np.asarray(a)
    dt = _datatype(a)
    flat = a.ravel().tolist()
    if dt == "BYTES":
        flat = [x.decode() if isinstance(x, (bytes, bytearray)) else str(x) for x in flat]
    return {"name": name, "shape": list(a.shape), "datatype": dt, "data": flat}


def decode_tensor(t: dict) -> np.ndarray:
    dt, shape = t["datatype"], t["shape"]
    data = t["data"]
    if dt == "BYTES":
        arr = np.array([x.encode() if isinstance(x, str) else bytes(x) for x in np.ravel(data)], dtype=object)
    else:
        arr = np.asarray(data, dtype=_NP[dt])
    return arr.reshape(shape)


def request_body(inputs: Dict[str, np.ndarray]) -> dict:
    return {"inputs": [encode_tensor(k, v) for k, v in inputs.items()]}


def decode_outputs(body: dict) -> Dict[str, np.ndarray]:
    return {t["name"]: decode_tensor(t) for t in body.get("outputs", [])}


class V2Client:
    """REST client for one server (base URL like http://127.0.0.1:8080)."""

    def __init__(self, base_url: str, timeout: float = 30.0, session: requests.Session | None = None):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = session or requests.Session()

    def _url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def server_live(self) -> bool:
        try:
            return self.session.get(self._url("/v2/health/live"), timeout=self.timeout).status_code == 200
        except requests.RequestException:
            return False

    def model_ready(self, name: str) -> bool:
        try:
            r = self.session.get(self._url(f"/v2/models/{name}/ready"), timeout=self.timeout)
        except requests.RequestException:
            return False
        return r.status_code == 200

    def load(self, name: str) -> requests.Response:
        return self.session.post(self._url(f"/v2/repository/models/{name}/load"), json={},
                                 headers=JSON, timeout=self.timeout)

    def unload(self, name: str) -> requests.Response:
        return self.session.post(self._url(f"/v2/repository/models/{name}/unload"), json={},
                                 headers=JSON, timeout=self.timeout)

    def repository_index(self, ready_only: bool = True) -> List[dict]:
        body = {"ready": True} if ready_only else {}
        r = self.session.post(self._url("/v2/repository/index"), json=body, headers=JSON, timeout=self.timeout)
        r.raise_for_status()
        return r.json()

    def model_names(self) -> List[str]:
        """Names of the models the server lists as loaded/ready."""
        out = []
        for m in self.repository_index():
            # Triton lists every model in its store; a never-loaded one has no state.
            if str(m.get("state", "")).upper() in ("READY", "AVAILABLE"):
                out.append(m["name"])
        return out

    def metadata(self, name: str) -> dict:
        r = self.session.get(self._url(f"/v2/models/{name}"), timeout=self.timeout)
        r.raise_for_status()
        return r.json()

    def infer(self, name: str, inputs: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        r = self.session.post(self._url(f"/v2/models/{name}/infer"), json=request_body(inputs),
                              headers=JSON, timeout=self.timeout)
        r.raise_for_status()
        return decode_outputs(r.json())


def names(models: Iterable[dict]) -> List[str]:
    return [m["name"] for m in models]
