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
from dataclasses import dataclass, field
from typing import Dict, Iterable, Iterator, List


@dataclass(frozen=True)
class Endpoint:
    model: str
    server: str                 # server / InferenceService name
    rest_url: str               # base URL, e.g. http://127.0.0.1:8080
    grpc_addr: str = ""         # host:port, "" when the server has no gRPC
    headers: Dict[str, str] = field(default_factory=dict)  # e.g. Host for an ingress

    @property
    def infer_url(self) -> str:
        return f"{self.rest_url}/v2/models/{self.model}/infer"


@dataclass
class DeployEvent:
    model: str
    server: str
    ok: bool
    seconds: float              # request to ready
    t_done: float               # monotonic-free wall clock (time.time()) when ready/failed
    error: str = ""
    kind: str = "model"         # "model" or "host"


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


class Backend(abc.ABC):
    """Interface shared by the local and kserve backends."""

    name: str = "?"

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
    def usage(self) -> Dict[str, float]:
        """Measured now: processes/pods, memory (MiB), CPU seconds; keys free-form."""

    def servers(self) -> List[str]:
        return []

    def kill_server(self, server: str) -> None:  # fault injection
        raise NotImplementedError

    @abc.abstractmethod
    def close(self) -> None:
        """Remove everything the backend created (idempotent)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def sample_inferences(workload, endpoints: List[Endpoint], infer, sample: int, seed: int):
    """Send a correct-answer check to a random ``sample`` of endpoints.

    ``infer(endpoint, inputs) -> outputs``; returns (sampled, correct, failures)."""
    import random

    import numpy as np
    import requests
    rng = random.Random(seed)
    picked = endpoints if len(endpoints) <= sample else rng.sample(endpoints, sample)
    nrng = np.random.default_rng(seed)
    correct, failures = 0, []
    for ep in picked:
        s = workload.make_sample(nrng)
        try:
            if workload.check(infer(ep, s.inputs), s.expected):
                correct += 1
            else:
                failures.append(f"{ep.model}: wrong answer")
        except (requests.RequestException, ValueError, KeyError) as e:
            failures.append(f"{ep.model} on {ep.server} ({ep.rest_url}): {e}")
    return len(picked), correct, failures


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
