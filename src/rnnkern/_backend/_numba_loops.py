"""Whole time loops compiled: per step the recurrent GEMM (NumPy's BLAS, see _numba_blas) and the fused
step kernel, with no Python in between. At batch 1 the Python per step (a dozen calls, each
checking its arguments) costs as much as the step's GEMV; at large batch it is noise.

A loop runs the steps of one chunk of the input projection (gx, (steps, B, G*H)) in order, reading
h_prev and writing h into ``out`` (steps, B, H) and the cell state in place in ``c``; the caller
chains the chunks. ``w_t`` is W_hh^T (H, G*H), C-contiguous in the parameters' layout.
"""

from numba import njit

from ._numba_blas import matmul_into
from ._numba_math import JIT
from ._numba_steps import gru_reset, gru_step, gru_update, lstm_step, rnn_relu, rnn_tanh


@njit(**JIT)
def rnn(gx, w_t, h_prev, out, reverse, relu, gh):
    T = gx.shape[0]
    for s in range(T):
        t = T - 1 - s if reverse else s
        matmul_into(h_prev, w_t, gh)
        if relu:
            rnn_relu(gx[t], gh, out[t])
        else:
            rnn_tanh(gx[t], gh, out[t])
        h_prev = out[t]


@njit(**JIT)
def lstm(gx, w_t, h_prev, c, c_spare, out, reverse, gh):
    """The cell state alternates between ``c`` and ``c_spare`` (an output that overlaps its input
    would send LLVM's vectorised loop to its scalar fallback) and ends in ``c``."""
    T = gx.shape[0]
    c_prev, c_next = c, c_spare
    for s in range(T):
        t = T - 1 - s if reverse else s
        matmul_into(h_prev, w_t, gh)
        lstm_step(gx[t], gh, c_prev, out[t], c_next)
        h_prev = out[t]
        c_prev, c_next = c_next, c_prev
    if T % 2:
        c[...] = c_prev


@njit(**JIT)
def gru(gx, w_t, b_hn, h_prev, out, reverse, gh):
    """linear_before_reset=True."""
    T = gx.shape[0]
    for s in range(T):
        t = T - 1 - s if reverse else s
        matmul_into(h_prev, w_t, gh)
        gru_step(gx[t], gh, b_hn, h_prev, out[t])
        h_prev = out[t]


@njit(**JIT)
def gru_reset_after(gx, w_t, h_prev, out, reverse, gh_rz, gh_n, rh):
    """linear_before_reset=False: two GEMMs per step, the second on r * h_prev."""
    T, H = gx.shape[0], w_t.shape[0]
    for s in range(T):
        t = T - 1 - s if reverse else s
        matmul_into(h_prev, w_t[:, :2 * H], gh_rz)
        gru_reset(gx[t], gh_rz, h_prev, rh)
        matmul_into(rh, w_t[:, 2 * H:], gh_n)
        gru_update(gx[t], gh_rz, gh_n, h_prev, out[t])
        h_prev = out[t]
