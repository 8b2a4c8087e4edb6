"""A BLAS library's error text fails the test that caused it (tests/blas_output.py, loaded by conftest).

Proved on a real OpenBLAS argument error: an inner pytest run calls NumPy's own scipy-openblas
``cblas_sgemm`` with a leading dimension below the matrix width, which OpenBLAS refuses by printing
from C to stdout and returning.
"""

import glob
import os
import pathlib
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from blas_output import blas_messages

TESTS = pathlib.Path(__file__).resolve().parent

INNER = '''
import ctypes
import numpy as np

def sgemm(lda):
    """C (2x2) = A @ B through scipy-openblas's CBLAS (row-major, 64-bit integers)."""
    lib = ctypes.CDLL({path!r})
    gemm = lib.scipy_cblas_sgemm64_
    i32, i64, f32, ptr = ctypes.c_int32, ctypes.c_int64, ctypes.c_float, ctypes.c_void_p
    gemm.argtypes = [i32, i32, i32, i64, i64, i64, f32, ptr, i64, ptr, i64, f32, ptr, i64]
    a, c = np.ones((2, 2), np.float32), np.zeros((2, 2), np.float32)
    gemm(101, 111, 111, 2, 2, 2, 1.0, a.ctypes.data, lda, a.ctypes.data, 2, 0.0, c.ctypes.data, 2)
    return c

def test_a_bad_leading_dimension():
    sgemm(lda=1)  # below K=2: OpenBLAS prints its error and leaves C as it was

def test_a_good_call_and_ordinary_output():
    print("ordinary output: On entry to the building, parameter checks are fine")
    assert (sgemm(lda=2) == 2).all()
'''


def scipy_openblas():
    """NumPy's bundled scipy-openblas64 library (as rnnkern/_backend/numba/blas.py finds it), or None."""
    here = os.path.dirname(np.__file__)
    found = sorted(glob.glob(here + ".libs/*scipy_openblas64*") + glob.glob(os.path.join(here, ".dylibs",
                                                                                          "*scipy_openblas64*")))
    return found[0] if found else None


def run_inner(tmp_path, *options):
    path = scipy_openblas()
    if path is None:
        pytest.skip("NumPy's BLAS is not scipy-openblas64 here: no OpenBLAS to make an argument error with")
    (tmp_path / "test_inner.py").write_text(INNER.format(path=path))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    for name in ("PYTEST_ADDOPTS", "PYTHONUNBUFFERED"):  # unbuffered C stdio would hide a missing fflush
        env.pop(name, None)
    command = [sys.executable, "-m", "pytest", "-p", "blas_output", "-p", "no:cacheprovider", "-v", *options,
               "test_inner.py"]
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def test_an_openblas_argument_error_fails_the_test_that_caused_it(tmp_path):
    result = run_inner(tmp_path)
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "test_a_bad_leading_dimension FAILED" in out, out
    assert "test_a_good_call_and_ordinary_output PASSED" in out, out
    assert "a BLAS library wrote an error during the test's call" in out, out
    assert re.search(r"FAILED test_inner.py::test_a_bad_leading_dimension - a BLAS library wrote", out), out
    assert re.search(r"\*\* On entry to SGEMM\s+parameter number\s+\d+ had an illegal value", out), out


def test_without_fd_capture_the_run_says_that_blas_output_is_not_checked(tmp_path):
    result = run_inner(tmp_path, "-s")
    out = result.stdout + result.stderr
    assert "--capture=no: text that BLAS libraries write from C" in out, out
    assert "is not checked" in out, out


@pytest.mark.parametrize("line", [
    " ** On entry to DGEMV  parameter number  6 had an illegal value",
    "On entry to SGEMM parameter number 10 had an illegal value",
    "Intel MKL ERROR: Parameter 6 was incorrect on entry to DGEMV.",
    "BLAS : Program is Terminated. Because you tried to allocate too many memory regions.",
])
def test_the_messages_of_openblas_and_mkl_are_recognised(line):
    assert blas_messages("before\n" + line + "\nafter") == [line.strip()]


def test_ordinary_output_is_not_a_blas_message():
    text = textwrap.dedent("""
        On entry to the loop, parameter number 3 was fine
        BLAS-backed GEMM took 3 ms
    """)
    assert blas_messages(text) == []
