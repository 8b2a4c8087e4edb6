"""The CPU backend's variant steps: ONNX's activations, clip, input_forget and peepholes, in NumPy.

Each mirrors a variant kernel of kernels/variant.cuh (same arguments, same results). A variant
(``rnnkern._semantics.Variant``) fixes the activations and options, so these are whole-array
ufunc calls with no per-element branch. Unlike the default steps, the variant steps leave the
gate *pre-activations* in ``gh`` (peephole terms added, before the clip), and the backward steps
take those: the derivative of a clipped or piecewise activation needs its argument.
"""

import numpy as np


def _clip(v, a):
    return a if v.clip is None else np.clip(a, -v.clip, v.clip)


def _act(act, v, a):
    """act(clip(a))."""
    return act(_clip(v, a))


def _dact(act, v, a):
    """d act(clip(a)) / da: the activation's derivative, zero where the clip is active."""
    if v.clip is None:
        return act.grad(a)
    inside = np.abs(a) <= v.clip
    return act.grad(np.clip(a, -v.clip, v.clip)) * inside


def _blocks(array, count, H):
    return tuple(array[..., k * H:(k + 1) * H] for k in range(count))


def _peep(p, H):
    """(p_i, p_o, p_f) of a peephole vector in ONNX's order, or zeros-free None."""
    return None if p is None else (p[:H], p[H:2 * H], p[2 * H:])


class NumpyVariantSteps:
    # --- RNN -----------------------------------------------------------------------------------
    def rnn_step_v(self, v, gx, gh, h_out):
        """gh <- a = gx + gh; h_out = f(clip(a))."""
        np.add(gh, gx, out=gh)
        h_out[...] = _act(v.acts[0], v, gh)

    def rnn_backward_v(self, v, a, dh, da_out):
        np.multiply(dh, _dact(v.acts[0], v, a), out=da_out)

    # --- LSTM, gates i, f, g, o ---------------------------------------------------------------
    def lstm_step_v(self, v, gx, gh, c_prev, p, h_out, c_out):
        """Gates (i, f, g, o) = gx + gh (+ peepholes) left in gh; c = f*c_prev + i*g; h = o*h(c)."""
        H = c_prev.shape[-1]
        F, G, Hc = v.acts
        a_i, a_f, a_g, a_o = _blocks(np.add(gh, gx, out=gh), 4, H)
        peep = _peep(p, H)
        if peep:
            a_i += peep[0] * c_prev
            a_f += peep[2] * c_prev
        i = _act(F, v, a_i)
        f = 1 - i if v.input_forget else _act(F, v, a_f)
        c = f * c_prev + i * _act(G, v, a_g)
        c_out[...] = c  # c_out may be c_prev, read above
        if peep:
            a_o += peep[1] * c
        h_out[...] = _act(F, v, a_o) * Hc(c)

    def lstm_backward_v(self, v, pre, c_prev, c, dh, dc, p, da_out, dc_prev_out):
        """From the pre-activations (i, f, g, o), c_prev, c, dh and dc: da_out (B, 4H) and dc_prev_out
        (may alias dc)."""
        H = c.shape[-1]
        F, G, Hc = v.acts
        a_i, a_f, a_g, a_o = _blocks(pre, 4, H)
        da_i, da_f, da_g, da_o = _blocks(da_out, 4, H)
        i, g, o = _act(F, v, a_i), _act(G, v, a_g), _act(F, v, a_o)
        np.multiply(dh * Hc(c), _dact(F, v, a_o), out=da_o)
        dct = dh * o * Hc.grad(c) + dc  # total gradient into c
        peep = _peep(p, H)
        if peep:
            dct += da_o * peep[1]
        np.multiply(dct * i, _dact(G, v, a_g), out=da_g)
        if v.input_forget:  # c = (1 - i)*c_prev + i*g
            np.multiply(dct * (g - c_prev), _dact(F, v, a_i), out=da_i)
            da_f[...] = 0
            dc_prev = dct * (1 - i)
        else:
            np.multiply(dct * g, _dact(F, v, a_i), out=da_i)
            np.multiply(dct * c_prev, _dact(F, v, a_f), out=da_f)
            dc_prev = dct * _act(F, v, a_f)
        if peep:
            dc_prev += da_i * peep[0] + da_f * peep[2]
        dc_prev_out[...] = dc_prev

    # --- GRU, gates r, z, n --------------------------------------------------------------------
    def gru_step_v(self, v, gx, gh, b_hn, h_prev, h_out, ghn_out):
        """linear_before_reset=True: gh <- (a_r, a_z, a_n) with a_n = gx_n + r*(gh_n + b_hn);
        ghn_out = gh_n + b_hn; h = (1-z)*n + z*h_prev."""
        H = h_prev.shape[-1]
        F, G = v.acts
        a_rz = np.add(gh[..., :2 * H], gx[..., :2 * H], out=gh[..., :2 * H])
        r, z = _act(F, v, a_rz[..., :H]), _act(F, v, a_rz[..., H:])
        a_n = gh[..., 2 * H:]
        if b_hn is not None:
            np.add(a_n, b_hn, out=a_n)
        ghn_out[...] = a_n
        np.multiply(a_n, r, out=a_n)
        np.add(a_n, gx[..., 2 * H:], out=a_n)
        n = _act(G, v, a_n)
        h_out[...] = (h_prev - n) * z + n

    def gru_backward_v(self, v, pre, ghn, h_prev, dh, dgx_out, dgh_out, dh_direct_out):
        H = h_prev.shape[-1]
        F, G = v.acts
        a_r, a_z, a_n = _blocks(pre, 3, H)
        z, n = _act(F, v, a_z), _act(G, v, a_n)
        da_r, da_z, da_n = _blocks(dgx_out, 3, H)
        np.multiply(dh * (1 - z), _dact(G, v, a_n), out=da_n)
        np.multiply(da_n * ghn, _dact(F, v, a_r), out=da_r)
        np.multiply(dh * (h_prev - n), _dact(F, v, a_z), out=da_z)
        dgh_out[..., :2 * H] = dgx_out[..., :2 * H]
        np.multiply(da_n, _act(F, v, a_r), out=dgh_out[..., 2 * H:])
        np.multiply(dh, z, out=dh_direct_out)

    def gru_reset_v(self, v, gx, gh_rz, h_prev, rh_out):
        """linear_before_reset=False, phase 1: gh_rz's r half <- a_r; rh_out = f(clip(a_r)) * h_prev."""
        H = h_prev.shape[-1]
        a_r = np.add(gh_rz[..., :H], gx[..., :H], out=gh_rz[..., :H])
        np.multiply(_act(v.acts[0], v, a_r), h_prev, out=rh_out)

    def gru_update_v(self, v, gx, gh_rz, gh_n, h_prev, h_out):
        """Phase 2: gh_rz's z half <- a_z, gh_n <- a_n = gx_n + gh_n; h = (1-z)*n + z*h_prev."""
        H = h_prev.shape[-1]
        F, G = v.acts
        z = _act(F, v, np.add(gh_rz[..., H:], gx[..., H:2 * H], out=gh_rz[..., H:]))
        n = _act(G, v, np.add(gh_n, gx[..., 2 * H:], out=gh_n))
        h_out[...] = (h_prev - n) * z + n

    def gru_backward_update_v(self, v, a_z, a_n, h_prev, dh, dgx_out, dh_direct_out):
        H = h_prev.shape[-1]
        F, G = v.acts
        z, n = _act(F, v, a_z), _act(G, v, a_n)
        np.multiply(dh * (1 - z), _dact(G, v, a_n), out=dgx_out[..., 2 * H:])
        np.multiply(dh * (h_prev - n), _dact(F, v, a_z), out=dgx_out[..., H:2 * H])
        np.multiply(dh, z, out=dh_direct_out)

    def gru_backward_reset_v(self, v, a_r, h_prev, d_rh, dgx_out, dh_direct_out):
        H = h_prev.shape[-1]
        F = v.acts[0]
        np.multiply(d_rh * h_prev, _dact(F, v, a_r), out=dgx_out[..., :H])
        dh_direct_out += d_rh * _act(F, v, a_r)
