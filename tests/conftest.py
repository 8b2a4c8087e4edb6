"""Shared fixtures: every numerical test runs per device x dtype, with a tolerance per dtype.

The GPU half is skipped, with the reason printed (-ra), where no CUDA device is usable.
"""

import numpy as np
import pytest

from rnnkern._backend import gpu_unavailable_reason

GPU_REASON = gpu_unavailable_reason()
requires_gpu = pytest.mark.skipif(GPU_REASON is not None, reason=f"no usable GPU: {GPU_REASON}")

DEVICES = ["cpu", pytest.param("gpu", marks=[pytest.mark.gpu, requires_gpu])]

# (rtol, atol) for comparing a dtype's result with a float64 reference.
TOLERANCE = {"float16": (2e-3, 2e-3), "float32": (1e-5, 1e-5), "float64": (1e-10, 1e-10)}
CPU_DTYPES = ["float32", "float64"]


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
