import json
import os

import numpy as np
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


def test_new_questions_of_the_same_measurement_resume_it(tmp_path):
    """Coldstart's cluster questions and validation SLOs only say how the records are read: asking
    others resumes the run (nothing measured again) and meta.json keeps the newest; a measured
    parameter still refuses."""
    from mmslib import params
    kw = dict(output_dir=str(tmp_path / "out"), sections=["lazy"], runtime="kserve")
    p1 = params.coldstart(**kw)
    rd = RunDir(p1.output_dir, "coldstart", p1.to_dict(), p1.key())
    rd.save("lazy_cells", pd.DataFrame({"name": ["a"]}))
    p2 = params.coldstart(**kw, cluster_models=[500], cluster_duration_s=60, validation_slo_ms=[30, 60], resume=True)
    assert p2.key() == p1.key()
    again = RunDir(p2.output_dir, "coldstart", p2.to_dict(), p2.key(), resume=True)
    assert again.run_id == rd.run_id and again.load("lazy_cells") is not None
    assert json.loads((tmp_path / "out" / "meta.json").read_text())["params"]["cluster_models"] == [500]
    p3 = params.coldstart(**kw, models=41, resume=True)          # more models behind the lazy host: measured
    with pytest.raises(ParamsMismatch, match="models: 40 -> 41"):
        RunDir(p3.output_dir, "coldstart", p3.to_dict(), p3.key(), resume=True)


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


# ---------------------------------------------------------------- format_version and Run.load

from mmslib.rundir import FORMAT_VERSION, Run, RunFormatError, find_runs  # noqa: E402
from runfactory import perf_run, stress_run  # noqa: E402


def test_meta_carries_format_version_and_run_load_reads_everything(tmp_path):
    rd = perf_run(tmp_path / "p", lambda m, q: np.arange(1, 1001), qps=(20.0, 40.0))
    meta = json.loads((tmp_path / "p" / "meta.json").read_text())
    assert meta["format_version"] == FORMAT_VERSION == 2
    run = Run.load(tmp_path / "p")
    assert run.run_id == rd.run_id and run.experiment == "performance" and run.format_version == 2
    assert run.params["qps"] == [20.0, 40.0] and run.status == "complete"
    assert len(run.records) == 4 * 1005  # 2 modes x 2 rates x (1000 measured + 5 warm-up)
    assert set(run.table_names()) >= {"levels", "requests/mms_20qps_r0"}
    assert run.level_keys == ("mode", "qps", "repeat") and run.slo_ms == 100.0


def test_old_run_dir_loads_as_version_1_and_newer_is_refused(tmp_path):
    perf_run(tmp_path / "old", lambda m, q: np.arange(1, 101), modes=("mms",))
    mp = tmp_path / "old" / "meta.json"
    meta = json.loads(mp.read_text())
    del meta["format_version"]
    mp.write_text(json.dumps(meta))
    run = Run.load(tmp_path / "old")
    assert run.format_version == 1
    s = run.summary  # no summary file: recomputed from the records
    assert list(s["n"]) == [100] and s["p50"].iloc[0] == 50.5  # 1..100: (n-1)*0.5 = 49.5 -> 50.5
    meta["format_version"] = 99
    mp.write_text(json.dumps(meta))
    with pytest.raises(RunFormatError, match="format_version 99.*versions 1 to 2"):
        Run.load(tmp_path / "old")
    with pytest.raises(RunFormatError, match="no meta.json"):
        Run.load(tmp_path)


def test_find_runs_and_stress_records(tmp_path):
    stress_run(tmp_path / "a" / "s")
    perf_run(tmp_path / "b", lambda m, q: np.arange(1, 11), modes=("mms",))
    (tmp_path / "c").mkdir()
    assert find_runs(tmp_path) == [tmp_path / "a" / "s", tmp_path / "b"]
    run = Run.load(tmp_path / "a" / "s")
    assert run.level_keys == ("mode",) and run.value_column == "seconds" and len(run.records) == 6


WRITER = """
import sys, time
from mmslib.rundir import RunDir
RunDir(sys.argv[1], "stress", {"m": 1}, "k")
print("open", flush=True)
time.sleep(60)
"""


def test_a_run_whose_writer_died_reads_interrupted_and_a_live_writer_keeps_its_folder(tmp_path):
    """A real process opens a run directory and is SIGKILLed (so nothing can mark it): meta.json
    still says "running", Run.load says "interrupted". While that process lives, a second run on
    the same folder is refused, naming the pid; after it died, resume and fresh runs open it."""
    import signal
    import subprocess
    import sys
    from mmslib.rundir import Run, RunDirInUse
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "open"
        assert Run.load(out).status == "running"           # its writer is alive
        with pytest.raises(RunDirInUse, match=f"pid {proc.pid}"):
            RunDir(out, "stress", {"m": 1}, "k", resume=True)
        with pytest.raises(RunDirInUse):
            RunDir(out, "stress", {"m": 1}, "k")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert json.loads((out / "meta.json").read_text())["status"] == "running"
    assert Run.load(out).status == "interrupted"
    rd = RunDir(out, "stress", {"m": 1}, "k", resume=True)  # the folder is free again
    assert Run.load(out).status == "running" and rd.meta["writer"]["pid"] == os.getpid()
    rd.finish("complete")
    assert Run.load(out).status == "complete"


def test_a_running_run_from_another_host_or_without_a_writer_keeps_its_status(tmp_path):
    """Status of a run written elsewhere (or before writers were recorded) cannot be judged here."""
    from mmslib.rundir import Run
    rd = RunDir(tmp_path / "out", "stress", {"m": 1}, "k")
    meta = json.loads((tmp_path / "out" / "meta.json").read_text())
    meta["writer"] = {"host": "another-host", "pid": 1, "started": 0}
    (tmp_path / "out" / "meta.json").write_text(json.dumps(meta))
    assert Run.load(tmp_path / "out").status == "running"
    del meta["writer"]
    (tmp_path / "out" / "meta.json").write_text(json.dumps(meta))
    assert Run.load(tmp_path / "out").status == "running"
    assert rd.run_id == meta["run_id"]
