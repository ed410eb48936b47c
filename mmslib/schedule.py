"""Run order of the experiment's cells (mode, rate level, repeat).

Slow drift (a warming cache, a noisy neighbour, thermal throttling, an
autoscaler's memory) must hit both modes alike, so modes are interleaved at
every rate level -- never "all levels of A, then all levels of B":

    repeat 0:  25 A, 25 B, 50 A, 50 B, ...
    repeat 1:  25 B, 25 A, 50 B, 50 A, ...     (mode order reversed)

``alternate="level"`` also flips the mode order from one level to the next
inside a repeat, which balances "first after a level change" effects even
with a single repeat.  An optional seeded shuffle randomises the level order
of each repeat (a different, reproducible order per repeat).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import pandas as pd

from mmslib.errors import ParamError

__all__ = ["Cell", "interleaved", "to_frame", "remaining"]


@dataclass(frozen=True)
class Cell:
    """One run: ``mode`` at target rate ``qps`` for repeat ``repeat``
    (0-based); ``index`` is its position in the full schedule."""

    mode: str
    qps: float
    repeat: int
    index: int

    @property
    def key(self) -> tuple[str, float, int]:
        """``(mode, qps, repeat)``: matches the records' experiment keys."""
        return (self.mode, self.qps, self.repeat)


def interleaved(modes: Sequence[str], levels: Iterable[float], repeats: int,
                shuffle_seed: int | None = None, ascending: bool = True,
                alternate: str = "repeat") -> list[Cell]:
    """The run order: for each repeat, for each level, every mode in turn.

    * levels ascending (``ascending=False``: descending), or, with
      ``shuffle_seed``, a reproducible random order per repeat (seeded by
      ``(shuffle_seed, repeat)``);
    * mode order is ``modes`` in even repeats and reversed in odd ones
      (``alternate="repeat"``, A B then B A); ``alternate="level"`` flips it
      at every (repeat, level) step instead.
    """
    modes = list(modes)
    if not modes:
        raise ParamError("modes", modes, "a non-empty list of mode names")
    if len(set(modes)) != len(modes):
        raise ParamError("modes", modes, "distinct mode names")
    try:
        lv = [float(x) for x in levels]
    except (TypeError, ValueError):
        raise ParamError("levels", levels, "numbers (target requests per second)") from None
    if not lv or any(not (x > 0) for x in lv):
        raise ParamError("levels", lv, "a non-empty list of positive rates")
    if len(set(lv)) != len(lv):
        raise ParamError("levels", lv, "distinct rates")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ParamError("repeats", repeats, "an integer >= 1")
    if alternate not in ("repeat", "level"):
        raise ParamError("alternate", alternate, "'repeat' or 'level'")

    cells: list[Cell] = []
    base = sorted(lv, reverse=not ascending)
    for r in range(repeats):
        order = list(base)
        if shuffle_seed is not None:
            random.Random(f"{shuffle_seed}:{r}").shuffle(order)
        for i, q in enumerate(order):
            flip = (r % 2) if alternate == "repeat" else ((r + i) % 2)
            for m in (modes[::-1] if flip else modes):
                cells.append(Cell(mode=m, qps=q, repeat=r, index=len(cells)))
    return cells


def to_frame(cells: Iterable[Cell]) -> pd.DataFrame:
    """Cells as a DataFrame with columns ``index, mode, qps, repeat``."""
    rows = [asdict(c) for c in cells]
    return pd.DataFrame(rows, columns=["index", "mode", "qps", "repeat"])


def _key(mode, qps, repeat) -> tuple[str, float, int]:
    return (str(mode), float(qps), int(repeat))


def remaining(cells: Iterable[Cell], done_keys) -> list[Cell]:
    """Cells not yet run, in schedule order (for resuming).

    ``done_keys``: an iterable of ``(mode, qps, repeat)`` tuples, or a
    DataFrame with those columns (e.g. the records or ``levels`` of the runs
    so far).  ``qps`` compares as float, so ``25`` matches ``25.0``.
    """
    if isinstance(done_keys, pd.DataFrame):
        missing = [c for c in ("mode", "qps", "repeat") if c not in done_keys.columns]
        if missing:
            raise ParamError("done_keys", list(done_keys.columns),
                             "a DataFrame with columns mode, qps, repeat")
        uniq = done_keys[["mode", "qps", "repeat"]].drop_duplicates()
        done = {_key(*t) for t in uniq.itertuples(index=False, name=None)}
    else:
        done = {_key(*t) for t in done_keys}
    return [c for c in cells if _key(*c.key) not in done]
