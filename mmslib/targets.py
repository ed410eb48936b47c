"""Load targets and the traffic split: what the load generator sends requests to, and which target each request goes to.

:class:`Target` is the load generator's input contract (an infer URL or a gRPC address, a model,
a V2 JSON request body, optionally the expected outputs), validated on construction.

Traffic split: per-target weights (:func:`traffic_weights`), cumulative, and a
counter-based PRNG in the k6 script: iteration ``i`` goes to target
``searchsorted(cum, hash32(seed, i) / 2**32, side="right")``, deterministic given
the seed whatever VU runs it; :func:`target_sequence` reproduces it in Python.
:mod:`mmslib.loadgen` re-exports these names (``from mmslib.loadgen import Target`` keeps working).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence
from urllib.parse import urlsplit

import numpy as np

from .errors import ParamError

__all__ = ["PROTOCOLS", "TRAFFIC", "Target", "traffic_weights", "target_sequence"]

PROTOCOLS = ("rest", "grpc")
TRAFFIC = ("uniform", "zipf")
# V2 datatype -> InferTensorContents field (k6 JSON mapping); FP16/BF16 only go raw.
GRPC_CONTENTS = {
    "BOOL": "bool_contents", "INT8": "int_contents", "INT16": "int_contents",
    "INT32": "int_contents", "INT64": "int64_contents", "UINT8": "uint_contents",
    "UINT16": "uint_contents", "UINT32": "uint_contents", "UINT64": "uint64_contents",
    "FP32": "fp32_contents", "FP64": "fp64_contents", "BYTES": "bytes_contents",
}
_TAG_FORBIDDEN = set("&=,\"\n\r")


# --------------------------------------------------------------------------- targets

def _expect_strings(values: Any) -> List[str]:
    """Flatten expected values (lists, numpy arrays, bytes) to strings."""
    flat = np.asarray(values, dtype=object).ravel().tolist() if not isinstance(values, (str, bytes)) \
        else [values]
    out = []
    for x in flat:
        if isinstance(x, (bytes, bytearray, np.bytes_)):
            out.append(bytes(x).decode("utf-8"))
        elif isinstance(x, (bool, np.bool_)):
            out.append("true" if x else "false")
        elif isinstance(x, (np.generic,)):
            out.append(str(x.item()))
        else:
            out.append(str(x))
    return out


@dataclass
class Target:
    """One thing to send requests to.

    rest: ``url`` is the full infer URL (``http://127.0.0.1:P/v2/models/NAME/infer``),
    ``body`` the V2 JSON request (``{"inputs": [...]}``); ``Content-Type:
    application/json`` is added unless ``headers`` sets it.
    grpc: ``url`` is ``HOST:PORT``; ``body`` the same V2 JSON request, which the
    script turns into a ``ModelInferRequest`` for ``model`` (``headers`` become
    gRPC metadata).
    ``expect``: output name -> expected values (flattened; numpy arrays and
    bytes are converted to strings); a response is ok only when every named
    output equals them (numbers to a relative 1e-6).
    ``endpoint``: the tag recorded per request; by default the server address
    (``http://HOST:PORT`` or ``HOST:PORT``).
    """

    url: str
    model: str
    body: dict
    protocol: str = "rest"
    headers: Dict[str, str] = field(default_factory=dict)
    expect: Optional[Dict[str, Any]] = None
    endpoint: Optional[str] = None

    def __post_init__(self):
        if self.protocol not in PROTOCOLS:
            raise ParamError("protocol", self.protocol, ", ".join(PROTOCOLS))
        if not isinstance(self.model, str) or not self.model or _TAG_FORBIDDEN & set(self.model):
            raise ParamError("model", self.model, "a non-empty name without & = , quotes or newlines")
        if not isinstance(self.body, dict) or not isinstance(self.body.get("inputs"), list) \
                or not self.body["inputs"]:
            raise ParamError("body", type(self.body).__name__, "a V2 JSON request dict with an 'inputs' list")
        for t in self.body["inputs"]:
            if not isinstance(t, dict) or not {"name", "datatype", "shape", "data"} <= set(t):
                raise ParamError("body", t, "inputs as V2 JSON tensors with name, datatype, shape, data")
        self.url = str(self.url)
        if self.protocol == "rest":
            parts = urlsplit(self.url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ParamError("url", self.url, "a full infer URL like http://127.0.0.1:8080/v2/models/NAME/infer")
            default_endpoint = f"{parts.scheme}://{parts.netloc}"
        else:
            host, sep, port = str(self.url).rpartition(":")
            if "/" in self.url or not sep or not host or not port.isdigit():
                raise ParamError("url", self.url, "HOST:PORT for a gRPC target (no scheme)")
            for t in self.body["inputs"]:
                if t.get("datatype") not in GRPC_CONTENTS:
                    raise ParamError("datatype", t.get("datatype"),
                                     ", ".join(GRPC_CONTENTS) + " (FP16/BF16 need raw contents)")
            default_endpoint = self.url
        if self.endpoint is None:
            self.endpoint = default_endpoint
        if not self.endpoint or _TAG_FORBIDDEN & set(self.endpoint):
            raise ParamError("endpoint", self.endpoint, "a non-empty name without & = , quotes or newlines")
        self.headers = {str(k): str(v) for k, v in (self.headers or {}).items()}
        if self.expect is not None:
            if not isinstance(self.expect, dict) or not self.expect:
                raise ParamError("expect", self.expect, "None or a dict output name -> expected values")
            self.expect = {str(k): _expect_strings(v) for k, v in self.expect.items()}


# --------------------------------------------------------------------------- traffic

def traffic_weights(n: int, kind: str = "uniform", skew: float = 1.1) -> np.ndarray:
    """Share of requests per target: ``uniform``, or ``zipf`` (target k, from 0,
    gets a share proportional to ``1 / (k + 1) ** skew``: target 0 is the
    hottest, ``w[0] / w[1] == 2 ** skew``). Sums to 1."""
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise ParamError("n", n, "an integer >= 1 (number of targets)")
    if kind not in TRAFFIC:
        raise ParamError("traffic", kind, ", ".join(TRAFFIC))
    if kind == "uniform":
        w = np.ones(int(n))
    else:
        if not isinstance(skew, (int, float, np.number)) or isinstance(skew, bool) \
                or not math.isfinite(skew) or skew < 0:
            raise ParamError("skew", skew, "a finite number >= 0 (zipf exponent s)")
        w = np.arange(1, int(n) + 1, dtype=np.float64) ** -float(skew)
    return w / w.sum()


def cumulative(weights: np.ndarray) -> List[float]:
    cum = np.cumsum(np.asarray(weights, dtype=np.float64))
    cum = cum / cum[-1]
    cum[-1] = 1.0
    return [float(x) for x in cum]


M32 = 0xFFFFFFFF
_GOLDEN = 0x9E3779B9


def _mix32(x: np.ndarray) -> np.ndarray:
    """lowbias32 (C. Wellons) on uint64 arrays holding 32-bit values; same as the script's mix32."""
    x = x & M32
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & M32
    x = x ^ (x >> 15)
    x = (x * 0x846CA68B) & M32
    x = x ^ (x >> 16)
    return x


def _rand01(seed: int, iterations: np.ndarray) -> np.ndarray:
    s = _mix32(np.array([int(seed) & M32], dtype=np.uint64))[0]
    i = np.asarray(iterations, dtype=np.uint64) & M32
    return _mix32((s + ((i * _GOLDEN) & M32)) & M32).astype(np.float64) / 4294967296.0


def target_sequence(weights: Sequence[float], n_iterations: int, seed: int = 0) -> np.ndarray:
    """Target index for iterations 0..n-1, exactly as the k6 script picks them."""
    cum = np.array(cumulative(np.asarray(weights, dtype=np.float64)))
    u = _rand01(seed, np.arange(int(n_iterations), dtype=np.uint64))
    return np.minimum(np.searchsorted(cum, u, side="right"), len(cum) - 1)
