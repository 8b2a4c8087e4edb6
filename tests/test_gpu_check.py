"""`make gpu-check` (benchmarks/gpu_check.py), checked without a GPU: it stops at once with one line;
its orchestrator keeps to each phase's time limit and the overall deadline, and its caps add up
to that deadline; the warm-up and the bandwidth measurement run on CupyBackend with the host
builds of the kernels; every phase's command line is valid. The whole run on a stand-in GPU, slow
or failing in chosen phases, is rehearsed in test_gpu_check_rehearsal.py."""

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import GPU_REASON
from rnnkern import cli
from rnnkern._bench import bandwidth

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"
sys.path.insert(0, str(SCRIPT.parent))  # gpu_check's own modules


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
    monkeypatch.setattr(gpu_check, "PHASES", [("fine", 20), ("hangs", 2), ("fails", 20), ("late", None)])
    monkeypatch.setattr(gpu_check, "WRITES", dict.fromkeys(scripts, []))
    monkeypatch.setattr(gpu_check, "DEADLINE_S", 20)
    monkeypatch.setattr(gpu_check, "MIN_PHASE_S", 1)
    monkeypatch.setattr(gpu_check, "command", lambda phase, out, dev: [sys.executable, "-c", scripts[phase]])
    out = tmp_path / "out"
    assert gpu_check.orchestrate(out, deadline_s=20) == 1
    summary = json.loads((out / "summary.json").read_text())["phases"]
    assert summary["fine"]["status"] == 0 and summary["hangs"]["status"] == "timeout"
    assert summary["fails"]["status"] == 3 and summary["hangs"]["seconds"] < 10
    log = (out / "gpu-check.log").read_text()
    assert "fine output" in log and "=== hangs: TIMED OUT" in log and "FAILED (exit 3)" in log
    assert "problems in: hangs, fails" in log
    # a deadline already spent: the remaining phases are skipped, not started
    monkeypatch.setattr(gpu_check, "MIN_PHASE_S", 1e9)
    assert gpu_check.orchestrate(tmp_path / "late", deadline_s=20) == 1
    summary = json.loads((tmp_path / "late" / "summary.json").read_text())["phases"]
    assert all(r["status"] == "skipped (deadline)" for r in summary.values())


def test_caps_add_up_to_the_deadline():
    """Fixed caps, then the suite with the rest: the run fits its deadline, and a rerun fits a 15-minute lease."""
    fixed = [cap for _, cap in gpu_check.PHASES if cap is not None]
    assert gpu_check.PHASES[-1] == ("gpu-tests", None) and len(fixed) == len(gpu_check.PHASES) - 1
    assert sum(fixed) + gpu_check.MIN_PHASE_S <= gpu_check.DEADLINE_S <= 450
    assert all(cap > 2 * gpu_check.GRACE_S for cap in fixed)
    assert [p for p, _ in gpu_check.PHASES] == ["versions", "smoke", "bench-default", "bench-small", "bandwidth",
                                                 "warm-up", "gpu-tests"]  # the most valuable first
    assert set(gpu_check.WRITES) == {p for p, _ in gpu_check.PHASES}


def test_warm_up_runs_every_kernel_on_host_builds(host):
    import gpu_check_warm

    backend, fake, dtypes = host
    backend.name = "cpu"  # the stand-in holds NumPy arrays
    try:
        for dtype, _, what in gpu_check_warm.items(with_variants=False):
            if dtype == "float32":
                gpu_check_warm.warm_item(backend, dtype, what)
    finally:
        backend.name = "gpu"
    from rnnkern._backend.cupy import kernels as _kernels

    built = {name for name, dtype in fake.built if dtype == "float32"}
    assert built == set(_kernels.KERNELS)  # every kernel was launched


def test_warm_up_order_and_the_gpu_tests_with_options():
    """float32's items first, float16's last; every GPU test with ONNX options is an item, float64's once."""
    import gpu_check_warm

    rows = gpu_check_warm.items()
    order = [dtype for dtype, _, _ in rows]
    assert order == sorted(order, key=["float32", "float64", "float16"].index)
    tests = [(dtype, what[2], tuple(sorted(what[3].items()))) for dtype, _, what in rows if what[0] == "test"]
    assert len(tests) == len(set(tests)) > 50
    assert {(d, f) for d, f, _ in tests} >= {("float32", "test_random_configurations_match_the_reference"),
                                              ("float64", "test_gradients_match_finite_differences"),
                                              ("float64", "test_golden_ort_outputs")}
    seeds = {dict(k)["seed"] for d, f, k in tests if f == "test_random_configurations_match_the_reference"}
    assert seeds == set(range(0, 60, 4))  # test_semantics.gpu_subset: every 4th runs on the GPU


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
    cmd = gpu_check.command(phase, tmp_path, gpu_check.phases.Gpu())
    assert cmd[1:4] == ["-m", "rnnkern.cli", "bench"] and "--device" in cmd and "gpu" in cmd
    args = cmd[4:] + ["--device", "cpu", "--seq-len", "2", "--batch", "2", "--input-size", "3", "--hidden-size",
                      "4", "--repeat", "1", "--warmup", "0", "--pause", "0"]  # the same options, tiny, on the CPU
    assert cli.main(["bench", *args]) == 0
    records = json.loads((tmp_path / f"bench-{phase.split('-')[1]}.json").read_text())
    assert {r["variant"] for r in records} >= {"rnnkern", "unfused", "blas-bound"}


def test_gpu_tests_phase_selects_the_gpu_marker(tmp_path):
    cmd = gpu_check.command("gpu-tests", tmp_path, gpu_check.phases.Gpu())
    assert cmd[1:5] == ["-m", "pytest", "-m", "gpu"] and any(a.startswith("--junitxml=") for a in cmd)
    assert "-v" in cmd and "--tb=short" in cmd  # names and tracebacks stream into the log


def test_phases_run_numpy_cpu_kernels_and_the_suite_gets_a_deadline(monkeypatch):
    monkeypatch.delenv("RNNKERN_CPU_KERNELS", raising=False)
    env = gpu_check.phase_env("gpu-tests", 100, 5)
    assert env["RNNKERN_CPU_KERNELS"] == "numpy"  # numba's cache does not travel: no compiles on the lease
    assert 85 <= float(env["RNNKERN_TEST_DEADLINE"]) - time.time() <= 90.01 # pytest stops before the SIGINT
    assert "RNNKERN_TEST_DEADLINE" not in gpu_check.phase_env("smoke", 100, 5)


def test_readme_gives_the_command_without_make_and_what_each_phase_writes():
    readme = (ROOT / "README.md").read_text()
    assert "PYTHONPATH=src python3 benchmarks/gpu_check.py --out dir" in readme
    for phase, cap in gpu_check.PHASES:
        assert f"| {phase}" in readme or phase.startswith("bench-"), phase
        assert all(f"`{name}`" in readme for name in gpu_check.WRITES[phase])
    assert "| bench-default, bench-small | 75, 45 |" in readme and "| versions | 30 |" in readme
