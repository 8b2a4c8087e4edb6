"""`make gpu-check` (benchmarks/gpu_check.py), rehearsed without a GPU: it stops at once with one line;
its orchestrator keeps to each phase's time limit and the overall deadline; the warm-up and the
bandwidth measurement run on CupyBackend with the host builds of the kernels; every phase's
command line is valid."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import GPU_REASON
from rnnkern import cli
from rnnkern._bench import bandwidth

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"


def _load():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gpu_check = _load()


@pytest.mark.skipif(GPU_REASON is None, reason="a GPU is usable here")
def test_without_gpu_one_line_and_exit_1(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    done = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path / "out")], capture_output=True,
                          text=True, env=env, timeout=120)
    assert done.returncode == 1
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("no usable GPU: "), lines
    assert not (tmp_path / "out").exists()


def test_orchestrator_limits_and_summary(tmp_path, monkeypatch, capsys):
    import gpu_preflight

    scripts = {"fine": "print('fine output')", "hangs": "import time; time.sleep(60)",
               "fails": "import sys; print('bad'); sys.exit(3)", "late": "print('never')"}
    monkeypatch.setattr(gpu_preflight, "main", lambda: 0)
    monkeypatch.setattr(gpu_check, "PHASES", [("fine", 20), ("hangs", 2), ("fails", 20), ("late", 20)])
    monkeypatch.setattr(gpu_check, "command", lambda phase, out: [sys.executable, "-c", scripts[phase]])
    out = tmp_path / "out"
    assert gpu_check.orchestrate(out, deadline_s=20) == 1
    summary = json.loads((out / "summary.json").read_text())["phases"]
    assert summary["fine"]["status"] == 0 and summary["hangs"]["status"] == "timeout"
    assert summary["fails"]["status"] == 3 and summary["hangs"]["seconds"] < 10
    log = (out / "gpu-check.log").read_text()
    assert "fine output" in log and "=== hangs: TIMED OUT" in log and "FAILED (exit 3)" in log
    assert "problems in: hangs, fails" in log
    # a deadline already spent: the remaining phases are skipped, not started
    assert gpu_check.orchestrate(tmp_path / "late", deadline_s=10) == 1
    summary = json.loads((tmp_path / "late" / "summary.json").read_text())["phases"]
    assert all(r["status"] == "skipped (deadline)" for r in summary.values())


def test_warm_up_runs_every_kernel_on_host_builds(host):
    backend, fake, dtypes = host
    backend.name = "cpu"  # the stand-in holds NumPy arrays
    try:
        lines = []
        gpu_check.warm(backend, fake, [d for d in ("float32", "float64") if d in dtypes], log=lines.append)
    finally:
        backend.name = "gpu"
    assert len(lines) == 2 and "float64 done" in lines[1]
    from rnnkern import _kernels

    built = {name for name, dtype in fake.built if dtype == "float32"}
    assert built == set(_kernels.KERNELS)  # every kernel was launched


def test_bandwidth_on_host_builds(host):
    backend, _, _ = host
    from rnnkern._bench import timing

    assert bandwidth.bytes_moved("lstm", 4, 8, "float32") == 11 * 4 * 8 * 4
    assert bandwidth.bytes_moved("gru", 4, 8, "float16") == 8 * 4 * 8 * 2
    result = bandwidth.measure(backend, "gru", 16, 32, "float32", timer=timing._host_time, launches=2, rounds=2)
    assert result.kernel_us > 0 and result.copy_us > 0 and result.share_of_copy > 0
    assert "% of a device-to-device copy" in result.line()
    assert np.isclose(result.kernel_gbps, result.bytes_moved / result.kernel_us / 1e3)


@pytest.mark.parametrize("phase", ["bench-default", "bench-small"])
def test_bench_phase_commands_are_valid(phase, tmp_path, capsys):
    cmd = gpu_check.command(phase, tmp_path)
    assert cmd[1:4] == ["-m", "rnnkern.cli", "bench"] and "--device" in cmd and "gpu" in cmd
    args = cmd[4:] + ["--device", "cpu", "--seq-len", "2", "--batch", "2", "--input-size", "3", "--hidden-size",
                      "4", "--repeat", "1", "--warmup", "0", "--pause", "0"]  # the same options, tiny, on the CPU
    assert cli.main(["bench", *args]) == 0
    records = json.loads((tmp_path / f"bench-{phase.split('-')[1]}.json").read_text())
    assert {r["variant"] for r in records} >= {"rnnkern", "unfused", "blas-bound"}


def test_gpu_tests_phase_selects_the_gpu_marker(tmp_path):
    cmd = gpu_check.command("gpu-tests", tmp_path)
    assert cmd[1:5] == ["-m", "pytest", "-m", "gpu"] and any(a.startswith("--junitxml=") for a in cmd)
