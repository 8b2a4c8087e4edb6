"""The LayerNorm LSTM's and GRU's fused steps in numba (issue 20): one kernel per step, per batch row
the LayerNorm of the recurrent product, the gates, the LSTM's c-norm and zoneout.

The math is the spec's (rnnkern._recurrences.layernorm_math and the NumPy steps): per row b,
    hh_hat = (gh - mean(gh)) * rstd,  rstd = 1/sqrt(var(gh) + EPS)  (biased variance, two passes)
    LSTM: v = gx + gamma_hh*hh_hat; c' = f*c + i*g; h_new = o*tanh(gamma_c*c_hat + beta_c)
    GRU:  ghn = gamma_hh*hh_hat + b_hh; r, z = s(gx + ghn); n = tanh(gx_n + r*ghn_n); h_new = (h - n)*z + n
then zoneout on h. Zoneout is a compile-time variant: each entry point below passes a constant
(NONE, BLEND, MASK) and a constant ``train`` to one ``inline='always'`` row loop, so the default
entry (no zoneout) has no zoneout code and no per-element branch.

Row statistics and the backward's row means are lnrows.py's (they may reassociate, and say why).

As in steps.py, each gate block is a row view of its own so that LLVM vectorises the column loop,
outputs may alias inputs element for element (the backend copies an overlapping input first, since
the vectorised loop checks for overlap and otherwise runs scalar code), and rows may be a prefix of
a bigger buffer (numba reads the row stride from each array).
"""

from numba import njit

from . import simd
from .blas import matmul_into
from .lnrows import grad_means, norm_backward, normalise, row_stats
from .scalar import JIT, ONE, like, sigmoid, tanh

inline = njit(inline="always", **JIT)

NONE, BLEND, MASK = 0, 1, 2  # zoneout: none; inference p*h + (1-p)*h_new; training h + mask*(h_new - h)


@inline
def zoneout(zo, h_new, h_prev, keep, j, p, q):
    """h'[j] from h_new: h_new itself (NONE: nothing else is read), h_prev + keep*(h_new - h_prev)
    (MASK) or p*h_prev + q*h_new, q = 1 - p (BLEND)."""
    if zo == MASK:
        return h_prev[j] + keep[j] * (h_new - h_prev[j])
    if zo == BLEND:
        return p * h_prev[j] + q * h_new
    return h_new


@inline
def zoneout_grad(zo, d, keep, j, p, q):
    """The part of dh (the gradient of h') that reaches h_new: d, keep*d or q*d."""
    if zo == MASK:
        return keep[j] * d
    if zo == BLEND:
        return q * d
    return d


# --- LSTM ----------------------------------------------------------------------------------------
@inline
def _lnlstm_rows(gx, gh, c_prev, h_prev, gamma_hh, gamma_c, beta_c, prob, mask, h_out, c_out,
                 gates, hh_hat, c_hat, rstd, zo, train):
    simd.widest_vectors()  # 512-bit loops on AVX-512 (simd)
    H = h_out.shape[1]
    m_i, m_f, m_g, m_o = gamma_hh[:H], gamma_hh[H:2 * H], gamma_hh[2 * H:3 * H], gamma_hh[3 * H:]
    for b in range(h_out.shape[0]):
        mean, r = row_stats(gh[b])
        if train:  # hh_hat first, in a loop of its own: with the gates' stores too, the main loop would
            normalise(gh[b], mean, r, hh_hat[b])  # need more overlap checks than LLVM makes, and run scalar
        xi, xf, xg, xo = gx[b, :H], gx[b, H:2 * H], gx[b, 2 * H:3 * H], gx[b, 3 * H:]
        si, sf, sg, so = gh[b, :H], gh[b, H:2 * H], gh[b, 2 * H:3 * H], gh[b, 3 * H:]
        ti, tf, tg, to = gates[b, :H], gates[b, H:2 * H], gates[b, 2 * H:3 * H], gates[b, 3 * H:]
        ni, nf, ng, no = hh_hat[b, :H], hh_hat[b, H:2 * H], hh_hat[b, 2 * H:3 * H], hh_hat[b, 3 * H:]
        cp, co = c_prev[b], c_out[b]
        for j in range(H):
            if train:
                hi, hf, hg, ho = ni[j], nf[j], ng[j], no[j]
            else:
                hi, hf, hg, ho = (si[j] - mean) * r, (sf[j] - mean) * r, (sg[j] - mean) * r, (so[j] - mean) * r
            i = sigmoid(xi[j] + m_i[j] * hi)
            f = sigmoid(xf[j] + m_f[j] * hf)
            g = tanh(xg[j] + m_g[j] * hg)
            o = sigmoid(xo[j] + m_o[j] * ho)
            co[j] = f * cp[j] + i * g
            if train:
                ti[j], tf[j], tg[j], to[j] = i, f, g, o
            else:
                so[j] = o  # gh is scratch: o waits there for the c-norm
        mean_c, r_c = row_stats(co)
        hp, hb, kb, chb = h_prev[b], h_out[b], mask[b], c_hat[b]
        p, q = like(r_c, prob), like(r_c, 1.0 - prob)
        for j in range(H):
            ch = (co[j] - mean_c) * r_c
            h_new = (to[j] if train else so[j]) * tanh(gamma_c[j] * ch + beta_c[j])
            hb[j] = zoneout(zo, h_new, hp, kb, j, p, q)
            if train:
                chb[j] = ch
        if train:
            rstd[b, 0] = r
            rstd[b, 1] = r_c


# Entry points: (zoneout, train) are constants; an unused argument gets a stand-in of the right type
# (h_out for h_prev and the mask, gh for the saved arrays) that the folded-away branches never touch.
@njit(**JIT)
def lnlstm_step(gx, gh, c_prev, gamma_hh, gamma_c, beta_c, h_out, c_out):
    _lnlstm_rows(gx, gh, c_prev, h_out, gamma_hh, gamma_c, beta_c, 0.0, h_out, h_out, c_out,
                 gh, gh, c_out, gh, NONE, False)


@njit(**JIT)
def lnlstm_step_blend(gx, gh, c_prev, h_prev, gamma_hh, gamma_c, beta_c, prob, h_out, c_out):
    _lnlstm_rows(gx, gh, c_prev, h_prev, gamma_hh, gamma_c, beta_c, prob, h_out, h_out, c_out,
                 gh, gh, c_out, gh, BLEND, False)


@njit(**JIT)
def lnlstm_step_mask(gx, gh, c_prev, h_prev, gamma_hh, gamma_c, beta_c, mask, h_out, c_out):
    _lnlstm_rows(gx, gh, c_prev, h_prev, gamma_hh, gamma_c, beta_c, 0.0, mask, h_out, c_out,
                 gh, gh, c_out, gh, MASK, False)


@njit(**JIT)
def lnlstm_step_train(gx, gh, c_prev, gamma_hh, gamma_c, beta_c, h_out, c_out, gates, hh_hat, c_hat, rstd):
    _lnlstm_rows(gx, gh, c_prev, h_out, gamma_hh, gamma_c, beta_c, 0.0, h_out, h_out, c_out,
                 gates, hh_hat, c_hat, rstd, NONE, True)


@njit(**JIT)
def lnlstm_step_train_blend(gx, gh, c_prev, h_prev, gamma_hh, gamma_c, beta_c, prob, h_out, c_out,
                            gates, hh_hat, c_hat, rstd):
    _lnlstm_rows(gx, gh, c_prev, h_prev, gamma_hh, gamma_c, beta_c, prob, h_out, h_out, c_out,
                 gates, hh_hat, c_hat, rstd, BLEND, True)


@njit(**JIT)
def lnlstm_step_train_mask(gx, gh, c_prev, h_prev, gamma_hh, gamma_c, beta_c, mask, h_out, c_out,
                           gates, hh_hat, c_hat, rstd):
    _lnlstm_rows(gx, gh, c_prev, h_prev, gamma_hh, gamma_c, beta_c, 0.0, mask, h_out, c_out,
                 gates, hh_hat, c_hat, rstd, MASK, True)


@inline
def _lnlstm_back_rows(gates, hh_hat, c_hat, rstd, c_prev, dh, dc, gamma_hh, gamma_c, beta_c, prob, mask,
                      dgx, dgh, dc_prev, dh_direct, dcn, zo):
    simd.widest_vectors()  # 512-bit loops on AVX-512 (simd)
    H = dh.shape[1]
    for b in range(dh.shape[0]):
        ti, tf, tg, to = gates[b, :H], gates[b, H:2 * H], gates[b, 2 * H:3 * H], gates[b, 3 * H:]
        di, df, dg, do = dgx[b, :H], dgx[b, H:2 * H], dgx[b, 2 * H:3 * H], dgx[b, 3 * H:]
        chb, dhb, dnb, kb, direct = c_hat[b], dh[b], dcn[b], mask[b], dh_direct[b]
        p, q = like(rstd[b, 0], prob), like(rstd[b, 0], 1.0 - prob)
        for j in range(H):  # h_new = o * tanh(cn), cn = gamma_c*c_hat + beta_c
            d = dhb[j]
            d_new = zoneout_grad(zo, d, kb, j, p, q)
            if zo != NONE:
                direct[j] = d - d_new if zo == MASK else p * d
            o = to[j]
            t = tanh(gamma_c[j] * chb[j] + beta_c[j])
            do[j] = d_new * t * (o * (ONE - o))
            dnb[j] = d_new * o * (ONE - t * t)
        m1, m2 = grad_means(dnb, gamma_c, chb)
        r_c = rstd[b, 1]
        cp, dcb, dcp = c_prev[b], dc[b], dc_prev[b]
        for j in range(H):  # c' = f*c + i*g: dct, its total gradient, through the c-norm
            dct = r_c * (dnb[j] * gamma_c[j] - m1 - chb[j] * m2) + dcb[j]
            i, f, g = ti[j], tf[j], tg[j]
            di[j] = dct * g * (i * (ONE - i))
            df[j] = dct * cp[j] * (f * (ONE - f))
            dg[j] = dct * i * (ONE - g * g)
            dcp[j] = dct * f
        norm_backward(dgx[b], gamma_hh, hh_hat[b], rstd[b, 0], dgh[b])


@njit(**JIT)
def lnlstm_backward(gates, hh_hat, c_hat, rstd, c_prev, dh, dc, gamma_hh, gamma_c, beta_c,
                    dgx, dgh, dc_prev, dcn):
    _lnlstm_back_rows(gates, hh_hat, c_hat, rstd, c_prev, dh, dc, gamma_hh, gamma_c, beta_c, 0.0, dh,
                      dgx, dgh, dc_prev, dcn, dcn, NONE)


@njit(**JIT)
def lnlstm_backward_blend(gates, hh_hat, c_hat, rstd, c_prev, dh, dc, gamma_hh, gamma_c, beta_c, prob,
                          dgx, dgh, dc_prev, dh_direct, dcn):
    _lnlstm_back_rows(gates, hh_hat, c_hat, rstd, c_prev, dh, dc, gamma_hh, gamma_c, beta_c, prob, dh,
                      dgx, dgh, dc_prev, dh_direct, dcn, BLEND)


@njit(**JIT)
def lnlstm_backward_mask(gates, hh_hat, c_hat, rstd, c_prev, dh, dc, gamma_hh, gamma_c, beta_c, mask,
                         dgx, dgh, dc_prev, dh_direct, dcn):
    _lnlstm_back_rows(gates, hh_hat, c_hat, rstd, c_prev, dh, dc, gamma_hh, gamma_c, beta_c, 0.0, mask,
                      dgx, dgh, dc_prev, dh_direct, dcn, MASK)


# --- GRU -----------------------------------------------------------------------------------------
@inline
def _lngru_rows(gx, gh, h_prev, gamma_hh, b_hh, prob, mask, h_out, gates, hh_hat, rstd, zo, train):
    simd.widest_vectors()  # 512-bit loops on AVX-512 (simd)
    H = h_out.shape[1]
    m_r, m_z, m_n = gamma_hh[:H], gamma_hh[H:2 * H], gamma_hh[2 * H:]
    b_r, b_z, b_n = b_hh[:H], b_hh[H:2 * H], b_hh[2 * H:]
    for b in range(h_out.shape[0]):
        mean, rs = row_stats(gh[b])
        if train:  # hh_hat in a loop of its own, as in _lnlstm_rows
            normalise(gh[b], mean, rs, hh_hat[b])
        xr, xz, xn = gx[b, :H], gx[b, H:2 * H], gx[b, 2 * H:]
        sr, sz, sn = gh[b, :H], gh[b, H:2 * H], gh[b, 2 * H:]
        tr, tz, tn = gates[b, :H], gates[b, H:2 * H], gates[b, 2 * H:]
        nr, nz, nn = hh_hat[b, :H], hh_hat[b, H:2 * H], hh_hat[b, 2 * H:]
        hp, hb, kb = h_prev[b], h_out[b], mask[b]
        p, q = like(rs, prob), like(rs, 1.0 - prob)
        for j in range(H):
            if train:
                hr, hz, hn = nr[j], nz[j], nn[j]
            else:
                hr, hz, hn = (sr[j] - mean) * rs, (sz[j] - mean) * rs, (sn[j] - mean) * rs
            r = sigmoid(xr[j] + (m_r[j] * hr + b_r[j]))
            z = sigmoid(xz[j] + (m_z[j] * hz + b_z[j]))
            n = tanh(xn[j] + r * (m_n[j] * hn + b_n[j]))
            h_new = (hp[j] - n) * z + n
            hb[j] = zoneout(zo, h_new, hp, kb, j, p, q)
            if train:
                tr[j], tz[j], tn[j] = r, z, n
        if train:
            rstd[b, 0] = rs


@njit(**JIT)
def lngru_step(gx, gh, h_prev, gamma_hh, b_hh, h_out):
    _lngru_rows(gx, gh, h_prev, gamma_hh, b_hh, 0.0, h_out, h_out, gh, gh, gh, NONE, False)


@njit(**JIT)
def lngru_step_blend(gx, gh, h_prev, gamma_hh, b_hh, prob, h_out):
    _lngru_rows(gx, gh, h_prev, gamma_hh, b_hh, prob, h_out, h_out, gh, gh, gh, BLEND, False)


@njit(**JIT)
def lngru_step_mask(gx, gh, h_prev, gamma_hh, b_hh, mask, h_out):
    _lngru_rows(gx, gh, h_prev, gamma_hh, b_hh, 0.0, mask, h_out, gh, gh, gh, MASK, False)


@njit(**JIT)
def lngru_step_train(gx, gh, h_prev, gamma_hh, b_hh, h_out, gates, hh_hat, rstd):
    _lngru_rows(gx, gh, h_prev, gamma_hh, b_hh, 0.0, h_out, h_out, gates, hh_hat, rstd, NONE, True)


@njit(**JIT)
def lngru_step_train_blend(gx, gh, h_prev, gamma_hh, b_hh, prob, h_out, gates, hh_hat, rstd):
    _lngru_rows(gx, gh, h_prev, gamma_hh, b_hh, prob, h_out, h_out, gates, hh_hat, rstd, BLEND, True)


@njit(**JIT)
def lngru_step_train_mask(gx, gh, h_prev, gamma_hh, b_hh, mask, h_out, gates, hh_hat, rstd):
    _lngru_rows(gx, gh, h_prev, gamma_hh, b_hh, 0.0, mask, h_out, gates, hh_hat, rstd, MASK, True)


@inline
def _lngru_back_rows(gates, hh_hat, rstd, h_prev, dh, gamma_hh, b_hh, prob, mask, dgx, dghn, dgh, dh_direct, zo):
    simd.widest_vectors()  # 512-bit loops on AVX-512 (simd)
    H = dh.shape[1]
    m_n, b_n = gamma_hh[2 * H:], b_hh[2 * H:]
    for b in range(dh.shape[0]):
        tr, tz, tn = gates[b, :H], gates[b, H:2 * H], gates[b, 2 * H:]
        xr, xz, xn = dgx[b, :H], dgx[b, H:2 * H], dgx[b, 2 * H:]
        yr, yz, yn = dghn[b, :H], dghn[b, H:2 * H], dghn[b, 2 * H:]
        nn, hp, dhb, kb, direct = hh_hat[b, 2 * H:], h_prev[b], dh[b], mask[b], dh_direct[b]
        p, q = like(rstd[b, 0], prob), like(rstd[b, 0], 1.0 - prob)
        for j in range(H):
            d = dhb[j]
            d_new = zoneout_grad(zo, d, kb, j, p, q)
            r, z, n = tr[j], tz[j], tn[j]
            da_n = d_new * (ONE - z) * (ONE - n * n)
            da_r = da_n * (m_n[j] * nn[j] + b_n[j]) * (r * (ONE - r))
            da_z = d_new * (hp[j] - n) * (z * (ONE - z))
            xr[j], xz[j], xn[j] = da_r, da_z, da_n
            yr[j], yz[j], yn[j] = da_r, da_z, da_n * r
            through = z * d_new  # h_new = (h - n)*z + n, and what zoneout passes by h_new
            if zo == MASK:
                through += d - d_new
            elif zo == BLEND:
                through += p * d
            direct[j] = through
        norm_backward(dghn[b], gamma_hh, hh_hat[b], rstd[b, 0], dgh[b])


@njit(**JIT)
def lngru_backward(gates, hh_hat, rstd, h_prev, dh, gamma_hh, b_hh, dgx, dghn, dgh, dh_direct):
    _lngru_back_rows(gates, hh_hat, rstd, h_prev, dh, gamma_hh, b_hh, 0.0, dh, dgx, dghn, dgh, dh_direct, NONE)


@njit(**JIT)
def lngru_backward_blend(gates, hh_hat, rstd, h_prev, dh, gamma_hh, b_hh, prob, dgx, dghn, dgh, dh_direct):
    _lngru_back_rows(gates, hh_hat, rstd, h_prev, dh, gamma_hh, b_hh, prob, dh, dgx, dghn, dgh, dh_direct, BLEND)


@njit(**JIT)
def lngru_backward_mask(gates, hh_hat, rstd, h_prev, dh, gamma_hh, b_hh, mask, dgx, dghn, dgh, dh_direct):
    _lngru_back_rows(gates, hh_hat, rstd, h_prev, dh, gamma_hh, b_hh, 0.0, mask, dgx, dghn, dgh, dh_direct, MASK)


# --- whole time loops (inference), as steps.py's: the recurrent GEMM and the step, no Python between -----
# For small batches, where the Python of a step costs as much as its GEMM. ``w_t`` is W_hh^T (H, G*H);
# zoneout is none or the inference blend (prob > 0), chosen once per step, not per element. The LSTM's
# cell state alternates between ``c`` and ``c_spare`` and ends in ``c`` (steps.lstm_loop says why).
@njit(nogil=True, **JIT)
def lnlstm_loop(gx, w_t, h_prev, c, c_spare, gamma_hh, gamma_c, beta_c, prob, out, reverse, gh):
    T = gx.shape[0]
    c_prev, c_next = c, c_spare
    for s in range(T):
        t = T - 1 - s if reverse else s
        matmul_into(h_prev, w_t, gh)
        if prob > 0.0:
            _lnlstm_rows(gx[t], gh, c_prev, h_prev, gamma_hh, gamma_c, beta_c, prob, out[t], out[t], c_next,
                         gh, gh, c_next, gh, BLEND, False)
        else:
            _lnlstm_rows(gx[t], gh, c_prev, h_prev, gamma_hh, gamma_c, beta_c, 0.0, out[t], out[t], c_next,
                         gh, gh, c_next, gh, NONE, False)
        h_prev = out[t]
        c_prev, c_next = c_next, c_prev
    if T % 2:
        c[...] = c_prev


@njit(nogil=True, **JIT)
def lngru_loop(gx, w_t, h_prev, gamma_hh, b_hh, prob, out, reverse, gh):
    T = gx.shape[0]
    for s in range(T):
        t = T - 1 - s if reverse else s
        matmul_into(h_prev, w_t, gh)
        if prob > 0.0:
            _lngru_rows(gx[t], gh, h_prev, gamma_hh, b_hh, prob, out[t], out[t], gh, gh, gh, BLEND, False)
        else:
            _lngru_rows(gx[t], gh, h_prev, gamma_hh, b_hh, 0.0, out[t], out[t], gh, gh, gh, NONE, False)
        h_prev = out[t]
