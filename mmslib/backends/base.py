"""What every backend offers the experiments (and nothing about notebooks).

A backend deploys models in one of two modes and reports each model's
deployment as a :class:`DeployEvent` as it happens, so a stress run can stop at
the first limit without the backend knowing why:

- traditional: one server (InferenceService) per model;
- mms: ``hosts`` servers, then models added one by one (TrainedModels).

It then hands out :class:`Endpoint` s (where to send V2 requests) to the load
generator, which knows nothing of backends.
"""
from __future__ import annotations

import abc
import math
from dataclasses import dataclass, field, fields
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Tuple


@dataclass(frozen=True)
class Endpoint:
    model: str
    server: str                 # server / InferenceService name
    rest_url: str               # base URL, e.g. http://127.0.0.1:8080
    grpc_addr: str = ""         # host:port, "" when the server has no gRPC
    headers: Dict[str, str] = field(default_factory=dict)  # e.g. Host for an ingress
    served_name: str = ""       # the name the server knows the model by, when not ``model`` (Triton: the repository's)

    @property
    def infer_url(self) -> str:
        return f"{self.rest_url}/v2/models/{self.served_name or self.model}/infer"


@dataclass
class DeployEvent:
    model: str
    server: str
    ok: bool
    seconds: float              # request to ready
    t_done: float               # monotonic-free wall clock (time.time()) when ready/failed
    error: str = ""
    kind: str = "model"         # "model" or "host"
    admitted_s: Optional[float] = None   # request to accepted by the control plane (kserve: Ready), when it differs


@dataclass
class VerifyResult:
    expected: int               # models that should be listed
    listed: int                 # of those, listed by their server
    sampled: int
    correct: int
    failures: List[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.listed == self.expected and self.correct == self.sampled


@dataclass(frozen=True)
class Usage:
    """What a backend's servers use now: the one typed contract every backend returns.

    Experiments read only the typed fields (the stress run's memory-budget stop
    reads ``memory_mib``, on any backend); ``extra`` carries backend-specific
    facts for display and records only.
    """

    servers: int                                # server processes (local) or pods (kserve)
    memory_mib: Optional[float]                 # memory in use now: PSS sum (local) / working set (kserve); None if not measurable
    rss_mib: Optional[float] = None
    uss_mib: Optional[float] = None
    cpu_seconds: Optional[float] = None         # cumulative CPU of the servers (local)
    cpu_cores: Optional[float] = None           # current CPU use (kserve PodMetrics)
    gpu_memory_mib: Optional[float] = None
    reserved_cpu: Optional[float] = None        # requests of the scheduled pods (kserve)
    reserved_memory_mib: Optional[float] = None
    pending: int = 0                            # servers/pods not yet scheduled/running
    extra: Mapping[str, Any] = field(default_factory=dict)
    processes: Optional[int] = None             # OS processes, helpers included (Triton's stubs); None if not counted

    def as_row(self, prefix: str = "") -> Dict[str, Any]:
        """A flat dict for records: the typed fields (None -> NaN), then ``extra``."""
        out: Dict[str, Any] = {}
        for f in fields(self):
            if f.name == "extra":
                continue
            v = getattr(self, f.name)
            out[prefix + f.name] = math.nan if v is None else v
        for k, v in self.extra.items():
            out.setdefault(prefix + str(k), v)
        return out


class Backend(abc.ABC):
    """Interface shared by the local and kserve backends."""

    name: str = "?"
    # What reports say about a backend's runs, declared by the backend (so no report branches on its name):
    on_cluster: bool = False                        # servers are pods on a Kubernetes cluster
    servers_are: str = "server processes"           # what Usage.servers counts
    memory_measure: str = "PSS of the server processes"   # what Usage.memory_mib measures
    # What params checks generically against the parameters (so params.py branches on no backend's name):
    options: Optional[type] = None                  # its own parameters: a dataclass with validate(in_use) (or None)
    supports_protocols: Tuple[str, ...] = ("rest", "grpc")   # the load generator's protocols it can serve
    mms_engines: Tuple[str, ...] = ("trainedmodel",)  # the mms_engine values it runs
    runtimes: Optional[Tuple[str, ...]] = None      # the runtimes it runs; None: every one
    runtimes_note: str = ""                         # why, when it restricts them

    def deploy_notes(self, mode: str = "mms") -> Dict[str, Any]:
        """What bounded the deploy rate of ``mode``, for the stress summary ({}: nothing to say)."""
        return {}

    @abc.abstractmethod
    def deploy_traditional(self, models: List[str]) -> Iterator[DeployEvent]:
        """One server per model; yields an event per model as it is ready or fails."""

    @abc.abstractmethod
    def start_hosts(self, n: int) -> List[DeployEvent]:
        """Start ``n`` multi-model hosts (no models yet)."""

    @abc.abstractmethod
    def deploy_mms(self, models: List[str]) -> Iterator[DeployEvent]:
        """Add models to the hosts one by one (admission may refuse)."""

    @abc.abstractmethod
    def endpoints(self) -> List[Endpoint]:
        ...

    @abc.abstractmethod
    def verify(self, sample: int = 100, seed: int = 0) -> VerifyResult:
        ...

    @abc.abstractmethod
    def usage(self) -> Usage:
        """What the servers use now (see :class:`Usage`)."""

    def servers(self) -> List[str]:
        return []

    def pids(self) -> List[int]:
        """Process ids of the servers on this machine (whole process trees); [] where they are elsewhere."""
        return []

    def metrics_urls(self) -> List[str]:
        """Prometheus /metrics URLs of the servers, where this machine can reach them."""
        return []

    def metric_spec(self):
        """What the servers' metrics at :meth:`metrics_urls` mean (a
        :class:`mmslib.runtimes.MetricSpec`, declared by the runtime); None: no server-side time."""
        return None

    def environment(self) -> Dict[str, Any]:
        """Where the servers run, beyond this machine (``meta.json`` records this machine already):
        for a cluster its version and node shape. {} for servers on this machine."""
        return {}

    def kill_server(self, server: str) -> None:  # fault injection
        raise NotImplementedError

    @abc.abstractmethod
    def close(self) -> None:
        """Remove everything the backend created (idempotent)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def sample_inferences(workload, endpoints: List[Endpoint], infer, sample: int, seed: int,
                      ready_timeout_s: float = 30.0):
    """Send a correct-answer check to a random ``sample`` of endpoints.

    Each endpoint's model is first awaited ready (``GET /v2/models/<m>/ready``
    answering 200), all of them within one shared ``ready_timeout_s``; past it,
    each is asked once; a server that refuses the connection is not waited for.
    ``infer(endpoint, inputs) -> outputs``; returns (sampled, correct, failures)."""
    import random
    import time

    import numpy as np
    import requests
    rng = random.Random(seed)
    picked = endpoints if len(endpoints) <= sample else rng.sample(endpoints, sample)
    nrng = np.random.default_rng(seed)
    correct, failures = 0, []
    deadline = time.monotonic() + ready_timeout_s
    for ep in picked:
        s = workload.sample(ep.model, nrng)
        why = _await_ready(ep, deadline, ready_timeout_s)
        if why:
            failures.append(f"{ep.model} on {ep.server} ({ep.rest_url}): {why}")
            continue
        try:
            if workload.check(infer(ep, s.inputs), s.expected):
                correct += 1
            else:
                failures.append(f"{ep.model}: wrong answer")
        except (requests.RequestException, ValueError, KeyError) as e:
            failures.append(f"{ep.model} on {ep.server} ({ep.rest_url}): {e}")
    return len(picked), correct, failures


def _await_ready(ep: Endpoint, deadline: float, timeout_s: float) -> str:
    """"" once the model answers ready; else why not."""
    import time

    import requests
    last = "no answer"
    while True:
        try:
            r = requests.get(f"{ep.rest_url}/v2/models/{ep.served_name or ep.model}/ready", headers=ep.headers,
                             timeout=5)
            if r.status_code == 200:
                return ""
            last = f"HTTP {r.status_code}"
        except requests.ConnectionError as e:  # nothing listens: the server is gone, waiting will not help
            return f"connection refused, the server is not running ({type(e).__name__})"
        except requests.RequestException as e:
            last = type(e).__name__
        if time.monotonic() >= deadline:
            return f"not ready within {timeout_s:g} s (last answer: {last})"
        time.sleep(0.1)


def model_names(n: int, prefix: str = "m") -> List[str]:
    width = max(5, len(str(n - 1)))
    return [f"{prefix}{i:0{width}d}" for i in range(n)]


def chunks(xs: Iterable, n: int):
    buf = []
    for x in xs:
        buf.append(x)
        if len(buf) == n:
            yield buf
            buf = []
    if buf:
        yield buf
