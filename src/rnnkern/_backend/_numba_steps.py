"""The CPU's fused step kernels, compiled by numba: one kernel per step, one pass over the gates.

Each kernel transcribes one function of ``kernels/*.cuh`` (same names, same formulas, same
argument order), looping over the batch rows and the H columns of each gate block. Arrays are
(B, G*H) row blocks as the GEMMs leave them; a row's gate k is columns [k*H, (k+1)*H).
Outputs may alias inputs element for element (``c_out`` and ``c_prev``, ``h_out`` and ``h_prev``),
as in the GPU kernels. numba compiles each for the dtype (float32 or float64) and memory layout
it is called with, and caches the machine code on disk (``cache=True``).
"""

import numpy as np
from numba import njit

from ._numba_math import JIT, sigmoid, tanh

ONE, ZERO = np.float32(1), np.float32(0)  # float32: exact, and they keep float32 math in float32


@njit(**JIT)
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
            da[b, j] = dh[b, j] * (ONE if h[b, j] > ZERO else ZERO)  # a multiply: NaN in dh propagates

# --- lstm.cuh: gates i, f, g, o -------------------------------------------------------
@njit(**JIT)
def lstm_cell(gx, gh, c_prev, b, j, H):
    i = sigmoid(gh[b, j] + gx[b, j])
    f = sigmoid(gh[b, H + j] + gx[b, H + j])
    g = tanh(gh[b, 2 * H + j] + gx[b, 2 * H + j])
    o = sigmoid(gh[b, 3 * H + j] + gx[b, 3 * H + j])
    c = f * c_prev[b, j] + i * g
    return i, f, g, o, tanh(c) * o, c


@njit(**JIT)
def lstm_step(gx, gh, c_prev, h_out, c_out):
    H = h_out.shape[1]
    for b in range(h_out.shape[0]):
        for j in range(H):
            _, _, _, _, h_out[b, j], c_out[b, j] = lstm_cell(gx, gh, c_prev, b, j, H)


@njit(**JIT)
def lstm_step_train(gx, gh, c_prev, h_out, c_out):
    """lstm_step that also leaves the activations (i, f, g, o) in ``gh``."""
    H = h_out.shape[1]
    for b in range(h_out.shape[0]):
        for j in range(H):
            gh[b, j], gh[b, H + j], gh[b, 2 * H + j], gh[b, 3 * H + j], h_out[b, j], c_out[b, j] = \
                lstm_cell(gx, gh, c_prev, b, j, H)


@njit(**JIT)
def lstm_backward(acts, c_prev, c, dh, dc, da, dc_prev):
    H = c.shape[1]
    for b in range(c.shape[0]):
        for j in range(H):
            i, f, g, o = acts[b, j], acts[b, H + j], acts[b, 2 * H + j], acts[b, 3 * H + j]
            tc = tanh(c[b, j])
            da[b, 3 * H + j] = dh[b, j] * tc * dsigmoid(o)
            dct = dh[b, j] * o * (ONE - tc * tc) + dc[b, j]  # total gradient into c
            da[b, j] = dct * g * dsigmoid(i)
            da[b, H + j] = dct * c_prev[b, j] * dsigmoid(f)
            da[b, 2 * H + j] = dct * i * (ONE - g * g)
            dc_prev[b, j] = dct * f

# --- gru.cuh: gates r, z, n -----------------------------------------------------------
@njit(**JIT)
def gru_cell(gx, gh, b_hn, h_prev, b, j, H):
    """linear_before_reset=True: (r, z, n, ghn, h)."""
    r = sigmoid(gh[b, j] + gx[b, j])
    z = sigmoid(gh[b, H + j] + gx[b, H + j])
    ghn = gh[b, 2 * H + j] + b_hn
    n = tanh(ghn * r + gx[b, 2 * H + j])
    return r, z, n, ghn, (h_prev[b, j] - n) * z + n


@njit(**JIT)
def gru_step(gx, gh, b_hn, h_prev, h_out):
    H = h_out.shape[1]
    for b in range(h_out.shape[0]):
        for j in range(H):
            h_out[b, j] = gru_cell(gx, gh, b_hn[j], h_prev, b, j, H)[4]


@njit(**JIT)
def gru_step_nobias(gx, gh, h_prev, h_out):
    H = h_out.shape[1]
    for b in range(h_out.shape[0]):
        for j in range(H):
            h_out[b, j] = gru_cell(gx, gh, ZERO, h_prev, b, j, H)[4]


@njit(**JIT)
def gru_step_train(gx, gh, b_hn, h_prev, h_out, ghn_out):
    """gru_step that leaves (r, z, n) in ``gh`` and gh_n + b_hn in ``ghn_out``."""
    H = h_out.shape[1]
    for b in range(h_out.shape[0]):
        for j in range(H):
            gh[b, j], gh[b, H + j], gh[b, 2 * H + j], ghn_out[b, j], h_out[b, j] = \
                gru_cell(gx, gh, b_hn[j], h_prev, b, j, H)


@njit(**JIT)
def gru_step_train_nobias(gx, gh, h_prev, h_out, ghn_out):
    H = h_out.shape[1]
    for b in range(h_out.shape[0]):
        for j in range(H):
            gh[b, j], gh[b, H + j], gh[b, 2 * H + j], ghn_out[b, j], h_out[b, j] = \
                gru_cell(gx, gh, ZERO, h_prev, b, j, H)


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
        for j in range(H):
            r, z, n, d = acts[b, j], acts[b, H + j], acts[b, 2 * H + j], dh[b, j]
            da_n = d * (ONE - z) * (ONE - n * n)
            da_r = da_n * ghn[b, j] * dsigmoid(r)
            da_z = d * (h_prev[b, j] - n) * dsigmoid(z)
            dgx[b, j], dgx[b, H + j], dgx[b, 2 * H + j] = da_r, da_z, da_n
            dgh[b, j], dgh[b, H + j], dgh[b, 2 * H + j] = da_r, da_z, da_n * r
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
