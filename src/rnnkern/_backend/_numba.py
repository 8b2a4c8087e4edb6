"""The CPU backend with numba: NumpyBackend's arrays and GEMMs, each step's gate math one compiled kernel.

Same methods, arguments and results as ``NumpyBackend`` (see its docstrings); the kernels are in
``_numba_steps`` and mirror ``kernels/*.cuh``. Only the inference steps differ in what they leave
behind: the NumPy steps leave the activations in ``gh``, these leave ``gh`` as it was (only the
``*_train`` steps, which training calls, write the activations).
"""

import numba
import numpy as np

from .._recurrence import GRURecurrence, LSTMRecurrence, RNNRecurrence
from . import _numba_blas
from . import _numba_loops as loops
from . import _numba_steps as k
from ._numba_math import apart
from ._numba_variant import NumbaVariantSteps
from ._numpy import NumpyBackend

# Batches up to this size run the compiled time loop (_numba_loops); larger ones the Python loop,
# whose per-step cost is small beside their GEMMs (see benchmarks/RESULTS.md).
LOOP_MAX_BATCH = 16


class NumbaBackend(NumbaVariantSteps, NumpyBackend):  # variant steps (ONNX options): _numba_variant
    _kernels = f"numba {numba.__version__} fused kernels"

    # --- the compiled time loop --------------------------------------------------------------
    def time_loop(self, rec, gx, w_hh, b_hn, h0, out, reverse, c):
        """Run ``_sequence.run_direction``'s loop compiled, when it can: returns False (having done
        nothing) for what the compiled loops do not cover, and the Python loop runs instead."""
        T, B, H = out.shape
        if not self._loop_covers(rec, gx, w_hh, h0, c, out, B, H):
            return False
        w_t, dtype = w_hh.T, out.dtype
        # An initial state BLAS cannot take as it is (broadcast, reversed or overlapping rows) is
        # copied: B*H values, against a silently wrong product (issue 15).
        h0 = h0 if _numba_blas.describable(h0) else np.ascontiguousarray(h0)
        if isinstance(rec, GRURecurrence) and not rec.linear_before_reset:
            bufs = (np.empty((B, 2 * H), dtype), np.empty((B, H), dtype), np.empty((B, H), dtype))
        else:
            bufs = (np.empty((B, rec.gates * H), dtype),)
        b_hn = np.zeros(H, dtype) if b_hn is None else b_hn
        c_spare = None if c is None else np.empty_like(c)  # the LSTM loop alternates c and c_spare
        h_prev = h0
        starts = range(0, T, gx.chunk_steps)
        for start in (reversed(starts) if reverse else starts):
            start, block = gx.block(start)  # the input projection of this chunk of steps
            steps = out[start:start + block.shape[0]]
            if isinstance(rec, LSTMRecurrence):
                loops.lstm(block, w_t, h_prev, c, c_spare, steps, reverse, *bufs)
            elif isinstance(rec, RNNRecurrence):
                loops.rnn(block, w_t, h_prev, steps, reverse, rec.nonlinearity == "relu", *bufs)
            elif rec.linear_before_reset:
                loops.gru(block, w_t, b_hn, h_prev, steps, reverse, *bufs)
            else:
                loops.gru_reset_after(block, w_t, h_prev, steps, reverse, *bufs)
            h_prev = steps[0 if reverse else -1]
        return True

    @staticmethod
    def _loop_covers(rec, gx, w_hh, h0, c, out, B, H):
        """Whether a compiled loop computes exactly this recurrence: a known cell with nothing added
        (a projection, say, changes the shapes checked here), the input projected in chunks
        (_sequence.InputProjection), W_hh^T and every output step a row-major matrix BLAS can take
        (the initial state is copied when it is not, see time_loop)."""
        return (_numba_blas.AVAILABLE and B <= LOOP_MAX_BATCH and out.dtype in (np.float32, np.float64)
                and type(rec) in (RNNRecurrence, LSTMRecurrence, GRURecurrence) and hasattr(gx, "block")
                and rec.hidden_size == H and w_hh.shape == (rec.gates * H, H) and h0.shape == (B, H)
                and _numba_blas.describable(w_hh.T) and _numba_blas.describable(out[0])
                and (c is None) == (not rec.has_cell_state) and (c is None or c.strides[-1] == out.itemsize))

    # --- forward ----------------------------------------------------------------------------
    def rnn_step(self, gx, gh, h_out, nonlinearity):
        (k.rnn_tanh if nonlinearity == "tanh" else k.rnn_relu)(gx, gh, h_out)

    def lstm_step(self, gx, gh, c_prev, h_out, c_out):
        k.lstm_step(gx, gh, apart(c_prev, c_out), h_out, c_out)

    def lstm_step_train(self, gx, gh, c_prev, h_out, c_out):
        k.lstm_step_train(gx, gh, apart(c_prev, c_out), h_out, c_out)

    def gru_step(self, gx, gh, b_hn, h_prev, h_out, ghn_out=None):
        if ghn_out is not None:
            return self.gru_step_train(gx, gh, b_hn, h_prev, h_out, ghn_out)
        if b_hn is None:
            k.gru_step_nobias(gx, gh, apart(h_prev, h_out), h_out)
        else:
            k.gru_step(gx, gh, b_hn, apart(h_prev, h_out), h_out)

    def gru_step_train(self, gx, gh, b_hn, h_prev, h_out, ghn_out):
        if b_hn is None:
            k.gru_step_train_nobias(gx, gh, apart(h_prev, h_out), h_out, ghn_out)
        else:
            k.gru_step_train(gx, gh, b_hn, apart(h_prev, h_out), h_out, ghn_out)

    def gru_reset(self, gx, gh_rz, h_prev, rh_out):
        k.gru_reset(gx, gh_rz, h_prev, rh_out)

    def gru_update(self, gx, gh_rz, gh_n, h_prev, h_out):
        k.gru_update(gx, gh_rz, gh_n, apart(h_prev, h_out), h_out)

    def gru_update_train(self, gx, gh_rz, gh_n, h_prev, h_out):
        k.gru_update_train(gx, gh_rz, gh_n, apart(h_prev, h_out), h_out)

    # --- backward ---------------------------------------------------------------------------
    def rnn_backward(self, h, dh, da_out, nonlinearity):
        (k.rnn_backward_tanh if nonlinearity == "tanh" else k.rnn_backward_relu)(h, dh, da_out)

    def lstm_backward(self, acts, c_prev, c, dh, dc, da_out, dc_prev_out):
        k.lstm_backward(acts, c_prev, c, dh, apart(dc, dc_prev_out), da_out, dc_prev_out)

    def gru_backward(self, acts, ghn, h_prev, dh, dgx_out, dgh_out, dh_direct_out):
        k.gru_backward(acts, ghn, h_prev, dh, dgx_out, dgh_out, dh_direct_out)

    def gru_backward_update(self, z, n, h_prev, dh, dgx_out, dh_direct_out):
        k.gru_backward_update(z, n, h_prev, dh, dgx_out, dh_direct_out)

    def gru_backward_reset(self, r, h_prev, d_rh, dgx_out, dh_direct_out):
        k.gru_backward_reset(r, h_prev, d_rh, dgx_out, dh_direct_out)

