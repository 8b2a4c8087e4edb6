"""The GPU suite's own setup: `pytest -m gpu` fails loudly without a GPU, test modules import
without hypothesis (a GPU machine's python3 may lack it), and skip reasons are summarised once."""

import os
import time
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import GPU_REASON

TESTS = Path(__file__).parent


def _pytest(*args, env_extra=None, pythonpath=()):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*map(str, pythonpath), str(TESTS.parent / "src"),
                                         env.get("PYTHONPATH", "")])
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=TESTS.parent,
                          capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.skipif(GPU_REASON is None, reason="a GPU is usable here")
def test_gpu_marker_without_gpu_fails_with_one_line():
    done = _pytest("-q", "-m", "gpu", "tests/test_gpu_backend.py")
    assert done.returncode != 0
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and "no GPU is usable here" in lines[0], lines


def test_modules_import_without_hypothesis(tmp_path):
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "hypothesis.py").write_text("raise ImportError('hypothesis blocked for this test')\n")
    done = _pytest("-q", "-p", "no:hypothesispytest", "tests/test_layers.py", "-k", "hand_loop or unbatched_equals",
                   pythonpath=[blocker])
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "hypothesis is not installed: property-based test skipped" in out
    assert " passed" in out


def test_skip_reasons_summarised_once(tmp_path):
    (tmp_path / "test_skips.py").write_text(
        "import pytest\n@pytest.mark.parametrize('i', range(5))\n"
        "def test_a(i):\n    pytest.skip('the same long reason')\n"
        "def test_b():\n    pytest.skip('another reason')\n")
    (tmp_path / "conftest.py").write_text((TESTS / "conftest.py").read_text())
    env = {"PYTHONPATH": os.pathsep.join([str(TESTS), str(TESTS.parent / "src")])}
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-ra", str(tmp_path)],
                          cwd=tmp_path, capture_output=True, text=True, env={**os.environ, **env}, timeout=300)
    assert "    5 skipped: the same long reason" in done.stdout, done.stdout
    assert "    1 skipped: another reason" in done.stdout
    assert "SKIPPED [" not in done.stdout  # pytest's own per-location lines are gone


def test_deadline_stops_the_session_cleanly(tmp_path):
    """RNNKERN_TEST_DEADLINE (gpu_check's test phase sets it): past it, pytest stops after the current
    test and still prints the failures and the summary and writes the JUnit XML."""
    (tmp_path / "test_long.py").write_text(
        "import time\ndef test_first():\n    assert 1 + 1 == 3\n"
        "def test_later():\n    time.sleep(30)\n")
    (tmp_path / "conftest.py").write_text((TESTS / "conftest.py").read_text())
    env = {"PYTHONPATH": os.pathsep.join([str(TESTS), str(TESTS.parent / "src")]),
           "RNNKERN_TEST_DEADLINE": str(time.time())}  # already passed: only the first test runs
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-v", "--tb=short",
                           f"--junitxml={tmp_path / 'out.xml'}", str(tmp_path)], cwd=tmp_path, capture_output=True,
                          text=True, env={**os.environ, **env}, timeout=25)
    assert done.returncode == 2, done.stdout  # pytest's "interrupted"
    assert "test_long.py::test_first FAILED" in done.stdout and "assert (1 + 1) == 3" in done.stdout
    assert "Interrupted: RNNKERN_TEST_DEADLINE reached after test_long.py::test_first" in done.stdout
    assert "1 failed" in done.stdout and "test_later" not in done.stdout  # never started
    assert 'tests="1"' in (tmp_path / "out.xml").read_text()
