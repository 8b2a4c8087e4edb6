"""Unrolling one layer and direction of a recurrence over time, in place.

The input projection of every time step is one GEMM; each step then runs only
the recurrent GEMM and the fused elementwise step, writing ``h`` straight into
the layer's output. Variable lengths use the packed-sequence trick: with the
batch sorted by decreasing length, the sequences still running at step t are a
prefix of the batch, so a step works on ``[:n_t]`` rows and needs no mask and
no per-sequence Python work.
"""

import numpy as np


def project_inputs(backend, x, w_ih, gx_bias, batch_first):
    """gx = x @ W_ih^T + bias for every time step at once, returned time-major (T, B, G*H).

    ``x`` is contiguous in the caller's layout; with batch_first the result is a
    transposed view of a (B, T, G*H) buffer, so no layout copy is made."""
    lead = x.shape[:2]
    gx = backend.xp.matmul(x.reshape(-1, x.shape[-1]), w_ih.T)
    if gx_bias is not None:
        gx += gx_bias
    gx = gx.reshape(*lead, w_ih.shape[0])
    return gx.transpose(1, 0, 2) if batch_first else gx


def run_direction(rec, gx, w_hh, b_hn, h0, c0, out, reverse, h_n, c_n):
    """Unroll over all T steps (equal lengths). ``out`` (T, B, H) receives every h;
    ``h_n``/``c_n`` receive the final state. ``c_n`` doubles as the running cell state."""
    T = gx.shape[0]
    ws = rec.workspace(gx.shape[1], gx.dtype)
    order = range(T - 1, -1, -1) if reverse else range(T)
    if c_n is not None:
        c_n[...] = c0
    h_prev = h0
    for t in order:
        rec.step(gx[t], h_prev, c_n, w_hh, b_hn, ws, out[t], c_n)
        h_prev = out[t]
    h_n[...] = h_prev


def run_direction_packed(rec, gx, w_hh, b_hn, h0, c0, out, reverse, active, h_n, c_n):
    """Unroll with variable lengths: the batch is sorted by decreasing length and
    ``active[t]`` sequences run at step t. ``h_n``/``c_n`` start as the initial
    state and are updated in place, so a finished sequence keeps its last state and
    a reversed one starts from h0 at its own last step. ``out`` rows past a
    sequence's length are left untouched (zero)."""
    ws = rec.workspace(gx.shape[1], gx.dtype)
    h_n[...] = h0
    if c_n is not None:
        c_n[...] = c0
    order = range(len(active) - 1, -1, -1) if reverse else range(len(active))
    for t in order:
        n = int(active[t])
        if n == 0:
            continue
        ws_n = {name: buf[:n] for name, buf in ws.items()}
        c = None if c_n is None else c_n[:n]
        rec.step(gx[t, :n], h_n[:n], c, w_hh, b_hn, ws_n, h_n[:n], c)
        out[t, :n] = h_n[:n]


def sort_plan(lengths, steps, batch):
    """(active sequences per step, batch order or None) for lengths (None = all full)."""
    if lengths is None:
        return np.full(steps, batch), None
    order = np.argsort(-lengths, kind="stable")
    active = (lengths[order][:, None] > np.arange(steps)).sum(axis=0)
    return active, (None if np.array_equal(order, np.arange(batch)) else order)


def take(backend, array, order, axis):
    return array.take(backend.asarray(order), axis=axis)
