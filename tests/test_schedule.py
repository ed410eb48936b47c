"""Tests for mmslib.schedule: interleaving, shuffling, resume."""

from __future__ import annotations

import dataclasses
from collections import Counter

import pandas as pd
import pytest

from mmslib.errors import ParamError
from mmslib.schedule import Cell, interleaved, remaining, to_frame

MODES = ["traditional", "mms"]


def test_interleaved_alternates_mode_order_between_repeats():
    cells = interleaved(MODES, [50, 25], repeats=2)
    assert [(c.repeat, c.qps, c.mode) for c in cells] == [
        (0, 25.0, "traditional"), (0, 25.0, "mms"),
        (0, 50.0, "traditional"), (0, 50.0, "mms"),
        (1, 25.0, "mms"), (1, 25.0, "traditional"),
        (1, 50.0, "mms"), (1, 50.0, "traditional"),
    ]
    assert [c.index for c in cells] == list(range(8))


def test_every_cell_once_and_modes_paired_per_level():
    levels = [5, 10, 20, 30, 40]
    cells = interleaved(MODES, levels, repeats=3)
    keys = [c.key for c in cells]
    assert len(keys) == len(set(keys)) == 2 * 5 * 3
    assert set(keys) == {(m, float(q), r) for m in MODES for q in levels for r in range(3)}
    # never A A B B: consecutive pairs are the two modes at one level and repeat
    for a, b in zip(cells[::2], cells[1::2]):
        assert (a.qps, a.repeat) == (b.qps, b.repeat) and {a.mode, b.mode} == set(MODES)
    # each mode goes first equally often over an even number of repeats
    firsts = Counter(c.mode for c in interleaved(MODES, levels, repeats=4)[::2])
    assert firsts["traditional"] == firsts["mms"]


def test_descending_and_alternate_level():
    cells = interleaved(MODES, [10, 20, 30], repeats=1, ascending=False, alternate="level")
    assert [c.qps for c in cells[::2]] == [30.0, 20.0, 10.0]
    assert [c.mode for c in cells[::2]] == ["traditional", "mms", "traditional"]


def test_shuffle_is_seeded_per_repeat():
    levels = list(range(1, 21))
    a = interleaved(MODES, levels, repeats=3, shuffle_seed=42)
    b = interleaved(MODES, levels, repeats=3, shuffle_seed=42)
    c = interleaved(MODES, levels, repeats=3, shuffle_seed=43)
    assert a == b and a != c
    orders = [[x.qps for x in a if x.repeat == r][::2] for r in range(3)]
    assert all(sorted(o) == [float(x) for x in levels] for o in orders)
    assert orders[0] != orders[1] and orders[0] != sorted(orders[0])
    # shuffling keeps the pairing and the per-repeat mode alternation
    for x, y in zip(a[::2], a[1::2]):
        assert x.qps == y.qps and x.repeat == y.repeat
        assert x.mode == MODES[x.repeat % 2]


def test_cell_frozen_and_to_frame():
    cells = interleaved(MODES, [25], repeats=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cells[0].qps = 1.0
    df = to_frame(cells)
    assert list(df.columns) == ["index", "mode", "qps", "repeat"]
    assert df["mode"].tolist() == MODES and df["qps"].tolist() == [25.0, 25.0]


def test_remaining_keeps_order_and_accepts_frames():
    cells = interleaved(MODES, [25, 50], repeats=2)
    done = [("traditional", 25, 0), ("mms", 25.0, 0)]
    left = remaining(cells, done)
    assert [c.index for c in left] == [2, 3, 4, 5, 6, 7]
    done_df = pd.DataFrame({"mode": ["traditional", "mms", "mms"],
                            "qps": [25.0, 25.0, 50.0], "repeat": [0, 0, 1]})
    assert [c.index for c in remaining(cells, done_df)] == [2, 3, 4, 5, 7]
    assert remaining(cells, [c.key for c in cells]) == []
    assert remaining(cells, []) == cells
    with pytest.raises(ParamError):
        remaining(cells, pd.DataFrame({"mode": ["mms"]}))


@pytest.mark.parametrize("kwargs", [
    {"modes": [], "levels": [1], "repeats": 1},
    {"modes": ["a", "a"], "levels": [1], "repeats": 1},
    {"modes": ["a"], "levels": [], "repeats": 1},
    {"modes": ["a"], "levels": [0], "repeats": 1},
    {"modes": ["a"], "levels": [5, 5], "repeats": 1},
    {"modes": ["a"], "levels": [5], "repeats": 0},
    {"modes": ["a"], "levels": [5], "repeats": 1.5},
    {"modes": ["a"], "levels": ["x"], "repeats": 1},
])
def test_bad_parameters(kwargs):
    with pytest.raises(ParamError):
        interleaved(**kwargs)


def test_cell_key():
    assert Cell("mms", 25.0, 1, 3).key == ("mms", 25.0, 1)
