"""Experiment parameters: defaults, validation, and clear errors.

Each notebook's ``parameters`` cell holds the defaults below; the next cell
calls :func:`stress` or :func:`performance` with those names, which checks
every value before anything is deployed and raises :class:`ParamError` naming
the parameter and what is allowed. ``papermill -p`` and ``-f params/*.yaml``
both end up here.

Layout: one noun, the experiments' parameters (~730 lines): one validated dataclass per
experiment sharing the same checks, so that every bad value fails the same way, here, before
anything is deployed.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Dict, List, Optional

from .errors import ParamError

from .replay import check_generator
from .targets import PROTOCOLS, TRAFFIC  # noqa: F401  (their one home: the load generator's targets)
from .seed import STRESS_SPECS as _SEED_SPECS

from .backends import BACKENDS, check_options, option_fields  # noqa: E402,F401  (its one home: mmslib.backends)
from dataclasses import MISSING, make_dataclass  # noqa: E402
MODES = ("traditional", "mms")
DEVICES = ("auto", "cpu", "cuda")
MMS_ENGINES = ("trainedmodel", "modelmesh", "lazy")


def _declared(kind: str, name: str, attr: str, default):
    """What plug-in ``name`` of ``kind`` (backends | workloads) declares as ``attr``: a backend's class
    attribute, a workload module's constant; so that no rule here names a plug-in."""
    import importlib
    if kind == "backends":
        from .backends import backend_class
        return getattr(backend_class(name), attr, default)
    return getattr(importlib.import_module(f"mmslib.{kind}.{name}"), attr, default)


def _takers(parameter: str) -> List[str]:
    """The workloads that declare they read ``parameter`` (their module's ``PARAMETERS``)."""
    from .workloads import WORKLOADS
    return [w for w in WORKLOADS if parameter in _declared("workloads", w, "PARAMETERS", ())]


#: Every backend's own parameters (mmslib.backends.option_fields: kserve's namespace, storage_uri, ...),
#: carried by every experiment under the names a user types and checked by their backend.
_BackendOptions = make_dataclass("_BackendOptions", [
    (f.name, f.type, field(default=f.default, metadata=f.metadata) if f.default is not MISSING
     else field(default_factory=f.default_factory, metadata=f.metadata)) for f in option_fields()])


from .values import (  # noqa: E402  (the parsing's one home; short private names kept for this module)
    NUM_EXAMPLES as _NUM_EXAMPLES, boolean as _bool, choice as _choice, integer as _int, listish as _listish,
    num as _num, number as _number, optional as _optional, quantity as _quantity, range_text as _range,
    strip as _strip)


def _modes(v):
    v = _listish(v)
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, (list, tuple)) or not v:
        raise ParamError("modes", v, "a non-empty list of " + " | ".join(MODES) + " (e.g. " + ",".join(MODES) + ")")
    for m in v:
        _choice("modes", m, MODES)
    if len(set(v)) != len(v):
        raise ParamError("modes", v, "each mode at most once")
    return list(v)


@dataclass
class _CommonHead:
    backend: str = "local"
    runtime: str = "kserve"
    workload: str = "simple_string"
    modes: List[str] = field(default_factory=lambda: ["traditional", "mms"])
    hosts: int = 1
    deploy_concurrency: int = 4
    deploy_timeout_s: float = 120.0
    output_dir: str = "outputs/run"
    resume: bool = False
    seed: int = 0
    device: str = "auto"
    model_size: Optional[str] = None      # families (sklearn_forest, ...): artifact size per model, e.g. 10Mi; None: ~1 MiB
    model_repository: Optional[str] = None  # workload 'repository': a folder of your models (Triton, MLServer or model files)
    inputs_file: Optional[str] = None     # workload 'repository': V2 request bodies to send (None: generated from the metadata)
    shape: Optional[Any] = None           # workload 'repository': dynamic input dimensions, e.g. "x:4,3" (as perf_analyzer --shape)
    # Resource specs (Kubernetes requests): the seed's, read from mmslib.seed.
    traditional_predictor_cpu: str = _SEED_SPECS["traditional_predictor"]["cpu"]
    traditional_predictor_memory: str = _SEED_SPECS["traditional_predictor"]["memory"]
    mms_predictor_cpu: str = _SEED_SPECS["mms_predictor"]["cpu"]
    mms_predictor_memory: str = _SEED_SPECS["mms_predictor"]["memory"]
    sidecar_cpu: str = _SEED_SPECS["queue_proxy"]["cpu"]
    sidecar_memory: str = _SEED_SPECS["queue_proxy"]["memory"]
    model_memory: Optional[str] = None    # declared per model (TrainedModel memory); None = workload's
    server_threads: int = 1


@dataclass
class Common(_BackendOptions, _CommonHead):
    """What every experiment shares: its own fields (:class:`_CommonHead`), then every backend's
    own parameters (:data:`_BackendOptions`), then these."""

    mms_engine: str = "trainedmodel"
    # Gate: false | true (every level) | the levels that must meet the SLO (e.g. 25,50); a miss
    # makes the run fail (papermill exits non-zero) after everything is saved.
    fail_on_slo: Any = False

    _engines = ("trainedmodel", "modelmesh")   # mms engines this experiment runs (each backend: its mms_engines)

    #: Parameters that only say how records are read (not what is measured): changing one resumes
    #: the run directory without measuring again (its meta.json then keeps the newest values).
    _not_measured = ("output_dir", "resume", "fail_on_slo")

    def key(self) -> str:
        """Hash of the parameters that define what is measured (not where/resume/how it is read)."""
        d = {k: v for k, v in asdict(self).items() if k not in self._not_measured}
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    def _check_common(self, machine_memory: Optional[int]) -> None:
        from .runtimes import RUNTIMES
        from .workloads import WORKLOADS
        _choice("backend", self.backend, tuple(BACKENDS))
        _choice("runtime", self.runtime, RUNTIMES)
        _choice("workload", self.workload, WORKLOADS)
        self.modes = _modes(self.modes)
        self.hosts = _int("hosts", self.hosts, 1, 1000)
        self.deploy_concurrency = _int("deploy_concurrency", self.deploy_concurrency, 1, 256)
        self.deploy_timeout_s = _num("deploy_timeout_s", self.deploy_timeout_s, 0, lo_open=True)
        if not isinstance(self.output_dir, (str, os.PathLike)) or not str(self.output_dir).strip():
            raise ParamError("output_dir", self.output_dir, "a directory path")
        out = Path(self.output_dir)
        if out.exists() and not out.is_dir():
            raise ParamError("output_dir", self.output_dir, "a directory path (this is a file)")
        self.resume = _bool("resume", self.resume)
        self.seed = _int("seed", self.seed, 0)
        _choice("device", self.device, DEVICES)
        if self.device == "cuda" and not _declared("backends", self.backend, "on_cluster", False):
            from .gpu import cuda_available
            if not cuda_available():
                raise ParamError("device", "cuda", "auto | cpu (no CUDA device found on this machine)")
        devices = _declared("workloads", self.workload, "DEVICES", ("auto",))
        if self.device not in devices:
            from .workloads import WORKLOADS
            on = [w for w in WORKLOADS if _declared("workloads", w, "DEVICES", ("auto",)) != ("auto",)]
            raise ParamError("device", self.device, " | ".join(devices) + " (only the " + ", ".join(on)
                             + " workload" + ("s run" if len(on) > 1 else " runs") + " on a device)")
        self.model_size = _optional(self.model_size)
        if self.model_size is not None:
            from .workloads import sized_workloads
            if self.workload not in sized_workloads():
                raise ParamError("model_size", self.model_size, "None (workload " + repr(self.workload)
                                 + " has one size; these take a size: " + ", ".join(sized_workloads()) + ")")
            size = _quantity("model_size", self.model_size, "memory")
            if not 1 << 10 <= size <= 4 << 30:
                raise ParamError("model_size", self.model_size, "a memory quantity from 1Ki to 4Gi (e.g. 10Mi), or None")
        self._check_repository()
        for n in ("traditional_predictor_cpu", "mms_predictor_cpu", "sidecar_cpu"):
            _quantity(n, getattr(self, n), "cpu")
        for n in ("traditional_predictor_memory", "mms_predictor_memory", "sidecar_memory"):
            _quantity(n, getattr(self, n), "memory")
        self.model_memory = _optional(self.model_memory)
        if self.model_memory is not None:
            if _quantity("model_memory", self.model_memory, "memory") <= 0:
                raise ParamError("model_memory", self.model_memory, "a positive memory quantity")
        self.server_threads = _int("server_threads", self.server_threads, 1, 64)
        _choice("mms_engine", self.mms_engine, MMS_ENGINES)
        from .values import levels_or_bool
        self.fail_on_slo = levels_or_bool(self.fail_on_slo)
        # Every backend's own parameters, checked by their backend for their kind on every backend (a
        # mistyped value is refused even where it would not be used), the cluster's rules where in use.
        check_options(self)
        self._check_backend_supports()

    def _check_backend_supports(self) -> None:
        """What the backend in use declares it runs: mms engines (and this experiment's), runtimes."""
        from .runtimes import get_runtime
        b = self.backend
        engines = [e for e in _declared("backends", b, "mms_engines", ()) if e in self._engines]
        if self.mms_engine not in engines:
            where = []
            for e in (e for e in MMS_ENGINES if e not in engines):
                if e not in self._engines:
                    where.append(f"{e}: the " + " | ".join(x for x, c in EXPERIMENTS.items() if e in c._engines)
                                 + " experiment")
                else:
                    where.append(f"{e}: backend " + " | ".join(repr(x) for x in BACKENDS
                                                              if e in _declared("backends", x, "mms_engines", ())))
            raise ParamError("mms_engine", self.mms_engine, " | ".join(engines) + f" with backend {b!r} in this "
                             "experiment" + (" (" + "; ".join(where) + ")" if where else ""))
        if self.mms_engine == "lazy" and not get_runtime(self.runtime).lazy_loading:
            from .runtimes import RUNTIMES
            lazy = [r for r in RUNTIMES if get_runtime(r).lazy_loading]
            raise ParamError("mms_engine", "lazy", f"trainedmodel with runtime {self.runtime!r}: it has no lazy "
                             "loading (only " + ", ".join(lazy) + " loads a model on its first request and "
                             "evicts the least recently used)")
        runtimes = _declared("backends", b, "runtimes", None)
        if runtimes is not None and self.runtime not in runtimes:
            note = _declared("backends", b, "runtimes_note", "")
            raise ParamError("runtime", self.runtime, " | ".join(runtimes) + f" with backend {b!r}"
                             + (f" ({note})" if note else ""))

    def _check_protocol(self) -> None:
        """``protocol`` (already one of PROTOCOLS): one the backend in use declares it serves."""
        protocols = _declared("backends", self.backend, "supports_protocols", ())
        if self.protocol not in protocols:
            raise ParamError("protocol", self.protocol, " | ".join(protocols) + f" with backend {self.backend!r}")

    def _check_repository(self) -> None:
        """``model_repository`` (with ``inputs_file``, ``shape``) goes with workload 'repository'; on a
        cluster backend the folder gives the models' metadata and requests, and ``storage_uri`` where
        the cluster loads them from (the backend checks it); the folder itself is read by :func:`_build`."""
        for n in ("model_repository", "inputs_file", "shape"):
            setattr(self, n, _optional(getattr(self, n)))
        for n in ("model_repository", "inputs_file"):
            v = getattr(self, n)
            if v is not None and (not isinstance(v, (str, os.PathLike)) or not str(v).strip()):
                raise ParamError(n, v, "a path, or None")
        takers = _takers("model_repository")
        if self.model_repository is None:
            if self.workload in takers:
                raise ParamError("model_repository", None, f"a folder of your models (workload {self.workload!r} serves "
                                 "them): Triton (<model>/config.pbtxt), MLServer (<model>/model-settings.json) or "
                                 "model files (*.joblib, *.pkl, *.txt, *.onnx)")
            for n in ("inputs_file", "shape"):
                if getattr(self, n) is not None:
                    raise ParamError(n, getattr(self, n), "None without model_repository (it is for your own models)")
            return
        if self.workload not in takers:
            raise ParamError("model_repository", self.model_repository, f"None with workload {self.workload!r}, or "
                             f"workload {' | '.join(map(repr, takers))} to serve the models of this folder (-p workload "
                             f"{takers[0]})")
        self.model_repository, self.inputs_file = str(self.model_repository), (
            None if self.inputs_file is None else str(self.inputs_file))


@dataclass
class StressParams(Common):
    output_dir: str = "outputs/stress"
    models: int = 10000
    memory_budget: Optional[str] = None   # None: half the memory available at start (none on a cluster)
    time_limit_s: float = 600.0           # per mode
    verify_sample: int = 100
    measure_every: int = 0                # 0: automatic

    def validate(self, machine_memory: Optional[int] = None) -> "StressParams":
        self._check_common(machine_memory)
        if self.fail_on_slo is not False:
            raise ParamError("fail_on_slo", self.fail_on_slo, "false (the stress experiment states no latency SLO)")
        self.models = _int("models", self.models, 1, 1_000_000)
        self.time_limit_s = _num("time_limit_s", self.time_limit_s, 0, lo_open=True)
        self.verify_sample = _int("verify_sample", self.verify_sample, 0)
        self.measure_every = _int("measure_every", self.measure_every, 0)
        self.memory_budget = _optional(self.memory_budget)
        if self.memory_budget is not None:
            b = _quantity("memory_budget", self.memory_budget, "memory")
            if b <= 0:
                raise ParamError("memory_budget", self.memory_budget, "a positive memory quantity, or None")
            if not _declared("backends", self.backend, "on_cluster", False) and machine_memory and b > machine_memory:
                raise ParamError("memory_budget", self.memory_budget,
                                 f"at most this machine's memory ({machine_memory / 2**30:.1f} GiB), or None")
        return self

    def memory_budget_bytes(self, available: int) -> int:
        if self.memory_budget is None:
            return int(available * 0.5)
        return _quantity("memory_budget", self.memory_budget, "memory")


SEED_QPS = [25, 50, 100, 150, 200, 250, 500, 1000, 1500, 2000, 2500]


@dataclass
class PerformanceParams(Common):
    output_dir: str = "outputs/performance"
    models: int = 5
    qps: List[float] = field(default_factory=lambda: list(SEED_QPS))
    duration_s: float = 60.0
    warmup_s: float = 5.0
    protocol: str = "rest"
    traffic: str = "uniform"
    zipf_skew: float = 1.1
    slo_p99_ms: float = 100.0
    repeats: int = 1
    cpu_isolation: bool = False
    sample_interval_s: float = 1.0

    def validate(self, machine_memory: Optional[int] = None) -> "PerformanceParams":
        self._check_common(machine_memory)
        self.models = _int("models", self.models, 1, 100_000)
        q = _listish(self.qps)
        if _number(q) is not None:
            q = [q]
        if not isinstance(q, (list, tuple)) or not q:
            raise ParamError("qps", self.qps, "a non-empty list of rates > 0 in requests per second (e.g. 25,50 or \"[25, 50]\")")
        self.qps = [_num("qps", x, 0, lo_open=True) for x in q]
        if len(set(self.qps)) != len(self.qps):
            raise ParamError("qps", q, "distinct rates")
        self.duration_s = _num("duration_s", self.duration_s, 0, lo_open=True)
        self.warmup_s = _num("warmup_s", self.warmup_s, 0)
        if self.warmup_s >= self.duration_s:
            raise ParamError("warmup_s", self.warmup_s, f"a number >= 0 and shorter than duration_s ({self.duration_s:g})")
        _choice("protocol", self.protocol, PROTOCOLS)
        _choice("traffic", self.traffic, TRAFFIC)
        self.zipf_skew = _num("zipf_skew", self.zipf_skew, 0, lo_open=True)
        self.slo_p99_ms = _num("slo_p99_ms", self.slo_p99_ms, 0, lo_open=True)
        self.repeats = _int("repeats", self.repeats, 1, 100)
        self.cpu_isolation = _bool("cpu_isolation", self.cpu_isolation)
        self.sample_interval_s = _num("sample_interval_s", self.sample_interval_s, 0.05)
        self._check_protocol()
        return self


def _build(cls, raw: Dict[str, Any]):
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ParamError(unknown[0], raw[unknown[0]], "one of the known parameters: " + ", ".join(sorted(known)))
    p = cls(**raw)
    from .resources import machine_memory
    p = p.validate(machine_memory()["total"])
    if p.model_repository is not None:  # the folder read, each model's runtime and requests checked
        from .workloads import get_workload
        get_workload(p.workload, p)
    return p


def stress(**raw) -> StressParams:
    """Validated stress parameters (raises ParamError)."""
    return _build(StressParams, raw)


def performance(**raw) -> PerformanceParams:
    """Validated performance parameters (raises ParamError)."""
    return _build(PerformanceParams, raw)


#: Every experiment's parameters class, by experiment name; ``notebooks/<name>.py``
#: is that experiment's notebook, and its parameters cell holds the class's defaults
#: (tests/test_notebooks.py checks it). Another experiment adds itself:
#: ``EXPERIMENTS["<name>"] = <Name>Params``.
EXPERIMENTS: Dict[str, type] = {"stress": StressParams, "performance": PerformanceParams}


def build(experiment: str, raw: Dict[str, Any]):
    """Validated parameters of ``experiment`` (a key of :data:`EXPERIMENTS`) from ``raw``
    (raises ParamError); what each notebook's validation cell calls."""
    if experiment not in EXPERIMENTS:
        raise ParamError("experiment", experiment, " | ".join(EXPERIMENTS))
    return _build(EXPERIMENTS[experiment], dict(raw))


def defaults(cls) -> Dict[str, Any]:
    return asdict(cls())


def load_yaml(path) -> Dict[str, Any]:
    import yaml
    p = Path(path)
    if not p.is_file():
        raise ParamError("params_file", str(path), "an existing YAML file")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise ParamError("params_file", str(path), f"valid YAML ({e})") from None
    if not isinstance(data, dict):
        raise ParamError("params_file", str(path), "a YAML mapping of parameter names to values")
    return data


COLDSTART_SECTIONS = ("load_unload", "churn", "lazy")


@dataclass
class ColdstartParams(Common):
    """Cold starts: load/unload cycles and leaks (section 1), loading while
    serving (2), more models than memory with lazy loading (3), the simulator
    validated on section 3 and asked cluster questions (4)."""

    _engines = ("lazy", "trainedmodel")
    _not_measured = Common._not_measured + (   # section 4's questions and the leak verdict's bound
        "validation_slo_ms", "validation_seeds", "cluster_models", "cluster_host_memory", "cluster_alpha",
        "cluster_slo_ms", "cluster_qps", "cluster_duration_s", "leak_bound_mib")
    output_dir: str = "outputs/coldstart"
    mms_engine: str = "lazy"
    sections: List[str] = field(default_factory=lambda: list(COLDSTART_SECTIONS))
    runtimes: List[str] = field(default_factory=lambda: ["kserve", "triton", "mlserver"])  # sections 1-2
    cycles: Optional[int] = None          # load/unload cycles per runtime; None: the workload's load_cycles_default
    leak_bound_mib: Optional[float] = None  # "grows" beyond this drift too (besides 1% of the host's memory)
    resident_models: int = 4              # section 2: models taking traffic
    churn_models: int = 4                 # section 2: other models loaded and unloaded in turn
    churn_per_s: float = 2.0              # section 2: loads per second (each unloads the previous one)
    qps: float = 50.0                     # section 2: request rate (k6, constant)
    duration_s: float = 20.0              # sections 2-3: measured seconds per run / cell
    warmup_s: float = 2.0
    repeats: int = 2                      # section 2: runs per condition, interleaved A B B A
    slo_ms: float = 25.0                  # a request meets the SLO when its latency is at most this
    models: int = 40                      # section 3: models behind the lazy host(s)
    capacity: List[Any] = field(default_factory=lambda: ["10%", "25%", "50%", "100%"])  # count, "N%", or memory
    zipf_alpha: List[float] = field(default_factory=lambda: [0.5, 1.0, 1.5, 2.0])
    lazy_qps: float = 20.0                # section 3: request rate (Poisson)
    lazy_cells: Optional[List[Dict[str, Any]]] = None  # section 3: cells fixed ahead ({alpha, capacity, qps, role}); None: the grid
    lateness_p99_ms: float = 10.0         # section 3: a cell is valid when 99% of its requests were sent less late
    service_ms: float = 0.0               # simple_string: each prediction holds the server this long (0: none)
    validation_slo_ms: Optional[List[float]] = None  # section 4: SLOs the simulator's attainment is checked at; None: [slo_ms]
    validation_seeds: int = 10            # section 4: simulator runs (seeds) per validation cell
    cluster_models: List[int] = field(default_factory=lambda: [10_000, 100_000, 1_000_000])
    cluster_host_memory: str = "10Gi"     # simulated host's memory for models (capacity = this / model memory)
    cluster_alpha: float = 1.0
    cluster_slo_ms: float = 50.0          # the simulated cluster's SLO (hosts needed for 99% within it)
    cluster_qps: float = 1000.0
    cluster_duration_s: float = 600.0

    def validate(self, machine_memory: Optional[int] = None) -> "ColdstartParams":
        from .runtimes import RUNTIMES
        _choice("backend", self.backend, tuple(BACKENDS))
        if _declared("backends", self.backend, "on_cluster", False):
            here = [b for b in BACKENDS if not _declared("backends", b, "on_cluster", False)]
            raise ParamError("backend", self.backend, " | ".join(here) + " (cold starts are measured on this "
                                                                         "machine's servers)")
        self._check_common(machine_memory)
        secs = _listish(self.sections)
        secs = [secs] if isinstance(secs, str) else secs
        if not isinstance(secs, (list, tuple)) or not secs or not all(isinstance(x, str) for x in secs) \
                or len(set(secs)) != len(secs):
            raise ParamError("sections", self.sections, "a non-empty list of distinct " + " | ".join(COLDSTART_SECTIONS))
        for s in secs:
            _choice("sections", s, COLDSTART_SECTIONS)
        self.sections = [s for s in COLDSTART_SECTIONS if s in secs]
        rts = _listish(self.runtimes)
        rts = [rts] if isinstance(rts, str) else rts
        if not isinstance(rts, (list, tuple)) or not rts or not all(isinstance(x, str) for x in rts) \
                or len(set(rts)) != len(rts):
            raise ParamError("runtimes", self.runtimes, "a non-empty list of distinct " + " | ".join(RUNTIMES))
        for r in rts:
            _choice("runtimes", r, RUNTIMES)
        self.runtimes = list(rts)
        if "lazy" in self.sections and self.mms_engine != "lazy":
            raise ParamError("mms_engine", self.mms_engine, "lazy when sections include 'lazy' (section 3 loads on demand)")
        self.cycles = _optional(self.cycles)
        if self.cycles is not None:
            self.cycles = _int("cycles", self.cycles, 1, 1_000_000)
        self.leak_bound_mib = _optional(self.leak_bound_mib)
        if self.leak_bound_mib is not None:
            self.leak_bound_mib = _num("leak_bound_mib", self.leak_bound_mib, 0, lo_open=True)
        self.resident_models = _int("resident_models", self.resident_models, 1, 10_000)
        self.churn_models = _int("churn_models", self.churn_models, 1, 10_000)
        self.churn_per_s = _num("churn_per_s", self.churn_per_s, 0)
        self.qps = _num("qps", self.qps, 0, lo_open=True)
        self.lazy_qps = _num("lazy_qps", self.lazy_qps, 0, lo_open=True)
        self.duration_s = _num("duration_s", self.duration_s, 0, lo_open=True)
        self.warmup_s = _num("warmup_s", self.warmup_s, 0)
        if self.warmup_s >= self.duration_s:
            raise ParamError("warmup_s", self.warmup_s, f"shorter than duration_s ({self.duration_s})")
        self.repeats = _int("repeats", self.repeats, 1, 100)
        self.slo_ms = _num("slo_ms", self.slo_ms, 0, lo_open=True)
        self.models = _int("models", self.models, 1, 100_000)
        caps = _listish(self.capacity)
        caps = caps if isinstance(caps, (list, tuple)) else [caps]
        if not caps:
            raise ParamError("capacity", self.capacity, "a non-empty list of model counts, percentages or memory")
        self.capacity = list(caps)
        self.lazy_cells = self._check_lazy_cells(_optional(self.lazy_cells))
        counts = self.capacity_counts() if self.lazy_cells is None else []   # lazy_cells: the grid is not used
        if len(set(counts)) != len(counts):
            raise ParamError("capacity", self.capacity, f"distinct capacities (as model counts: {counts})")
        alphas = _listish(self.zipf_alpha)
        alphas = alphas if isinstance(alphas, (list, tuple)) else [alphas]
        if not alphas:
            raise ParamError("zipf_alpha", self.zipf_alpha, "a non-empty list of numbers >= 0")
        self.zipf_alpha = [_num("zipf_alpha", a, 0, 10) for a in alphas]
        if len(set(self.zipf_alpha)) != len(self.zipf_alpha):
            raise ParamError("zipf_alpha", self.zipf_alpha, "distinct exponents")
        self.lateness_p99_ms = _num("lateness_p99_ms", self.lateness_p99_ms, 0, lo_open=True)
        self.service_ms = _num("service_ms", self.service_ms, 0, 10_000)
        if self.service_ms > 0 and self.workload not in _takers("service_ms"):
            raise ParamError("service_ms", self.service_ms, "0 unless workload is " + " | ".join(_takers("service_ms"))
                             + " (its models sleep it)")
        vs = _optional(self.validation_slo_ms)
        if vs is not None:
            vs = _listish(vs)
            vs = vs if isinstance(vs, (list, tuple)) else [vs]
            if not vs:
                raise ParamError("validation_slo_ms", self.validation_slo_ms, "a non-empty list of SLOs in ms, or None")
            vs = [_num("validation_slo_ms", x, 0, lo_open=True) for x in vs]
            if len(set(vs)) != len(vs):
                raise ParamError("validation_slo_ms", self.validation_slo_ms, "distinct SLOs")
        self.validation_slo_ms = vs
        self.validation_seeds = _int("validation_seeds", self.validation_seeds, 1, 1000)
        cm = _listish(self.cluster_models)
        cm = cm if isinstance(cm, (list, tuple)) else [cm]
        self.cluster_models = [_int("cluster_models", x, 1, 100_000_000) for x in cm]
        if _quantity("cluster_host_memory", self.cluster_host_memory, "memory") <= 0:
            raise ParamError("cluster_host_memory", self.cluster_host_memory, "a positive memory quantity")
        self.cluster_alpha = _num("cluster_alpha", self.cluster_alpha, 0, 10)
        self.cluster_slo_ms = _num("cluster_slo_ms", self.cluster_slo_ms, 0, lo_open=True)
        self.cluster_qps = _num("cluster_qps", self.cluster_qps, 0, lo_open=True)
        self.cluster_duration_s = _num("cluster_duration_s", self.cluster_duration_s, 0, lo_open=True)
        return self

    def _check_lazy_cells(self, cells):
        """``lazy_cells``: None, or a non-empty list of {alpha, capacity, qps, role} with at least
        one calibration cell and no two cells alike."""
        if cells is None:
            return None
        allowed = ("a list of cells {alpha: >= 0, capacity: a count, N% or memory, qps: > 0, "
                   "role: calibration | validation}, at least one calibration cell")
        cells = _listish(cells)
        if not isinstance(cells, (list, tuple)) or not cells or not all(isinstance(c, dict) for c in cells):
            raise ParamError("lazy_cells", cells, allowed)
        out = []
        for c in cells:
            if set(c) != {"alpha", "capacity", "qps", "role"}:
                raise ParamError("lazy_cells", c, allowed)
            out.append({"alpha": _num("lazy_cells", c["alpha"], 0, 10),
                        "capacity": self._cell_capacity(c["capacity"]), "capacity_spec": str(c["capacity"]),
                        "qps": _num("lazy_cells", c["qps"], 0, lo_open=True),
                        "role": _choice("lazy_cells", c["role"], ("calibration", "validation"))})
        keys = [(c["alpha"], c["capacity"], c["qps"]) for c in out]
        if len(set(keys)) != len(keys):
            raise ParamError("lazy_cells", cells, "distinct cells (alpha, capacity as a count, qps)")
        if not any(c["role"] == "calibration" for c in out):
            raise ParamError("lazy_cells", cells, allowed)
        return [{"alpha": c["alpha"], "capacity": c["capacity_spec"], "qps": c["qps"], "role": c["role"]}
                for c in out]

    def _cell_capacity(self, c) -> int:
        try:
            return self._capacity_count(c)
        except ParamError as e:
            raise ParamError("lazy_cells", c, f"capacity: {e.allowed}") from None

    def model_memory_bytes(self) -> int:
        if self.model_memory is not None:
            return _quantity("model_memory", self.model_memory, "memory")
        from .workloads import get_workload
        return int(get_workload(self.workload, self).memory_estimate_bytes)

    def cycles_count(self) -> int:
        if self.cycles is not None:
            return self.cycles
        from .workloads import get_workload
        return int(get_workload(self.workload, self).load_cycles_default)

    def capacity_counts(self) -> List[int]:
        """``capacity`` as model counts: an integer is a count, "N%" a share of
        ``models``, a memory quantity ("64Mi") holds that many models' declared memory."""
        return [self._capacity_count(c) for c in self.capacity]

    def _capacity_count(self, c) -> int:
        allowed = (f"model counts from 1 to models ({self.models}), percentages of models like 25%, "
                   "or memory quantities like 64Mi (divided by the declared model memory)")
        if isinstance(c, str) and c.strip().endswith("%"):
            x = _number(c.strip()[:-1])
            if x is None or not 0 < x <= 100:
                raise ParamError("capacity", c, allowed)
            n = int(self.models * x / 100 + 1e-9)
        elif _number(c) is not None:
            n = _int("capacity", c, 1, self.models)
        elif isinstance(c, str):
            n = _quantity("capacity", c, "memory") // self.model_memory_bytes()
        else:
            raise ParamError("capacity", c, allowed)
        if not 1 <= n <= self.models:
            raise ParamError("capacity", c, allowed + f" (this is {n} models)")
        return int(n)


def coldstart(**raw) -> ColdstartParams:
    """Validated cold-start parameters (raises ParamError)."""
    return _build(ColdstartParams, raw)


EXPERIMENTS["coldstart"] = ColdstartParams


@dataclass
class ReportParams:
    """The report notebook's parameters (not an experiment: it measures nothing)."""
    input_dir: str = "outputs"                 # folder scanned (recursively) for run directories
    runs: List[str] = field(default_factory=list)  # more run directories to include
    percentiles: List[Any] = field(default_factory=lambda: [50, 90, 95, 99, "max"])
    slo_ms: Optional[float] = None             # latency SLO to judge every run by; None: each run's own
    compare: List[str] = field(default_factory=list)  # two runs to compare; []: the two latest comparable
    include_seed: bool = True
    limits_file: str = "params/seed-cluster.yaml"
    tables_dir: Optional[str] = None           # where the report's tables go (CSV + JSON); None: <input_dir>/report

    def validate(self, machine_memory: Optional[int] = None) -> "ReportParams":
        from .values import percentiles as parse_percentiles
        if not isinstance(self.input_dir, (str, os.PathLike)) or not str(self.input_dir).strip():
            raise ParamError("input_dir", self.input_dir, "a directory path")
        runs = _listish(self.runs)
        runs = [] if _optional(runs) is None else ([runs] if isinstance(runs, str) else list(runs))
        for r in runs:
            if not (Path(str(r)) / "meta.json").is_file():
                raise ParamError("runs", r, "run directories (folders holding meta.json)")
        self.runs = [str(r) for r in runs]
        self.percentiles = list(parse_percentiles(self.percentiles))
        self.slo_ms = None if _optional(self.slo_ms) is None else _num("slo_ms", self.slo_ms, 0, lo_open=True)
        cmp = _listish(self.compare)
        cmp = [] if _optional(cmp) is None else ([cmp] if isinstance(cmp, str) else list(cmp))
        if len(cmp) not in (0, 2):
            raise ParamError("compare", self.compare, "two runs (keys, run ids or run directories, e.g. a,b), or []")
        self.compare = [str(c) for c in cmp]
        self.include_seed = _bool("include_seed", self.include_seed)
        self.tables_dir = None if _optional(self.tables_dir) is None else str(self.tables_dir)
        return self


def report(**raw) -> ReportParams:
    """Validated report parameters (raises ParamError)."""
    known = {f.name for f in fields(ReportParams)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ParamError(unknown[0], raw[unknown[0]], "one of the known parameters: " + ", ".join(sorted(known)))
    return ReportParams(**raw).validate()


TRAFFIC_ARRIVALS = ("constant", "poisson", "gamma", "trace")
TRAFFIC_POPULARITY = ("uniform", "zipf", "hot")


@dataclass
class TrafficParams(Common):
    """SLO attainment under bursty, skewed load (notebooks/traffic.ipynb; mmslib.traffic)."""

    output_dir: str = "outputs/traffic"
    models: List[int] = field(default_factory=lambda: [5, 500])  # mms: every size; traditional: the first
    rates: List[float] = field(default_factory=lambda: [25.0, 50.0, 100.0])
    arrival: str = "gamma"
    cv: List[float] = field(default_factory=lambda: [1.0, 4.0])  # gamma only
    trace: Optional[str] = None
    time_scale: float = 1.0
    popularity: str = "zipf"
    zipf_alpha: float = 1.0
    hot_models: int = 1
    hot_rate: float = 50.0
    hot_cv: float = 4.0
    duration_s: float = 15.0
    warmup_s: float = 2.0
    slo_ms: float = 50.0
    attainment_target: float = 0.99
    lateness_p99_ms: float = 10.0
    offered_tolerance: float = 0.1  # a level whose offered rate is off nominal by more is not valid
    search: bool = False
    search_lo: float = 10.0
    search_hi: float = 400.0
    search_tolerance: float = 20.0
    repeats: int = 1
    protocol: str = "rest"
    timeout_s: float = 10.0
    cpu_isolation: bool = False
    generator: str = "k6"  # loadgen.GENERATORS: k6, or go (mmslib.gogen, REST, less CPU per request)

    def validate(self, machine_memory: Optional[int] = None) -> "TrafficParams":
        from .arrivals import check_cv, check_zipf_alpha, read_trace
        from .backends.base import model_names
        from .slo import check_slo_ms, check_target
        self._check_common(machine_memory)
        m = _listish(self.models)
        m = [m] if _number(m) is not None else m
        if not isinstance(m, (list, tuple)) or not m:
            raise ParamError("models", self.models, "a model count or a list of counts (e.g. 5,100,1000)")
        self.models = [_int("models", x, 1, 100_000) for x in m]
        if len(set(self.models)) != len(self.models):
            raise ParamError("models", self.models, "distinct model counts")
        _choice("arrival", self.arrival, TRAFFIC_ARRIVALS)
        r = _listish(self.rates)
        r = [r] if _number(r) is not None else r
        if not isinstance(r, (list, tuple)) or not r:
            raise ParamError("rates", self.rates, "a non-empty list of rates > 0 in requests per second (e.g. 25,50)")
        self.rates = [_num("rates", x, 0, lo_open=True) for x in r]
        if len(set(self.rates)) != len(self.rates):
            raise ParamError("rates", self.rates, "distinct rates")
        c = _listish(self.cv)
        c = [c] if not isinstance(c, (list, tuple)) else c
        if not c:
            raise ParamError("cv", self.cv, "a number > 0 or a list of them (e.g. 0.5,1,2,4,8)")
        self.cv = [check_cv(_number(x) if _number(x) is not None else x) for x in c]
        if len(set(self.cv)) != len(self.cv):
            raise ParamError("cv", self.cv, "distinct coefficients of variation")
        self.time_scale = _num("time_scale", self.time_scale, 0, lo_open=True)
        _choice("popularity", self.popularity, TRAFFIC_POPULARITY)
        za = _number(self.zipf_alpha)
        self.zipf_alpha = check_zipf_alpha(za if za is not None else self.zipf_alpha)
        self.hot_models = _int("hot_models", self.hot_models, 1)
        if self.popularity == "hot" and self.hot_models >= min(self.models):
            raise ParamError("hot_models", self.hot_models,
                             f"an integer from 1 to {min(self.models) - 1} (fewer than the models, so others remain)")
        self.hot_rate = _num("hot_rate", self.hot_rate, 0)
        hc = _number(self.hot_cv)
        self.hot_cv = check_cv(hc if hc is not None else self.hot_cv, "hot_cv")
        self.duration_s = _num("duration_s", self.duration_s, 0, lo_open=True)
        self.warmup_s = _num("warmup_s", self.warmup_s, 0)
        sl = _number(self.slo_ms)
        self.slo_ms = check_slo_ms(sl if sl is not None else self.slo_ms)
        at = _number(self.attainment_target)
        self.attainment_target = check_target(at if at is not None else self.attainment_target)
        self.lateness_p99_ms = _num("lateness_p99_ms", self.lateness_p99_ms, 0, lo_open=True)
        self.offered_tolerance = _num("offered_tolerance", self.offered_tolerance, 0, lo_open=True)
        self.search = _bool("search", self.search)
        self.search_lo = _num("search_lo", self.search_lo, 0, lo_open=True)
        self.search_hi = _num("search_hi", self.search_hi, 0, lo_open=True)
        if self.search_hi <= self.search_lo:
            raise ParamError("search_hi", self.search_hi, f"a rate > search_lo ({self.search_lo:g})")
        self.search_tolerance = _num("search_tolerance", self.search_tolerance, 0, lo_open=True)
        self.repeats = _int("repeats", self.repeats, 1, 100)
        _choice("protocol", self.protocol, PROTOCOLS)
        self._check_protocol()
        self.timeout_s = _num("timeout_s", self.timeout_s, 0, lo_open=True)
        self.cpu_isolation = _bool("cpu_isolation", self.cpu_isolation)
        self.generator = check_generator(self.generator, [self.protocol])
        self.trace = _optional(self.trace)
        if self.trace is not None and not isinstance(self.trace, (str, os.PathLike)):
            raise ParamError("trace", self.trace, "a path to a CSV file of offset_s,model rows, or None")
        if self.arrival == "trace":
            if self.trace is None:
                raise ParamError("trace", None, "a CSV file of offset_s,model rows (arrival: trace)")
            if len(self.models) != 1:
                raise ParamError("models", self.models, "one model count with arrival 'trace' (the trace names the models)")
            read_trace(self.trace, model_names(self.models[0]))  # every row checked, before deploying
            self.trace = str(self.trace)
        return self


def traffic(**raw) -> TrafficParams:
    """Validated traffic parameters (raises ParamError)."""
    return _build(TrafficParams, raw)


EXPERIMENTS["traffic"] = TrafficParams
