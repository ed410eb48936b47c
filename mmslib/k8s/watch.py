"""Watching KServe objects: a thread per resource kind keeps {name: object} current by list + watch.

``backend`` is the :class:`mmslib.backends.kserve.KServeBackend` that owns the watcher: it
supplies the API client (``api``), ``namespace`` and the retry settings (``api_retries``,
``retry_backoff_s``, ``request_timeout_s``).  Every live watcher is stopped at interpreter exit.
"""
from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from typing import Any, Dict, Optional

from ..errors import DeployError
from .client import KubeApiError, api_message, call, status_of
from .names import Res

__all__ = ["Watcher", "stop_watchers"]

log = logging.getLogger(__name__)

_LIVE_WATCHERS: "weakref.WeakSet[Watcher]" = weakref.WeakSet()


@atexit.register
def stop_watchers() -> None:
    """Stop watch threads before the interpreter finalizes (a daemon thread in a socket read can abort it)."""
    for w in list(_LIVE_WATCHERS):
        w.stop(join_s=0.5)


class Watcher:
    """Keeps {name: object} for one resource kind and label selector, by list + watch.

    A dropped or failed watch resumes from the last resourceVersion with
    backoff; 410 Gone relists. After ``max_failures`` failures in a row,
    ``error`` says why and the deploy loop reports it.
    """

    def __init__(self, backend: Any, res: Res, label_selector: str, *,
                 watch_timeout_s: int = 60, max_failures: int = 6):
        self.b = backend
        self.res = res
        self.selector = label_selector
        self.watch_timeout_s = watch_timeout_s
        self.max_failures = max_failures
        self.objects: Dict[str, dict] = {}
        self.cond = threading.Condition()
        self.error = ""
        self.synced = threading.Event()
        self.restarts = 0
        self._stop = False
        self._w = None
        self._thread = threading.Thread(target=self._run, name=f"watch-{res.plural}", daemon=True)

    def start(self) -> "Watcher":
        _LIVE_WATCHERS.add(self)
        self._thread.start()
        if not self.synced.wait(self.b.request_timeout_s * (self.b.api_retries + 2)):
            raise DeployError(f"watch {self.res.plural}: no initial list from the API server")
        if self.error and not self.objects:
            raise DeployError(self.error)
        return self

    def get(self, name: str) -> Optional[dict]:
        with self.cond:
            return self.objects.get(name)

    def snapshot(self) -> Dict[str, dict]:
        with self.cond:
            return dict(self.objects)

    def wait(self, timeout: float) -> None:
        with self.cond:
            self.cond.wait(timeout)

    def _set(self, fn) -> None:
        with self.cond:
            fn()
            self.cond.notify_all()

    def _run(self) -> None:
        from kubernetes import client, watch
        from kubernetes.client.exceptions import ApiException
        co = client.CustomObjectsApi(self.b.api)
        g, v, ns, plural = self.res.group, self.res.version, self.b.namespace, self.res.plural
        rv: Optional[str] = None
        failures = 0
        delay = self.b.retry_backoff_s
        while not self._stop:
            try:
                if rv is None:
                    lst = call(f"list {self.res.kind}s", co.list_namespaced_custom_object, g, v, ns, plural,
                                   label_selector=self.selector, retries=self.b.api_retries,
                                   backoff_s=self.b.retry_backoff_s, request_timeout=self.b.request_timeout_s)
                    items = {o["metadata"]["name"]: o for o in lst.get("items", [])}
                    rv = lst.get("metadata", {}).get("resourceVersion") or "0"

                    def replace():
                        self.objects = items
                    self._set(replace)
                    self.synced.set()
                w = watch.Watch()
                self._w = w
                for ev in w.stream(co.list_namespaced_custom_object, g, v, ns, plural,
                                   label_selector=self.selector, resource_version=rv,
                                   timeout_seconds=self.watch_timeout_s, allow_watch_bookmarks=True,
                                   _request_timeout=(self.b.request_timeout_s, self.watch_timeout_s + 15)):
                    if self._stop:
                        break
                    obj = ev.get("raw_object") or ev.get("object")
                    if not isinstance(obj, dict):
                        continue
                    meta = obj.get("metadata") or {}
                    rv = meta.get("resourceVersion") or rv
                    if ev["type"] == "BOOKMARK":
                        continue
                    name = meta.get("name")

                    def apply(typ=ev["type"], name=name, obj=obj):
                        if typ == "DELETED":
                            self.objects.pop(name, None)
                        else:
                            self.objects[name] = obj
                    self._set(apply)
                    failures, delay = 0, self.b.retry_backoff_s
                    if self.error:
                        self._set(lambda: setattr(self, "error", ""))
            except ApiException as e:
                if self._stop:
                    break
                if status_of(e) == 410:
                    rv = None
                    continue
                failures += 1
                last = f"HTTP {status_of(e)}: {api_message(e)}"
            except KubeApiError as e:   # the (re)list failed after its own retries
                if self._stop:
                    break
                if not self.synced.is_set():
                    msg = f"api: {e}"
                    self._set(lambda: setattr(self, "error", msg))
                    self.synced.set()
                    return
                failures += 1
                last = str(e)
            except Exception as e:  # dropped connection (urllib3 ProtocolError), timeouts, ...
                if self._stop:
                    break
                failures += 1
                last = f"{type(e).__name__}: {e}"
            else:
                continue
            self.restarts += 1
            log.info("watch %s: %s (failure %d), resuming", plural, last, failures)
            if failures >= self.max_failures:
                def fail(msg=f"api: watching {self.res.kind}s failed {failures} times in a row, last: {last}"):
                    self.error = msg
                self._set(fail)
                self.synced.set()
                failures = 0
            time.sleep(delay)
            delay = min(delay * 2, 5.0)

    def stop(self, join_s: float = 3.0) -> None:
        self._stop = True
        _LIVE_WATCHERS.discard(self)
        w = self._w
        if w is not None:
            try:
                w.stop()
            except Exception:
                pass
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=join_s)
