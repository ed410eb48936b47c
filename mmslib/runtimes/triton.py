"""NVIDIA Triton Inference Server (python backend, CPU) as a runtime.

The server is the real ``tritonserver`` binary bundled in the
``nvidia-pytriton`` wheel, run from its own environment ``.venv-triton`` (the
python backend needs numpy<2, the main venv has numpy 2): create it with
``bash scripts/setup-runtime-env.sh triton``. The env is found at
``$MMSLIB_TRITON_VENV`` or ``<repo root>/.venv-triton``.

Store layout (a Triton model repository; every model uses the python backend)::

    store/<name>/config.pbtxt       backend "python", inputs/outputs from the workload
    store/<name>/1/model.py         mmslib/runtimes/triton_model.py, MMSLIB_PATH filled in
    store/<name>/1/artifact/        workload.write_artifact(...)

Servers run with ``--model-control-mode=explicit``: traditional servers load
their one model with ``--load-model``; multi-model hosts start empty and load
models through the V2 repository REST API. Each loaded model runs in its own
python-backend stub process (``processes_per_model = 1``). REST and gRPC bind
127.0.0.1; metrics are off.

The stub embeds Python in isolated mode (PYTHONPATH is ignored) and may pick
the system's libpython: the server's environment puts the venv's ``bin`` first
on PATH and the venv interpreter's own LIBDIR first on LD_LIBRARY_PATH.

Each server process is a small bash launcher (``LAUNCHER``, ~0.3 MiB private
memory) with tritonserver as its child, so that stopping a server never leaks
the stubs' shared memory in /dev/shm (see the comment at ``LAUNCHER``); what
a killed run left there anyway is swept when the next store is prepared. The
launcher is a child subreaper told of its parent's death (``REAPER``): a
SIGKILLed kernel leaves no tritonserver and no stub behind.
``ServerConfig.threads`` sets ``--http-thread-count`` (at least 2, so that a
model load in progress does not block health checks and inference).
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from ..errors import DependencyError
from . import MetricSpec, Runtime, ServerConfig, env_dir, setup_hint

REPO_ROOT = Path(__file__).resolve().parents[2]   # holds the mmslib package
MMSLIB_PATH = str(REPO_ROOT)
SETUP_HINT = setup_hint("triton")
STUB = "triton_python_backend_stub"
MODEL_TEMPLATE = Path(__file__).with_name("triton_model.py")

# V2 datatype -> Triton config data_type
TRITON_TYPES = {
    "BYTES": "TYPE_STRING", "FP32": "TYPE_FP32", "FP64": "TYPE_FP64", "FP16": "TYPE_FP16",
    "INT8": "TYPE_INT8", "INT16": "TYPE_INT16", "INT32": "TYPE_INT32", "INT64": "TYPE_INT64",
    "UINT8": "TYPE_UINT8", "BOOL": "TYPE_BOOL",
}

SHM_PREFIX = "mmslib_triton_"   # + launcher pid + "_"
EXIT_TIMEOUT_S = 3

# Runs tritonserver and removes its shared memory when it is gone.
#
# The supervisor stops a server with SIGTERM to its process group, then SIGKILLs
# what is left of the group as soon as the leader has exited. Triton's python
# stubs ignore SIGTERM; they free their /dev/shm regions when the server unloads
# their model, or ~0.5 s after the server died (when an open HTTP connection
# used up --exit-timeout-secs before the models were unloaded). A tritonserver
# leading the group would have its stubs SIGKILLed in that window, leaking 1 MiB
# of /dev/shm per model. So this launcher leads the group instead: it waits for
# the server, gives the stubs time to clean up, removes any leftovers (the regions
# carry the launcher's pid in their prefix) and exits, well inside the
# supervisor's 5 s. The server gets SIGKILL if the launcher dies (setpriv
# --pdeathsig), so it never outlives it.
#
# The launcher is also the reaper of its tree. ``REAPER`` (a few lines of the
# Triton env's Python, then exec'd into bash: no Python stays in memory) makes
# it a child subreaper (PR_SET_CHILD_SUBREAPER, kept across execve: stubs whose
# server died are re-parented to it, not to init) and sets its parent-death
# signal to SIGTERM (the supervisor's SIGKILL would end it with nothing cleaned
# up). So when the Python process that started it dies, SIGKILL included, the
# launcher is told; it stops the server (SIGTERM, SIGKILL after GRACE s), and
# on every way out SIGKILLs whatever of its tree is left: a stub started while
# the server was being killed never learns that its server is gone and would
# otherwise run forever.
LAUNCHER = r"""
prefix="mmslib_triton_$$_"
if command -v setpriv >/dev/null 2>&1; then guard=(setpriv --pdeathsig KILL --); else guard=(); fi
srv= stopping= timer=
on_stop() {
  stopping=1
  if [ -n "$srv" ]; then
    kill -TERM "$srv" 2>/dev/null
    if [ -z "$timer" ]; then
      ( sleep "$MMSLIB_TRITON_GRACE_S"; kill -KILL "$srv" 2>/dev/null ) &
      timer=$!
    fi
  fi
}
kill_tree() {  # SIGKILL every descendant (ours, or re-parented to us); fails when there was none
  local queue=("$$") found=() p t k kids line rest
  if [ ! -e "/proc/$$/task/$$/children" ]; then  # kernel without CONFIG_PROC_CHILDREN: scan /proc
    queue=()
    for t in /proc/[0-9]*/stat; do
      { read -r line < "$t"; } 2>/dev/null || continue
      p=${line%% *}; rest=${line##*) }; kids=($rest)  # state ppid pgrp ...
      [ "$p" != "$$" ] && { [ "${kids[1]}" = "$$" ] || [ "${kids[2]}" = "$$" ]; } && found+=("$p")
    done
  fi
  while [ ${#queue[@]} -gt 0 ]; do
    p=${queue[0]}; queue=("${queue[@]:1}")
    for t in /proc/"$p"/task/*/children; do
      kids=(); { read -r -a kids < "$t"; } 2>/dev/null
      for k in "${kids[@]}"; do queue+=("$k"); found+=("$k"); done
    done
  done
  [ ${#found[@]} -gt 0 ] || return 1
  kill -KILL "${found[@]}" 2>/dev/null
  return 0
}
trap on_stop TERM INT HUP
[ -n "$stopping" ] && exit 143
"${guard[@]}" "$@" "--backend-config=python,shm-region-prefix-name=$prefix" &
srv=$!
[ -n "$stopping" ] && on_stop
while :; do
  wait "$srv"; rc=$?
  kill -0 "$srv" 2>/dev/null || break
done
[ -n "$timer" ] && kill -KILL "$timer" 2>/dev/null
for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do
  compgen -G "/dev/shm/${prefix}*" >/dev/null || break
  sleep 0.1
done
for _ in 1 2 3 4 5; do kill_tree || break; sleep 0.1; done
rm -f /dev/shm/"${prefix}"*
exit "$rc"
"""

#: Seconds the launcher gives tritonserver to stop on SIGTERM when no supervisor
#: is left to escalate (its parent died), before SIGKILL.
GRACE_S = 6

# Turns the process into a child subreaper with SIGTERM as its parent-death
# signal, then execs the launcher (both settings survive execve).
REAPER = ("import ctypes, os, sys\n"
          "libc = ctypes.CDLL(None)\n"
          "libc.prctl(36, 1, 0, 0, 0)\n"    # PR_SET_CHILD_SUBREAPER
          "libc.prctl(1, 15, 0, 0, 0)\n"    # PR_SET_PDEATHSIG, SIGTERM
          "os.execvp('bash', ['bash', '-c'] + sys.argv[1:])\n")


def shm_regions(pids=None) -> dict:
    """/dev/shm regions of Triton launchers, name -> launcher pid (only those of ``pids`` if given)."""
    want = None if pids is None else {int(p) for p in pids}
    try:
        names = os.listdir("/dev/shm")
    except OSError:
        return {}
    out = {}
    for n in names:
        m = re.match(re.escape(SHM_PREFIX) + r"(\d+)_", n)
        if m and (want is None or int(m.group(1)) in want):
            out[n] = int(m.group(1))
    return out


def sweep_shm() -> int:
    """Remove /dev/shm regions of Triton launchers that are no longer running."""
    removed = 0
    for n, pid in shm_regions().items():
        try:
            alive = b"mmslib-triton-launcher" in Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            alive = False
        if not alive:
            try:
                os.unlink(os.path.join("/dev/shm", n))
                removed += 1
            except OSError:
                pass
    return removed


def venv_dir() -> Path:
    return env_dir("triton")   # $MMSLIB_TRITON_VENV or <repo root>/.venv-triton


def config_pbtxt(name: str, inputs, outputs, instances: int = 1) -> str:
    """config.pbtxt of a python-backend model with the workload's tensors."""
    def tensors(kind: str, specs) -> str:
        items = []
        for t in specs:
            if t.datatype not in TRITON_TYPES:
                raise ValueError(f"model {name}: no Triton type for V2 datatype {t.datatype}")
            dims = ", ".join(str(int(d)) for d in t.shape)
            items.append(f'  {{\n    name: "{t.name}"\n    data_type: {TRITON_TYPES[t.datatype]}\n'
                         f'    dims: [ {dims} ]\n  }}')
        return f"{kind} [\n" + ",\n".join(items) + "\n]\n"

    return (f'name: "{name}"\nbackend: "python"\nmax_batch_size: 0\n'
            + tensors("input", inputs) + tensors("output", outputs)
            + f"instance_group [\n  {{\n    kind: KIND_CPU\n    count: {int(instances)}\n  }}\n]\n")


def _writable(path: Path) -> bool:
    return os.access(path, os.W_OK)


class TritonRuntime(Runtime):
    name = "triton"
    env = "triton"            # requirements/triton.txt -> .venv-triton (scripts/setup-runtime-env.sh triton)
    processes_per_model = 1  # one python-backend stub process per loaded model
    packages = ("nvidia-pytriton", "tritonclient")
    # nv_inference_request_duration_us: the whole request in the server; queue and compute apart.
    metrics = MetricSpec("nv_inference_request_success", {
        "server_ms": (("nv_inference_request_duration_us", 1e-3),),
        "queue_ms": (("nv_inference_queue_duration_us", 1e-3),),
        "compute_ms": (("nv_inference_compute_infer_duration_us", 1e-3),),
    })

    def __init__(self):
        self._env_info: Optional[dict] = None

    # -- environment -----------------------------------------------------
    def _missing(self, what: str) -> DependencyError:
        return DependencyError(f"runtime 'triton' is not set up ({what}); run: {SETUP_HINT}")

    def _locate(self) -> dict:
        """Paths of the env: python, tritonserver, backend directory, LIBDIR (cached)."""
        if self._env_info is not None and Path(self._env_info["tritonserver"]).exists():
            return self._env_info
        venv = venv_dir()
        py = venv / "bin" / "python"
        if not py.exists():
            raise self._missing(f"no Python environment at {venv}")
        try:
            out = subprocess.run(
                [str(py), "-c",
                 "import importlib.util, os, sys, sysconfig\n"
                 "s = importlib.util.find_spec('pytriton')\n"
                 "print(os.path.dirname(s.origin) if s else '')\n"
                 "print('%d.%d' % sys.version_info[:2])\n"
                 "print(sysconfig.get_config_var('LIBDIR') or '')\n"],
                capture_output=True, text=True, timeout=60, check=True).stdout.splitlines()
        except (OSError, subprocess.SubprocessError) as e:
            raise self._missing(f"{py} does not run: {e}") from None
        if len(out) < 3 or not out[0]:
            raise self._missing(f"nvidia-pytriton is not installed in {venv}")
        tsdir = Path(out[0]) / "tritonserver"
        binary = tsdir / "bin" / "tritonserver"
        if not binary.exists():
            raise self._missing(f"no tritonserver binary at {binary}")
        info = {"venv": str(venv), "python": str(py), "tritonserver": str(binary),
                "pyver": out[1], "libdir": out[2],
                "backends": str(self._backend_dir(tsdir, out[1]))}
        self._env_info = info
        return info

    def _backend_dir(self, tsdir: Path, pyver: str) -> Path:
        """A backends directory whose python backend has the stub for ``pyver``.

        The stub ships in ``python_backend_stubs/<pyver>/``; the backend looks for
        it next to ``libtriton_python.so``. Copy it there (idempotent); when the
        package is read-only, use a copy of the backends directory in the user cache.
        """
        backends = tsdir / "backends"
        stub_src = tsdir / "python_backend_stubs" / pyver / STUB
        if not stub_src.exists():
            raise self._missing(f"nvidia-pytriton ships no python backend stub for Python {pyver}")
        dest = backends / "python" / STUB

        def same(a: Path, b: Path) -> bool:
            try:
                return a.stat().st_size == b.stat().st_size and a.read_bytes() == b.read_bytes()
            except OSError:
                return False

        if same(stub_src, dest):
            return backends
        if _writable(backends / "python"):
            tmp = dest.with_name(f"{STUB}.tmp.{os.getpid()}")
            shutil.copyfile(stub_src, tmp)
            os.chmod(tmp, 0o755)
            os.replace(tmp, dest)
            return backends
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        key = hashlib.sha256(str(tsdir).encode()).hexdigest()[:12]
        copy = base / "mmslib" / "triton-backends" / f"{key}-py{pyver}"
        if not same(stub_src, copy / "python" / STUB):
            tmpdir = copy.with_name(copy.name + f".tmp.{os.getpid()}")
            shutil.rmtree(tmpdir, ignore_errors=True)
            shutil.copytree(backends, tmpdir, symlinks=True)
            shutil.copyfile(stub_src, tmpdir / "python" / STUB)
            os.chmod(tmpdir / "python" / STUB, 0o755)
            shutil.rmtree(copy, ignore_errors=True)
            os.replace(tmpdir, copy)
        return copy

    def check_available(self) -> None:
        self._locate()

    def server_env(self) -> Dict[str, str]:
        info = self._locate()
        env = dict(os.environ)
        env.pop("PYTHONHOME", None)
        env.pop("PYTHONPATH", None)
        env["VIRTUAL_ENV"] = info["venv"]
        env["PATH"] = os.pathsep.join([str(Path(info["venv"]) / "bin"), env.get("PATH", "/usr/bin:/bin")])
        ld = [info["libdir"]] if info["libdir"] else []
        if env.get("LD_LIBRARY_PATH"):
            ld.append(env["LD_LIBRARY_PATH"])
        env["LD_LIBRARY_PATH"] = os.pathsep.join(ld)
        return env

    # -- store -----------------------------------------------------------
    def prepare_store(self, store: Path) -> None:
        super().prepare_store(store)
        sweep_shm()  # regions a killed server left behind

    def write_model(self, store: Path, workload, model_name: str) -> Path:
        if workload.lay_out is not None:  # the workload lays its models out itself (a user's repository)
            return workload.lay_out(self, Path(store), model_name)
        model_dir = Path(store) / model_name
        version = model_dir / "1"
        version.mkdir(parents=True, exist_ok=True)
        workload.write_artifact(version / "artifact", model_name)
        src = MODEL_TEMPLATE.read_text()
        src, n = re.subn(r"^MMSLIB_PATH = None.*$", f"MMSLIB_PATH = {MMSLIB_PATH!r}", src, count=1, flags=re.M)
        if n != 1:  # pragma: no cover - the template lost its marker line
            raise RuntimeError(f"{MODEL_TEMPLATE}: no 'MMSLIB_PATH = None' line")
        (version / "model.py").write_text(src)
        # config.pbtxt last: Triton sees a complete model or none.
        tmp = model_dir / "config.pbtxt.tmp"
        tmp.write_text(config_pbtxt(model_name, workload.inputs, workload.outputs))
        os.replace(tmp, model_dir / "config.pbtxt")
        return model_dir

    # -- server ----------------------------------------------------------
    def command(self, cfg: ServerConfig) -> Tuple[List[str], Optional[Dict[str, str]]]:
        info = self._locate()
        cfg.workdir.mkdir(parents=True, exist_ok=True)
        server = [
            info["tritonserver"],
            f"--model-repository={cfg.store}",
            "--model-control-mode=explicit",
            "--disable-auto-complete-config",
            "--strict-readiness=true",
            f"--backend-directory={info['backends']}",
            "--backend-config=python,thread-pool-size=1",
            "--allow-http=true", "--http-address=127.0.0.1", f"--http-port={cfg.http_port}",
            # A model load holds an HTTP thread: keep one free for health/infer.
            f"--http-thread-count={max(2, int(cfg.threads))}",
            "--allow-grpc=true", "--grpc-address=127.0.0.1", f"--grpc-port={cfg.grpc_port}",
            *(["--allow-metrics=true", "--metrics-address=127.0.0.1", f"--metrics-port={cfg.metrics_port}",
                "--allow-gpu-metrics=false", "--allow-cpu-metrics=false"] if cfg.metrics_port else
              ["--allow-metrics=false", "--allow-gpu-metrics=false", "--allow-cpu-metrics=false"]),
            "--allow-sagemaker=false", "--allow-vertex-ai=false",
            f"--exit-timeout-secs={EXIT_TIMEOUT_S}",
            "--log-verbose=0", "--log-info=" + os.environ.get("MMSLIB_TRITON_LOG_INFO", "false"),
        ]
        server += [f"--load-model={m}" for m in cfg.models]
        env = self.server_env()
        env["MMSLIB_TRITON_GRACE_S"] = str(GRACE_S)
        return ([info["python"], "-I", "-S", "-c", REAPER, LAUNCHER, "mmslib-triton-launcher"] + server,
                env)

    def start_timeout_s(self) -> float:
        return 120.0

    def metrics_url(self, server) -> str:
        return f"http://127.0.0.1:{server.metrics_port}/metrics"


RUNTIME = TritonRuntime()
