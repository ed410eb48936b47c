"""The ConfigMap / etcd model of multi-model serving in KServe 0.5.

Each TrainedModel added to a host rewrites the host's model ConfigMap
(``models.json``) as a new etcd revision; how many bytes one entry costs,
how many entries a ConfigMap holds (1 MiB), and how much etcd retains after N
adds with or without compaction (so when the etcd quota fills). Used by the
capacity planner (:mod:`mmslib.planner`, which re-exports these names) and the
kserve backend.
"""
from __future__ import annotations

import json
from typing import Iterable

import pandas as pd

from .errors import ParamError
from .quantity import MiB, memory_exact as _memory_exact
from .specs import pos_int

CONFIGMAP_KEY = "models.json"  # kfserving constants.ModelConfigFileName



def configmap_entry_bytes(
    model_name: str = "simple-string-00000",
    storage_uri: str = "gs://kfserving-examples/models/triton/simple_string",
    framework: str = "tensorflow",
    memory: str | int = "1Mi",
) -> int:
    """Bytes one model adds to a host's ``models.json`` in KServe 0.5.

    The controller stores a compact ``json.Marshal`` of
    ``[{"modelName": ..., "modelSpec": {"storageUri": ..., "framework": ..., "memory": ...}}, ...]``;
    one entry costs its JSON plus one ``,`` separator.  The default name and URI
    are illustrative (the seed does not give them): 157 bytes.
    """
    entry = {"modelName": model_name,
             "modelSpec": {"storageUri": storage_uri, "framework": framework, "memory": str(memory)}}
    return len(json.dumps(entry, separators=(",", ":")).encode()) + 1


def configmap_entries_per_host(entry_bytes: int, limit_bytes: int = 1 << 20,
                               overhead_bytes: int = len(CONFIGMAP_KEY) + 1) -> int:
    """TrainedModels one host's model-config ConfigMap holds: its data (key ``models.json`` plus
    ``[e1,e2,...]``, i.e. ``overhead_bytes`` + the entries with their separators) must stay within
    Kubernetes' ConfigMap limit (1 MiB); past it the update fails while the TrainedModel stays Ready."""
    pos_int(entry_bytes, "entry_bytes")
    return max(0, int(limit_bytes) - int(overhead_bytes)) // int(entry_bytes)


DEFAULT_ENTRY_BYTES = configmap_entry_bytes()
"""Bytes per model entry with the default template (157)."""
DEFAULT_REVISION_OVERHEAD_BYTES = 512 + len(CONFIGMAP_KEY) + 1
"""Per-revision etcd overhead default: 512 B object/etcd overhead + 12 B ConfigMap data overhead (524)."""


def _check_etcd_args(hosts: int, entry_bytes: int, revision_overhead_bytes: int, compaction: bool | int) -> None:
    pos_int(hosts, "hosts")
    pos_int(entry_bytes, "entry_bytes")
    pos_int(revision_overhead_bytes, "revision_overhead_bytes", allow_zero=True)
    if not (isinstance(compaction, bool) or (isinstance(compaction, int) and compaction >= 1)):
        raise ParamError("compaction", compaction, "false, true or an integer >= 1")


def _host_history(n: int, e: int, o: int) -> int:
    # f(n) = sum_{k=1..n} (k e + o) = e n (n+1) / 2 + o n
    return e * n * (n + 1) // 2 + o * n


def etcd_retained_bytes(
    models: int,
    *,
    hosts: int = 1,
    entry_bytes: int = DEFAULT_ENTRY_BYTES,
    revision_overhead_bytes: int = DEFAULT_REVISION_OVERHEAD_BYTES,
    compaction: bool | int = False,
    base_bytes: int = 0,
) -> int:
    """Bytes etcd holds for the model ConfigMaps after ``models`` TrainedModel adds.

    Models are added one at a time, round-robin over ``hosts`` host ISVCs; each
    add rewrites that host's ConfigMap as a new etcd revision.  Revision k of a
    host holds k entries and costs ``s(k) = e*k + o`` bytes (``e`` =
    entry_bytes, ``o`` = revision_overhead_bytes).  With ``q = N // H``,
    ``r = N % H`` and ``f(n) = sum_{k=1..n} s(k) = e*n*(n+1)/2 + o*n``:

    * compaction=False (never; KServe 0.5 as the seed describes it): every
      revision stays, ``B(N) = base + r*f(q+1) + (H-r)*f(q)`` - quadratic,
      ``~ e*N**2/(2H)``.
    * compaction=True (after every write): only the latest revision per host,
      ``B(N) = base + e*N + o*min(N, H)`` - linear.
    * compaction=W (int): superseded revisions are dropped every W writes;
      ``B(N) = latest + sum of revisions superseded by writes c+1..N`` with
      ``c = W*floor(N/W)`` the last compaction (write j > H supersedes the
      revision written at j-H); a compaction at write c (inclusive) drops
      every revision superseded so far.

    Returns bytes (int).  It is a *retained* size, the peak the etcd quota
    sees; for int W it is not monotone in N (it drops at each compaction).
    """
    _check_etcd_args(hosts, entry_bytes, revision_overhead_bytes, compaction)
    pos_int(models, "models", allow_zero=True)
    e, o, H, N = entry_bytes, revision_overhead_bytes, hosts, models
    q, r = divmod(N, H)
    if compaction is False:
        return base_bytes + r * _host_history(q + 1, e, o) + (H - r) * _host_history(q, e, o)
    latest = e * N + o * min(N, H)
    if compaction is True:
        return base_bytes + latest
    c = (N // compaction) * compaction
    # revision written at write i (1-based) holds (i-1)//H + 1 entries.
    superseded = sum(e * ((j - H - 1) // H + 1) + o for j in range(max(c, H) + 1, N + 1))
    return base_bytes + latest + superseded


def etcd_fill_models(
    etcd_bytes: int | str = "65Mi",
    *,
    hosts: int = 1,
    entry_bytes: int = DEFAULT_ENTRY_BYTES,
    revision_overhead_bytes: int = DEFAULT_REVISION_OVERHEAD_BYTES,
    compaction: bool | int = False,
    base_bytes: int = 0,
    max_models: int = 50_000_000,
) -> int:
    """Largest N such that etcd never held more than ``etcd_bytes`` while adding N models.

    Uses :func:`etcd_retained_bytes` (see its docstring for the formulas).
    Without compaction this solves ``base + r*f(q+1) + (H-r)*f(q) <= etcd``,
    roughly ``N ~ sqrt(2 * H * (etcd - base) / e)``; with compaction after
    every write, ``N = floor((etcd - base - o*H) / e)`` (for N >= H).
    Example (hand calculation): etcd 65 MiB = 68,157,440 B, H=1, e=100, o=0,
    no compaction: 100*n*(n+1)/2 <= 68,157,440 -> n = 1167.
    Returns ``max_models`` if it never fills below that.
    """
    _check_etcd_args(hosts, entry_bytes, revision_overhead_bytes, compaction)
    cap = _memory_exact(etcd_bytes, "etcd_bytes")
    kw = dict(hosts=hosts, entry_bytes=entry_bytes, revision_overhead_bytes=revision_overhead_bytes,
              compaction=compaction, base_bytes=base_bytes)
    if base_bytes > cap:
        return 0
    if isinstance(compaction, bool):  # monotone in N: binary search
        lo, hi = 0, 1
        while hi < max_models and etcd_retained_bytes(hi, **kw) <= cap:
            lo, hi = hi, hi * 2
        hi = min(hi, max_models)
        if etcd_retained_bytes(hi, **kw) <= cap:
            return hi
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if etcd_retained_bytes(mid, **kw) <= cap:
                lo = mid
            else:
                hi = mid
        return lo
    # periodic compaction: walk write by write (retained size is not monotone).
    e, o, H, W = entry_bytes, revision_overhead_bytes, hosts, compaction
    superseded = 0
    for n in range(1, max_models + 1):
        if n > H:
            superseded += e * ((n - H - 1) // H + 1) + o
        if n % W == 0:  # compaction at write n (c = W*floor(n/W)), as in etcd_retained_bytes
            superseded = 0
        latest = e * n + o * min(n, H)
        if base_bytes + latest + superseded > cap:
            return n - 1
    return max_models


def etcd_growth_table(
    models: Iterable[int],
    *,
    hosts: int = 1,
    entry_bytes: int = DEFAULT_ENTRY_BYTES,
    revision_overhead_bytes: int = DEFAULT_REVISION_OVERHEAD_BYTES,
    compactions: Iterable[bool | int] = (False, True),
    base_bytes: int = 0,
) -> pd.DataFrame:
    """Tidy etcd growth curve: columns models, compaction, retained_bytes, retained_MiB."""
    rows = []
    for comp in compactions:
        for n in models:
            b = etcd_retained_bytes(n, hosts=hosts, entry_bytes=entry_bytes,
                                    revision_overhead_bytes=revision_overhead_bytes,
                                    compaction=comp, base_bytes=base_bytes)
            rows.append({"models": n, "compaction": str(comp), "retained_bytes": b, "retained_MiB": b / MiB})
    return pd.DataFrame(rows, columns=["models", "compaction", "retained_bytes", "retained_MiB"])
