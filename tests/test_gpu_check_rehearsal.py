"""A rehearsal of `make gpu-check` (benchmarks/gpu_check.py) on the CPU, with a stand-in GPU
(gpu_standin.py: NumPy's backend, chosen phases slow, chosen items failing) and the deadline
scaled down, so that a first GPU lease is not lost to the check's own time limits.

Two whole runs, side by side (one mostly sleeps):

- "slow": every phase runs into its cap. What each had measured by then is in OUT, every phase
  is in summary.json, and the run ends within its deadline;
- "fails": every float16 item fails and one stand-in test fails; the float32 and float64 results
  are all there, and the failing test's name and traceback are in the log.

CuPy and PyTorch are hidden from the runs' processes: they only cost import time here.
"""

import json
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"
SLOW_DEADLINE = 30  # seconds for the whole slow run: each phase's cap is its real one x 30/450
SLOW = {"versions": 0.3, "smoke": 0.3, "bench-default": 0.5, "bench-small": 0.25, "bandwidth": 0.5, "warm-up": 0.3}
SUITE = ("import time\nimport pytest\n\n@pytest.mark.parametrize('i', range({n}))\n"
         "def test_step(i):\n    time.sleep({sleep})\n\ndef test_broken():\n    assert 1 + 1 == 3\n")


def _suite(folder, n, sleep):
    folder.mkdir()
    (folder / "conftest.py").write_text("from pytest_deadline import pytest_runtest_protocol  # noqa: F401\n")
    (folder / "test_standin.py").write_text(SUITE.format(n=n, sleep=sleep))
    return str(folder)


def _start(tmp, name, spec, deadline):
    hidden = tmp / "hidden"
    hidden.mkdir(exist_ok=True)
    for module in ("cupy", "torch"):
        (hidden / f"{module}.py").write_text(f"raise ImportError('{module} is hidden in the rehearsal')\n")
    env = dict(os.environ, RNNKERN_GPU_CHECK_STANDIN=json.dumps(spec),
               PYTHONPATH=os.pathsep.join([str(hidden), str(ROOT / "src"), str(ROOT / "tests")]))
    log = open(tmp / f"{name}.out", "w")
    cmd = [sys.executable, str(SCRIPT), "--out", str(tmp / name), "--deadline", str(deadline)]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT), time.perf_counter()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """{name: (OUT, exit status, wall seconds)} of the two runs."""
    tmp = tmp_path_factory.mktemp("gpu_check_rehearsal")
    started = {"slow": _start(tmp, "slow", {"slow": SLOW, "suite": _suite(tmp / "slow-suite", 100, 0.3)},
                              SLOW_DEADLINE),
               "fails": _start(tmp, "fails", {"fail": ["float16"], "suite": _suite(tmp / "quick-suite", 3, 0)}, 240)}
    done = {}
    for name, (child, t0) in started.items():
        status = child.wait(timeout=300)
        done[name] = (tmp / name, status, time.perf_counter() - t0)
    return done


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _summary(out):
    return json.loads((out / "summary.json").read_text())["phases"]


def test_the_slow_run_ends_within_its_deadline(runs):
    out, status, wall = runs["slow"]
    assert status == 1
    assert wall < SLOW_DEADLINE + 3, wall  # the deadline, and the orchestrator's own start-up
    assert json.loads((out / "summary.json").read_text())["seconds"] <= SLOW_DEADLINE + 0.5


def test_partial_results_survive_a_timeout_in_each_phase(runs):
    out, _, _ = runs["slow"]
    summary, log = _summary(out), (out / "gpu-check.log").read_text()
    assert list(summary) == ["versions", "smoke", "bench-default", "bench-small", "bandwidth", "warm-up",
                             "gpu-tests"]
    for phase in list(summary)[:-1]:
        assert summary[phase]["status"] == "timeout", (phase, summary[phase])
        assert f"=== {phase}: TIMED OUT" in log
    versions = json.loads((out / "versions.json").read_text())
    assert 1 <= len(versions) < 9  # the first versions read, then the cap
    for phase in ("smoke", "bandwidth", "warm-up"):
        records = _lines(out / f"{phase}.jsonl")
        assert records and all("error" not in r for r in records), (phase, records)
    for config in ("default", "small"):
        records = json.loads((out / f"bench-{config}.json").read_text())
        assert records and len({r["cell"] for r in records}) < 3  # at least one cell, not all three
    # the test phase stopped itself at RNNKERN_TEST_DEADLINE: pytest's "interrupted", with its XML
    assert summary["gpu-tests"]["status"] == 2
    assert "Interrupted: RNNKERN_TEST_DEADLINE reached" in log and "test_step[0] PASSED" in log
    tests = int(ET.parse(out / "gpu-tests.xml").getroot().find("testsuite").get("tests"))
    assert 1 <= tests < 101


def test_a_failing_dtype_does_not_stop_the_others(runs):
    out, status, _ = runs["fails"]
    summary = _summary(out)
    assert status == 1 and {p: r["status"] for p, r in summary.items()} == {
        "versions": 0, "smoke": 1, "bench-default": 0, "bench-small": 0, "bandwidth": 1, "warm-up": 1, "gpu-tests": 1}
    for phase in ("smoke", "bandwidth", "warm-up"):
        records = _lines(out / f"{phase}.jsonl")
        by_dtype = {d: [r for r in records if r["dtype"] == d] for d in ("float32", "float64", "float16")}
        assert by_dtype["float16"] and all("error" in r for r in by_dtype["float16"]), phase
        ok = by_dtype["float32"] + by_dtype["float64"]
        assert ok and all("error" not in r for r in ok), (phase, [r for r in ok if "error" in r][:3])
    smoke = _lines(out / "smoke.jsonl")
    assert len(smoke) == 18 and sum("error" not in r for r in smoke) == 12  # 6 cells x float32, float64
    log = (out / "gpu-check.log").read_text()
    assert "test_standin.py::test_broken FAILED" in log and "assert (1 + 1) == 3" in log
    assert "warm-up: float64 done" in log and "warm-up: float16 done" in log
