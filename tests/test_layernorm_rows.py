"""The input side's LayerNorm over all time steps (the backends' ``layer_norm_rows`` and
``layer_norm_rows_backward``; numba runs them as lnrows.py's kernels) on every CPU backend, against
float64 formulas written out here: the normalised rows, hat and rstd, the input's gradient, gamma's and
the bias's. Edge shapes (one row, one column), row views of larger buffers, and a column-strided view
(which the numba backend hands to the NumPy code)."""

import numpy as np
import pytest

from layernorm_cases import ln_backends
from rnnkern._backend import cpu_backend
from rnnkern._recurrences.layernorm_math import EPS

TOL = {"float64": 1e-12, "float32": 3e-5}
SHAPES = [(1, 1), (1, 7), (6, 1), (7, 5), (300, 64), (3, 2048)]


def reference(a, gamma, bias, dout):
    """float64: LN(a; gamma) + bias, hat, rstd, and the gradients of a, gamma and bias from dout."""
    a, gamma, dout = (v.astype(np.float64) for v in (a, gamma, dout))
    rstd = 1 / np.sqrt(a.var(-1, keepdims=True) + EPS)
    hat = (a - a.mean(-1, keepdims=True)) * rstd
    d = dout * gamma
    da = rstd * (d - d.mean(-1, keepdims=True) - hat * (d * hat).mean(-1, keepdims=True))
    y = hat * gamma + (0.0 if bias is None else bias.astype(np.float64))
    return y, hat, rstd, da, (dout * hat).sum(0), dout.sum(0)


def rows(rng, R, N, dtype, layout):
    """(R, N) values: contiguous, a row view of a wider buffer, or every other column of one."""
    if layout == "contiguous":
        return rng.standard_normal((R, N)).astype(dtype) * 3 + 1
    if layout == "row view":
        return (rng.standard_normal((R + 1, N + 3)).astype(dtype) * 3 + 1)[1:, 2:2 + N]
    return (rng.standard_normal((R, 2 * N)).astype(dtype) * 3 + 1)[:, ::2]


def close(got, want, dtype, scale=1.0):
    """Within the dtype's tolerance of the values' magnitude (or ``scale``, where that is bigger: the
    input's gradient is rstd times terms of dout*gamma's size, whose rounding rstd magnifies too)."""
    atol = TOL[dtype] * max(1.0, np.abs(want).max(), scale)
    np.testing.assert_allclose(got, want, rtol=TOL[dtype], atol=atol)


@pytest.mark.parametrize("kernels", ln_backends())
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("R, N", SHAPES)
@pytest.mark.parametrize("layout", ["contiguous", "row view", "column stride"])
@pytest.mark.parametrize("with_bias", [True, False])
def test_rows_forward_and_backward(kernels, dtype, R, N, layout, with_bias):
    bk, rng = cpu_backend(kernels), np.random.default_rng(R * 100 + N)
    a, dout = rows(rng, R, N, dtype, layout), rows(rng, R, N, dtype, layout)
    gamma = (rng.standard_normal(N) * 0.3 + 1).astype(dtype)
    bias = rng.standard_normal(N).astype(dtype) if with_bias else None
    y, hat, rstd, da, dgamma, dbias = reference(a, gamma, bias, dout)

    plain = a.copy()
    assert bk.layer_norm_rows(plain, gamma, bias) is plain
    close(plain, y, dtype)
    saved, hat_out, rstd_out = a.copy(), np.empty((R, N), dtype), np.empty((R, 1), dtype)
    bk.layer_norm_rows(saved, gamma, bias, hat_out, rstd_out)
    close(saved, y, dtype)
    close(hat_out, hat, dtype)
    close(rstd_out, rstd, dtype)

    dx_out = np.full((R, N), np.nan, dtype)
    kept = dout.copy()
    got = bk.layer_norm_rows_backward(dout, gamma, hat_out, rstd_out, dx_out)
    assert got[0] is dx_out and all(g.dtype == np.dtype(dtype) for g in got)
    close(dx_out, da, dtype, scale=rstd.max() * np.abs(dout * gamma).max())
    close(got[1], dgamma, dtype)
    close(got[2], dbias, dtype)
    np.testing.assert_array_equal(dout, kept)  # dout is only read


@pytest.mark.parametrize("kernels", ln_backends())
def test_backward_sums_keep_float32_digits(kernels):
    """Many rows of one value: a float32 running sum over the rows (NumPy's along axis 0 is one) drifts,
    by 2e-4 here; both backends sum them in float64."""
    bk = cpu_backend(kernels)
    R, N = 40000, 4
    dout = np.full((R, N), 1.1, np.float32)
    hat = np.tile(np.array([1.0, -1.0, 0.5, -0.5], np.float32), (R, 1))
    _, dgamma, dsum = bk.layer_norm_rows_backward(dout, np.ones(N, np.float32), hat, np.ones((R, 1), np.float32),
                                                  np.empty((R, N), np.float32))
    np.testing.assert_allclose(dsum, np.full(N, R * 1.1), rtol=1e-6)
    np.testing.assert_allclose(dgamma, R * 1.1 * hat[0].astype(np.float64), rtol=1e-6)
