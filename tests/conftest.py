"""Shared fixtures: every numerical test runs per device x dtype, with a tolerance per dtype.

Any error text that a BLAS library writes fails the test (tests/blas_output.py).
The GPU half is skipped where no CUDA device is usable; the summary prints each distinct skip
reason once, with a count. ``pytest -m gpu`` (``make test-gpu``) stops at once, with one line
and a nonzero exit, where no GPU is usable: skipping everything must not pass.
"""

import collections

import numpy as np
import pytest

import hypothesis_fallback
from pytest_deadline import pytest_runtest_protocol  # noqa: F401 (a hook: RNNKERN_TEST_DEADLINE)
from rnnkern._backend import gpu_unavailable_reason

HYPOTHESIS_MISSING = hypothesis_fallback.install()  # before any test module imports it
pytest_plugins = ["blas_output"]  # a BLAS library's error text fails the test that caused it

GPU_REASON = gpu_unavailable_reason()
requires_gpu = pytest.mark.skipif(GPU_REASON is not None, reason=f"no usable GPU: {GPU_REASON}")

DEVICES = ["cpu", pytest.param("gpu", marks=[pytest.mark.gpu, requires_gpu])]

# (rtol, atol) for comparing a dtype's result with a float64 reference.
TOLERANCE = {"float16": (2e-3, 2e-3), "float32": (1e-5, 1e-5), "float64": (1e-10, 1e-10)}
CPU_DTYPES = ["float32", "float64"]


@pytest.fixture(scope="session")
def host(tmp_path_factory):
    """(CupyBackend on kernel_host.fake_cupy, running the kernels' g++ builds; the fake; the dtypes built)."""
    import kernel_host

    if kernel_host.GXX is None:
        pytest.skip("g++ not found: the kernels' math cannot be compiled for the host")
    lib, dtypes = kernel_host.build(tmp_path_factory.mktemp("rnnkern_host_kernels"))
    backend = kernel_host.host_backend(lib)
    return backend, backend.xp, dtypes


@pytest.fixture(params=DEVICES)
def device(request):
    return request.param


@pytest.fixture(params=CPU_DTYPES)
def dtype(request):
    return request.param


def to_numpy(array):
    """Host copy of a NumPy or CuPy array."""
    return array.get() if hasattr(array, "get") and not isinstance(array, np.ndarray) else np.asarray(array)


def assert_close(actual, expected, dtype, scale=1.0):
    rtol, atol = TOLERANCE[np.dtype(dtype).name]
    np.testing.assert_allclose(to_numpy(actual), expected, rtol=rtol * scale, atol=atol * scale)


# --- session hooks ---------------------------------------------------------------------------
def pytest_configure(config):
    if (config.getoption("markexpr") or "").strip() == "gpu" and GPU_REASON is not None:
        raise pytest.UsageError(f"-m gpu selects the GPU tests, but no GPU is usable here: {GPU_REASON}")
    # Skips are summarised once per reason below (pytest's -rs repeats each reason per test location).
    chars = config.option.reportchars or ""
    config.option.reportchars = chars.replace("a", "fEXx").replace("A", "PpfEXx").replace("s", "")


def pytest_terminal_summary(terminalreporter):
    counts = collections.Counter()
    for report in terminalreporter.stats.get("skipped", []):
        if isinstance(report.longrepr, tuple):  # (path, line, "Skipped: reason")
            counts[report.longrepr[2].removeprefix("Skipped: ")] += 1
    if counts:
        terminalreporter.section("skip reasons (each once, with the number of tests)")
        for reason, count in counts.most_common():
            terminalreporter.write_line(f"{count:5d} skipped: {reason}")
    if HYPOTHESIS_MISSING:
        terminalreporter.write_line(f"note: {hypothesis_fallback.REASON}")
