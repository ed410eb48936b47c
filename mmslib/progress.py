"""Progress bars for long phases, in the notebook and in papermill's log.

Outside a kernel: a text bar on stderr. In a Jupyter kernel: one display in
the cell, updated in place, so the saved notebook and its HTML report keep a
single final line rather than hundreds; and the text bar goes to the kernel
process's original stderr (which ipykernel keeps a copy of), i.e. the console
papermill runs in, without being captured into the notebook.
"""
from __future__ import annotations

import os
import sys
import time


def _kernel_console():
    """(in a kernel?, a file on the kernel's original stderr or None)."""
    try:
        from IPython import get_ipython
        ip = get_ipython()
        if ip is None or getattr(ip, "kernel", None) is None:
            return False, None
    except ImportError:  # pragma: no cover
        return False, None
    fd = getattr(sys.stderr, "_original_stdstream_copy", None)
    if fd is None:
        return True, None
    try:
        return True, os.fdopen(os.dup(fd), "w", buffering=1)
    except OSError:  # pragma: no cover
        return True, None


class Progress:
    def __init__(self, total: int, desc: str, unit: str, interval_s: float = 2.0):
        from tqdm import tqdm
        self.total, self.desc, self.unit, self.interval_s = total, desc, unit, interval_s
        self.n, self.t0, self._last = 0, time.monotonic(), 0.0
        kernel, console = _kernel_console()
        self._console = console
        stream = console if kernel else sys.stderr
        self._tqdm = tqdm(total=total, desc=desc, unit=unit, mininterval=interval_s, file=stream, ncols=100,
                          disable=stream is None)
        self._handle = None
        if kernel:
            from IPython.display import display
            self._handle = display(self._text(), display_id=True)

    def _text(self):
        from IPython.display import Pretty
        dt = time.monotonic() - self.t0
        rate = self.n / dt if dt > 0 else 0.0
        return Pretty(f"{self.desc}: {self.n:,} of {self.total:,} {self.unit}s after {dt:,.1f} s "
                      f"({rate:,.1f} {self.unit}s/s)")

    def update(self, k: int = 1) -> None:
        self.n += k
        self._tqdm.update(k)
        now = time.monotonic()
        if self._handle is not None and now - self._last >= self.interval_s:
            self._last = now
            self._handle.update(self._text())

    def close(self) -> None:
        self._tqdm.close()
        if self._handle is not None:
            self._handle.update(self._text())
        if self._console is not None:
            self._console.close()


def bar(total: int, desc: str, unit: str, enabled: bool = True):
    return Progress(total, desc, unit) if enabled else None
