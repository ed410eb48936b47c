"""A run's output directory: tidy records on disk, written atomically.

Layout of ``output_dir``::

    meta.json          run id, experiment, params (and their key), versions, machine, git sha
    <table>.parquet    tidy records (steps, requests, levels, samples, ...)
    summary.json       what the notebook glues

Every file is written to a temporary name and renamed over the old one, so a
crash mid-write leaves the previous version intact. Each table carries the
run id and the params key in its parquet metadata. A directory holding records
made with different parameters is refused.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any, Dict, Optional

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .errors import DiskFullError, MmsError
from .metadata import now, run_metadata


_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


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


class ParamsMismatch(MmsError):
    pass


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
            self.meta.setdefault("resumed", []).append(now())
        else:
            self.meta = run_metadata(experiment, params, uuid.uuid4().hex[:12])
            self.meta["params_key"] = params_key
        self.meta["status"] = "running"
        self.write_meta()

    @property
    def run_id(self) -> str:
        return self.meta["run_id"]

    def write_meta(self) -> None:
        atomic_write_json(self.path / "meta.json", self.meta)

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
    keys = sorted(k for k in set(a) | set(b) if k not in ("output_dir", "resume") and a.get(k) != b.get(k))
    return ", ".join(f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in keys[:5]) or "experiment differs"


def read_records(path) -> pd.DataFrame:
    """Read a saved table back, for recomputing any figure later."""
    return pq.read_table(path).to_pandas()
