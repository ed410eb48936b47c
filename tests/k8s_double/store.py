"""The double's object store: objects by resource type, namespace and name,
one resourceVersion counter, and an event log that watches replay and follow.

Stored objects are never mutated in place: an update stores a new dict, so
the event log can keep references.
"""
from __future__ import annotations

import bisect
import copy
import datetime as _dt
import threading
import uuid
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class ResourceType:
    group: str                   # "" for the core API
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    singular: str = ""
    short_names: Tuple[str, ...] = ()
    list_kind: str = ""
    validator: object = None     # schema.ObjectValidator (the double's own) for custom resources
    status_subresource: bool = False
    virtual: bool = False        # computed on read (PodMetrics)
    verbs: Tuple[str, ...] = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
    field_labels: Tuple[str, ...] = ("metadata.name", "metadata.namespace")
    custom: bool = False         # defined by a CRD
    crd: Optional[dict] = None

    @property
    def key(self) -> Tuple[str, str]:
        return (self.group, self.plural)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def discovery(self) -> dict:
        d = {"name": self.plural, "singularName": self.singular or self.kind.lower(), "namespaced": self.namespaced,
             "kind": self.kind, "verbs": list(self.verbs)}
        if self.short_names:
            d["shortNames"] = list(self.short_names)
        return d


@dataclass
class Event:
    rv: int
    key: Tuple[str, str]
    namespace: str
    type: str           # ADDED | MODIFIED | DELETED
    obj: dict


class Store:
    def __init__(self, log_limit: int = 200_000):
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.rv = 1
        self.objects: Dict[Tuple[str, str], Dict[Tuple[str, str], dict]] = {}
        self.log: List[Event] = []
        self.log_rvs: List[int] = []
        self.log_limit = log_limit
        self.oldest_rv = 1          # events after this rv are still in the log
        self.listeners: List[Callable[[str, ResourceType, dict], None]] = []
        self.closing = False

    # -- reads --------------------------------------------------------------
    def table(self, rt: ResourceType) -> Dict[Tuple[str, str], dict]:
        return self.objects.setdefault(rt.key, {})

    def get(self, rt: ResourceType, ns: str, name: str) -> Optional[dict]:
        with self.lock:
            return self.table(rt).get((ns if rt.namespaced else "", name))

    def items(self, rt: ResourceType, ns: Optional[str] = None) -> List[dict]:
        with self.lock:
            t = self.table(rt)
            keys = sorted(t)
            return [t[k] for k in keys if ns is None or k[0] == ns]

    # -- writes -------------------------------------------------------------
    def _next_rv(self) -> int:
        self.rv += 1
        return self.rv

    def _emit(self, typ: str, rt: ResourceType, obj: dict, rv: int) -> None:
        ns = obj["metadata"].get("namespace", "")
        self.log.append(Event(rv, rt.key, ns, typ, obj))
        self.log_rvs.append(rv)
        if len(self.log) > self.log_limit:
            cut = len(self.log) // 2
            self.oldest_rv = self.log_rvs[cut - 1]
            del self.log[:cut]
            del self.log_rvs[:cut]
        for fn in list(self.listeners):
            fn(typ, rt, obj)
        self.cond.notify_all()

    def create(self, rt: ResourceType, obj: dict) -> dict:
        """Store a new object (caller checked it does not exist); fills server-set metadata."""
        with self.lock:
            obj = copy.deepcopy(obj)
            meta = obj.setdefault("metadata", {})
            ns = meta.get("namespace", "") if rt.namespaced else ""
            if not rt.namespaced:
                meta.pop("namespace", None)
            rv = self._next_rv()
            meta["uid"] = str(uuid.uuid4())
            meta["resourceVersion"] = str(rv)
            meta["creationTimestamp"] = now_iso()
            meta["generation"] = 1
            obj.setdefault("apiVersion", rt.api_version)
            obj.setdefault("kind", rt.kind)
            self.table(rt)[(ns, meta["name"])] = obj
            self._emit("ADDED", rt, obj, rv)
            return obj

    def replace(self, rt: ResourceType, new: dict, bump_generation: bool = False) -> dict:
        """Store a new version of an existing object (a fresh dict the caller built)."""
        with self.lock:
            meta = new["metadata"]
            ns = meta.get("namespace", "") if rt.namespaced else ""
            rv = self._next_rv()
            meta["resourceVersion"] = str(rv)
            if bump_generation:
                meta["generation"] = int(meta.get("generation", 1)) + 1
            self.table(rt)[(ns, meta["name"])] = new
            self._emit("MODIFIED", rt, new, rv)
            return new

    def update(self, rt: ResourceType, ns: str, name: str, fn: Callable[[dict], None],
               bump_generation: bool = False) -> Optional[dict]:
        """Copy, mutate with ``fn``, store if changed. Returns the stored object (or None if absent)."""
        with self.lock:
            old = self.get(rt, ns, name)
            if old is None:
                return None
            new = copy.deepcopy(old)
            fn(new)
            if new == old:
                return old
            return self.replace(rt, new, bump_generation)

    def remove(self, rt: ResourceType, ns: str, name: str) -> Optional[dict]:
        with self.lock:
            t = self.table(rt)
            old = t.pop((ns if rt.namespaced else "", name), None)
            if old is None:
                return None
            final = copy.deepcopy(old)
            rv = self._next_rv()
            final["metadata"]["resourceVersion"] = str(rv)
            self._emit("DELETED", rt, final, rv)
            return final

    # -- watch support ------------------------------------------------------
    def events_after(self, rv: int, key: Tuple[str, str]) -> List[Event]:
        with self.lock:
            i = bisect.bisect_right(self.log_rvs, rv)
            return [e for e in self.log[i:] if e.key == key]

    def close(self) -> None:
        with self.lock:
            self.closing = True
            self.cond.notify_all()
