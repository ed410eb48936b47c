"""Child processes and ports: everything a run starts is stopped at the end.

A :class:`Supervisor` starts each child in its own session (process group),
asks the kernel to kill it if the Python process dies (PR_SET_PDEATHSIG), and
stops every group it started on ``close()`` -- called from ``__exit__`` on
success, on an exception and on Ctrl-C. While a supervisor is open, SIGTERM
and SIGHUP are turned into ``KeyboardInterrupt`` so the same clean-up path
runs (papermill and Jupyter stop kernels with those).
"""
from __future__ import annotations

import atexit
import ctypes
import os
import random
import re
import signal
import socket
import subprocess
import threading
import time
import weakref
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence

import psutil

_LIVE: "weakref.WeakSet[Supervisor]" = weakref.WeakSet()
_PORTS_GIVEN: set = set()
_PORT_LOCK = threading.Lock()
_RNG = random.SystemRandom()

try:
    _libc = ctypes.CDLL("libc.so.6", use_errno=True)
except OSError:  # pragma: no cover - non-glibc
    _libc = None
PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:  # runs in the child between fork and exec
    if _libc is not None:
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _ephemeral_range() -> tuple:
    try:
        lo, hi = (int(x) for x in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
        return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


#: Ports are picked below the kernel's ephemeral range: the kernel hands ports of
#: that range to every outgoing connection and ``bind(0)`` on the machine (k6's
#: thousands of connections, other benchmarks), which could take a chosen port
#: before the server binds it.
PORT_RANGE_LOW = 20000

#: How often a server that lost a port to another process is started again on fresh ports.
PORT_RETRIES = 3

_LOST_PORT = re.compile(r"address already in use|socket '[^']*' already in use|failed to bind to address|errno 98\b|eaddrinuse",
                        re.IGNORECASE)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` now, never handed out twice by this process.

    Picked at random below the ephemeral range (see :data:`PORT_RANGE_LOW`);
    where that leaves too few ports, the kernel picks (``bind(0)``). Free
    *now* only: a server started on it may still find it taken (see
    :func:`lost_port`)."""
    lo_eph = _ephemeral_range()[0]
    with _PORT_LOCK:
        if lo_eph - PORT_RANGE_LOW >= 1000:
            for _ in range(200):
                port = _RNG.randrange(PORT_RANGE_LOW, lo_eph)
                if port in _PORTS_GIVEN or not _bindable(host, port):
                    continue
                _PORTS_GIVEN.add(port)
                return port
        for _ in range(200):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind((host, 0))
                port = s.getsockname()[1]
            if port not in _PORTS_GIVEN:
                _PORTS_GIVEN.add(port)
                return port
    raise RuntimeError("no free port found")


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))  # no SO_REUSEADDR: fails on any socket using the port
        except OSError:
            return False
    return True


def lost_port(log_text: str) -> str:
    """The line of a server's log saying it could not bind its port (another
    process took it), or "" when none does."""
    for line in reversed((log_text or "").splitlines()):
        if _LOST_PORT.search(line):
            return line.strip()
    return ""


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def tree_pids(pid: int) -> List[int]:
    """pid and all its descendants that are alive (zombies, exited but not yet
    reaped, are not)."""
    try:
        p = psutil.Process(pid)
        procs = [p] + p.children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    out = []
    for c in procs:
        try:
            if c.status() != psutil.STATUS_ZOMBIE:
                out.append(c.pid)
        except psutil.NoSuchProcess:
            pass
    return out


class Supervisor:
    """Owns child processes; ``close()`` stops them all (idempotent)."""

    def __init__(self, log_dir: Optional[Path] = None, handle_signals: bool = True):
        self.log_dir = Path(log_dir) if log_dir else None
        self.procs: Dict[int, subprocess.Popen] = {}
        self.names: Dict[int, str] = {}
        self._handle_signals = handle_signals
        self._old_handlers: dict = {}
        self._closed = False
        self._lock = threading.Lock()
        _LIVE.add(self)

    # -- lifecycle -------------------------------------------------------
    def __enter__(self) -> "Supervisor":
        if self._handle_signals and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGHUP):
                try:
                    self._old_handlers[sig] = signal.signal(sig, _raise_interrupt)
                except (ValueError, OSError):  # pragma: no cover
                    pass
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.close()
        finally:
            for sig, h in self._old_handlers.items():
                try:
                    signal.signal(sig, h)
                except (ValueError, OSError):  # pragma: no cover
                    pass
            self._old_handlers.clear()

    def spawn(self, argv: Sequence[str], name: str, env: Optional[dict] = None,
              cwd: Optional[Path] = None) -> subprocess.Popen:
        if self._closed:
            raise RuntimeError("supervisor is closed")
        out = subprocess.DEVNULL
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            out = open(self.log_dir / f"{name}.log", "ab")
        try:
            proc = subprocess.Popen(list(argv), env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True,
                                    preexec_fn=die_with_parent)
        finally:
            if out is not subprocess.DEVNULL:
                out.close()
        with self._lock:
            self.procs[proc.pid] = proc
            self.names[proc.pid] = name
        return proc

    def log_tail(self, name: str, n: int = 20) -> str:
        if self.log_dir is None:
            return ""
        f = self.log_dir / f"{name}.log"
        try:
            return "\n".join(f.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self, proc: subprocess.Popen, timeout: float = 5.0) -> None:
        """Stop one child and its whole process group."""
        stop_group(proc, timeout)
        with self._lock:
            self.procs.pop(proc.pid, None)
            self.names.pop(proc.pid, None)

    def stop_many(self, procs: List[subprocess.Popen], timeout: float = 5.0) -> None:
        """Stop several children at once: SIGTERM all, wait once, SIGKILL the rest."""
        with self._lock:
            for p in procs:
                self.procs.pop(p.pid, None)
                self.names.pop(p.pid, None)
        for p in procs:
            _signal_group(p, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for p in procs:
            try:
                p.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for p in procs:
            _signal_group(p, signal.SIGKILL)
            try:
                p.wait(2.0)
            except subprocess.TimeoutExpired:  # pragma: no cover
                pass

    def close(self, timeout: float = 5.0) -> None:
        with self._lock:
            procs = list(self.procs.values())
            self._closed = True
        self.stop_many(procs, timeout)

    def pids(self) -> List[int]:
        out: List[int] = []
        for pid in list(self.procs):
            out.extend(tree_pids(pid))
        return out


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)  # the child leads its own group
    except (ProcessLookupError, PermissionError):
        # No such group (the child is dead, or leads none) or none of it may be
        # signalled: the child itself. send_signal does nothing once the child
        # is reaped, so the pid is still ours.
        try:
            proc.send_signal(sig)
        except (ProcessLookupError, PermissionError):
            pass
    # Descendants that left the group (rare) are found by tree, while the child
    # is not reaped (its pid is ours; once reaped its orphans are not its children).
    if sig == signal.SIGKILL and proc.returncode is None:
        for pid in tree_pids(proc.pid)[1:]:
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass


def stop_group(proc: subprocess.Popen, timeout: float = 5.0) -> None:
    """Stop a child that leads its own process group (``start_new_session``):
    SIGTERM the group, wait up to ``timeout`` s for the child, then SIGKILL the
    group (and any descendant that left it). Never raises: a child already
    dead (reaped or not), a group already empty, a group we may not signal
    (then the child alone is signalled) or a child that will not die are all
    fine."""
    _signal_group(proc, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        _signal_group(proc, signal.SIGKILL)
        try:
            proc.wait(2.0)
        except subprocess.TimeoutExpired:  # pragma: no cover - stuck in the kernel
            pass
    else:
        _signal_group(proc, signal.SIGKILL)  # leftovers in the group


def pin_threads(pids: Iterable[int], cpus: Sequence[int]) -> None:
    """Pin every thread of the given processes to ``cpus`` (threads they
    start later inherit the mask). Processes or threads gone meanwhile, or
    that may not be pinned, are skipped."""
    for pid in pids:
        try:
            tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
        except OSError:
            continue
        for tid in tids:
            try:
                os.sched_setaffinity(tid, cpus)
            except OSError:
                pass


@atexit.register
def _close_all() -> None:  # last resort at interpreter exit
    for s in list(_LIVE):
        try:
            s.close(timeout=2.0)
        except Exception:  # pragma: no cover
            pass


def wait_until(pred, timeout: float, interval: float = 0.05, what: str = "condition") -> float:
    """Poll ``pred`` until true; returns seconds waited or raises TimeoutError."""
    t0 = time.monotonic()
    while True:
        if pred():
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            raise TimeoutError(f"{what} not reached within {timeout:.0f} s")
        time.sleep(interval)


def live_children(pids: Iterable[int]) -> List[int]:
    return [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
