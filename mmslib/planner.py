"""Capacity planner: how many models can each serving mode deploy on a cluster?

Given cluster limits (:class:`ClusterLimits`) and the InferenceService spec of
a serving mode (:class:`ModeSpec`), :func:`plan` predicts the maximum number of
models the mode can deploy, which limit binds first, and what CPU/memory is
*reserved* (requested) at that point.  :func:`plan_table` gives the same as a
tidy DataFrame for the notebook.

Modes
-----
traditional
    One InferenceService (ISVC) per model.  Every ISVC costs ``pods`` pods
    (minReplicas), its containers' requests (predictor + queue-proxy sidecar),
    ``k8s_services`` Kubernetes Services and IP addresses.
mms
    ``hosts`` ISVCs, each holding many TrainedModels.  A model costs no pod,
    Service or IP (KServe 0.5 routes ``/v1/models/<name>`` through the host's
    ingress); it costs TrainedModel memory on its host, an entry in the host's
    model ConfigMap, and etcd space (each add rewrites the ConfigMap).

Kubernetes objects per ISVC (assumption, parameterised in :class:`ServiceSpec`)
------------------------------------------------------------------------------
For kfserving v0.5 on knative v0.17 with net-istio, one predictor-only,
serverless ISVC creates 4 Services:

* ``<isvc>`` - ExternalName, created by the kfserving ingress reconciler;
* ``<isvc>-predictor-default`` - ExternalName, the knative Route's placeholder;
* ``<isvc>-predictor-default-00001`` - ClusterIP (public revision service, SKS);
* ``<isvc>-predictor-default-00001-private`` - ClusterIP (private, SKS).

So ``k8s_services=4`` and ``cluster_ips=2``; with one pod IP that is 3 IP
addresses per ISVC when service IPs count against the IP limit
(``ClusterLimits.count_service_ips``).  These defaults are consistent with the
seed: 352 ISVCs use 1408 Services (< ~2000) and 1056 IPs (< 2048), so neither
limit could have stopped the traditional stress test at 352.

Quantities and specs
--------------------
Resource values are Kubernetes quantities (``"100m"``, ``"1"``, ``"100Mi"``,
``"10Gi"``, ``"500M"``, ``"0.55Ti"``, ``"1e3"``), parsed by :mod:`mmslib.quantity`;
an ISVC's containers are a :class:`mmslib.specs.ServiceSpec` (both re-exported
here). Arithmetic is exact (fractions), so the seed's totals come
out exactly: 352 traditional ISVCs reserve 387.2 CPU and 211,200 MiB.

Layout
------
One noun, the capacity planner: cluster limits, a plan per mode, and the
inferences that run a plan backwards from published counts (~800 lines, kept
together because every part reads the same limit rows). Its parts that are
nouns of their own live apart and are re-exported here: quantities
(:mod:`mmslib.quantity`), specs (:mod:`mmslib.specs`), the ConfigMap/etcd model
(:mod:`mmslib.etcd`).

Packing
-------
``ClusterLimits.packing`` selects how CPU/memory per node become a count:
``"aggregate"`` (default) treats the cluster's allocatable CPU/memory as one
pool (``floor(nodes * per_node / per_isvc)``); ``"per_node"`` packs whole pods
into identical nodes (``nodes * floor(per_node / per_pod)``), what the
scheduler can at best do with identical nodes, and always a multiple of
``nodes`` for one-pod ISVCs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterable, Mapping

import pandas as pd

from mmslib.errors import ParamError
from mmslib.etcd import (CONFIGMAP_KEY, DEFAULT_ENTRY_BYTES, DEFAULT_REVISION_OVERHEAD_BYTES,  # noqa: F401
                         configmap_entries_per_host, configmap_entry_bytes, etcd_fill_models,
                         etcd_growth_table, etcd_retained_bytes)
from mmslib.quantity import (GB, KB, MB, GiB, KiB, MiB, TiB, cpu_exact, exact, memory_exact,  # noqa: F401
                             memory_units, parse_cpu, parse_memory, parse_quantity)
from mmslib.specs import Container, ServiceSpec, pos_int, pos_quantity  # noqa: F401
from mmslib.specs import for_params as _specs_for

__all__ = [
    "KiB", "MiB", "GiB", "TiB", "KB", "MB", "GB",
    "parse_cpu", "parse_memory", "parse_quantity",
    "Container", "ServiceSpec", "ModeSpec", "ClusterLimits",
    "LimitRow", "PlanResult", "CpuInference", "ModelMemoryInference",
    "plan", "plan_table", "seed_specs", "load_cluster_limits",
    "compare_with_measured", "infer_cpu_per_node", "infer_model_memory",
    "configmap_entry_bytes", "configmap_entries_per_host", "etcd_retained_bytes", "etcd_fill_models",
    "etcd_growth_table", "memory_units",
]

MODES = ("traditional", "mms")
PACKINGS = ("aggregate", "per_node")

# Quantities and specs live in mmslib.quantity and mmslib.specs; imported here
# (and re-exported: planner.parse_cpu, planner.ServiceSpec, ... keep working).
_cpu_exact, _memory_exact, _quantity = cpu_exact, memory_exact, exact


@dataclass(frozen=True)
class ModeSpec:
    """A serving mode: its ISVC spec plus the multi-model parameters.

    mode: "traditional" (one ISVC per model) or "mms".
    isvc: the per-ISVC spec.
    hosts: number of MMS host ISVCs (mms only; None = as many as the cluster
        fits, or the fewest holding ``models_wanted``).
    model_memory: TrainedModel ``spec.memory`` (mms).  TrainedModel admission
        keeps the sum over a host <= the host predictor's memory request.
        None = unknown (the seed does not publish it).
    configmap_entry_bytes: bytes one model adds to the host ConfigMap's
        ``models.json`` (including its ``,`` separator); None = computed by
        :func:`configmap_entry_bytes` from the default entry template.
    configmap_overhead_bytes: ConfigMap data bytes besides the entries: the key
        ``models.json`` plus ``[]`` minus one separator = 12.
    etcd_revision_overhead_bytes: bytes each stored ConfigMap revision costs on
        top of its data (object metadata, managedFields, etcd key/MVCC
        bookkeeping); an estimate, default 512.
    """

    mode: str
    isvc: ServiceSpec
    hosts: int | None = None
    model_memory: str | int | None = None
    configmap_entry_bytes: int | None = None
    configmap_overhead_bytes: int = len(CONFIGMAP_KEY) + 1
    etcd_revision_overhead_bytes: int = 512

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ParamError("mode", self.mode, "one of " + ", ".join(MODES))
        if not isinstance(self.isvc, ServiceSpec):
            raise ParamError("isvc", self.isvc, "a ServiceSpec")
        if self.mode == "traditional":
            if self.hosts is not None:
                raise ParamError("hosts", self.hosts, "None for traditional mode (one ISVC per model)")
            if self.model_memory is not None:
                raise ParamError("model_memory", self.model_memory, "None for traditional mode")
        pos_int(self.hosts, "hosts", allow_none=True)
        if self.model_memory is not None:
            pos_quantity(self.model_memory, "model_memory", "memory")
        pos_int(self.configmap_entry_bytes, "configmap_entry_bytes", allow_none=True)
        pos_int(self.configmap_overhead_bytes, "configmap_overhead_bytes", allow_zero=True)
        pos_int(self.etcd_revision_overhead_bytes, "etcd_revision_overhead_bytes", allow_zero=True)

    @property
    def model_memory_bytes(self) -> int | None:
        return None if self.model_memory is None else _memory_exact(self.model_memory, "model_memory")

    @property
    def entry_bytes(self) -> int:
        if self.configmap_entry_bytes is not None:
            return self.configmap_entry_bytes
        return configmap_entry_bytes(memory=self.model_memory if self.model_memory is not None else "1Mi")


@dataclass
class ClusterLimits:
    """Cluster limits; every limit may be None (unknown: not evaluated).

    nodes, max_pods_per_node: worker nodes and the kubelet's max pods per node.
    max_pods: total pod limit; if given together with the per-node values the
        smaller of the two is used.
    cpu_per_node, memory_per_node: *allocatable* CPU/memory per worker node left
        for these ISVCs (after system reservations and daemonsets).
    max_ips: IP addresses available; pods take one each and, when
        ``count_service_ips``, every ClusterIP Service takes one too.
    max_services: Kubernetes Services the cluster (here: the istio ingress
        gateway) can hold.
    etcd_bytes: etcd size; configmap_max_bytes: ConfigMap data limit (1 MiB).
    etcd_compaction: False = superseded revisions are never compacted (the
        seed's description of KServe 0.5), True = compacted after every write,
        int W = compacted every W writes (see :func:`etcd_retained_bytes`).
    baseline_pods / baseline_services / baseline_ips / baseline_etcd_bytes:
        already used by other things on the cluster (default 0).
    packing: "aggregate" or "per_node" (see module doc).
    """

    nodes: int | None = None
    max_pods_per_node: int | None = None
    max_pods: int | None = None
    cpu_per_node: str | float | int | None = None
    memory_per_node: str | int | None = None
    max_ips: int | None = None
    max_services: int | None = None
    etcd_bytes: str | int | None = None
    configmap_max_bytes: str | int | None = "1Mi"
    count_service_ips: bool = True
    etcd_compaction: bool | int = False
    baseline_pods: int = 0
    baseline_services: int = 0
    baseline_ips: int = 0
    baseline_etcd_bytes: str | int = 0
    packing: str = "aggregate"
    source: str = ""

    def __post_init__(self) -> None:
        for name in ("nodes", "max_pods_per_node", "max_pods", "max_ips", "max_services"):
            pos_int(getattr(self, name), name, allow_none=True)
        for name in ("baseline_pods", "baseline_services", "baseline_ips"):
            pos_int(getattr(self, name), name, allow_zero=True)
        pos_quantity(self.cpu_per_node, "cpu_per_node", "cpu")
        pos_quantity(self.memory_per_node, "memory_per_node", "memory")
        pos_quantity(self.etcd_bytes, "etcd_bytes", "memory")
        pos_quantity(self.configmap_max_bytes, "configmap_max_bytes", "memory")
        _memory_exact(self.baseline_etcd_bytes, "baseline_etcd_bytes")
        if not isinstance(self.count_service_ips, bool):
            raise ParamError("count_service_ips", self.count_service_ips, "true or false")
        c = self.etcd_compaction
        if not (isinstance(c, bool) or (isinstance(c, int) and c >= 1)):
            raise ParamError("etcd_compaction", c, "false (never), true (every write) or an integer >= 1 (every W writes)")
        if self.packing not in PACKINGS:
            raise ParamError("packing", self.packing, "one of " + ", ".join(PACKINGS))

    @property
    def total_pods(self) -> int | None:
        per_node = (self.nodes * self.max_pods_per_node
                    if self.nodes is not None and self.max_pods_per_node is not None else None)
        vals = [v for v in (per_node, self.max_pods) if v is not None]
        return min(vals) if vals else None

    @property
    def cpu_per_node_exact(self) -> Fraction | None:
        return pos_quantity(self.cpu_per_node, "cpu_per_node", "cpu")

    @property
    def memory_per_node_bytes(self) -> int | None:
        return pos_quantity(self.memory_per_node, "memory_per_node", "memory")

    @property
    def etcd_bytes_int(self) -> int | None:
        return pos_quantity(self.etcd_bytes, "etcd_bytes", "memory")

    @property
    def configmap_max_bytes_int(self) -> int | None:
        return pos_quantity(self.configmap_max_bytes, "configmap_max_bytes", "memory")

    @property
    def baseline_etcd_bytes_int(self) -> int:
        return _memory_exact(self.baseline_etcd_bytes, "baseline_etcd_bytes")


_LIMIT_FIELDS = {f for f in ClusterLimits.__dataclass_fields__}


def load_cluster_limits(path_or_dict: str | Path | Mapping[str, Any]) -> ClusterLimits:
    """Read :class:`ClusterLimits` from a YAML file (e.g. ``params/seed-cluster.yaml``) or a dict.

    The YAML is a flat mapping of :class:`ClusterLimits` field names; an
    optional top-level ``cluster:`` mapping is unwrapped.  Unknown keys raise
    :class:`~mmslib.errors.ParamError`.
    """
    if isinstance(path_or_dict, Mapping):
        data = dict(path_or_dict)
        origin = "dict"
    else:
        p = Path(path_or_dict)
        if not p.is_file():
            raise ParamError("path", str(path_or_dict), "an existing YAML file or a mapping")
        import yaml

        data = yaml.safe_load(p.read_text()) or {}
        origin = str(p)
        if not isinstance(data, Mapping):
            raise ParamError("path", str(p), "a YAML file holding a mapping of ClusterLimits fields")
        data = dict(data)
    if set(data) == {"cluster"} and isinstance(data["cluster"], Mapping):
        data = dict(data["cluster"])
    unknown = sorted(set(data) - _LIMIT_FIELDS)
    if unknown:
        raise ParamError(unknown[0], data[unknown[0]], "one of " + ", ".join(sorted(_LIMIT_FIELDS)))
    data.setdefault("source", origin)
    return ClusterLimits(**data)


# --------------------------------------------------------------------------
# seed specs
# --------------------------------------------------------------------------


def seed_specs(
    *,
    mms_hosts: int = 6,
    model_memory: str | int | None = None,
    k8s_services: int = 4,
    cluster_ips: int = 2,
) -> dict[str, ModeSpec]:
    """The seed's stress-test specs: ``{"traditional": ModeSpec, "mms": ModeSpec}``.

    traditional: predictor 100m/100Mi + queue-proxy 1/500Mi per ISVC.
    mms: ``mms_hosts`` (6) ISVCs of predictor 10/10Gi + queue-proxy 1/500Mi.
    The seed does not publish the TrainedModel memory: ``model_memory`` is None
    unless given (see :func:`infer_model_memory`).
    """
    both = _specs_for({}, k8s_services=k8s_services, cluster_ips=cluster_ips)  # the seed's, from mmslib.seed
    trad, mms = both["traditional"], both["mms"]
    return {
        "traditional": ModeSpec("traditional", trad),
        "mms": ModeSpec("mms", mms, hosts=mms_hosts, model_memory=model_memory),
    }


# --------------------------------------------------------------------------
# plan
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class LimitRow:
    """One limit evaluated for one mode.

    status: "ok" (computed), "unknown" (a parameter is None), or
    "no_model_limit" (MMS: models use none of this resource and the hosts fit).
    max_isvcs: ISVCs the limit allows (None if unknown / not applicable).
    max_models: models the limit allows (None unless status == "ok").
    models_per_host: MMS host-level limits only: models one host may hold.
    """

    limit: str
    capacity: float | None
    capacity_unit: str
    per_isvc: float | None
    max_isvcs: int | None
    max_models: int | None
    status: str
    binds: bool = False
    note: str = ""
    models_per_host: int | None = None


@dataclass(frozen=True)
class PlanResult:
    """Result of :func:`plan`.  Usage fields are at ``at_models`` models."""

    mode: str
    max_models: int | None
    binding_limit: str | None
    binding_limits: tuple[str, ...]
    limits: tuple[LimitRow, ...]
    at_models: int | None
    fits: bool | None
    hosts: int | None
    isvcs: int | None
    pods: int | None
    services: int | None
    ips: int | None
    reserved_cpu: float | None
    reserved_memory_bytes: int | None
    sidecar_cpu: float | None
    sidecar_memory_bytes: int | None
    per_isvc_cpu: float
    per_isvc_memory_bytes: int
    per_isvc_sidecar_cpu: float
    per_isvc_sidecar_memory_bytes: int
    models_per_host: int | None = None
    per_isvc_cpu_exact: Fraction = Fraction(0)
    per_isvc_sidecar_cpu_exact: Fraction = Fraction(0)

    @property
    def per_limit(self) -> dict[str, int | None]:
        """``{limit name: max models}`` (None = unknown / does not bound models)."""
        return {r.limit: r.max_models for r in self.limits}

    @property
    def limits_table(self) -> pd.DataFrame:
        return _rows_frame(self.mode, self.limits)

    @property
    def reserved_memory_mib(self) -> float | None:
        return None if self.reserved_memory_bytes is None else self.reserved_memory_bytes / MiB

    @property
    def reserved_memory_gib(self) -> float | None:
        return None if self.reserved_memory_bytes is None else self.reserved_memory_bytes / GiB

    @property
    def reserved_memory_gb(self) -> float | None:
        return None if self.reserved_memory_bytes is None else self.reserved_memory_bytes / GB

    @property
    def sidecar_cpu_share(self) -> float | None:
        if not self.reserved_cpu:
            return None
        return self.sidecar_cpu / self.reserved_cpu

    @property
    def sidecar_memory_share(self) -> float | None:
        if not self.reserved_memory_bytes:
            return None
        return self.sidecar_memory_bytes / self.reserved_memory_bytes

    def reserved_at(self, isvcs: int) -> dict[str, float]:
        """Reserved CPU (cores) and memory (bytes) for ``isvcs`` ISVCs of this spec."""
        return {
            "cpu": float(self.per_isvc_cpu_exact * isvcs),
            "memory_bytes": self.per_isvc_memory_bytes * isvcs,
            "sidecar_cpu": float(self.per_isvc_sidecar_cpu_exact * isvcs),
            "sidecar_memory_bytes": self.per_isvc_sidecar_memory_bytes * isvcs,
        }

    def summary(self) -> dict[str, Any]:
        """Flat dict of the headline figures, memory in bytes, MiB, GiB and GB."""
        d = {k: getattr(self, k) for k in (
            "mode", "max_models", "binding_limit", "at_models", "fits", "hosts", "isvcs",
            "pods", "services", "ips", "reserved_cpu", "reserved_memory_bytes",
            "sidecar_cpu", "sidecar_memory_bytes", "models_per_host")}
        d.update(reserved_memory_mib=self.reserved_memory_mib, reserved_memory_gib=self.reserved_memory_gib,
                 reserved_memory_gb=self.reserved_memory_gb, sidecar_cpu_share=self.sidecar_cpu_share,
                 sidecar_memory_share=self.sidecar_memory_share)
        return d


def _floor(x: Fraction | int) -> int:
    return math.floor(x)


def _cluster_rows(limits: ClusterLimits, spec: ServiceSpec) -> list[dict[str, Any]]:
    """Per cluster-level limit: how many ISVCs of ``spec`` fit."""
    rows: list[dict[str, Any]] = []

    def add(limit, capacity, unit, per_isvc, max_isvcs, note=""):
        rows.append(dict(limit=limit, capacity=capacity, capacity_unit=unit, per_isvc=per_isvc,
                         max_isvcs=max_isvcs, note=note))

    pods = limits.total_pods
    add("pods", pods, "pods", spec.pods,
        None if pods is None else max(0, pods - limits.baseline_pods) // spec.pods,
        "" if pods is not None else "nodes/max_pods_per_node unknown")

    ip_per = spec.ips(limits.count_service_ips)
    add("ips", limits.max_ips, "IP addresses", ip_per,
        None if limits.max_ips is None else max(0, limits.max_ips - limits.baseline_ips) // ip_per,
        f"{spec.pods} pod IP(s)" + (f" + {spec.cluster_ips} ClusterIP(s)" if limits.count_service_ips else "") + " per ISVC")

    if spec.k8s_services == 0:
        add("services", limits.max_services, "k8s Services", 0, None, "ISVC creates no Services")
    else:
        add("services", limits.max_services, "k8s Services", spec.k8s_services,
            None if limits.max_services is None
            else max(0, limits.max_services - limits.baseline_services) // spec.k8s_services,
            f"{spec.k8s_services} Services per ISVC ({spec.cluster_ips} with ClusterIP)")

    for name, per_node, pod_req, isvc_req, unit in (
        ("cpu", limits.cpu_per_node_exact, spec.pod_cpu, spec.cpu, "cores"),
        ("memory", limits.memory_per_node_bytes, spec.pod_memory, spec.memory, "bytes"),
    ):
        if per_node is None or limits.nodes is None:
            add(name, None if per_node is None or limits.nodes is None else limits.nodes * per_node,
                unit, float(isvc_req), None, f"{name} per node or nodes unknown")
            continue
        total = limits.nodes * per_node
        if isvc_req == 0:
            add(name, float(total), unit, 0.0, None, "ISVC requests none")
            continue
        if limits.packing == "aggregate":
            n = _floor(Fraction(total) / isvc_req)
            note = "aggregate packing: floor(nodes*per_node/per_isvc)"
        else:
            n = (limits.nodes * _floor(Fraction(per_node) / pod_req)) // spec.pods if pod_req else None
            note = "per-node packing: nodes*floor(per_node/per_pod)"
        add(name, float(total), unit, float(isvc_req), n, note)

    etcd = limits.etcd_bytes_int
    per = spec.etcd_bytes_int
    if etcd is None or per is None or per == 0:
        add("etcd", etcd, "bytes", per, None,
            "etcd bytes per ISVC unknown" if per is None else ("etcd size unknown" if etcd is None else ""))
    else:
        add("etcd", etcd, "bytes", per, max(0, etcd - limits.baseline_etcd_bytes_int) // per)
    return rows


def _rows_frame(mode: str, rows: Iterable[LimitRow]) -> pd.DataFrame:
    cols = ["mode", "limit", "capacity", "capacity_unit", "per_isvc", "max_isvcs", "models_per_host",
            "max_models", "status", "binds", "note"]
    df = pd.DataFrame([{"mode": mode, **r.__dict__} for r in rows], columns=cols)
    for c in ("max_isvcs", "models_per_host", "max_models"):
        df[c] = df[c].astype("Int64")
    for c in ("capacity", "per_isvc"):
        df[c] = df[c].astype("float64")
    df["binds"] = df["binds"].astype(bool)
    return df


def _finish(rows: list[dict[str, Any]]) -> tuple[tuple[LimitRow, ...], int | None, tuple[str, ...]]:
    known = [r["max_models"] for r in rows if r["status"] == "ok"]
    best = min(known) if known else None
    out = []
    binding: list[str] = []
    for r in rows:
        binds = r["status"] == "ok" and r["max_models"] == best
        if binds:
            binding.append(r["limit"])
        out.append(LimitRow(
            limit=r["limit"],
            capacity=None if r["capacity"] is None else float(r["capacity"]),
            capacity_unit=r["capacity_unit"],
            per_isvc=None if r["per_isvc"] is None else float(r["per_isvc"]),
            max_isvcs=r["max_isvcs"], max_models=r["max_models"], status=r["status"],
            binds=binds, note=r.get("note", ""), models_per_host=r.get("models_per_host")))
    return tuple(out), best, tuple(binding)


def plan(limits: ClusterLimits, mode_spec: ModeSpec, models_wanted: int | None = None) -> PlanResult:
    """Predict the maximum models ``mode_spec`` can deploy on ``limits``.

    Every limit gives a maximum (see :class:`LimitRow`); the smallest known
    one binds (ties: all of them, ``binding_limit`` is the first in table
    order).  Usage (ISVCs, pods, Services, IPs, reserved CPU/memory) is
    reported at ``models_wanted`` if given, else at ``max_models``; ``fits``
    says whether ``models_wanted`` <= ``max_models``.

    traditional: max models = max ISVCs = min over pods, IPs, Services, CPU,
    memory, etcd (per-ISVC bytes).
    mms: with H hosts, per-host capacity = min(floor(host predictor memory /
    model memory) [TrainedModel admission], floor((ConfigMap limit - overhead)
    / entry bytes)); host-level limits give H x per-host; etcd gives
    :func:`etcd_fill_models` over H hosts; cluster-level limits do not bound
    the model count unless the H hosts themselves do not fit.
    """
    if not isinstance(limits, ClusterLimits):
        raise ParamError("limits", limits, "a ClusterLimits")
    if not isinstance(mode_spec, ModeSpec):
        raise ParamError("mode_spec", mode_spec, "a ModeSpec")
    pos_int(models_wanted, "models_wanted", allow_none=True)
    spec = mode_spec.isvc
    cluster = _cluster_rows(limits, spec)
    rows: list[dict[str, Any]] = []
    hosts: int | None = None
    models_per_host: int | None = None

    if mode_spec.mode == "traditional":
        for r in cluster:
            r["max_models"] = r["max_isvcs"]
            if r["max_isvcs"] is not None:
                r["status"] = "ok"
            else:
                r["status"] = "unknown" if r["capacity"] is None or r["per_isvc"] is None else "no_model_limit"
            rows.append(r)
    else:
        # host-level capacities
        host_mem = spec.predictor_memory
        mm = mode_spec.model_memory_bytes
        per_tm = None if mm is None else host_mem // mm
        cm = limits.configmap_max_bytes_int
        e = mode_spec.entry_bytes
        per_cm = None if cm is None else max(0, cm - mode_spec.configmap_overhead_bytes) // e
        per_host_known = [v for v in (per_tm, per_cm) if v is not None]
        per_host = min(per_host_known) if per_host_known else None

        hosts = mode_spec.hosts
        fit_known = [r["max_isvcs"] for r in cluster if r["max_isvcs"] is not None]
        if hosts is None:
            if models_wanted is not None and per_host:
                hosts = max(1, math.ceil(models_wanted / per_host))
            elif fit_known:
                hosts = min(fit_known)
            else:
                raise ParamError("hosts", None, "an integer >= 1 (no limit known to derive the MMS host count)")
            if hosts < 1:
                raise ParamError("hosts", hosts, "an integer >= 1: the cluster fits no MMS host ISVC")
        models_per_host = per_host

        for r in cluster:
            if r["max_isvcs"] is None:
                r.update(max_models=None, status="unknown" if r["capacity"] is None or r["per_isvc"] is None
                         else "no_model_limit")
            elif r["max_isvcs"] >= hosts:
                r.update(max_models=None, status="no_model_limit",
                         note=(r["note"] + "; " if r["note"] else "") + f"{hosts} hosts fit ({r['max_isvcs']} would)")
            elif per_host is None:
                r.update(max_models=None, status="unknown",
                         note=f"only {r['max_isvcs']} of {hosts} hosts fit; per-host model capacity unknown")
            else:
                r.update(max_models=r["max_isvcs"] * per_host, status="ok",
                         note=f"only {r['max_isvcs']} of {hosts} hosts fit")
            rows.append(r)
        rows.append(dict(limit="trainedmodel_memory", capacity=host_mem, capacity_unit="bytes per host",
                         per_isvc=None, models_per_host=per_tm, max_isvcs=None, max_models=None if per_tm is None else hosts * per_tm,
                         status="unknown" if per_tm is None else "ok",
                         note="model_memory unknown" if mm is None
                         else f"floor({host_mem} / {mm}) = {per_tm} models per host"))
        rows.append(dict(limit="configmap_size", capacity=cm, capacity_unit="bytes per host",
                         per_isvc=None, models_per_host=per_cm, max_isvcs=None,
                         max_models=None if per_cm is None else hosts * per_cm,
                         status="unknown" if per_cm is None else "ok",
                         note="" if cm is None else f"{e} B per entry -> {per_cm} models per host"))
        etcd = limits.etcd_bytes_int
        # etcd row replaces the per-ISVC one: models add ConfigMap revisions.
        rows = [r for r in rows if r["limit"] != "etcd"]
        if etcd is None:
            rows.append(dict(limit="etcd", capacity=None, capacity_unit="bytes", per_isvc=None,
                             max_isvcs=None, max_models=None, status="unknown", note="etcd size unknown"))
        else:
            base = limits.baseline_etcd_bytes_int + hosts * (spec.etcd_bytes_int or 0)
            n = etcd_fill_models(etcd, hosts=hosts, entry_bytes=e,
                                 revision_overhead_bytes=mode_spec.etcd_revision_overhead_bytes
                                 + mode_spec.configmap_overhead_bytes,
                                 compaction=limits.etcd_compaction, base_bytes=base)
            rows.append(dict(limit="etcd", capacity=etcd, capacity_unit="bytes", per_isvc=None,
                             max_isvcs=None, max_models=n, status="ok",
                             note=f"ConfigMap revisions, compaction={limits.etcd_compaction}, "
                                  f"{e} B/entry, {mode_spec.etcd_revision_overhead_bytes} B/revision"))

    table, best, binding = _finish(rows)
    at = models_wanted if models_wanted is not None else best
    fits = None if models_wanted is None or best is None else models_wanted <= best
    if at is None:
        isvcs = hosts if mode_spec.mode == "mms" else None
    else:
        isvcs = at if mode_spec.mode == "traditional" else hosts
    def usage(per):
        return None if isvcs is None else isvcs * per
    cpu = None if isvcs is None else isvcs * spec.cpu
    side_cpu = None if isvcs is None else isvcs * spec.sidecar_cpu
    return PlanResult(
        mode=mode_spec.mode, max_models=best, binding_limit=binding[0] if binding else None,
        binding_limits=binding, limits=table, at_models=at, fits=fits, hosts=hosts, isvcs=isvcs,
        pods=usage(spec.pods), services=usage(spec.k8s_services), ips=usage(spec.ips(limits.count_service_ips)),
        reserved_cpu=None if cpu is None else float(cpu),
        reserved_memory_bytes=usage(spec.memory),
        sidecar_cpu=None if side_cpu is None else float(side_cpu),
        sidecar_memory_bytes=usage(spec.sidecar_memory),
        per_isvc_cpu=float(spec.cpu), per_isvc_memory_bytes=spec.memory,
        per_isvc_sidecar_cpu=float(spec.sidecar_cpu), per_isvc_sidecar_memory_bytes=spec.sidecar_memory,
        models_per_host=models_per_host,
        per_isvc_cpu_exact=spec.cpu, per_isvc_sidecar_cpu_exact=spec.sidecar_cpu,
    )


def plan_table(
    limits: ClusterLimits,
    mode_specs: Mapping[str, ModeSpec] | Iterable[ModeSpec] | None = None,
    models_wanted: int | Mapping[str, int] | None = None,
) -> pd.DataFrame:
    """All limits of all modes as one tidy DataFrame.

    Columns: mode, limit, capacity, capacity_unit, per_isvc, max_isvcs,
    models_per_host (Int64, MMS host-level limits), max_models (Int64, <NA> =
    unknown / not a model limit), status, binds (bool), note.  ``mode_specs`` defaults to :func:`seed_specs`;
    ``models_wanted`` may be one int or a ``{mode: int}`` mapping.
    """
    if mode_specs is None:
        mode_specs = seed_specs()
    specs = list(mode_specs.values()) if isinstance(mode_specs, Mapping) else list(mode_specs)
    frames = []
    for s in specs:
        mw = models_wanted.get(s.mode) if isinstance(models_wanted, Mapping) else models_wanted
        res = plan(limits, s, mw)
        frames.append(res.limits_table)
    return pd.concat(frames, ignore_index=True)


def compare_with_measured(
    plan_result: PlanResult,
    measured_models: int | float,
    measured_reserved_cpu: float | str | None = None,
    measured_reserved_memory: int | str | None = None,
    measured_isvcs: int | None = None,
) -> pd.DataFrame:
    """Prediction vs measurement as a small DataFrame.

    Rows: max_models (predicted maximum vs the count measured), and, when
    given, reserved_cpu (cores) and reserved_memory (MiB) - predicted for the
    measured deployment (traditional: ``measured_models`` ISVCs; mms:
    ``measured_isvcs`` or the plan's hosts).  ``measured_reserved_memory`` is
    bytes (int) or a Kubernetes quantity ("211G", "206Gi").
    Columns: quantity, unit, predicted, measured, difference (predicted -
    measured), relative_difference (difference / measured).
    """
    if isinstance(measured_models, bool) or not isinstance(measured_models, (int, float)) or measured_models <= 0:
        raise ParamError("measured_models", measured_models, "a number > 0")
    isvcs = measured_isvcs
    if isvcs is None:
        isvcs = int(measured_models) if plan_result.mode == "traditional" else plan_result.hosts
    rows = [("max_models", "models", plan_result.max_models, float(measured_models))]
    if measured_isvcs is not None or plan_result.mode == "mms":
        rows.append(("isvcs", "ISVCs", plan_result.isvcs, None if measured_isvcs is None else float(measured_isvcs)))
    res = plan_result.reserved_at(isvcs) if isvcs is not None else None
    if measured_reserved_cpu is not None:
        rows.append(("reserved_cpu", "cores", None if res is None else res["cpu"],
                     parse_cpu(measured_reserved_cpu, "measured_reserved_cpu")))
    if measured_reserved_memory is not None:
        rows.append(("reserved_memory", "MiB", None if res is None else res["memory_bytes"] / MiB,
                     parse_memory(measured_reserved_memory, "measured_reserved_memory") / MiB))
    out = []
    for q, unit, pred, meas in rows:
        pred = None if pred is None else float(pred)
        diff = None if pred is None or meas is None else pred - meas
        rel = None if diff is None or not meas else diff / meas
        out.append({"quantity": q, "unit": unit, "predicted": pred, "measured": meas,
                    "difference": diff, "relative_difference": rel})
    return pd.DataFrame(out, columns=["quantity", "unit", "predicted", "measured", "difference",
                                      "relative_difference"]).astype(
        {"predicted": "float64", "measured": "float64", "difference": "float64", "relative_difference": "float64"})


# --------------------------------------------------------------------------
# inferences from measurements
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class CpuInference:
    """Allocatable CPU per node range [lower, upper) that makes ``measured`` the CPU maximum.

    reproduces_exactly: whether some value in the range gives exactly
    ``measured`` (per-node packing only gives multiples of ``nodes`` for
    one-pod ISVCs); predicted_max: what the CPU limit gives at ``lower``.
    other_limits: when ``limits`` was given, the other limits' maxima and
    whether all allow more than ``measured`` (CPU would then bind first).
    """

    measured: int
    nodes: int
    per_isvc_cpu: float
    packing: str
    lower: float
    upper: float
    lower_exact: Fraction
    upper_exact: Fraction
    reproduces_exactly: bool
    predicted_max: int
    other_limits: dict[str, int | None] = field(default_factory=dict)
    cpu_binds_first: bool | None = None


def infer_cpu_per_node(
    measured_isvcs: int = 352,
    isvc_spec: ServiceSpec | None = None,
    nodes: int = 6,
    packing: str = "aggregate",
    limits: ClusterLimits | None = None,
) -> CpuInference:
    """Which allocatable CPU per node makes ``measured_isvcs`` the binding CPU limit?

    aggregate: ``floor(nodes*c / per_isvc) == measured`` <=>
    ``c in [measured*per_isvc/nodes, (measured+1)*per_isvc/nodes)``; for the
    seed (352 ISVCs x 1.1 CPU, 6 nodes): [64.5333, 64.7167).
    per_node: ``nodes * floor(c / per_pod)`` is a multiple of ``nodes``; with
    ``k = ceil(measured / nodes)`` pods per node, ``c in [k*per_pod,
    (k+1)*per_pod)`` gives ``nodes*k`` (seed: k=59, [64.9, 66.0) -> 354).
    """
    pos_int(measured_isvcs, "measured_isvcs")
    pos_int(nodes, "nodes")
    if packing not in PACKINGS:
        raise ParamError("packing", packing, "one of " + ", ".join(PACKINGS))
    spec = isvc_spec if isvc_spec is not None else seed_specs()["traditional"].isvc
    per = spec.cpu
    if per <= 0:
        raise ParamError("isvc_spec", spec.name, "an ISVC that requests CPU > 0")
    if packing == "aggregate":
        lo = measured_isvcs * per / nodes
        hi = (measured_isvcs + 1) * per / nodes
        predicted = _floor(nodes * lo / per)
        exact = predicted == measured_isvcs
    else:
        k = -(-measured_isvcs * spec.pods // nodes)  # pods per node (ceil)
        lo, hi = k * spec.pod_cpu, (k + 1) * spec.pod_cpu
        predicted = (nodes * k) // spec.pods
        exact = predicted == measured_isvcs
    others: dict[str, int | None] = {}
    binds_first = None
    if limits is not None:
        for r in _cluster_rows(limits, spec):
            if r["limit"] != "cpu":
                others[r["limit"]] = r["max_isvcs"]
        known = [v for v in others.values() if v is not None]
        binds_first = all(v > measured_isvcs for v in known)
    return CpuInference(measured=measured_isvcs, nodes=nodes, per_isvc_cpu=float(per), packing=packing,
                        lower=float(lo), upper=float(hi), lower_exact=Fraction(lo), upper_exact=Fraction(hi),
                        reproduces_exactly=exact, predicted_max=predicted, other_limits=others,
                        cpu_binds_first=binds_first)


@dataclass(frozen=True)
class ModelMemoryInference:
    """TrainedModel memory range (lower, upper] in bytes giving ``per_host`` models per host."""

    measured_models: int
    hosts: int
    host_memory_bytes: int
    per_host: int
    lower_bytes: float
    upper_bytes: float
    predicted_models: int

    @property
    def lower_mib(self) -> float:
        return self.lower_bytes / MiB

    @property
    def upper_mib(self) -> float:
        return self.upper_bytes / MiB


def infer_model_memory(
    measured_models: int = 10_000,
    hosts: int = 6,
    host_memory: str | int = "10Gi",
) -> ModelMemoryInference:
    """TrainedModel memory that would make TrainedModel admission stop at ``measured_models``.

    With ``k = ceil(measured / hosts)`` models per host, ``floor(M / m) == k``
    <=> ``m in (M/(k+1), M/k]``.  Seed (~10K models, 6 hosts, 10Gi): k=1667,
    m in (6.139, 6.143] MiB -> 10,002 models.  Only an explanation of the
    seed's number: the seed does not publish the TrainedModel memory.
    """
    pos_int(measured_models, "measured_models")
    pos_int(hosts, "hosts")
    M = _memory_exact(host_memory, "host_memory")
    if M <= 0:
        raise ParamError("host_memory", host_memory, "a memory quantity > 0")
    k = -(-measured_models // hosts)
    return ModelMemoryInference(measured_models=measured_models, hosts=hosts, host_memory_bytes=M, per_host=k,
                                lower_bytes=M / (k + 1), upper_bytes=M / k, predicted_models=hosts * k)
