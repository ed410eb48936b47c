"""Local backend: real model-server processes on 127.0.0.1.

traditional = one server process per model (the local analogue of one
InferenceService per model); mms = ``hosts`` server processes, models added by
name through ``POST /v2/repository/models/<name>/load`` (the analogue of a
TrainedModel), placed on the host with the most free declared memory. Like
KServe's TrainedModel admission, a host refuses a model once the declared
memory of its models would exceed its memory limit.
"""
from __future__ import annotations

import collections
import concurrent.futures as cf
import contextlib
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Union

import requests

from .. import resources
from ..errors import DeployError
from ..gpu import process_memory_mib as process_gpu_memory
from ..procs import PORT_RETRIES, Supervisor, free_port, lost_port, pin_threads, tree_pids
from ..quantity import parse_memory
from ..runtimes import Runtime, ServerConfig, get_runtime
from ..v2 import V2Client
from .base import Backend, DeployEvent, Endpoint, Usage, VerifyResult, sample_inferences


@dataclass
class LocalServer:
    name: str
    http_port: int
    grpc_port: int
    proc: object
    started: float
    metrics_port: int = 0
    memory_limit: int = 0           # bytes, admission limit (mms hosts)
    declared: int = 0               # bytes declared by the models placed here
    models: List[str] = field(default_factory=list)
    client: Optional[V2Client] = None
    spawn_args: tuple = ()          # (models, lazy_capacity) it was started with
    port_retries: int = 0           # restarts on fresh ports after losing one (procs.lost_port)

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"


class LocalBackend(Backend):
    name = "local"
    mms_engines = ("trainedmodel", "lazy")   # lazy: hosts load on first request (a runtime with lazy_loading)

    def __init__(self, runtime: Runtime, workload, workdir: Path, *,
                 deploy_concurrency: int = 4, deploy_timeout_s: float = 120.0,
                 host_memory_limit: int = 10 << 30, model_memory: Optional[int] = None,
                 server_threads: int = 1, supervisor: Optional[Supervisor] = None,
                 lazy_capacity: int = 0):
        runtime.check_available()  # looks for the runtime, does not import it
        self.runtime = runtime
        self.workload = workload
        self.workdir = Path(workdir)
        self.store = self.workdir / "store"
        self.runtime.prepare_store(self.store)
        self.deploy_concurrency = max(1, int(deploy_concurrency))
        self.deploy_timeout_s = float(deploy_timeout_s)
        self.host_memory_limit = int(host_memory_limit)
        self.model_memory = int(model_memory if model_memory is not None else workload.memory_estimate_bytes)
        self.server_threads = server_threads
        self.lazy_capacity = int(lazy_capacity)  # >0: hosts load on first request, keep at most this many
        if self.lazy_capacity > 0 and not runtime.lazy_loading:
            raise DeployError(f"runtime {runtime.name!r} has no lazy loading (load on first request, LRU eviction)")
        self._own_supervisor = supervisor is None
        self.sup = supervisor or Supervisor(log_dir=self.workdir / "logs").__enter__()
        if self.sup.log_dir is None:
            self.sup.log_dir = self.workdir / "logs"
        self._servers: Dict[str, LocalServer] = {}
        self._hosts: List[LocalServer] = []
        self._lock = threading.Lock()
        self._written: set = set()
        self._closed = False

    # -- helpers ---------------------------------------------------------
    def _write(self, model: str) -> None:
        if model not in self._written:
            self.runtime.write_model(self.store, self.workload, model)
            self._written.add(model)

    def _spawn(self, name: str, models: List[str], lazy_capacity: int = 0) -> LocalServer:
        cfg = ServerConfig(name=name, store=self.store, workdir=self.workdir / "servers",
                           http_port=free_port(), grpc_port=free_port(), models=models,
                           threads=self.server_threads, metrics_port=free_port(), lazy_capacity=lazy_capacity)
        argv, env = self.runtime.command(cfg)
        proc = self.sup.spawn(argv, name=name, env=env)
        srv = LocalServer(name, cfg.http_port, cfg.grpc_port, proc, time.time(), metrics_port=cfg.metrics_port,
                          client=V2Client(f"http://127.0.0.1:{cfg.http_port}", timeout=self.deploy_timeout_s),
                          spawn_args=(list(models), lazy_capacity))
        with self._lock:
            self._servers[name] = srv
        return srv

    def _poll(self, srv: LocalServer, model: Optional[str]) -> Optional[str]:
        """None while starting; "" when ready; an error message when failed."""
        if srv.proc.poll() is not None:
            lost = lost_port(self.sup.log_tail(srv.name, 400))
            if lost and srv.port_retries < PORT_RETRIES:
                # another process took a port between choosing and binding: fresh ports, same server
                new = self._spawn(srv.name, *srv.spawn_args)
                for k in ("http_port", "grpc_port", "metrics_port", "proc", "started", "client"):
                    setattr(srv, k, getattr(new, k))
                srv.port_retries += 1
                with self._lock:
                    self._servers[srv.name] = srv
                return None
            if lost:
                return (f"server {srv.name} could not bind its ports: another process took them between "
                        f"choosing and binding, {srv.port_retries + 1} times on fresh ports; last: {lost}")
            return f"server {srv.name} exited with code {srv.proc.returncode}: {self.sup.log_tail(srv.name, 8)}"
        try:
            path = f"/v2/models/{model}/ready" if model else "/v2/health/ready"
            r = srv.client.session.get(srv.rest_url + path, timeout=2.0)
            return "" if r.status_code == 200 else None
        except requests.RequestException:
            return None

    def _stop_server(self, srv: LocalServer) -> None:
        self.sup.stop(srv.proc)
        with self._lock:
            self._servers.pop(srv.name, None)

    # -- traditional -----------------------------------------------------
    def deploy_traditional(self, models: List[str]) -> Iterator[DeployEvent]:
        pending = list(models)
        starting: Dict[str, tuple] = {}  # model -> (server, t0)
        try:
            while pending or starting:
                while pending and len(starting) < self.deploy_concurrency:
                    m = pending.pop(0)
                    self._write(m)
                    srv = self._spawn(f"isvc-{m}", [m])
                    starting[m] = (srv, time.monotonic())
                progressed = False
                for m, (srv, t0) in list(starting.items()):
                    state = self._poll(srv, m)
                    waited = time.monotonic() - t0
                    if state is None and waited > self.deploy_timeout_s:
                        state = f"timeout: {m} not ready within {self.deploy_timeout_s:.0f} s"
                    if state is None:
                        continue
                    del starting[m]
                    progressed = True
                    if state == "":
                        srv.models.append(m)
                        yield DeployEvent(m, srv.name, True, waited, time.time())
                    else:
                        self._stop_server(srv)
                        yield DeployEvent(m, srv.name, False, waited, time.time(), error=state)
                if not progressed:
                    time.sleep(0.05)
        finally:
            # Stopped early (limit reached, error, Ctrl-C): servers still starting go.
            for srv, _ in starting.values():
                self._stop_server(srv)

    # -- multi-model -----------------------------------------------------
    def start_hosts(self, n: int) -> List[DeployEvent]:
        events = []
        new = []
        for i in range(n):
            idx = len(self._hosts)
            srv = self._spawn(f"host-{idx}", [], lazy_capacity=self.lazy_capacity)
            srv.memory_limit = self.host_memory_limit
            self._hosts.append(srv)
            new.append((srv, time.monotonic()))
        for srv, t0 in new:
            while True:
                state = self._poll(srv, None)
                if state is None and time.monotonic() - t0 > max(self.deploy_timeout_s, self.runtime.start_timeout_s()):
                    state = f"timeout: host {srv.name} not ready"
                if state is not None:
                    break
                time.sleep(0.05)
            ev = DeployEvent("", srv.name, state == "", time.monotonic() - t0, time.time(),
                             error=state or "", kind="host")
            events.append(ev)
            if not ev.ok:
                raise DeployError(ev.error)
        return events

    def register_lazy(self, models: List[str]) -> List[DeployEvent]:
        """Lazy hosts (``lazy_capacity`` > 0): write the models' artifacts and
        assign them to the hosts in turn, loading nothing; a host loads a model
        on its first request (evicting its least recently used beyond capacity)."""
        if not self._hosts or self.lazy_capacity <= 0:
            raise DeployError("register_lazy: start_hosts() with lazy_capacity > 0 first")
        events = []
        for i, m in enumerate(models):
            self._write(m)
            host = self._hosts[i % len(self._hosts)]
            host.models.append(m)
            events.append(DeployEvent(m, host.name, True, 0.0, time.time()))
        return events

    def _place(self, model: str) -> Optional[LocalServer]:
        with self._lock:
            hosts = [h for h in self._hosts if h.declared + self.model_memory <= h.memory_limit]
            if not hosts:
                return None
            h = min(hosts, key=lambda h: h.declared)
            h.declared += self.model_memory
            return h

    def _load_one(self, model: str) -> DeployEvent:
        host = self._place(model)
        if host is None:
            return DeployEvent(model, "", False, 0.0, time.time(),
                               error=f"admission: no host has {self.model_memory} B of memory left "
                                     f"(limit {self.host_memory_limit} B per host, {len(self._hosts)} hosts)")
        t0 = time.monotonic()
        try:
            self._write(model)
            r = host.client.load(model)
            ok = r.status_code == 200
            err = "" if ok else f"load {model} on {host.name}: HTTP {r.status_code} {r.text[:200]}"
        except requests.RequestException as e:
            ok, err = False, f"load {model} on {host.name}: {e}"
        dt = time.monotonic() - t0
        with self._lock:
            if ok:
                host.models.append(model)
            else:
                host.declared -= self.model_memory
        return DeployEvent(model, host.name, ok, dt, time.time(), error=err)

    def deploy_mms(self, models: List[str]) -> Iterator[DeployEvent]:
        """Loads run ``deploy_concurrency`` at a time; events come in model order,
        so a refusal is reported after every model before it."""
        if not self._hosts:
            raise DeployError("deploy_mms: start_hosts() first")
        it = iter(models)
        window: "collections.deque[cf.Future]" = collections.deque()
        with cf.ThreadPoolExecutor(self.deploy_concurrency, thread_name_prefix="mms-load") as ex:
            try:
                for m in it:
                    window.append(ex.submit(self._load_one, m))
                    if len(window) >= self.deploy_concurrency * 2:
                        break
                while window:
                    ev = window.popleft().result()
                    nxt = next(it, None)
                    if nxt is not None:
                        window.append(ex.submit(self._load_one, nxt))
                    yield ev
            finally:
                for f in window:
                    f.cancel()

    # -- after deployment ------------------------------------------------
    def servers(self) -> List[str]:
        return list(self._servers)

    def server(self, name: Optional[str] = None) -> LocalServer:
        """The running server ``name`` (ports, process, models); without a
        name, the only one (KeyError when there is not exactly one)."""
        if name is None:
            if len(self._servers) != 1:
                raise KeyError(f"{len(self._servers)} servers running, name one: {self.servers()}")
            return next(iter(self._servers.values()))
        return self._servers[name]

    def endpoints(self) -> List[Endpoint]:
        out = []
        for srv in list(self._servers.values()):
            for m in srv.models:
                out.append(Endpoint(m, srv.name, srv.rest_url, f"127.0.0.1:{srv.grpc_port}"))
        return out

    def list_models(self, srv: LocalServer) -> List[str]:
        r = srv.client.session.get(srv.rest_url + "/v2/models", timeout=30)
        if r.status_code == 200 and "models" in r.json():
            return list(r.json()["models"])
        return srv.client.model_names()

    def verify(self, sample: int = 100, seed: int = 0) -> VerifyResult:
        failures = []
        expected = listed = 0
        for srv in list(self._servers.values()):
            if not srv.models:
                continue
            expected += len(srv.models)
            try:
                have = set(self.list_models(srv))
            except (requests.RequestException, ValueError) as e:
                failures.append(f"{srv.name}: cannot list models: {e}")
                continue
            missing = [m for m in srv.models if m not in have]
            listed += len(srv.models) - len(missing)
            if missing:
                failures.append(f"{srv.name}: {len(missing)} models not listed, e.g. {missing[:3]}")
        clients = {srv.name: srv.client for srv in self._servers.values()}
        sampled, correct, bad = sample_inferences(
            self.workload, self.endpoints(), lambda ep, x: clients[ep.server].infer(ep.model, x), sample, seed)
        return VerifyResult(expected, listed, sampled, correct, (failures + bad)[:20])

    def metrics_urls(self) -> List[str]:
        return [self.runtime.metrics_url(s) for s in list(self._servers.values())]

    def metric_spec(self):
        return self.runtime.metrics

    def pids(self) -> List[int]:
        out = []
        for srv in list(self._servers.values()):
            out.extend(tree_pids(srv.proc.pid))
        return out

    def usage(self) -> Usage:
        """PSS/RSS/USS of every server process tree, their CPU seconds, GPU memory if any."""
        pids = self.pids()
        m = resources.memory_of(pids)
        return Usage(servers=len(self._servers), memory_mib=m["pss_mib"], rss_mib=m["rss_mib"],
                     uss_mib=m["uss_mib"], cpu_seconds=resources.cpu_seconds(pids),
                     gpu_memory_mib=process_gpu_memory(pids), processes=m["processes"])

    def kill_server(self, server: str, sig: int = 9) -> None:
        import os
        srv = self._servers[server]
        os.kill(srv.proc.pid, sig)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        servers = list(self._servers.values())
        for srv in servers:  # idle keep-alive connections would hold a server's exit up
            srv.client.session.close()
        self.sup.stop_many([s.proc for s in servers])
        self._servers.clear()
        self._hosts.clear()
        if self._own_supervisor:
            self.sup.__exit__(None, None, None)


def from_params(p, workload, workdir: Path, supervisor: Supervisor, run_id: str) -> LocalBackend:
    """The local backend for an experiment's validated params ``p``."""
    from . import model_memory
    return LocalBackend(get_runtime(p.runtime), workload, workdir,
                        deploy_concurrency=p.deploy_concurrency, deploy_timeout_s=p.deploy_timeout_s,
                        host_memory_limit=parse_memory(p.mms_predictor_memory),
                        model_memory=model_memory(p, workload), server_threads=p.server_threads,
                        supervisor=supervisor)


@contextlib.contextmanager
def serve(workload, models: Sequence[str], workdir: Path, runtime: Union[str, Runtime] = "kserve",
          cpus: Optional[Sequence[int]] = None, **backend_kw) -> Iterator[LocalBackend]:
    """One standalone server on free loopback ports with ``models`` loaded
    and ready; yields its :class:`LocalBackend` (``endpoints()``, ``server()``
    for the ports and process) and stops the server on exit, also on error.

    ``workload``: a workload or its name; the models' artifacts are written to
    ``workdir/store``. ``cpus``: CPU ids to pin the server's threads to.
    ``backend_kw`` go to :class:`LocalBackend` (e.g. ``deploy_timeout_s``).
    Raises DeployError when the server does not start (its log tail says why,
    a missing runtime included) or a model does not load.
    """
    if isinstance(workload, str):
        from ..workloads import get_workload
        workload = get_workload(workload)
    rt = get_runtime(runtime) if isinstance(runtime, str) else runtime
    backend = LocalBackend(rt, workload, workdir, **backend_kw)
    try:
        backend.start_hosts(1)
        if cpus:  # before the loads: threads they start inherit the mask
            pin_threads(backend.pids(), list(cpus))
        failed = [ev for ev in backend.deploy_mms(list(models)) if not ev.ok]
        if failed:
            raise DeployError(f"{len(failed)} of {len(models)} models not loaded: "
                              + "; ".join(ev.error for ev in failed[:3]))
        if cpus:
            pin_threads(backend.pids(), list(cpus))
        yield backend
    finally:
        backend.close()
