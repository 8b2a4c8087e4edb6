"""The CPU backend's backward steps: gradients of one step's gate math, as in-place NumPy.

Each mirrors a fused backward kernel in ``kernels/``. Inputs are the activations
the forward step left behind (see NumpyBackend); outputs are the gradients of the
gate pre-activations, from which the caller's GEMMs give dh_prev and the weights'
gradients. Scratch arrays here are per call: the GPU kernels need none.
"""

import numpy as np


class NumpyGradSteps:
    def rnn_backward(self, h, dh, da_out, nonlinearity):
        """da = dh * act'(a), from the output h: 1 - h^2 (tanh); relu: 0 where h <= 0, else dh."""
        if nonlinearity == "tanh":
            np.multiply(h, h, out=da_out)
            np.subtract(1, da_out, out=da_out)
            np.multiply(da_out, dh, out=da_out)
        else:  # torch's threshold_backward: a select, so a NaN output (NaN <= 0 is false) passes dh
            np.copyto(da_out, dh)
            np.copyto(da_out, 0, where=h <= 0)

    def lstm_backward(self, acts, c_prev, c, dh, dc, da_out, dc_prev_out):
        """From activations (i, f, g, o), c_prev, c = c_t, dh and dc (gradient flowing into c_t from
        later steps): da_out = d(pre-activations) (B, 4H) and dc_prev_out (may alias dc)."""
        H = c.shape[-1]
        i, f, g, o = (acts[..., k * H:(k + 1) * H] for k in range(4))
        da_i, da_f, da_g, da_o = (da_out[..., k * H:(k + 1) * H] for k in range(4))
        tc = np.tanh(c)
        np.multiply(dh, tc, out=da_o)          # do
        np.multiply(da_o, _dsigmoid(o), out=da_o)
        dct = dh * o * (1 - tc * tc) + dc      # total gradient into c_t
        np.multiply(dct, g, out=da_i)          # di
        np.multiply(da_i, _dsigmoid(i), out=da_i)
        np.multiply(dct, c_prev, out=da_f)     # df
        np.multiply(da_f, _dsigmoid(f), out=da_f)
        np.multiply(dct, i, out=da_g)          # dg
        np.multiply(da_g, 1 - g * g, out=da_g)
        np.multiply(dct, f, out=dc_prev_out)

    def gru_backward(self, acts, ghn, h_prev, dh, dgx_out, dgh_out, dh_direct_out):
        """linear_before_reset=True. From (r, z, n), ghn = W_hn h + b_hn, h_prev and dh: the
        gradients of the input-side (dgx_out) and hidden-side (dgh_out) pre-activations, both (B, 3H),
        and the part of dh_prev that bypasses W_hh, dh*z."""
        H = h_prev.shape[-1]
        r, z, n = acts[..., :H], acts[..., H:2 * H], acts[..., 2 * H:]
        da_r, da_z, da_n = dgx_out[..., :H], dgx_out[..., H:2 * H], dgx_out[..., 2 * H:]
        np.multiply(dh * (1 - z), 1 - n * n, out=da_n)
        np.multiply(da_n * ghn, _dsigmoid(r), out=da_r)
        np.multiply(dh * (h_prev - n), _dsigmoid(z), out=da_z)
        dgh_out[..., :2 * H] = dgx_out[..., :2 * H]
        np.multiply(da_n, r, out=dgh_out[..., 2 * H:])
        np.multiply(dh, z, out=dh_direct_out)

    def gru_backward_update(self, z, n, h_prev, dh, dgx_out, dh_direct_out):
        """linear_before_reset=False, phase 1, from the activations z and n: dgx_out[:, H:] (da_z, da_n)
        and dh_direct_out = dh*z."""
        H = h_prev.shape[-1]
        np.multiply(dh * (1 - z), 1 - n * n, out=dgx_out[..., 2 * H:])
        np.multiply(dh * (h_prev - n), _dsigmoid(z), out=dgx_out[..., H:2 * H])
        np.multiply(dh, z, out=dh_direct_out)

    def gru_backward_reset(self, r, h_prev, d_rh, dgx_out, dh_direct_out):
        """linear_before_reset=False, phase 2, from the activation r and d_rh = da_n @ W_hn:
        dgx_out[:, :H] = da_r and dh_direct_out += d_rh * r."""
        H = h_prev.shape[-1]
        np.multiply(d_rh * h_prev, _dsigmoid(r), out=dgx_out[..., :H])
        dh_direct_out += d_rh * r


def _dsigmoid(s):
    """sigmoid'(a) from s = sigmoid(a)."""
    return s * (1 - s)
