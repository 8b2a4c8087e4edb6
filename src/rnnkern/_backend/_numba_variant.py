"""The numba backend's variant steps (ONNX's activations, clip, input_forget, peepholes): one compiled
kernel per step, mirroring kernels/variant.cuh, built per combination in use and memoised.

A Variant fixes the activations, their alpha/beta, the clip and the LSTM's options, so each is
compiled into its kernels as constants (numba treats closure variables as compile-time constants):
no per-element branch on the activation, and dead options cost nothing. Closures are not cached on
disk (numba cannot key them by their captured values), so a combination compiles once per process
on first use (a few seconds per cell kind); the default options never come here. Same arguments
and results as _numpy_variant.py.
"""

import functools
import math

import numpy as np
from numba import njit

from ._numba_math import JIT, apart, sigmoid, tanh

_JIT = {k: v for k, v in JIT.items() if k != "cache"}


def _scalar(act, dtype):
    """(f, f') of one activation as numba scalar functions of the pre-activation, in ``dtype``."""
    t = dtype.type
    one, zero = t(1), t(0)
    a = t(act.alpha if act.alpha is not None else 0)
    b = t(act.beta if act.beta is not None else 0)
    name = act.name

    if name == "Sigmoid":
        def f(x): return sigmoid(x)
        def df(x): s = sigmoid(x); return s * (one - s)  # noqa: E702
    elif name == "Tanh":
        def f(x): return tanh(x)
        def df(x): y = tanh(x); return one - y * y  # noqa: E702
    elif name == "Relu":
        def f(x): return zero if x < zero else x
        def df(x): return zero if x <= zero else one  # 1 at NaN, as torch's relu backward
    elif name == "HardSigmoid":
        def f(x): y = a * x + b; return zero if y < zero else (one if y > one else y)  # noqa: E702
        def df(x): y = a * x + b; return a if (y > zero and y < one) else zero  # noqa: E702
    elif name == "LeakyRelu":
        def f(x): return x if x >= zero else a * x
        def df(x): return one if x >= zero else a
    elif name == "ThresholdedRelu":
        def f(x): return x if x > a else zero
        def df(x): return one if x > a else zero
    elif name == "ScaledTanh":
        def f(x): return a * tanh(b * x)
        def df(x): y = tanh(b * x); return a * b * (one - y * y)  # noqa: E702
    elif name == "Elu":
        def f(x): return x if x >= zero else a * t(math.expm1(x))
        def df(x): return one if x >= zero else a * t(math.exp(x))
    elif name == "Softsign":
        def f(x): return x / (one + abs(x))
        def df(x): d = one + abs(x); return one / (d * d)  # noqa: E702
    elif name == "Softplus":
        def f(x): return (x if x > zero else zero) + t(math.log1p(math.exp(-abs(x))))
        def df(x): return sigmoid(x)
    elif name == "Affine":
        def f(x): return a * x + b
        def df(x): return a
    else:
        raise KeyError(f"no numba activation {name!r}")
    return njit(inline="always", **_JIT)(f), njit(inline="always", **_JIT)(df)


@functools.lru_cache(maxsize=None)
def kernels(variant, dtype_name):
    """The compiled steps of one Variant in one dtype (a namespace of functions)."""
    dtype = np.dtype(dtype_name)
    t = dtype.type
    one = t(1)
    acts = list(variant.acts) + [variant.acts[0]] * (3 - len(variant.acts))
    (F, dF), (G, dG), (Hc, dHc) = (_scalar(act, dtype) for act in acts)
    lim = t(variant.clip if variant.clip is not None else 0)
    clipped, input_forget, peephole = variant.clip is not None, variant.input_forget, variant.peephole
    inline = njit(inline="always", **_JIT)

    @inline
    def fa(x):
        return F((-lim if x < -lim else (lim if x > lim else x)) if clipped else x)

    @inline
    def ga(x):
        return G((-lim if x < -lim else (lim if x > lim else x)) if clipped else x)

    @inline
    def dfa(x):
        if clipped:
            return dF(-lim if x < -lim else (lim if x > lim else x)) * (one if (x >= -lim and x <= lim) else t(0))
        return dF(x)

    @inline
    def dga(x):
        if clipped:
            return dG(-lim if x < -lim else (lim if x > lim else x)) * (one if (x >= -lim and x <= lim) else t(0))
        return dG(x)

    jit = njit(**_JIT)

    @jit
    def rnn_step(gx, gh, h_out):
        for b in range(h_out.shape[0]):
            for j in range(h_out.shape[1]):
                a = gh[b, j] + gx[b, j]
                gh[b, j] = a
                h_out[b, j] = fa(a)

    @jit
    def rnn_backward(a, dh, da):
        for b in range(da.shape[0]):
            for j in range(da.shape[1]):
                da[b, j] = dh[b, j] * dfa(a[b, j])

    @jit
    def lstm_step(gx, gh, c_prev, p, h_out, c_out):
        H = h_out.shape[1]
        for b in range(h_out.shape[0]):
            for j in range(H):
                cp = c_prev[b, j]
                ai, af = gh[b, j] + gx[b, j], gh[b, H + j] + gx[b, H + j]
                if peephole:
                    ai += p[j] * cp
                    af += p[2 * H + j] * cp
                ag = gh[b, 2 * H + j] + gx[b, 2 * H + j]
                i = fa(ai)
                f = one - i if input_forget else fa(af)
                c = f * cp + i * ga(ag)
                ao = gh[b, 3 * H + j] + gx[b, 3 * H + j]
                if peephole:
                    ao += p[H + j] * c
                gh[b, j], gh[b, H + j], gh[b, 2 * H + j], gh[b, 3 * H + j] = ai, af, ag, ao
                h_out[b, j] = fa(ao) * Hc(c)
                c_out[b, j] = c

    @jit
    def lstm_backward(pre, c_prev, c, dh, dc, p, da, dc_prev):
        H = c.shape[1]
        for b in range(c.shape[0]):
            for j in range(H):
                ai, af, ag, ao = pre[b, j], pre[b, H + j], pre[b, 2 * H + j], pre[b, 3 * H + j]
                cp, cc, d = c_prev[b, j], c[b, j], dh[b, j]
                i, g, o = fa(ai), ga(ag), fa(ao)
                da_o = d * Hc(cc) * dfa(ao)
                dct = d * o * dHc(cc) + dc[b, j]
                if peephole:
                    dct += da_o * p[H + j]
                da_g = dct * i * dga(ag)
                if input_forget:
                    da_i = dct * (g - cp) * dfa(ai)
                    da_f = t(0)
                    dcp = dct * (one - i)
                else:
                    da_i = dct * g * dfa(ai)
                    da_f = dct * cp * dfa(af)
                    dcp = dct * fa(af)
                if peephole:
                    dcp += da_i * p[j] + da_f * p[2 * H + j]
                da[b, j], da[b, H + j], da[b, 2 * H + j], da[b, 3 * H + j] = da_i, da_f, da_g, da_o
                dc_prev[b, j] = dcp

    @jit
    def gru_step(gx, gh, b_hn, h_prev, h_out, ghn_out):
        H = h_out.shape[1]
        for b in range(h_out.shape[0]):
            for j in range(H):
                ar, az = gh[b, j] + gx[b, j], gh[b, H + j] + gx[b, H + j]
                r, z = fa(ar), fa(az)
                ghn = gh[b, 2 * H + j] + b_hn[j]
                an = ghn * r + gx[b, 2 * H + j]
                n = ga(an)
                gh[b, j], gh[b, H + j], gh[b, 2 * H + j], ghn_out[b, j] = ar, az, an, ghn
                h_out[b, j] = (h_prev[b, j] - n) * z + n

    @jit
    def gru_backward(pre, ghn, h_prev, dh, dgx, dgh, dh_direct):
        H = h_prev.shape[1]
        for b in range(h_prev.shape[0]):
            for j in range(H):
                ar, az, an, d = pre[b, j], pre[b, H + j], pre[b, 2 * H + j], dh[b, j]
                z, n = fa(az), ga(an)
                da_n = d * (one - z) * dga(an)
                da_r = da_n * ghn[b, j] * dfa(ar)
                da_z = d * (h_prev[b, j] - n) * dfa(az)
                dgx[b, j], dgx[b, H + j], dgx[b, 2 * H + j] = da_r, da_z, da_n
                dgh[b, j], dgh[b, H + j], dgh[b, 2 * H + j] = da_r, da_z, da_n * fa(ar)
                dh_direct[b, j] = d * z

    @jit
    def gru_reset(gx, gh_rz, h_prev, rh_out):
        for b in range(h_prev.shape[0]):
            for j in range(h_prev.shape[1]):
                ar = gh_rz[b, j] + gx[b, j]
                gh_rz[b, j] = ar
                rh_out[b, j] = fa(ar) * h_prev[b, j]

    @jit
    def gru_update(gx, gh_rz, gh_n, h_prev, h_out):
        H = h_out.shape[1]
        for b in range(h_out.shape[0]):
            for j in range(H):
                az, an = gh_rz[b, H + j] + gx[b, H + j], gh_n[b, j] + gx[b, 2 * H + j]
                gh_rz[b, H + j], gh_n[b, j] = az, an
                z, n = fa(az), ga(an)
                h_out[b, j] = (h_prev[b, j] - n) * z + n

    @jit
    def gru_backward_update(a_z, a_n, h_prev, dh, dgx, dh_direct):
        H = h_prev.shape[1]
        for b in range(h_prev.shape[0]):
            for j in range(H):
                az, an, d = a_z[b, j], a_n[b, j], dh[b, j]
                z, n = fa(az), ga(an)
                dgx[b, 2 * H + j] = d * (one - z) * dga(an)
                dgx[b, H + j] = d * (h_prev[b, j] - n) * dfa(az)
                dh_direct[b, j] = d * z

    @jit
    def gru_backward_reset(a_r, h_prev, d_rh, dgx, dh_direct):
        for b in range(h_prev.shape[0]):
            for j in range(h_prev.shape[1]):
                ar = a_r[b, j]
                dgx[b, j] = d_rh[b, j] * h_prev[b, j] * dfa(ar)
                dh_direct[b, j] = dh_direct[b, j] + d_rh[b, j] * fa(ar)

    return dict(rnn_step=rnn_step, rnn_backward=rnn_backward, lstm_step=lstm_step, lstm_backward=lstm_backward,
                gru_step=gru_step, gru_backward=gru_backward, gru_reset=gru_reset, gru_update=gru_update,
                gru_backward_update=gru_backward_update, gru_backward_reset=gru_backward_reset)


@functools.lru_cache(maxsize=None)
def _zeros(size, dtype_name):
    """A vector of zeros, made once per size and dtype, that the kernels only read: it stands in for an
    absent peephole (never read) or b_hn (added as zeros), so that no step allocates one. (Writable, so
    that numba compiles the kernel for one array type, not also a read-only one.)"""
    return np.zeros(size, dtype_name)


class NumbaVariantSteps:
    """NumpyVariantSteps' methods, each one compiled kernel (see the module docstring)."""

    def rnn_step_v(self, v, gx, gh, h_out):
        kernels(v, h_out.dtype.name)["rnn_step"](gx, gh, h_out)

    def rnn_backward_v(self, v, a, dh, da_out):
        kernels(v, da_out.dtype.name)["rnn_backward"](a, dh, da_out)

    def lstm_step_v(self, v, gx, gh, c_prev, p, h_out, c_out):
        p = _zeros(1, h_out.dtype.name) if p is None else p
        kernels(v, h_out.dtype.name)["lstm_step"](gx, gh, apart(c_prev, c_out), p, h_out, c_out)

    def lstm_backward_v(self, v, pre, c_prev, c, dh, dc, p, da_out, dc_prev_out):
        p = _zeros(1, c.dtype.name) if p is None else p
        kernels(v, c.dtype.name)["lstm_backward"](pre, c_prev, c, dh, dc, p, da_out, dc_prev_out)

    def gru_step_v(self, v, gx, gh, b_hn, h_prev, h_out, ghn_out):
        b_hn = _zeros(h_out.shape[1], h_out.dtype.name) if b_hn is None else b_hn
        kernels(v, h_out.dtype.name)["gru_step"](gx, gh, b_hn, apart(h_prev, h_out), h_out, ghn_out)

    def gru_backward_v(self, v, pre, ghn, h_prev, dh, dgx_out, dgh_out, dh_direct_out):
        kernels(v, h_prev.dtype.name)["gru_backward"](pre, ghn, h_prev, dh, dgx_out, dgh_out, dh_direct_out)

    def gru_reset_v(self, v, gx, gh_rz, h_prev, rh_out):
        kernels(v, h_prev.dtype.name)["gru_reset"](gx, gh_rz, h_prev, rh_out)

    def gru_update_v(self, v, gx, gh_rz, gh_n, h_prev, h_out):
        kernels(v, h_out.dtype.name)["gru_update"](gx, gh_rz, gh_n, apart(h_prev, h_out), h_out)

    def gru_backward_update_v(self, v, a_z, a_n, h_prev, dh, dgx_out, dh_direct_out):
        kernels(v, h_prev.dtype.name)["gru_backward_update"](a_z, a_n, h_prev, dh, dgx_out, dh_direct_out)

    def gru_backward_reset_v(self, v, a_r, h_prev, d_rh, dgx_out, dh_direct_out):
        kernels(v, h_prev.dtype.name)["gru_backward_reset"](a_r, h_prev, d_rh, dgx_out, dh_direct_out)
