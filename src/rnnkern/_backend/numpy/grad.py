"""The CPU backend's backward steps: gradients of one step's gate math, as NumPy, each cell once.

Each mirrors a fused backward kernel in ``kernels/``. Inputs are the gates in *gate form*, what the
forward step left behind (see ``_numpy.py``): their activations when ``m.saves_activations`` (the
default math), else their pre-activations (``m`` a ``_semantics.CellMath``). ``_value`` and ``_slope``
read an activation and its derivative off either form, so each backward below is written once for
every CellMath. Outputs are the gradients of the gate pre-activations, from which the caller's
GEMMs give dh_prev and the weights' gradients. Scratch arrays here are per call: the GPU kernels
need none.
"""

import numpy as np


def clipped(m, a):
    """clip(a) as ``m`` says (a itself without a clip)."""
    return a if m.clip is None else np.clip(a, -m.clip, m.clip)


def _value(m, saved_acts, act, x):
    """The activation of a gate in gate form ``x`` (saved_acts: m.saves_activations)."""
    return x if saved_acts else act(clipped(m, x))


def _slope(m, saved_acts, act, x):
    """d act(clip(a)) / da of a gate in gate form ``x``: from the output y (sigmoid y(1-y), tanh
    1-y^2) when activations are saved, else from the pre-activation a, zero where the clip bites."""
    if saved_acts:
        return x * (1 - x) if act.name == "Sigmoid" else 1 - x * x
    if m.clip is None:
        return act.grad(x)
    return act.grad(np.clip(x, -m.clip, m.clip)) * (np.abs(x) <= m.clip)


def blocks(array, count, H):
    """The ``count`` (3 or 4) gate blocks of ``array``, each H wide (spelt out: a generator costs a
    microsecond, which shows at batch 1)."""
    if count == 3:
        return array[..., :H], array[..., H:2 * H], array[..., 2 * H:]
    return array[..., :H], array[..., H:2 * H], array[..., 2 * H:3 * H], array[..., 3 * H:]


class NumpyGradSteps:
    def rnn_backward(self, m, saved, dh, da_out):
        """da = dh * f'(a), from h (m.saves_activations) or the pre-activation a."""
        sa = m.saves_activations
        if sa and m.acts[0].name == "Relu":
            # torch's threshold_backward: a select, so a NaN output (NaN <= 0 is false) passes dh
            np.copyto(da_out, dh)
            np.copyto(da_out, 0, where=saved <= 0)
        elif sa:  # tanh: 1 - h^2
            np.multiply(saved, saved, out=da_out)
            np.subtract(1, da_out, out=da_out)
            np.multiply(da_out, dh, out=da_out)
        else:
            np.multiply(dh, _slope(m, sa, m.acts[0], saved), out=da_out)

    def lstm_backward(self, m, gates, c_prev, c, dh, dc, p, da_out, dc_prev_out):
        """From the gates (i, f, g, o) in gate form, c_prev, c = c_t, dh and dc (gradient flowing into
        c_t from later steps): da_out = d(pre-activations) (B, 4H) and dc_prev_out (may alias dc).
        ``p``: the peephole vector (p_i, p_o, p_f) or None."""
        H, sa = c.shape[-1], m.saves_activations
        F, G, Hc = m.acts
        a_i, a_f, a_g, a_o = blocks(gates, 4, H)
        da_i, da_f, da_g, da_o = blocks(da_out, 4, H)
        i, g, o = _value(m, sa, F, a_i), _value(m, sa, G, a_g), _value(m, sa, F, a_o)
        hc = np.tanh(c) if sa else Hc(c)
        np.multiply(dh, hc, out=da_o)
        np.multiply(da_o, _slope(m, sa, F, a_o), out=da_o)
        dct = dh * o * (1 - hc * hc if Hc.name == "Tanh" else Hc.grad(c)) + dc  # total gradient into c_t
        if p is not None:
            dct += da_o * p[H:2 * H]
        np.multiply(dct, i, out=da_g)
        np.multiply(da_g, _slope(m, sa, G, a_g), out=da_g)
        if m.input_forget:  # c = (1 - i)*c_prev + i*g
            np.multiply(dct * (g - c_prev), _slope(m, sa, F, a_i), out=da_i)
            da_f[...] = 0
            np.multiply(dct, 1 - i, out=dc_prev_out)
        else:
            np.multiply(dct, g, out=da_i)
            np.multiply(da_i, _slope(m, sa, F, a_i), out=da_i)
            np.multiply(dct, c_prev, out=da_f)
            np.multiply(da_f, _slope(m, sa, F, a_f), out=da_f)
            np.multiply(dct, _value(m, sa, F, a_f), out=dc_prev_out)
        if p is not None:
            dc_prev_out += da_i * p[:H] + da_f * p[2 * H:]

    def gru_backward(self, m, gates, ghn, h_prev, dh, dgx_out, dgh_out, dh_direct_out):
        """linear_before_reset=True. From (r, z, n) in gate form, ghn = W_hn h + b_hn, h_prev and dh:
        the gradients of the input-side (dgx_out) and hidden-side (dgh_out) pre-activations, both
        (B, 3H), and the part of dh_prev that bypasses W_hh, dh*z."""
        H, sa = h_prev.shape[-1], m.saves_activations
        F, G = m.acts
        a_r, a_z, a_n = blocks(gates, 3, H)
        da_r, da_z, da_n = blocks(dgx_out, 3, H)
        z, n = _value(m, sa, F, a_z), _value(m, sa, G, a_n)
        np.multiply(dh * (1 - z), _slope(m, sa, G, a_n), out=da_n)
        np.multiply(da_n * ghn, _slope(m, sa, F, a_r), out=da_r)
        np.multiply(dh * (h_prev - n), _slope(m, sa, F, a_z), out=da_z)
        dgh_out[..., :2 * H] = dgx_out[..., :2 * H]
        np.multiply(da_n, _value(m, sa, F, a_r), out=dgh_out[..., 2 * H:])
        np.multiply(dh, z, out=dh_direct_out)

    def gru_backward_update(self, m, z, n, h_prev, dh, dgx_out, dh_direct_out):
        """linear_before_reset=False, phase 1, from z and n in gate form: dgx_out[:, H:] (da_z, da_n)
        and dh_direct_out = dh*z."""
        H, sa = h_prev.shape[-1], m.saves_activations
        F, G = m.acts
        a_z, a_n = z, n
        z, n = _value(m, sa, F, a_z), _value(m, sa, G, a_n)
        np.multiply(dh * (1 - z), _slope(m, sa, G, a_n), out=dgx_out[..., 2 * H:])
        np.multiply(dh * (h_prev - n), _slope(m, sa, F, a_z), out=dgx_out[..., H:2 * H])
        np.multiply(dh, z, out=dh_direct_out)

    def gru_backward_reset(self, m, r, h_prev, d_rh, dgx_out, dh_direct_out):
        """linear_before_reset=False, phase 2, from r in gate form and d_rh = da_n @ W_hn:
        dgx_out[:, :H] = da_r and dh_direct_out += d_rh * r."""
        H, sa = h_prev.shape[-1], m.saves_activations
        F = m.acts[0]
        np.multiply(d_rh * h_prev, _slope(m, sa, F, r), out=dgx_out[..., :H])
        dh_direct_out += d_rh * _value(m, sa, F, r)
