"""The step API of the layer-normalised cells (rnnkern/_recurrences/layernorm_math.py) on every CPU
backend that has it: lnlstm_step / lnlstm_backward / lngru_step / lngru_backward against float64
formulas written out here, on row views of larger buffers (row stride != width), with the aliases the
recurrences use (h_out = h_prev, c_out = c_prev, dc_prev_out = dc), and the three zoneout forms."""

import numpy as np
import pytest

from layernorm_cases import ln_backends
from rnnkern._backend import cpu_backend
from rnnkern._recurrences.layernorm_math import EPS, LNGRUNorms, LNLSTMNorms, Zoneout

TOL = {"float64": 1e-12, "float32": 2e-5}


def ln(a, gamma, beta=0.0):
    return (a - a.mean(-1, keepdims=True)) / np.sqrt(a.var(-1, keepdims=True) + EPS) * gamma + beta


def sig(a):
    return 1 / (1 + np.exp(-a))


def view(rng, B, W, dtype, fill=None):
    """A (B, W) view of a (B + 2, W + 3) buffer: a row prefix, a column offset, row stride W + 3."""
    buf = rng.standard_normal((B + 2, W + 3)).astype(dtype)
    v = buf[:B, 1:1 + W]
    if fill is not None:
        v[...] = fill
    return v


def zoneouts(mode, rng, B, H, dtype):
    if mode == "none":
        return Zoneout(0.0, None), None
    if mode == "blend":
        return Zoneout(0.3, None), None
    mask = (rng.random((B, H)) > 0.4).astype(dtype)
    return Zoneout(0.4, mask), mask


def zone(mode, z, h_prev, h_new, mask):
    if mode == "none":
        return h_new
    return z.prob * h_prev + (1 - z.prob) * h_new if mode == "blend" else h_prev + mask * (h_new - h_prev)


@pytest.mark.parametrize("kernels", ln_backends())
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("mode", ["none", "blend", "mask"])
@pytest.mark.parametrize("B, H", [(3, 4), (1, 1), (2, 5)])
def test_lnlstm_step_and_backward(kernels, dtype, mode, B, H):
    bk, rng = cpu_backend(kernels), np.random.default_rng(B * 10 + H)
    gx, gh = view(rng, B, 4 * H, dtype), view(rng, B, 4 * H, dtype)
    h_prev, c_prev = view(rng, B, H, dtype), view(rng, B, H, dtype)
    norms = LNLSTMNorms(*(rng.standard_normal(n).astype(dtype) * 0.3 + s for n, s in ((4 * H, 1), (H, 1), (H, 0))))
    z, mask = zoneouts(mode, rng, B, H, dtype)
    x64 = {k: v.astype(np.float64) for k, v in dict(gx=gx, gh=gh, h=h_prev, c=c_prev).items()}
    n64 = [a.astype(np.float64) for a in norms]
    v = x64["gx"] + ln(x64["gh"], n64[0])
    i, f, g, o = sig(v[:, :H]), sig(v[:, H:2 * H]), np.tanh(v[:, 2 * H:3 * H]), sig(v[:, 3 * H:])
    c_new = f * x64["c"] + i * g
    h_new = zone(mode, z, x64["h"], o * np.tanh(ln(c_new, n64[1], n64[2])), mask)
    # inference, in place as the packed path runs it
    h_io, c_io = h_prev.copy(), c_prev.copy()
    bk.lnlstm_step(gx, gh.copy(), c_io, h_io, norms, z, h_io, c_io)
    np.testing.assert_allclose(h_io, h_new, rtol=TOL[dtype], atol=TOL[dtype])
    np.testing.assert_allclose(c_io, c_new, rtol=TOL[dtype], atol=TOL[dtype])
    saved = {"gates": view(rng, B, 4 * H, dtype), "hh_hat": view(rng, B, 4 * H, dtype), "c": view(rng, B, H, dtype),
             "c_hat": view(rng, B, H, dtype), "rstd": view(rng, B, 2, dtype)}
    h_out = view(rng, B, H, dtype)
    bk.lnlstm_step(gx, gh.copy(), c_prev, h_prev, norms, z, h_out, saved["c"], saved)
    np.testing.assert_allclose(h_out, h_new, rtol=TOL[dtype], atol=TOL[dtype])
    np.testing.assert_allclose(saved["gates"], np.hstack([i, f, g, o]), rtol=TOL[dtype], atol=TOL[dtype])
    # backward: autograd of the formulas above by hand, checked against central differences in float64
    dh, dc = view(rng, B, H, dtype), view(rng, B, H, dtype)
    outs = {k: view(rng, B, w, dtype) for k, w in (("dgx", 4 * H), ("dgh", 4 * H), ("dcn", H), ("direct", H))}
    dc_io = dc.copy()
    bk.lnlstm_backward(saved, c_prev, dh, dc_io, norms, z, outs["dgx"], outs["dgh"], dc_io,
                       outs["direct"] if mode != "none" else None, outs["dcn"])

    def loss(gh_, c_):
        vv = x64["gx"] + ln(gh_, n64[0])
        ii, ff, gg, oo = sig(vv[:, :H]), sig(vv[:, H:2 * H]), np.tanh(vv[:, 2 * H:3 * H]), sig(vv[:, 3 * H:])
        cc = ff * c_ + ii * gg
        hh = oo * np.tanh(ln(cc, n64[1], n64[2]))
        hh = mask * hh if mask is not None else (1 - z.prob) * hh  # the part of h' that depends on gh and c
        return (hh * dh.astype(np.float64)).sum() + (cc * dc.astype(np.float64)).sum()

    tol = 1e-6 if dtype == "float64" else 1e-3
    np.testing.assert_allclose(outs["dgh"], numeric(lambda a: loss(a, x64["c"]), x64["gh"]), rtol=tol, atol=tol)
    np.testing.assert_allclose(dc_io, numeric(lambda a: loss(x64["gh"], a), x64["c"]), rtol=tol, atol=tol)
    if mode != "none":  # the blend's backward too (the numba and CUDA steps differentiate it alike)
        bypass = (1 - mask) * dh if mask is not None else z.prob * dh
        np.testing.assert_allclose(outs["direct"], bypass, rtol=TOL[dtype], atol=TOL[dtype])


@pytest.mark.parametrize("kernels", ln_backends())
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("mode", ["none", "blend", "mask"])
@pytest.mark.parametrize("B, H", [(3, 4), (1, 1)])
def test_lngru_step_and_backward(kernels, dtype, mode, B, H):
    bk, rng = cpu_backend(kernels), np.random.default_rng(B * 10 + H + 5)
    gx, gh, h_prev = view(rng, B, 3 * H, dtype), view(rng, B, 3 * H, dtype), view(rng, B, H, dtype)
    norms = LNGRUNorms((1 + 0.3 * rng.standard_normal(3 * H)).astype(dtype), rng.standard_normal(3 * H).astype(dtype))
    z, mask = zoneouts(mode, rng, B, H, dtype)
    g64, x64, h64 = gh.astype(np.float64), gx.astype(np.float64), h_prev.astype(np.float64)
    gamma, b_hh = (a.astype(np.float64) for a in norms)

    def forward(gh_, h_):
        u = ln(gh_, gamma) + b_hh
        r, zz = sig(x64[:, :H] + u[:, :H]), sig(x64[:, H:2 * H] + u[:, H:2 * H])
        n = np.tanh(x64[:, 2 * H:] + r * u[:, 2 * H:])
        return zone(mode, z, h_, (1 - zz) * n + zz * h_, mask)

    h_io = h_prev.copy()
    bk.lngru_step(gx, gh.copy(), h_io, norms, z, h_io)
    np.testing.assert_allclose(h_io, forward(g64, h64), rtol=TOL[dtype], atol=TOL[dtype])
    saved = {"gates": view(rng, B, 3 * H, dtype), "hh_hat": view(rng, B, 3 * H, dtype), "rstd": view(rng, B, 1, dtype)}
    h_out = view(rng, B, H, dtype)
    bk.lngru_step(gx, gh.copy(), h_prev, norms, z, h_out, saved)
    np.testing.assert_allclose(h_out, forward(g64, h64), rtol=TOL[dtype], atol=TOL[dtype])
    dh = view(rng, B, H, dtype)
    outs = {k: view(rng, B, w, dtype) for k, w in (("dgx", 3 * H), ("dghn", 3 * H), ("dgh", 3 * H), ("direct", H))}
    bk.lngru_backward(saved, h_prev, dh, norms, z, outs["dgx"], outs["dghn"], outs["dgh"], outs["direct"])

    def loss(gh_, h_):
        return (forward(gh_, h_) * dh.astype(np.float64)).sum()

    tol = 1e-6 if dtype == "float64" else 1e-3
    np.testing.assert_allclose(outs["dgh"], numeric(lambda a: loss(a, h64), g64), rtol=tol, atol=tol)
    # dh_prev = dgh_n-free part: direct + (gradient through gh, which the recurrence adds via W_hh)
    np.testing.assert_allclose(outs["direct"], numeric(lambda a: loss(g64, a), h64), rtol=tol, atol=tol)


def numeric(f, a, eps=1e-6):
    """Central differences of the scalar f at a (float64)."""
    grad = np.empty_like(a)
    for idx in np.ndindex(a.shape):
        up, down = a.copy(), a.copy()
        up[idx] += eps
        down[idx] -= eps
        grad[idx] = (f(up) - f(down)) / (2 * eps)
    return grad
