"""Container and InferenceService specs: what one server requests.

One type for everyone: the experiments (reserved resources per step), the
backends (the kserve backend's manifests), the capacity planner and the report
all use :class:`ServiceSpec` made of :class:`Container` s, and build it from
parameters in one place, :func:`service_spec` (:func:`for_params` for both
modes of a params object or a run's params dict). Quantities are parsed
exactly by :mod:`mmslib.quantity`. The seed's specs (:data:`SEED`) are read
from :mod:`mmslib.seed`, never retyped.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any, Dict, Mapping, Optional

from . import seed
from .errors import ParamError
from .quantity import MiB, cpu_exact, memory_exact

__all__ = ["Container", "ServiceSpec", "service_spec", "for_params", "SEED", "PREDICTOR", "SIDECAR"]

PREDICTOR = "kserve-container"   # KServe's predictor container name
SIDECAR = "queue-proxy"          # Knative's sidecar


def pos_int(value: Any, name: str, *, allow_none: bool = False, allow_zero: bool = False) -> Optional[int]:
    if value is None and allow_none:
        return None
    lo = 0 if allow_zero else 1
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise ParamError(name, value, f"an integer >= {lo}" + (" or null (unknown)" if allow_none else ""))
    return value


def pos_quantity(value: Any, name: str, kind: str):
    """A cpu (cores, exact) or memory (bytes) quantity > 0, or None."""
    if value is None:
        return None
    q = cpu_exact(value, name) if kind == "cpu" else memory_exact(value, name)
    if q <= 0:
        raise ParamError(name, value, f"a {kind} quantity > 0, or null (unknown)")
    return q


@dataclass(frozen=True)
class Container:
    """One container of a server's pod with its CPU/memory *requests* (Kubernetes quantities)."""

    name: str
    cpu: str | float | int
    memory: str | int
    sidecar: bool = False

    def __post_init__(self) -> None:
        cpu_exact(self.cpu, f"{self.name}.cpu")
        memory_exact(self.memory, f"{self.name}.memory")

    @property
    def cpu_exact(self) -> Fraction:
        return cpu_exact(self.cpu, f"{self.name}.cpu")

    @property
    def memory_bytes(self) -> int:
        return memory_exact(self.memory, f"{self.name}.memory")


@dataclass(frozen=True, init=False)
class ServiceSpec:
    """What one InferenceService (one server) costs.

    containers: containers of one pod, the predictor first, then sidecars
        such as queue-proxy (``sidecar=True``); their requests are reserved.
    pods: pods per ISVC (minReplicas; the seed uses 1).
    k8s_services: Kubernetes Services created per ISVC (default 4, see :mod:`mmslib.planner`).
    cluster_ips: how many of those have a ClusterIP (default 2).
    etcd_bytes: bytes the ISVC's API objects take in etcd; None = unknown.

    ``ServiceSpec([c1, c2, ...])`` (a list of containers alone, the former
    ``resources.ServerSpec`` form) names it "server" and marks every container
    after the first as a sidecar.
    """

    name: str
    containers: tuple
    pods: int = 1
    k8s_services: int = 4
    cluster_ips: int = 2
    etcd_bytes: int | str | None = None

    def __init__(self, name: Any = "server", containers: Any = (), pods: int = 1, k8s_services: int = 4,
                 cluster_ips: int = 2, etcd_bytes: int | str | None = None):
        if not isinstance(name, str) and not containers:
            name, containers = "server", tuple(
                replace(c, sidecar=True) if i and not c.sidecar else c for i, c in enumerate(name or ()))
        for k, v in (("name", name), ("containers", containers), ("pods", pods), ("k8s_services", k8s_services),
                     ("cluster_ips", cluster_ips), ("etcd_bytes", etcd_bytes)):
            object.__setattr__(self, k, v)
        self.__post_init__()

    def __post_init__(self) -> None:
        if not self.containers or not all(isinstance(c, Container) for c in self.containers):
            raise ParamError(f"{self.name}.containers", self.containers, "a non-empty tuple of Container")
        object.__setattr__(self, "containers", tuple(self.containers))
        pos_int(self.pods, f"{self.name}.pods")
        pos_int(self.k8s_services, f"{self.name}.k8s_services", allow_zero=True)
        pos_int(self.cluster_ips, f"{self.name}.cluster_ips", allow_zero=True)
        if self.etcd_bytes is not None:
            pos_quantity(self.etcd_bytes, f"{self.name}.etcd_bytes", "memory")

    @classmethod
    def from_params(cls, predictor_cpu, predictor_memory, sidecar_cpu=None, sidecar_memory=None) -> "ServiceSpec":
        """The former ``resources.ServerSpec.from_params``: :func:`service_spec` named "server"."""
        return service_spec("server", predictor_cpu, predictor_memory, sidecar_cpu, sidecar_memory)

    # containers
    @property
    def predictor(self) -> Container:
        return next((c for c in self.containers if not c.sidecar), self.containers[0])

    @property
    def sidecars(self) -> tuple:
        return tuple(c for c in self.containers if c.sidecar)

    # per pod
    @property
    def pod_cpu(self) -> Fraction:
        return sum((c.cpu_exact for c in self.containers), Fraction(0))

    @property
    def pod_memory(self) -> int:
        return sum(c.memory_bytes for c in self.containers)

    # per ISVC
    @property
    def cpu(self) -> Fraction:
        return self.pods * self.pod_cpu

    @property
    def memory(self) -> int:
        return self.pods * self.pod_memory

    @property
    def memory_bytes(self) -> int:
        return self.memory

    @property
    def sidecar_cpu(self) -> Fraction:
        return self.pods * sum((c.cpu_exact for c in self.sidecars), Fraction(0))

    @property
    def sidecar_memory(self) -> int:
        return self.pods * sum(c.memory_bytes for c in self.sidecars)

    @property
    def predictor_memory(self) -> int:
        """Memory request of the non-sidecar containers of one pod (TrainedModel budget)."""
        return sum(c.memory_bytes for c in self.containers if not c.sidecar)

    def ips(self, count_service_ips: bool = True) -> int:
        return self.pods + (self.cluster_ips if count_service_ips else 0)

    @property
    def etcd_bytes_int(self) -> int | None:
        return None if self.etcd_bytes is None else memory_exact(self.etcd_bytes, f"{self.name}.etcd_bytes")

    def service(self) -> "ServiceSpec":
        """Itself (the former ``ServerSpec.service()``)."""
        return self

    def reserved(self, servers: int) -> Dict[str, float]:
        """Requests of ``servers`` such InferenceServices: CPU in cores, memory in MiB, sidecars apart."""
        return {"reserved_cpu": float(self.cpu * servers),
                "reserved_memory_mib": self.memory * servers / MiB,
                "reserved_sidecar_cpu": float(self.sidecar_cpu * servers),
                "reserved_sidecar_memory_mib": self.sidecar_memory * servers / MiB}


def _no_sidecar(cpu) -> bool:
    return cpu is None or str(cpu).strip() in ("", "0")


def service_spec(name: str, predictor_cpu, predictor_memory, sidecar_cpu=None, sidecar_memory=None,
                 **kw) -> ServiceSpec:
    """THE builder from parameters: a predictor container, plus a queue-proxy sidecar unless
    ``sidecar_cpu`` is None, "" or "0". ``kw``: :class:`ServiceSpec`'s other fields."""
    cs = [Container(PREDICTOR, predictor_cpu, predictor_memory)]
    if not _no_sidecar(sidecar_cpu):
        cs.append(Container(SIDECAR, sidecar_cpu, sidecar_memory if sidecar_memory not in (None, "") else "0",
                            sidecar=True))
    return ServiceSpec(name, tuple(cs), **kw)


def _get(p: Any, key: str, default: Any) -> Any:
    v = p.get(key, default) if isinstance(p, Mapping) else getattr(p, key, default)
    return default if v is None and default is not None and key != "sidecar_cpu" else v


def for_params(p: Any, **kw) -> Dict[str, ServiceSpec]:
    """``{"traditional": spec, "mms": spec}`` from experiment parameters: a params object or a
    run's params dict (``meta.json``); a missing key takes the seed's value. ``kw`` as
    :func:`service_spec` (e.g. ``k8s_services``)."""
    s = seed.STRESS_SPECS
    sc, sm = _get(p, "sidecar_cpu", s["queue_proxy"]["cpu"]), _get(p, "sidecar_memory", s["queue_proxy"]["memory"])
    if _get(p, "deployment_mode", "Serverless") in ("RawDeployment", "Standard"):
        sc = sm = None          # KServe's raw deployment: no Knative, no queue-proxy sidecar
    trad = service_spec("traditional", _get(p, "traditional_predictor_cpu", s["traditional_predictor"]["cpu"]),
                        _get(p, "traditional_predictor_memory", s["traditional_predictor"]["memory"]), sc, sm, **kw)
    mms = service_spec("mms-host", _get(p, "mms_predictor_cpu", s["mms_predictor"]["cpu"]),
                       _get(p, "mms_predictor_memory", s["mms_predictor"]["memory"]), sc, sm, **kw)
    return {"traditional": trad, "mms": mms}


#: The seed's stress-test specs (predictor 100m/100Mi or 10/10Gi, each + queue-proxy 1/500Mi).
SEED: Dict[str, ServiceSpec] = for_params({})
