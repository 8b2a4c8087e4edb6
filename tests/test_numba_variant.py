"""The numba backend's variant kernels (_backend/_numba_variant.py) against the NumPy backend's variant
steps, whole layers forward, forward_train and backward, for variants covering every activation, the
clip, input_forget and peepholes (test_kernels_variant.LAYERS)."""


import numpy as np
import pytest

from test_kernels_variant import LAYERS, make
from backend_swap import on_backend, run_everything

numba_variant = pytest.importorskip("rnnkern._backend._numba_variant", reason="numba is not installed")


@pytest.fixture(scope="module")
def numba_backend():
    from rnnkern._backend._numba import NumbaBackend
    return NumbaBackend()


@pytest.fixture(scope="module")
def numpy_backend():
    from rnnkern._backend._numpy import NumpyBackend
    return NumpyBackend()




@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", range(len(LAYERS)))
def test_numba_variants_match_numpy(numba_backend, numpy_backend, case, dtype):
    kind, options = LAYERS[case]
    net = make(kind, options, dtype, seed=case)
    layers = [on_backend(net, numpy_backend), on_backend(net, numba_backend)]
    rng = np.random.default_rng(case)
    x, lengths = (rng.standard_normal((5, 4, 3)) * 2).astype(dtype), [5, 2, 4, 1]
    tol = {"float32": 2e-5, "float64": 1e-12}[dtype]
    results = [run_everything(layer, x, lengths) for layer in layers]
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(theirs, ours, rtol=tol, atol=tol)


def test_numba_variant_kernels_are_memoised():
    v = make(*LAYERS[0])._semantics.variants[0]
    assert numba_variant.kernels(v, "float64") is numba_variant.kernels(v, "float64")
