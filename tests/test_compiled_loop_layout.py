"""Issue 15, defect 1: the compiled time loop (numba, batch <= 16) gave silently wrong results when a
BLAS leading dimension was read from a stride NumPy leaves arbitrary: ``hidden_size=1`` weights as
``from_state_dict``, ``copy.deepcopy`` and ``pickle`` leave them, and initial states whose batch
stride is below H (broadcast, reversed, overlapping views). OpenBLAS printed an argument error to
stdout and returned without computing. Every layer here runs on the numba backend, so at these
batch sizes through the compiled loop, and is compared with the float64 reference."""

import copy
import pickle

import numpy as np
import pytest

import reference
import rnnkern
from backend_swap import on_backend, parts
from conftest import assert_close
from rnnkern._backend import cpu_backend, numba_unavailable_reason

NO_NUMBA = numba_unavailable_reason()
pytestmark = pytest.mark.skipif(NO_NUMBA is not None, reason=f"numba: {NO_NUMBA}")

CELLS = [("RNN", {"nonlinearity": "tanh"}), ("RNN", {"nonlinearity": "relu"}), ("LSTM", {}),
         ("GRU", {"linear_before_reset": True}), ("GRU", {"linear_before_reset": False})]
IDS = ["rnn_tanh", "rnn_relu", "lstm", "gru", "gru_reset_after"]


def _numba(layer):
    return on_backend(layer, cpu_backend("numba"))


def _expected(kind, layer, x, state, options, bidirectional):
    sd = layer.state_dict()
    return reference.layer(kind, sd, x, state, num_layers=layer.num_layers, bidirectional=bidirectional,
                           **options)


def _check(kind, layer, x, state, options, dtype, bidirectional=False):
    y, state_n = layer(x, state)
    y_ref, state_ref = _expected(kind, layer, x, state, options, bidirectional)
    assert_close(y, y_ref, dtype)
    for got, want in zip(parts(state_n), parts(state_ref)):
        assert_close(got, want, dtype)


def _copies(layer, kind, options, dtype):
    """The layer as every constructor that left hidden_size=1 weights with arbitrary strides makes it."""
    sd = layer.state_dict()
    return {"from_state_dict": getattr(rnnkern, kind).from_state_dict(sd, dtype=dtype, **options),
            "deepcopy": copy.deepcopy(layer), "pickle": pickle.loads(pickle.dumps(layer))}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("kind,options", CELLS, ids=IDS)
def test_hidden_size_one_from_every_constructor(kind, options, bidirectional, dtype):
    base = getattr(rnnkern, kind)(4, 1, num_layers=2, bidirectional=bidirectional, dtype=dtype, seed=1, **options)
    x = np.random.default_rng(0).standard_normal((6, 3, 4)).astype(dtype)
    for name, layer in _copies(base, kind, options, dtype).items():
        layer = _numba(layer)
        _check(kind, layer, x, None, options, dtype, bidirectional)


def _views(batch, hidden, dtype, rng):
    """Initial states (1, batch, hidden) whose batch stride is below hidden elements, with their values."""
    row = rng.standard_normal((1, 1, hidden)).astype(dtype)
    full = rng.standard_normal((1, batch, hidden)).astype(dtype)
    flat = rng.standard_normal(batch + hidden).astype(dtype)
    overlapping = np.lib.stride_tricks.as_strided(flat, (1, batch, hidden), (0, flat.itemsize, flat.itemsize))
    return {"broadcast": np.broadcast_to(row, (1, batch, hidden)), "reversed": full[:, ::-1],
            "overlapping": overlapping}


@pytest.mark.parametrize("batch", [2, 5, 16])
@pytest.mark.parametrize("kind,options", CELLS, ids=IDS)
def test_initial_state_views(kind, options, batch):
    dtype, hidden = "float32", 4
    layer = _numba(getattr(rnnkern, kind)(3, hidden, dtype=dtype, seed=2, **options))
    rng = np.random.default_rng(batch)
    x = rng.standard_normal((5, batch, 3)).astype(dtype)
    for name, h0 in _views(batch, hidden, dtype, rng).items():
        state = (h0, h0[:, ::-1]) if kind == "LSTM" else h0
        _check(kind, layer, x, state, options, dtype)


def test_matmul_into_refuses_what_blas_cannot_take():
    """An operand with no BLAS leading dimension raises instead of reaching OpenBLAS."""
    from numba import njit

    from rnnkern._backend.numba.blas import AVAILABLE, describable, matmul_into

    if not AVAILABLE:
        pytest.skip("NumPy's BLAS is not scipy-openblas64: no compiled loop")

    @njit
    def product(a, b, c):
        matmul_into(a, b, c)

    rng = np.random.default_rng(0)
    b = rng.standard_normal((4, 6)).astype("f4")
    c = np.zeros((3, 6), "f4")
    broadcast = np.broadcast_to(rng.standard_normal((1, 4)).astype("f4"), (3, 4))
    assert not describable(broadcast) and not describable(b[::-1]) and not describable(b.T)
    for a, w in ((broadcast, b), (np.ones((3, 4), "f4"), b[::-1])):
        with pytest.raises(ValueError, match="BLAS can take"):
            product(a, w, c)
    # one row or one column: any stride is fine, the leading dimension comes from the shape
    one_row = np.lib.stride_tricks.as_strided(b, (1, 6), (4, 4))
    single = np.ascontiguousarray(b[:1])
    product(np.ones((3, 1), "f4"), one_row, c)
    np.testing.assert_allclose(c, np.ones((3, 1), "f4") @ single, rtol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_matmul_into_on_mkls_unpacked_gemm(dtype):
    """An MklMatrix operand goes to MKL's cblas_?gemm (the training loops' steps where the process runs
    MKL unpacked): row views of a wider buffer, one row, and the same refusals as OpenBLAS's."""
    from numba import njit

    from rnnkern._backend.numba import choice
    from rnnkern._backend.numba.blas import AVAILABLE, MklMatrix, matmul_into

    if not AVAILABLE or choice.mkl_unavailable_reason() is not None:
        pytest.skip("needs NumPy's scipy-openblas64 and MKL")

    @njit
    def product(a, b, c):
        matmul_into(a, MklMatrix(b), c)

    rng = np.random.default_rng(1)
    w = rng.standard_normal((7, 9)).astype(dtype)
    wide = rng.standard_normal((5, 12)).astype(dtype)
    for a in (wide[:, :7], wide[:1, 2:9], np.ascontiguousarray(wide[:3, :7])):
        out = np.full((2 * a.shape[0], 11), np.nan, dtype)[::2, :9]  # every other row of a wider buffer
        product(a, w, out)
        np.testing.assert_allclose(out, a.astype(np.float64) @ w, rtol=1e-5 if dtype == "float32" else 1e-12)
    with pytest.raises(ValueError, match="BLAS can take"):
        product(np.ones((3, 7), dtype), w[::-1], np.zeros((3, 9), dtype))
    with pytest.raises(ValueError, match="shapes do not match"):
        product(np.ones((3, 6), dtype), w, np.zeros((3, 9), dtype))
