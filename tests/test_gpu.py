"""GPU memory per model, read from nvidia-smi (a stand-in nvidia-smi here: no GPU on this machine)."""
import os
import stat

from mmslib import gpu


def test_process_memory_from_nvidia_smi(tmp_path, monkeypatch):
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\nprintf '101, 500\\n202, 250\\n303, 1000\\n'\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    assert gpu.process_memory_mib([101, 202, 999]) == 750.0
    assert gpu.process_memory_mib([999]) == 0.0


def test_no_gpu_tool_means_none(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert gpu.process_memory_mib([1]) is None
    assert gpu.gpu_name() == ""
