"""Unrolling one layer and direction of a recurrence over time, in place.

The input projection is one GEMM per chunk of time steps; each step then runs only
the recurrent GEMM and the fused elementwise step, writing ``h`` straight into
the layer's output. Variable lengths use the packed-sequence trick: with the
batch sorted by decreasing length, the sequences still running at step t are a
prefix of the batch, so a step works on ``[:n_t]`` rows and needs no mask and
no per-sequence Python work.
"""

import numpy as np

from .ieee import nan_from_inf_expected


# Rows (time steps x batch) of one chunk of the input projection: large enough that the GEMM runs at
# full speed (the default configuration, 6400 rows, is two chunks), small enough that memory stays
# bounded by the chunk rather than by the sequence (an LSTM with H = 64 at 4096 rows: 4 MiB).
CHUNK_ROWS = 4096


class InputProjection:
    """gx = x @ W_ih^T + bias of every time step, time-major (T, B, G*H), computed a chunk of time
    steps at a time as the recurrence reaches them, into one buffer reused for every chunk.

    ``gx[t]`` and ``gx[t, :n]`` are views valid until a step of another chunk is asked for, which is
    how the recurrence uses them (in either direction). ``x`` is contiguous in the caller's layout;
    with batch_first a chunk is a transposed view of a (B, steps, G*H) block, so no layout copy is
    made of the output. With ``norm`` (gamma, (G*H,)), gx = LN(x @ W_ih^T; gamma) + bias: the
    layer-normalised cells' input side (layernorm_math.py)."""

    def __init__(self, backend, x, w_ih, bias, batch_first, norm=None):
        self.backend, self.x, self.w_ih, self.bias, self.batch_first = backend, x, w_ih, bias, batch_first
        self.norm = norm
        B, T = x.shape[:2] if batch_first else x.shape[1::-1]
        self.shape, self.dtype = (T, B, w_ih.shape[0]), x.dtype
        chunks = max(1, -(-T * B // CHUNK_ROWS))
        self.chunk_steps = -(-T // chunks)
        self._buffer = backend.empty((self.chunk_steps * B, w_ih.shape[0]), x.dtype)
        self._start, self._block = None, None

    def block(self, t):
        """(first step, gx of the chunk's steps (steps, B, G*H)) of the chunk holding step ``t``."""
        start = t - t % self.chunk_steps
        if start != self._start:
            self._block, self._start = self._project(start, min(start + self.chunk_steps, self.shape[0])), start
        return start, self._block

    @nan_from_inf_expected
    def _project(self, start, stop):
        x, xp, (_, B, G) = self.x, self.backend.xp, self.shape
        x = x[:, start:stop] if self.batch_first else x[start:stop]
        rows = x.shape[0] * x.shape[1]
        gx = self.backend.matmul(xp.ascontiguousarray(x).reshape(rows, x.shape[-1]), self.w_ih.T,
                                 out=self._buffer[:rows])
        if self.norm is not None:
            self.backend.layer_norm_rows(gx, self.norm, self.bias)
        elif self.bias is not None:
            gx += self.bias
        if self.batch_first:
            return gx.reshape(B, stop - start, G).transpose(1, 0, 2)
        return gx.reshape(stop - start, B, G)

    def __getitem__(self, index):
        t, rest = (index[0], index[1:]) if isinstance(index, tuple) else (index, ())
        start, block = self.block(int(t))
        return block[(t - start,) + rest]


def project_inputs(backend, x, w_ih, gx_bias, batch_first, norm=None):
    """The input projection of every time step, computed lazily in chunks (see InputProjection)."""
    return InputProjection(backend, x, w_ih, gx_bias, batch_first, norm)


@nan_from_inf_expected
def run_direction(rec, gx, w_hh, b_hn, h0, c0, out, reverse, h_n, c_n):
    """Unroll over all T steps (equal lengths). ``out`` (T, B, H) receives every h;
    ``h_n``/``c_n`` receive the final state. ``c_n`` doubles as the running cell state."""
    T = gx.shape[0]
    if c_n is not None:
        c_n[...] = c0
    time_loop = getattr(rec.backend, "time_loop", None)  # a compiled loop, where the backend has one
    if time_loop is not None and time_loop(rec, gx, w_hh, b_hn, h0, out, reverse, c_n):
        h_n[...] = out[0 if reverse else T - 1]
        return
    ws = rec.workspace(gx.shape[1], gx.dtype)
    order = range(T - 1, -1, -1) if reverse else range(T)
    h_prev = h0
    for t in order:
        rec.step(gx[t], h_prev, c_n, w_hh, b_hn, ws, out[t], c_n)
        h_prev = out[t]
    h_n[...] = h_prev


@nan_from_inf_expected
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
