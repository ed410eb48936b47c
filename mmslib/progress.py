"""Progress bars for long phases, visible in a notebook and in papermill's log.

A plain text bar on stderr shows in both places (a widget bar would not reach
papermill's ``--log-output``); ``None`` when disabled.
"""
from __future__ import annotations

import sys


def bar(total: int, desc: str, unit: str, enabled: bool = True):
    if not enabled:
        return None
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit=unit, mininterval=2.0, file=sys.stderr, dynamic_ncols=False,
                ncols=100)
