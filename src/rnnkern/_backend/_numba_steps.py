"""The CPU's fused step kernels, compiled by numba: one kernel per step, one pass over the gates.

Each kernel transcribes one function of ``kernels/*.cuh`` (same names, same formulas, same
argument order), looping over the batch rows and the H columns of each gate block. Arrays are
(B, G*H) row blocks as the GEMMs leave them; a row's gate k is columns [k*H, (k+1)*H).
Outputs may alias inputs element for element (``c_out`` and ``c_prev``, ``h_out`` and ``h_prev``),
as in the GPU kernels. numba compiles each for the dtype (float32 or float64) and memory layout
it is called with, and caches the machine code on disk where numba finds a writable folder
(``_numba_math.COMPILE_CACHE``; otherwise each process compiles in memory).
"""

import numpy as np
from numba import njit

from ._numba_math import JIT, sigmoid, tanh

ONE, ZERO = np.float32(1), np.float32(0)  # float32: exact, and they keep float32 math in float32


@njit(inline="always", **JIT)
def dsigmoid(s):
    return s * (ONE - s)


# --- rnn.cuh --------------------------------------------------------------------------
@njit(**JIT)
def rnn_tanh(gx, gh, h):
    for b in range(h.shape[0]):
        for j in range(h.shape[1]):
            h[b, j] = tanh(gx[b, j] + gh[b, j])


@njit(**JIT)
def rnn_relu(gx, gh, h):
    for b in range(h.shape[0]):
        for j in range(h.shape[1]):
            a = gx[b, j] + gh[b, j]
            h[b, j] = ZERO if a < ZERO else a  # NaN propagates, as with np.maximum


@njit(**JIT)
def rnn_backward_tanh(h, dh, da):
    for b in range(h.shape[0]):
        for j in range(h.shape[1]):
            da[b, j] = (ONE - h[b, j] * h[b, j]) * dh[b, j]


@njit(**JIT)
def rnn_backward_relu(h, dh, da):
    for b in range(h.shape[0]):
        for j in range(h.shape[1]):
            # torch's threshold_backward, a select: a NaN output (NaN <= 0 is false) passes dh on
            da[b, j] = ZERO if h[b, j] <= ZERO else dh[b, j]

# --- lstm.cuh: gates i, f, g, o -------------------------------------------------------
@njit(inline="always", **JIT)
def lstm_cell(gx_i, gx_f, gx_g, gx_o, gh_i, gh_f, gh_g, gh_o, c_prev):
    """rk_lstm_step_train on scalars: (i, f, g, o, h, c). Inlined into the kernels by numba
    (inline="always"): called as a function returning a tuple, it kept LLVM from vectorising the
    loop, 6x slower than NumPy; inlined, the loop runs 8 lanes wide."""
    i = sigmoid(gh_i + gx_i)
    f = sigmoid(gh_f + gx_f)
    g = tanh(gh_g + gx_g)
    o = sigmoid(gh_o + gx_o)
    c = f * c_prev + i * g
    return i, f, g, o, tanh(c) * o, c


@njit(**JIT)
def lstm_step(gx, gh, c_prev, h_out, c_out):
    H = h_out.shape[1]
    for b in range(h_out.shape[0]):
        for j in range(H):
            _, _, _, _, h, c = lstm_cell(gx[b, j], gx[b, H + j], gx[b, 2 * H + j], gx[b, 3 * H + j], gh[b, j],
                                         gh[b, H + j], gh[b, 2 * H + j], gh[b, 3 * H + j], c_prev[b, j])
            h_out[b, j] = h
            c_out[b, j] = c


# Kernels that store at several gate offsets of one array take each gate block as a row view of its
# own: indexed as one array at offsets k*H, LLVM sees stores at an unknown distance from the loads and
# does not vectorise the loop (lstm_step_train ran 3-4x slower than NumPy that way).
@njit(**JIT)
def lstm_step_train(gx, gh, c_prev, h_out, c_out):
    """lstm_step that also leaves the activations (i, f, g, o) in ``gh``."""
    H = h_out.shape[1]
    for b in range(h_out.shape[0]):
        gi, gf, gg, go = gh[b, :H], gh[b, H:2 * H], gh[b, 2 * H:3 * H], gh[b, 3 * H:]
        xi, xf, xg, xo = gx[b, :H], gx[b, H:2 * H], gx[b, 2 * H:3 * H], gx[b, 3 * H:]
        cp, ho, co = c_prev[b], h_out[b], c_out[b]
        for j in range(H):
            i, f, g, o, h, c = lstm_cell(xi[j], xf[j], xg[j], xo[j], gi[j], gf[j], gg[j], go[j], cp[j])
            gi[j], gf[j], gg[j], go[j], ho[j], co[j] = i, f, g, o, h, c


@njit(**JIT)
def lstm_backward(acts, c_prev, c, dh, dc, da, dc_prev):
    H = c.shape[1]
    for b in range(c.shape[0]):
        ai, af, ag, ao = acts[b, :H], acts[b, H:2 * H], acts[b, 2 * H:3 * H], acts[b, 3 * H:]
        di, df, dg, do = da[b, :H], da[b, H:2 * H], da[b, 2 * H:3 * H], da[b, 3 * H:]
        for j in range(H):
            i, f, g, o = ai[j], af[j], ag[j], ao[j]
            tc = tanh(c[b, j])
            do[j] = dh[b, j] * tc * dsigmoid(o)
            dct = dh[b, j] * o * (ONE - tc * tc) + dc[b, j]  # total gradient into c
            di[j] = dct * g * dsigmoid(i)
            df[j] = dct * c_prev[b, j] * dsigmoid(f)
            dg[j] = dct * i * (ONE - g * g)
            dc_prev[b, j] = dct * f


# --- gru.cuh: gates r, z, n -----------------------------------------------------------
@njit(inline="always", **JIT)
def gru_cell(gx_r, gx_z, gx_n, gh_r, gh_z, gh_n, b_hn, h_prev):
    """rk_gru_step_train on scalars (linear_before_reset=True): (r, z, n, ghn, h)."""
    r = sigmoid(gh_r + gx_r)
    z = sigmoid(gh_z + gx_z)
    ghn = gh_n + b_hn
    n = tanh(ghn * r + gx_n)
    return r, z, n, ghn, (h_prev - n) * z + n


@njit(**JIT)
def gru_step(gx, gh, b_hn, h_prev, h_out):
    H = h_out.shape[1]
    for b in range(h_out.shape[0]):
        for j in range(H):
            h_out[b, j] = gru_cell(gx[b, j], gx[b, H + j], gx[b, 2 * H + j], gh[b, j], gh[b, H + j],
                                   gh[b, 2 * H + j], b_hn[j], h_prev[b, j])[4]


@njit(**JIT)
def gru_step_nobias(gx, gh, h_prev, h_out):
    H = h_out.shape[1]
    for b in range(h_out.shape[0]):
        for j in range(H):
            h_out[b, j] = gru_cell(gx[b, j], gx[b, H + j], gx[b, 2 * H + j], gh[b, j], gh[b, H + j],
                                   gh[b, 2 * H + j], ZERO, h_prev[b, j])[4]


@njit(inline="always", **JIT)
def _gru_step_train(gx, gh, b_hn, h_prev, h_out, ghn_out):
    """gru_step that leaves (r, z, n) in ``gh`` and gh_n + b_hn in ``ghn_out``."""
    H = h_out.shape[1]
    for b in range(h_out.shape[0]):
        gr, gz, gn = gh[b, :H], gh[b, H:2 * H], gh[b, 2 * H:]
        for j in range(H):
            r, z, n, ghn, h = gru_cell(gx[b, j], gx[b, H + j], gx[b, 2 * H + j], gr[j], gz[j], gn[j], b_hn[j],
                                       h_prev[b, j])
            gr[j], gz[j], gn[j], ghn_out[b, j], h_out[b, j] = r, z, n, ghn, h


@njit(**JIT)
def gru_step_train(gx, gh, b_hn, h_prev, h_out, ghn_out):
    _gru_step_train(gx, gh, b_hn, h_prev, h_out, ghn_out)


@njit(**JIT)
def gru_step_train_nobias(gx, gh, h_prev, h_out, ghn_out):
    _gru_step_train(gx, gh, np.zeros(h_out.shape[1], gh.dtype), h_prev, h_out, ghn_out)


@njit(**JIT)
def gru_reset(gx, gh_rz, h_prev, rh_out):
    """linear_before_reset=False, phase 1: r into gh_rz's first H columns, rh = r * h_prev."""
    for b in range(h_prev.shape[0]):
        for j in range(h_prev.shape[1]):
            r = sigmoid(gh_rz[b, j] + gx[b, j])
            gh_rz[b, j] = r
            rh_out[b, j] = r * h_prev[b, j]


@njit(**JIT)
def gru_update(gx, gh_rz, gh_n, h_prev, h_out):
    """Phase 2: z = sigmoid(gx_z + gh_z), n = tanh(gx_n + gh_n), h = (1-z)*n + z*h_prev."""
    H = h_out.shape[1]
    for b in range(h_out.shape[0]):
        for j in range(H):
            z = sigmoid(gh_rz[b, H + j] + gx[b, H + j])
            n = tanh(gh_n[b, j] + gx[b, 2 * H + j])
            h_out[b, j] = (h_prev[b, j] - n) * z + n


@njit(**JIT)
def gru_update_train(gx, gh_rz, gh_n, h_prev, h_out):
    """gru_update that leaves z in gh_rz's last H columns and n in gh_n."""
    H = h_out.shape[1]
    for b in range(h_out.shape[0]):
        for j in range(H):
            z = sigmoid(gh_rz[b, H + j] + gx[b, H + j])
            n = tanh(gh_n[b, j] + gx[b, 2 * H + j])
            gh_rz[b, H + j], gh_n[b, j] = z, n
            h_out[b, j] = (h_prev[b, j] - n) * z + n

# --- gru_grad.cuh ---------------------------------------------------------------------
@njit(**JIT)
def gru_backward(acts, ghn, h_prev, dh, dgx, dgh, dh_direct):
    H = h_prev.shape[1]
    for b in range(h_prev.shape[0]):
        xr, xz, xn = dgx[b, :H], dgx[b, H:2 * H], dgx[b, 2 * H:]
        hr, hz, hn = dgh[b, :H], dgh[b, H:2 * H], dgh[b, 2 * H:]
        for j in range(H):
            r, z, n, d = acts[b, j], acts[b, H + j], acts[b, 2 * H + j], dh[b, j]
            da_n = d * (ONE - z) * (ONE - n * n)
            da_r = da_n * ghn[b, j] * dsigmoid(r)
            da_z = d * (h_prev[b, j] - n) * dsigmoid(z)
            xr[j], xz[j], xn[j] = da_r, da_z, da_n
            hr[j], hz[j], hn[j] = da_r, da_z, da_n * r
            dh_direct[b, j] = d * z


@njit(**JIT)
def gru_backward_update(z, n, h_prev, dh, dgx, dh_direct):
    H = h_prev.shape[1]
    for b in range(h_prev.shape[0]):
        for j in range(H):
            zz, nn, d = z[b, j], n[b, j], dh[b, j]
            dgx[b, 2 * H + j] = d * (ONE - zz) * (ONE - nn * nn)
            dgx[b, H + j] = d * (h_prev[b, j] - nn) * dsigmoid(zz)
            dh_direct[b, j] = d * zz


@njit(**JIT)
def gru_backward_reset(r, h_prev, d_rh, dgx, dh_direct):
    for b in range(h_prev.shape[0]):
        for j in range(h_prev.shape[1]):
            dgx[b, j] = d_rh[b, j] * h_prev[b, j] * dsigmoid(r[b, j])
            dh_direct[b, j] = dh_direct[b, j] + d_rh[b, j] * r[b, j]
