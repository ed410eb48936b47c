"""A run's output directory: tidy records on disk, written atomically.

Layout of ``output_dir``::

    meta.json          run id, experiment, params (and their key), versions, machine, git sha
    <table>.parquet    tidy records (steps, requests, levels, samples, ...)
    summary.json       what the notebook glues

Every file is written to a temporary name and renamed over the old one, so a
crash mid-write leaves the previous version intact. Each table carries the
run id and the params key in its parquet metadata. A directory holding records
made with different parameters is refused.

``meta.json`` also names the writing process (``writer``: host, pid, start time).
A run left ``"running"`` by a process that no longer exists (SIGKILL, or SIGTERM
before any handler was installed) reads as ``"interrupted"``; a directory that a
live process is still writing is refused rather than shared by two writers.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, Optional

import pandas as pd
import psutil
import pyarrow as pa
import pyarrow.parquet as pq

from .errors import DiskFullError, MmsError
from .metadata import now, run_metadata

_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def _this_writer() -> Dict[str, Any]:
    """Who writes a run directory: host, pid and the process's start time (pids are reused)."""
    import socket
    return {"host": socket.gethostname(), "pid": os.getpid(),
            "started": round(psutil.Process().create_time(), 2)}


def writer_alive(meta: Dict[str, Any]) -> Optional[bool]:
    """Is the process that wrote ``meta`` (a ``"running"`` run) still alive? True or
    False on the host that wrote it; None where that cannot be told (another host,
    or a run written before writers were recorded)."""
    import socket
    w = meta.get("writer") or {}
    if not w.get("pid") or w.get("host") != socket.gethostname():
        return None
    try:
        proc = psutil.Process(int(w["pid"]))
        return (abs(proc.create_time() - float(w.get("started", 0))) < 1.0
                and proc.status() != psutil.STATUS_ZOMBIE)
    except (psutil.Error, ValueError):
        return False


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file, fsync, rename over ``path``, fsync the
    folder. Out of space (or over ``ulimit -f``): one :class:`DiskFullError`
    naming the path and the bytes needed; the previous file is intact. While
    that error is already on its way out (clean-up writes in ``finally``
    blocks), further writes are skipped rather than raise it again."""
    path = Path(path)
    in_flight = sys.exc_info()[1]
    try:
        _atomic_write(path, data)
    except OSError as e:
        if e.errno not in _FULL:
            raise
        if isinstance(in_flight, DiskFullError):
            return
        raise DiskFullError(_full_message(path, len(data), e)) from None


def _full_message(path: Path, need: int, e: OSError) -> str:
    if e.errno == errno.EFBIG:
        import resource
        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        why = f"this process's file size limit (ulimit -f: {limit} bytes) is exceeded"
    else:
        try:
            free = f"{shutil.disk_usage(path.parent).free:,} bytes free"
        except OSError:
            free = "free space unknown"
        why = f"no space left on its filesystem ({free})"
    return (f"cannot write {str(path)!r}: it needs {need:,} bytes and {why}. Free some space or choose "
            f"another output_dir; files written before are intact (resume=True measures the rest)")


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)  # the rename itself survives a power loss
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _fsync_dir(d: Path) -> None:
    try:
        fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some filesystems cannot sync a directory
        pass
    finally:
        os.close(fd)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, json.dumps(obj, indent=1, default=_default, sort_keys=True).encode())


def _default(o):
    if hasattr(o, "item"):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, (set, tuple)):
        return list(o)
    return str(o)


#: Version of the run-directory layout written by this mmslib (meta.json's "format_version").
#: 1: directories written before the field existed (read as version 1);
#: 2: "format_version" in meta.json, summary.csv/summary.json beside the records.
FORMAT_VERSION = 2


class ParamsMismatch(MmsError):
    pass


class RunDirInUse(MmsError):
    """The output directory is being written by another live process."""


class RunDir:
    def __init__(self, path, experiment: str, params: Dict[str, Any], params_key: str,
                 resume: bool = False):
        self.path = Path(path)
        self.experiment = experiment
        self.params = params
        self.key = params_key
        self.path.mkdir(parents=True, exist_ok=True)
        meta_path = self.path / "meta.json"
        old = None
        if meta_path.exists():
            try:
                old = json.loads(meta_path.read_text())
            except (OSError, ValueError):
                old = None
        if old is not None and old.get("status") == "running" and writer_alive(old):
            w = old["writer"]
            if w["pid"] != os.getpid():
                raise RunDirInUse(
                    f"output_dir {str(self.path)!r} is being written by another run (pid {w['pid']} on "
                    f"{w['host']}, status running); wait for it, stop it, or use another output_dir")
        if old is not None:
            if old.get("experiment") != experiment or old.get("params_key") != params_key:
                diff = _param_diff(old.get("params", {}), params)
                raise ParamsMismatch(
                    f"output_dir {str(self.path)!r} holds records of another {old.get('experiment')} run "
                    f"with different parameters ({diff}); use a new output_dir, or the same parameters "
                    f"with resume=True")
            if not resume:
                # Same params, fresh run: start over, keeping nothing stale: records in any
                # subfolder (requests/*.parquet), result files (summary.json, deploy.json)
                # and temporary files of a writer killed mid-write.
                for f in [*self.path.rglob("*.parquet"), *self.path.rglob(".*.tmp"),
                          *(f for f in self.path.glob("*.json") if f.name != "meta.json")]:
                    f.unlink(missing_ok=True)
                old = None
        if old is not None:
            self.meta = old
            self.meta["params"] = params   # the same measurement; how it is read (e.g. cluster_*) may be newer
            self.meta.setdefault("resumed", []).append(now())
        else:
            self.meta = run_metadata(experiment, params, uuid.uuid4().hex[:12])
            self.meta["params_key"] = params_key
        self.meta["format_version"] = FORMAT_VERSION
        self.meta["status"] = "running"
        self.meta["writer"] = _this_writer()
        self.write_meta()

    @property
    def run_id(self) -> str:
        return self.meta["run_id"]

    def write_meta(self) -> None:
        atomic_write_json(self.path / "meta.json", self.meta)

    def record_environment(self, env: Dict[str, Any]) -> None:
        """Where the servers ran beyond this machine (a backend's ``environment()``, e.g. the
        cluster's version and nodes), as ``meta["environment"]``; nothing when it is empty."""
        if env and self.meta.get("environment") != env:
            self.meta["environment"] = env
            self.write_meta()

    @contextlib.contextmanager
    def session(self, workdir: Optional[os.PathLike] = None, prefix: str = "mmslib-") -> Iterator[Path]:
        """The life of one run over this directory, the same for every experiment: yields a working
        folder (``workdir``, or a temporary one removed afterwards, whatever happens) and ends the
        run in ``meta.json`` as ``complete``, ``interrupted`` (Ctrl-C; SIGTERM/SIGHUP raise it too,
        :class:`mmslib.procs.Supervisor`) or ``failed`` (any other error, which goes on up)."""
        tmp = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix=prefix))
        status = "failed"
        try:
            yield tmp
            status = "complete"
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        finally:
            self.finish(status)
            if workdir is None:
                shutil.rmtree(tmp, ignore_errors=True)

    def finish(self, status: str = "complete", **extra) -> None:
        self.meta["status"] = status
        self.meta["finished"] = now()
        self.meta.update(extra)
        self.write_meta()

    def save(self, name: str, df: pd.DataFrame) -> Path:
        table = pa.Table.from_pandas(df.reset_index(drop=True), preserve_index=False)
        md = dict(table.schema.metadata or {})
        md[b"mmslib"] = json.dumps({"run_id": self.run_id, "params_key": self.key,
                                    "experiment": self.experiment}).encode()
        table = table.replace_schema_metadata(md)
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        path = self.path / f"{name}.parquet"
        atomic_write_bytes(path, sink.getvalue().to_pybytes())
        return path

    def load(self, name: str) -> Optional[pd.DataFrame]:
        path = self.path / f"{name}.parquet"
        if not path.exists():
            return None
        t = pq.read_table(path)
        md = json.loads((t.schema.metadata or {}).get(b"mmslib", b"{}"))
        if md and md.get("params_key") != self.key:
            raise ParamsMismatch(f"{path} was made with other parameters (key {md.get('params_key')} != {self.key})")
        return t.to_pandas()

    def save_json(self, name: str, obj: Any) -> Path:
        path = self.path / f"{name}.json"
        atomic_write_json(path, obj)
        return path

    def load_json(self, name: str) -> Optional[Any]:
        path = self.path / f"{name}.json"
        return json.loads(path.read_text()) if path.exists() else None


def _param_diff(a: Dict[str, Any], b: Dict[str, Any]) -> str:
    keys = sorted(k for k in set(a) | set(b) if k not in ("output_dir", "resume", "fail_on_slo") and a.get(k) != b.get(k))
    return ", ".join(f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in keys[:5]) or "experiment differs"


def read_records(path) -> pd.DataFrame:
    """Read a saved table back, for recomputing any figure later."""
    return pq.read_table(path).to_pandas()


# --------------------------------------------------------------------------
# Reading a finished (or interrupted) run: the one way every consumer opens a run
# --------------------------------------------------------------------------

class RunFormatError(MmsError):
    """A directory that is not a run directory this mmslib can read."""


#: Grouping keys of the per-level summaries, per experiment, when the summary file does not say.
DEFAULT_LEVEL_KEYS = {"performance": ("mode", "qps", "repeat"), "stress": ("mode",)}
DEFAULT_LEVEL_KEYS["traffic"] = ("models", "mode", "rate", "cv", "repeat", "search")  # mmslib.traffic
#: Columns of the records that make a level, in order, for an experiment not listed above.
LEVEL_COLUMNS = ("models", "hosts", "runtime", "mode", "qps", "rate", "cv", "density", "alpha", "capacity",
                 "cache_size", "search", "repeat")
#: The value the summaries are computed over, per experiment, when the summary file does not say.
DEFAULT_VALUE = {"performance": "latency_ms", "stress": "seconds"}
DEFAULT_VALUE["traffic"] = "latency_sched_ms"  # latency from the scheduled time (mmslib.traffic)


class Run:
    """One run directory, read-only: ``meta``, ``params``, ``records``, ``summary``.

    ``Run.load(path)`` is the way to open a run (the report, exports, comparisons and the
    command line all use it). Directories written before ``format_version`` existed are read
    as version 1; a newer version than :data:`FORMAT_VERSION` is refused with a message
    naming both versions. Records are the per-request rows (``requests/*.parquet``), or, for
    experiments without requests, the experiment's step rows (``steps.parquet``).
    """

    def __init__(self, path: Path, meta: Dict[str, Any]):
        self.path = Path(path)
        self.meta = meta
        self._records: Optional[pd.DataFrame] = None
        self._summary_doc: Optional[Dict[str, Any]] = None

    @classmethod
    def load(cls, path) -> "Run":
        p = Path(path)
        if p.is_file() and p.name == "meta.json":
            p = p.parent
        mp = p / "meta.json"
        if not mp.is_file():
            raise RunFormatError(f"{p} is not a run directory (no meta.json)")
        try:
            meta = json.loads(mp.read_text())
        except (OSError, ValueError) as e:
            raise RunFormatError(f"{mp} is not readable JSON ({e})") from None
        if not isinstance(meta, dict) or "experiment" not in meta:
            raise RunFormatError(f"{mp} is not an mmslib run's meta.json (no 'experiment')")
        v = meta.get("format_version", 1)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise RunFormatError(f"{p}: format_version {v!r} is not a version number")
        if v > FORMAT_VERSION:
            raise RunFormatError(
                f"{p} was written in run-directory format_version {v}; this mmslib reads versions 1 to "
                f"{FORMAT_VERSION}: upgrade mmslib to read it")
        meta = dict(meta)
        meta["format_version"] = v
        return cls(p, meta)

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, {self.experiment}, run_id={self.run_id})"

    # -- metadata
    @property
    def experiment(self) -> str:
        return str(self.meta.get("experiment"))

    @property
    def run_id(self) -> str:
        return str(self.meta.get("run_id"))

    @property
    def format_version(self) -> int:
        return int(self.meta["format_version"])

    @property
    def params(self) -> Dict[str, Any]:
        return dict(self.meta.get("params") or {})

    @property
    def status(self) -> str:
        """The run's status; a ``"running"`` run whose writer is gone reads ``"interrupted"``."""
        st = str(self.meta.get("status") or "unknown")
        if st == "running" and writer_alive(self.meta) is False:
            return "interrupted"
        return st

    @property
    def machine(self) -> Dict[str, Any]:
        return dict(self.meta.get("machine") or {})

    @property
    def versions(self) -> Dict[str, Any]:
        return dict(self.meta.get("versions") or {})

    # -- tables
    def table_names(self):
        """Names of the saved tables: ``steps``, ``levels``, ``requests/<level>``, ..."""
        return sorted(f.relative_to(self.path).with_suffix("").as_posix()
                      for f in self.path.rglob("*.parquet") if not f.name.startswith("."))

    def table(self, name: str) -> Optional[pd.DataFrame]:
        f = self.path / f"{name}.parquet"
        return read_records(f) if f.is_file() else None

    def json(self, name: str) -> Optional[Any]:
        f = self.path / f"{name}.json"
        return json.loads(f.read_text()) if f.is_file() else None

    @property
    def records(self) -> pd.DataFrame:
        """The per-request rows (``requests/*.parquet``, one file per level, concatenated), or the
        step rows (``steps.parquet``) for an experiment without requests; empty if neither exists."""
        if self._records is None:
            parts = [read_records(f) for f in sorted((self.path / "requests").glob("*.parquet"))]
            parts = [x for x in parts if len(x)]
            if parts:
                self._records = pd.concat(parts, ignore_index=True)
            elif (self.path / "records.parquet").is_file():
                self._records = read_records(self.path / "records.parquet")
            elif (self.path / "steps.parquet").is_file():
                self._records = read_records(self.path / "steps.parquet")
            else:
                self._records = pd.DataFrame()
        return self._records

    # -- summaries (summary.json / summary.csv, written by mmslib.export.write_summary)
    @property
    def summary_doc(self) -> Dict[str, Any]:
        if self._summary_doc is None:
            doc = self.json("summary")
            self._summary_doc = doc if isinstance(doc, dict) else {}
        return self._summary_doc

    @property
    def level_keys(self):
        keys = self.summary_doc.get("by")
        if keys:
            return tuple(keys)
        if self.experiment in DEFAULT_LEVEL_KEYS:
            return DEFAULT_LEVEL_KEYS[self.experiment]
        recs = self.records
        return tuple(k for k in LEVEL_COLUMNS if k in recs.columns) or ("mode",)

    @property
    def value_column(self) -> str:
        """What the summaries are computed over: the summary file's choice, the experiment's default,
        else latency from the scheduled time when the records carry it (no coordinated omission),
        else ``latency_ms``."""
        v = self.summary_doc.get("value") or DEFAULT_VALUE.get(self.experiment)
        if v:
            return v
        return "latency_sched_ms" if "latency_sched_ms" in self.records.columns else "latency_ms"

    @property
    def slo_ms(self) -> Optional[float]:
        """The run's latency SLO (ms): the summary's, else the parameters' ``slo_ms``/``slo_p99_ms``."""
        v = self.summary_doc.get("slo_ms")
        if v is None:
            p = self.params
            v = p.get("slo_ms", p.get("slo_p99_ms"))
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None

    @property
    def summary(self) -> pd.DataFrame:
        """Per level/mode rows: the saved summary, or (older runs, no summary file) recomputed
        from the records with the run's own SLO and the default percentiles."""
        rows = self.summary_doc.get("rows")
        if isinstance(rows, list) and rows:
            return pd.DataFrame(rows, columns=self.summary_doc.get("columns"))
        return self.summarize()

    def summarize(self, percentiles=None, slo_ms: Any = "run", slo_target: Optional[float] = None) -> pd.DataFrame:
        """Recompute the per-level summary from the records (percentiles and SLO as given;
        ``slo_ms="run"``: the run's own SLO)."""
        from . import summary as summ
        return summ.summarize_run(self, percentiles=percentiles, slo_ms=slo_ms, slo_target=slo_target)


def find_runs(root, recursive: bool = True):
    """Every run directory under ``root`` (a directory holding ``meta.json``), sorted by path;
    ``root`` itself counts when it is one."""
    root = Path(root)
    if not root.is_dir():
        return []
    metas = root.rglob("meta.json") if recursive else root.glob("*/meta.json")
    found = {m.parent for m in metas if ".ipynb_checkpoints" not in m.parts}
    if (root / "meta.json").is_file():
        found.add(root)
    return sorted(found)
