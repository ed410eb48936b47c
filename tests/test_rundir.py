import json
import os

import pandas as pd
import pytest

from mmslib.rundir import ParamsMismatch, RunDir, atomic_write_bytes


def test_save_load_roundtrip_with_metadata(tmp_path):
    rd = RunDir(tmp_path / "out", "stress", {"models": 5}, "k1")
    df = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    rd.save("steps", df)
    back = rd.load("steps")
    pd.testing.assert_frame_equal(back, df)
    meta = json.loads((tmp_path / "out" / "meta.json").read_text())
    assert meta["run_id"] == rd.run_id and meta["params"] == {"models": 5}
    assert meta["git_sha"] and meta["versions"]["pandas"] and meta["machine"]["cpu_count"]
    import pyarrow.parquet as pq
    md = json.loads(pq.read_table(tmp_path / "out" / "steps.parquet").schema.metadata[b"mmslib"])
    assert md["run_id"] == rd.run_id and md["params_key"] == "k1"


def test_mixing_parameters_is_refused(tmp_path):
    RunDir(tmp_path / "out", "stress", {"models": 5}, "k1")
    with pytest.raises(ParamsMismatch, match="different parameters"):
        RunDir(tmp_path / "out", "stress", {"models": 6}, "k2")
    with pytest.raises(ParamsMismatch):
        RunDir(tmp_path / "out", "performance", {"models": 5}, "k1")


def test_resume_keeps_records_fresh_run_drops_them(tmp_path):
    rd = RunDir(tmp_path / "out", "stress", {"m": 1}, "k")
    rd.save("steps", pd.DataFrame({"a": [1]}))
    again = RunDir(tmp_path / "out", "stress", {"m": 1}, "k", resume=True)
    assert again.run_id == rd.run_id and again.load("steps") is not None
    fresh = RunDir(tmp_path / "out", "stress", {"m": 1}, "k", resume=False)
    assert fresh.load("steps") is None and fresh.run_id != rd.run_id


def test_atomic_write_keeps_old_file_on_crash(tmp_path, monkeypatch):
    p = tmp_path / "f.bin"
    atomic_write_bytes(p, b"old")

    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        atomic_write_bytes(p, b"new")
    assert p.read_bytes() == b"old"
    assert [x.name for x in tmp_path.iterdir()] == ["f.bin"]  # no temp file left
