"""The CPU's fused step kernels and compiled time loops, in numba: every cell's forward and backward
math, written once, with the CellMath's options as compile-time constants.

The options (activations, clip, input_forget, peephole, what training saves) come from the one import
block between ``# <options>`` and ``# </options>``. As it stands, this module imports the defaults
(``options``), so it IS the default kernels; for any other CellMath, ``specialise``
compiles a copy of this text whose block defines that CellMath's options instead. numba folds a
branch on a module constant, so the defaults run the default math with nothing of the options in
it, and the options run with no per-element branch on an activation.

"Gate form" (what a training step leaves in ``gh`` and the backward kernels take): the activations
when ``SAVES_ACTIVATIONS`` (the defaults: their derivatives come from the outputs, as in
``kernels/*.cuh``), else the pre-activations, peephole terms added, before the clip (a clipped or
piecewise activation needs its argument).

Each kernel loops over the batch rows and the H columns of each gate block. Arrays are (B, G*H) row
blocks as the GEMMs leave them; a row's gate k is columns [k*H, (k+1)*H), and each gate block is
taken as a row view of its own: indexed as one array at offsets k*H, LLVM sees stores at an unknown
distance from the loads and does not vectorise the loop (3-4x slower than NumPy; RESULTS.md). The
helpers are ``inline='always'``: called as functions returning tuples, they kept LLVM from
vectorising too. Each elementwise kernel calls ``simd.widest_vectors()``, so that LLVM vectorises it
with 512-bit registers on AVX-512 CPUs (it keeps to 256 bits there otherwise: 1.3x slower). Outputs
may alias inputs element for element (``c_out`` and ``c_prev``, ``h_out`` and ``h_prev``), as in the
GPU kernels. numba compiles each for the dtype (float32 or float64) and memory layout it is called
with, and caches the machine code on disk where it finds a writable folder (``scalar.COMPILE_CACHE``;
otherwise each process compiles in memory).
"""

from numba import njit

from . import simd, units
from .blas import matmul_into

# <options>
from .options import (CLIPPED, DF, DG, DHC, DRNN_F, F, F_BACK, G, G_BACK, HC, INPUT_FORGET,  # noqa: F401
                             JIT, LIM, ONE, PEEPHOLE, RNN_F, RNN_F_BACK, SAVES_ACTIVATIONS, ZERO, like)
# </options>

inline = njit(inline="always", **JIT)


# --- the options on one value -------------------------------------------------------------
@inline
def clip(x):
    """x clamped to [-LIM, LIM] in x's dtype (NaN stays NaN); x itself without a clip."""
    if CLIPPED:
        lim = like(x, LIM)
        return -lim if x < -lim else (lim if x > lim else x)
    return x


@inline
def inside(x):
    """1 where the clip passes x through, else 0 (the clamp's derivative)."""
    lim = like(x, LIM)
    return ONE if (x >= -lim and x <= lim) else ZERO


@inline
def f(x):
    return F(clip(x))


@inline
def g(x):
    return G(clip(x))


@inline
def rnn_f(x):
    return RNN_F(clip(x))


@inline
def f_value(form):
    """The activation of a gate in gate form."""
    return form if SAVES_ACTIVATIONS else f(form)


@inline
def g_value(form):
    return form if SAVES_ACTIVATIONS else g(form)


@inline
def f_back(form, d):
    """d * f'(a) of a gate in gate form: from the activation, or from the pre-activation a (zero
    where the clip holds it)."""
    if SAVES_ACTIVATIONS:
        return F_BACK(form, d)
    return d * (DF(clip(form)) * inside(form) if CLIPPED else DF(form))


@inline
def g_back(form, d):
    if SAVES_ACTIVATIONS:
        return G_BACK(form, d)
    return d * (DG(clip(form)) * inside(form) if CLIPPED else DG(form))


@inline
def rnn_back(form, d):
    if SAVES_ACTIVATIONS:
        return RNN_F_BACK(form, d)
    return d * (DRNN_F(clip(form)) * inside(form) if CLIPPED else DRNN_F(form))


# --- RNN: h = f(gx + gh) ------------------------------------------------------------------
@inline
def _rnn_rows(gx, gh, h_out, train):
    simd.widest_vectors()
    for b in range(h_out.shape[0]):
        x, s, h = gx[b], gh[b], h_out[b]
        for j in range(h.shape[0]):
            a = x[j] + s[j]
            if train and not SAVES_ACTIVATIONS:
                s[j] = a
            h[j] = rnn_f(a)


@njit(**JIT)
def rnn_step(gx, gh, h_out):
    _rnn_rows(gx, gh, h_out, False)


@njit(**JIT)
def rnn_step_train(gx, gh, h_out):
    """rnn_step that leaves the pre-activation in ``gh`` (without SAVES_ACTIVATIONS: backward takes h)."""
    _rnn_rows(gx, gh, h_out, True)


@njit(**JIT)
def rnn_backward(saved, dh, da):
    simd.widest_vectors()
    for b in range(da.shape[0]):
        s, d, out = saved[b], dh[b], da[b]
        for j in range(out.shape[0]):
            out[j] = rnn_back(s[j], d[j])


# --- LSTM: gates i, f, g, o; peepholes p in ONNX's order (i, o, f) -----------------------
@inline
def _lstm_rows(gx, gh, c_prev, p, h_out, c_out, train):
    simd.widest_vectors()
    H = h_out.shape[1]
    p_i, p_o, p_f = p[:H], p[H:2 * H], p[2 * H:]  # read only with PEEPHOLE (else p is a stand-in)
    for b in range(h_out.shape[0]):
        xi, xf, xg, xo = gx[b, :H], gx[b, H:2 * H], gx[b, 2 * H:3 * H], gx[b, 3 * H:]
        si, sf, sg, so = gh[b, :H], gh[b, H:2 * H], gh[b, 2 * H:3 * H], gh[b, 3 * H:]
        cp, ho, co = c_prev[b], h_out[b], c_out[b]
        for j in range(H):
            c0 = cp[j]
            ai = si[j] + xi[j]
            af = sf[j] + xf[j]
            if PEEPHOLE:
                ai += p_i[j] * c0
                af += p_f[j] * c0
            ag = sg[j] + xg[j]
            i = f(ai)
            fg = ONE - i if INPUT_FORGET else f(af)
            gg = g(ag)
            c = fg * c0 + i * gg
            ao = so[j] + xo[j]
            if PEEPHOLE:
                ao += p_o[j] * c
            o = f(ao)
            if train:
                if SAVES_ACTIVATIONS:
                    si[j], sf[j], sg[j], so[j] = i, fg, gg, o
                else:
                    si[j], sf[j], sg[j], so[j] = ai, af, ag, ao
            ho[j] = HC(c) * o
            co[j] = c


@njit(**JIT)
def lstm_step(gx, gh, c_prev, p, h_out, c_out):
    _lstm_rows(gx, gh, c_prev, p, h_out, c_out, False)


@njit(**JIT)
def lstm_step_train(gx, gh, c_prev, p, h_out, c_out):
    """lstm_step that also leaves the gates (i, f, g, o) in gate form in ``gh``."""
    _lstm_rows(gx, gh, c_prev, p, h_out, c_out, True)


@njit(**JIT)
def lstm_backward(gates, c_prev, c, dh, dc, p, da, dc_prev):
    simd.widest_vectors()
    H = c.shape[1]
    p_i, p_o, p_f = p[:H], p[H:2 * H], p[2 * H:]
    for b in range(c.shape[0]):
        si, sf, sg, so = gates[b, :H], gates[b, H:2 * H], gates[b, 2 * H:3 * H], gates[b, 3 * H:]
        di, df, dg, do = da[b, :H], da[b, H:2 * H], da[b, 2 * H:3 * H], da[b, 3 * H:]
        cp, cc, dhb, dcb, dcp = c_prev[b], c[b], dh[b], dc[b], dc_prev[b]
        for j in range(H):
            d, ct, c0 = dhb[j], cc[j], cp[j]
            i, gg, o = f_value(si[j]), g_value(sg[j]), f_value(so[j])
            hc = HC(ct)
            da_o = f_back(so[j], d * hc)
            dct = d * o * DHC(ct, hc) + dcb[j]  # the total gradient into c
            if PEEPHOLE:
                dct += da_o * p_o[j]
            da_g = g_back(sg[j], dct * i)
            if INPUT_FORGET:  # c = (1 - i)*c_prev + i*g
                da_i = f_back(si[j], dct * (gg - c0))
                da_f = like(d, 0.0)
                dcp_j = dct * (ONE - i)
            else:
                da_i = f_back(si[j], dct * gg)
                da_f = f_back(sf[j], dct * c0)
                dcp_j = dct * f_value(sf[j])
            if PEEPHOLE:
                dcp_j += da_i * p_i[j] + da_f * p_f[j]
            di[j], df[j], dg[j], do[j] = da_i, da_f, da_g, da_o
            dcp[j] = dcp_j


# --- GRU: gates r, z, n ----------------------------------------------------------------------
@inline
def _gru_rows(gx, gh, b_hn, h_prev, h_out, ghn_out, train):
    """linear_before_reset=True: n = g(gx_n + r*(gh_n + b_hn)); h = (1-z)*n + z*h_prev."""
    simd.widest_vectors()
    H = h_out.shape[1]
    for b in range(h_out.shape[0]):
        xr, xz, xn = gx[b, :H], gx[b, H:2 * H], gx[b, 2 * H:]
        sr, sz, sn = gh[b, :H], gh[b, H:2 * H], gh[b, 2 * H:]
        hp, ho, go = h_prev[b], h_out[b], ghn_out[b]
        for j in range(H):
            ar = sr[j] + xr[j]
            az = sz[j] + xz[j]
            r, z = f(ar), f(az)
            ghn = sn[j] + b_hn[j]
            an = ghn * r + xn[j]
            n = g(an)
            if train:
                if SAVES_ACTIVATIONS:
                    sr[j], sz[j], sn[j] = r, z, n
                else:
                    sr[j], sz[j], sn[j] = ar, az, an
                go[j] = ghn
            ho[j] = (hp[j] - n) * z + n


@njit(**JIT)
def gru_step(gx, gh, b_hn, h_prev, h_out):
    _gru_rows(gx, gh, b_hn, h_prev, h_out, h_out, False)


@njit(**JIT)
def gru_step_train(gx, gh, b_hn, h_prev, h_out, ghn_out):
    """gru_step that leaves (r, z, n) in gate form in ``gh`` and gh_n + b_hn in ``ghn_out``."""
    _gru_rows(gx, gh, b_hn, h_prev, h_out, ghn_out, True)


@njit(**JIT)
def gru_backward(gates, ghn, h_prev, dh, dgx, dgh, dh_direct):
    simd.widest_vectors()
    H = h_prev.shape[1]
    for b in range(h_prev.shape[0]):
        sr, sz, sn = gates[b, :H], gates[b, H:2 * H], gates[b, 2 * H:]
        xr, xz, xn = dgx[b, :H], dgx[b, H:2 * H], dgx[b, 2 * H:]
        hr, hz, hn = dgh[b, :H], dgh[b, H:2 * H], dgh[b, 2 * H:]
        gn, hp, dhb, direct = ghn[b], h_prev[b], dh[b], dh_direct[b]
        for j in range(H):
            d = dhb[j]
            r, z, n = f_value(sr[j]), f_value(sz[j]), g_value(sn[j])
            da_n = g_back(sn[j], d * (ONE - z))
            da_r = f_back(sr[j], da_n * gn[j])
            da_z = f_back(sz[j], d * (hp[j] - n))
            xr[j], xz[j], xn[j] = da_r, da_z, da_n
            hr[j], hz[j], hn[j] = da_r, da_z, da_n * r
            direct[j] = d * z


@njit(**JIT)
def gru_reset(gx, gh_rz, h_prev, rh_out):
    """linear_before_reset=False, phase 1: r (gate form) into gh_rz's first H columns, rh = r * h_prev."""
    simd.widest_vectors()
    H = h_prev.shape[1]
    for b in range(h_prev.shape[0]):
        x, s, hp, rh = gx[b, :H], gh_rz[b, :H], h_prev[b], rh_out[b]
        for j in range(H):
            ar = s[j] + x[j]
            r = f(ar)
            s[j] = r if SAVES_ACTIVATIONS else ar
            rh[j] = r * hp[j]


@inline
def _gru_update_rows(gx, gh_rz, gh_n, h_prev, h_out, train):
    """Phase 2: z = f(gx_z + gh_z), n = g(gx_n + gh_n), h = (1-z)*n + z*h_prev."""
    simd.widest_vectors()
    H = h_out.shape[1]
    for b in range(h_out.shape[0]):
        xz, xn, sz, sn = gx[b, H:2 * H], gx[b, 2 * H:], gh_rz[b, H:], gh_n[b]
        hp, ho = h_prev[b], h_out[b]
        for j in range(H):
            az = sz[j] + xz[j]
            an = sn[j] + xn[j]
            z, n = f(az), g(an)
            if train:
                if SAVES_ACTIVATIONS:
                    sz[j], sn[j] = z, n
                else:
                    sz[j], sn[j] = az, an
            ho[j] = (hp[j] - n) * z + n


@njit(**JIT)
def gru_update(gx, gh_rz, gh_n, h_prev, h_out):
    _gru_update_rows(gx, gh_rz, gh_n, h_prev, h_out, False)


@njit(**JIT)
def gru_update_train(gx, gh_rz, gh_n, h_prev, h_out):
    """gru_update that leaves z (gh_rz's last H columns) and n (gh_n) in gate form."""
    _gru_update_rows(gx, gh_rz, gh_n, h_prev, h_out, True)


@njit(**JIT)
def gru_backward_update(z, n, h_prev, dh, dgx, dh_direct):
    simd.widest_vectors()
    H = h_prev.shape[1]
    for b in range(h_prev.shape[0]):
        sz, sn, hp, dhb = z[b], n[b], h_prev[b], dh[b]
        xz, xn, direct = dgx[b, H:2 * H], dgx[b, 2 * H:], dh_direct[b]
        for j in range(H):
            d = dhb[j]
            zz, nn = f_value(sz[j]), g_value(sn[j])
            xn[j] = g_back(sn[j], d * (ONE - zz))
            xz[j] = f_back(sz[j], d * (hp[j] - nn))
            direct[j] = d * zz


@njit(**JIT)
def gru_backward_reset(r, h_prev, d_rh, dgx, dh_direct):
    simd.widest_vectors()
    H = h_prev.shape[1]
    for b in range(h_prev.shape[0]):
        sr, hp, drh, xr, direct = r[b], h_prev[b], d_rh[b], dgx[b, :H], dh_direct[b]
        for j in range(H):
            xr[j] = f_back(sr[j], drh[j] * hp[j])
            direct[j] = direct[j] + drh[j] * f_value(sr[j])


# --- whole time loops ---------------------------------------------------------------------------
# Per step the recurrent GEMM (NumPy's BLAS, see blas) and this module's step kernel, with no
# Python in between: at batch 1 the Python per step (a dozen calls, each checking its arguments) costs
# as much as the step's GEMV; at large batch it is noise. A loop runs the steps of one chunk of the
# input projection (gx, (steps, B, G*H)) in order, reading h_prev and writing h into ``out``
# (steps, B, H) and the cell state in place in ``c``; the caller chains the chunks. ``w_t`` is
# W_hh^T (H, G*H), C-contiguous in the parameters' layout, or its packing by MKL (``gemm``). The loops
# release the GIL: a sharded loop runs one per thread, each on its own rows of the batch (``shard``).
# With a ``part`` (units.Part; None: the whole loop), the loop runs one part of a loop split by hidden
# units (batch 1): its columns of the GEMM and of the kernel, then a barrier (units.publish); ``c``,
# ``c_spare``, ``p`` and ``b_hn`` are then the part's own.
@njit(nogil=True, **JIT)
def rnn_loop(gx, w_t, h_prev, out, reverse, gh, part):
    T = gx.shape[0]
    w = units.weights(w_t, part)
    for s in range(T):
        t = T - 1 - s if reverse else s
        matmul_into(h_prev, w, gh)
        rnn_step(units.gates(gx[t], part), gh, units.hidden(out[t], part))
        if not units.publish(out[t], part, s + 1):
            return
        h_prev = out[t]


@njit(nogil=True, **JIT)
def lstm_loop(gx, w_t, h_prev, c, c_spare, p, out, reverse, gh, part):
    """The cell state alternates between ``c`` and ``c_spare`` (an output that overlaps its input
    would send LLVM's vectorised loop to its scalar fallback) and ends in ``c``."""
    T = gx.shape[0]
    w = units.weights(w_t, part)
    c_prev, c_next = c, c_spare
    for s in range(T):
        t = T - 1 - s if reverse else s
        matmul_into(h_prev, w, gh)
        lstm_step(units.gates(gx[t], part), gh, c_prev, p, units.hidden(out[t], part), c_next)
        if not units.publish(out[t], part, s + 1):
            return
        h_prev = out[t]
        c_prev, c_next = c_next, c_prev
    if T % 2:
        c[...] = c_prev


@njit(nogil=True, **JIT)
def gru_loop(gx, w_t, b_hn, h_prev, out, reverse, gh, part):
    """linear_before_reset=True."""
    T = gx.shape[0]
    w = units.weights(w_t, part)
    for s in range(T):
        t = T - 1 - s if reverse else s
        matmul_into(h_prev, w, gh)
        gru_step(units.gates(gx[t], part), gh, b_hn, units.previous(h_prev, part), units.hidden(out[t], part))
        if not units.publish(out[t], part, s + 1):
            return
        h_prev = out[t]


@njit(nogil=True, **JIT)
def gru_reset_after_loop(gx, w_rz, w_n, h_prev, out, reverse, gh_rz, gh_n, rh):
    """linear_before_reset=False: two GEMMs per step, the second on r * h_prev (w_rz and w_n: the
    first 2H and the last H columns of W_hh^T)."""
    T = gx.shape[0]
    for s in range(T):
        t = T - 1 - s if reverse else s
        matmul_into(h_prev, w_rz, gh_rz)
        gru_reset(gx[t], gh_rz, h_prev, rh)
        matmul_into(rh, w_n, gh_n)
        gru_update(gx[t], gh_rz, gh_n, h_prev, out[t])
        h_prev = out[t]
