"""The CPU backend with numba: NumpyBackend's arrays and GEMMs, each step's gate math one compiled kernel.

Same methods, arguments and results as ``NumpyBackend`` (see its docstrings); the kernels are in
``_numba_steps`` and mirror ``kernels/*.cuh``. Only the inference steps differ in what they leave
behind: the NumPy steps leave the activations in ``gh``, these leave ``gh`` as it was (only the
``*_train`` steps, which training calls, write the activations).
"""

import numba

from ._numba_steps import kernels_for
from ._numpy import NumpyBackend


class NumbaBackend(NumpyBackend):
    _kernels = f"numba {numba.__version__} fused kernels"

    # --- forward ----------------------------------------------------------------------------
    def rnn_step(self, gx, gh, h_out, nonlinearity):
        k = kernels_for(h_out.dtype)
        (k.rnn_tanh if nonlinearity == "tanh" else k.rnn_relu)(gx, gh, h_out)

    def lstm_step(self, gx, gh, c_prev, h_out, c_out):
        kernels_for(h_out.dtype).lstm_step(gx, gh, c_prev, h_out, c_out)

    def lstm_step_train(self, gx, gh, c_prev, h_out, c_out):
        kernels_for(h_out.dtype).lstm_step_train(gx, gh, c_prev, h_out, c_out)

    def gru_step(self, gx, gh, b_hn, h_prev, h_out, ghn_out=None):
        if ghn_out is not None:
            return self.gru_step_train(gx, gh, b_hn, h_prev, h_out, ghn_out)
        k = kernels_for(h_out.dtype)
        if b_hn is None:
            k.gru_step_nobias(gx, gh, h_prev, h_out)
        else:
            k.gru_step(gx, gh, b_hn, h_prev, h_out)

    def gru_step_train(self, gx, gh, b_hn, h_prev, h_out, ghn_out):
        k = kernels_for(h_out.dtype)
        if b_hn is None:
            k.gru_step_train_nobias(gx, gh, h_prev, h_out, ghn_out)
        else:
            k.gru_step_train(gx, gh, b_hn, h_prev, h_out, ghn_out)

    def gru_reset(self, gx, gh_rz, h_prev, rh_out):
        kernels_for(h_prev.dtype).gru_reset(gx, gh_rz, h_prev, rh_out)

    def gru_update(self, gx, gh_rz, gh_n, h_prev, h_out):
        kernels_for(h_out.dtype).gru_update(gx, gh_rz, gh_n, h_prev, h_out)

    def gru_update_train(self, gx, gh_rz, gh_n, h_prev, h_out):
        kernels_for(h_out.dtype).gru_update_train(gx, gh_rz, gh_n, h_prev, h_out)

    # --- backward ---------------------------------------------------------------------------
    def rnn_backward(self, h, dh, da_out, nonlinearity):
        k = kernels_for(h.dtype)
        (k.rnn_backward_tanh if nonlinearity == "tanh" else k.rnn_backward_relu)(h, dh, da_out)

    def lstm_backward(self, acts, c_prev, c, dh, dc, da_out, dc_prev_out):
        kernels_for(c.dtype).lstm_backward(acts, c_prev, c, dh, dc, da_out, dc_prev_out)

    def gru_backward(self, acts, ghn, h_prev, dh, dgx_out, dgh_out, dh_direct_out):
        kernels_for(h_prev.dtype).gru_backward(acts, ghn, h_prev, dh, dgx_out, dgh_out, dh_direct_out)

    def gru_backward_update(self, z, n, h_prev, dh, dgx_out, dh_direct_out):
        kernels_for(h_prev.dtype).gru_backward_update(z, n, h_prev, dh, dgx_out, dh_direct_out)

    def gru_backward_reset(self, r, h_prev, d_rh, dgx_out, dh_direct_out):
        kernels_for(h_prev.dtype).gru_backward_reset(r, h_prev, d_rh, dgx_out, dh_direct_out)
