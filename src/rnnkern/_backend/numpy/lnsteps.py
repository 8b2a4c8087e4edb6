"""The layer-normalised cells' steps on NumPy: the reference implementation of the step API of
``lnlstm_step`` / ``lnlstm_backward`` / ``lngru_step`` / ``lngru_backward`` (``_recurrences/
layernorm_math.py`` has the NamedTuples; the numba and CUDA kernels implement the same calls).

Every array is a (B, width) row view whose rows may be a prefix of a larger buffer. ``gh`` is
h_prev @ W_hh^T, raw, and is used as scratch. The row reductions of the LayerNorms are two-pass,
per batch row; nothing here sums over the batch (the recurrence does that after the time loop).
"""

import numpy as np

from ..._recurrences.layernorm_math import EPS, layer_norm_rows, layer_norm_rows_backward


def _sigmoid_(x):
    """In place, overflow-free: sigmoid(x) = tanh(x/2)/2 + 1/2."""
    np.multiply(x, 0.5, out=x)
    np.tanh(x, out=x)
    np.multiply(x, 0.5, out=x)
    np.add(x, 0.5, out=x)
    return x


def _normalise_rows(a, hat_out):
    """hat_out = (a - mean) * rstd over each row (hat_out may be a); returns rstd (B, 1)."""
    np.subtract(a, a.mean(axis=-1, keepdims=True), out=hat_out)
    rstd = 1.0 / np.sqrt(np.square(hat_out).mean(axis=-1, keepdims=True) + EPS)
    np.multiply(hat_out, rstd, out=hat_out)
    return rstd


def _rows_backward(dout, gamma, hat, rstd, out):
    """out = LN's input gradient from ``dout`` (of its output): rstd*(dy - mean(dy) - hat*mean(dy*hat))."""
    dy = dout * gamma
    mean_dy_hat = (dy * hat).mean(axis=-1, keepdims=True)
    np.subtract(dy, dy.mean(axis=-1, keepdims=True), out=out)
    out -= hat * mean_dy_hat
    out *= rstd


def _zoneout_(zoneout, h_new, h_prev, h_out):
    """h_out = h_new after zoneout (h_out may be h_prev; h_new is a buffer of its own)."""
    if zoneout.mask is not None:  # h + mask*(h_new - h)
        h_new -= h_prev
        h_new *= zoneout.mask
        np.add(h_prev, h_new, out=h_out)
    elif zoneout.prob:  # p*h + (1-p)*h_new
        h_new *= 1.0 - zoneout.prob
        np.add(h_new, zoneout.prob * h_prev, out=h_out)
    else:
        h_out[...] = h_new


def _masked(zoneout, dh):
    """The gradient into h_new: mask*dh with zoneout's mask, (1-p)*dh with its blend, else dh (as the
    numba and CUDA backwards differentiate each form)."""
    if zoneout.mask is not None:
        return dh * zoneout.mask
    return dh * (1.0 - zoneout.prob) if zoneout.prob else dh


def _bypass(zoneout, dh):
    """The part of dh that zoneout sends straight to h_prev: (1-mask)*dh, or p*dh with the blend."""
    return dh * (1 - zoneout.mask) if zoneout.mask is not None else dh * zoneout.prob


class NumpyLayerNormSteps:
    """Mixed into NumpyBackend (and so inherited by the numba backend where it has no kernel)."""

    def layer_norm_rows(self, a, gamma, bias=None, hat_out=None, rstd_out=None):
        """In place: a (rows, N) <- LN(a; gamma) (+ bias); hat_out (rows, N) and rstd_out (rows, 1),
        when given, receive (a - mean) * rstd and rstd (layernorm_math.layer_norm_rows)."""
        return layer_norm_rows(np, a, gamma, bias, hat_out, rstd_out)

    def layer_norm_rows_backward(self, dout, gamma, hat, rstd, dx_out):
        """(dx_out <- the gradient of LN's input, gamma's gradient, the sum of dout's rows), all
        (rows, N) or (N,) (layernorm_math.layer_norm_rows_backward)."""
        return layer_norm_rows_backward(np, dout, gamma, hat, rstd, dx_out)

    def lnlstm_step(self, gx, gh, c_prev, h_prev, norms, zoneout, h_out, c_out, saved=None):
        """v = gx + gamma_hh*LN(gh); i, f, o = sigmoid, g = tanh (blocks i, f, g, o); c' = f*c + i*g
        into c_out (may be c_prev); h_new = o*tanh(LN(c'; gamma_c, beta_c)), zoneout, into h_out
        (may be h_prev). ``saved`` (training): gates, hh_hat, c (= c_out), c_hat, rstd (2 columns)."""
        H = c_prev.shape[-1]
        hat = gh if saved is None else saved["hh_hat"]
        rstd_hh = _normalise_rows(gh, hat)
        v = gh if saved is None else saved["gates"]
        np.multiply(hat, norms.gamma_hh, out=v)
        v += gx
        i, f, g, o = v[:, :H], v[:, H:2 * H], v[:, 2 * H:3 * H], v[:, 3 * H:]
        _sigmoid_(v[:, :2 * H])
        np.tanh(g, out=g)
        _sigmoid_(o)
        ig = i * g
        np.multiply(f, c_prev, out=c_out)
        c_out += ig
        c_hat = ig if saved is None else saved["c_hat"]
        rstd_c = _normalise_rows(c_out, c_hat)
        h_new = c_hat * norms.gamma_c
        h_new += norms.beta_c
        np.tanh(h_new, out=h_new)
        h_new *= o
        if saved is not None:
            saved["rstd"][:, :1] = rstd_hh
            saved["rstd"][:, 1:2] = rstd_c
        _zoneout_(zoneout, h_new, h_prev, h_out)

    def lnlstm_backward(self, saved, c_prev, dh, dc, norms, zoneout, dgx_out, dgh_out, dc_prev_out,
                        dh_direct_out, dcn_out):
        """From one step's saved rows, dh (into h') and dc (into c' from later steps): dgx_out the
        gradient of v, dgh_out of the raw gh, dc_prev_out (may be dc), dh_direct_out = (1-mask)*dh
        (p*dh with zoneout's blend; None without zoneout), dcn_out of LN(c') (for dgamma_c, dbeta_c)."""
        H = c_prev.shape[-1]
        gates, c, c_hat, rstd = saved["gates"], saved["c"], saved["c_hat"], saved["rstd"]
        i, f, g, o = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:3 * H], gates[:, 3 * H:]
        da_i, da_f, da_g, da_o = dgx_out[:, :H], dgx_out[:, H:2 * H], dgx_out[:, 2 * H:3 * H], dgx_out[:, 3 * H:]
        dh_new = _masked(zoneout, dh)
        tc = np.tanh(c_hat * norms.gamma_c + norms.beta_c)
        np.multiply(dh_new, tc, out=da_o)
        da_o *= o * (1 - o)
        np.multiply(dh_new, o * (1 - tc * tc), out=dcn_out)
        dct = np.empty_like(c)  # the whole gradient into c'
        _rows_backward(dcn_out, norms.gamma_c, c_hat, rstd[:, 1:2], dct)
        dct += dc
        np.multiply(dct, g, out=da_i)
        da_i *= i * (1 - i)
        np.multiply(dct, c_prev, out=da_f)
        da_f *= f * (1 - f)
        np.multiply(dct, i, out=da_g)
        da_g *= 1 - g * g
        np.multiply(dct, f, out=dc_prev_out)
        _rows_backward(dgx_out, norms.gamma_hh, saved["hh_hat"], rstd[:, :1], dgh_out)
        if dh_direct_out is not None:
            dh_direct_out[...] = _bypass(zoneout, dh)

    def lngru_step(self, gx, gh, h_prev, norms, zoneout, h_out, saved=None):
        """ghn = gamma_hh*LN(gh) + b_hh; r = s(gx_r + ghn_r), z = s(gx_z + ghn_z),
        n = tanh(gx_n + r*ghn_n); h_new = (1-z)*n + z*h_prev, zoneout, into h_out (may be h_prev).
        ``saved`` (training): gates (r, z, n), hh_hat, rstd (1 column)."""
        H = h_prev.shape[-1]
        hat = gh if saved is None else saved["hh_hat"]
        rstd = _normalise_rows(gh, hat)
        ghn = np.multiply(hat, norms.gamma_hh, out=gh)
        ghn += norms.b_hh
        gates = gh if saved is None else saved["gates"]
        np.add(gx[:, :2 * H], ghn[:, :2 * H], out=gates[:, :2 * H])
        _sigmoid_(gates[:, :2 * H])
        r, z, n = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:]
        np.multiply(r, ghn[:, 2 * H:], out=n)
        n += gx[:, 2 * H:]
        np.tanh(n, out=n)
        h_new = h_prev - n
        h_new *= z
        h_new += n
        if saved is not None:
            saved["rstd"][...] = rstd
        _zoneout_(zoneout, h_new, h_prev, h_out)

    def lngru_backward(self, saved, h_prev, dh, norms, zoneout, dgx_out, dghn_out, dgh_out, dh_direct_out):
        """dgx_out = (da_r, da_z, da_n); dghn_out = (da_r, da_z, da_n*r), the gradient of
        gamma_hh*LN(gh) + b_hh; dgh_out of the raw gh; dh_direct_out the part of dh_prev that
        bypasses W_hh: z*mask*dh + (1-mask)*dh (z*dh without zoneout's mask)."""
        H = h_prev.shape[-1]
        gates, hat = saved["gates"], saved["hh_hat"]
        r, z, n = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:]
        da_r, da_z, da_n = dgx_out[:, :H], dgx_out[:, H:2 * H], dgx_out[:, 2 * H:]
        dh_new = _masked(zoneout, dh)
        np.multiply(dh_new, (1 - z) * (1 - n * n), out=da_n)
        np.multiply(dh_new, (h_prev - n) * z * (1 - z), out=da_z)
        ghn_n = hat[:, 2 * H:] * norms.gamma_hh[2 * H:] + norms.b_hh[2 * H:]
        np.multiply(da_n, ghn_n * r * (1 - r), out=da_r)
        dghn_out[:, :2 * H] = dgx_out[:, :2 * H]
        np.multiply(da_n, r, out=dghn_out[:, 2 * H:])
        _rows_backward(dghn_out, norms.gamma_hh, hat, saved["rstd"], dgh_out)
        np.multiply(dh_new, z, out=dh_direct_out)
        if zoneout.mask is not None or zoneout.prob:
            dh_direct_out += _bypass(zoneout, dh)
