"""The LayerNorm cells' training time loops (issue 20): one direction's forward_train and BPTT as
compiled loops, the per-step work of bptt.py with no Python between steps.

At small batches the Python around a step (slicing the saved rows, a dozen calls that check their
arguments) costs as much as the step's GEMM and kernel: at T=100 B=8 H=256, 16 of the 50 ms a
training call took. The loops run what bptt.forward_train_direction and backward_direction run,
in the same order and with the same kernels (lnsteps' row loops, inlined with their zoneout variant
as a constant), so they give the same numbers bit for bit (tests/test_layernorm_train_loops.py).

Variable lengths as in bptt.py: the batch is sorted by decreasing length and ``active[t]`` rows run
at step t. ``w_t`` / ``w`` are W_hh^T (H, G*H) and W_hh (G*H, H) as ``blas.matmul_into`` takes them for
full steps (MKL's packing, say), ``w_part`` the same for steps that run part of the batch. Zoneout
in training is none or the step's 0/1 mask (``masked``); an absent mask gets ``out`` as a stand-in
of its type, never read. The cell state's gradient, which a backward step reads and writes, is copied
into a scratch row first (as the backend's ``apart`` does): vectorised loops run scalar on overlap.
"""

from numba import njit

from .blas import matmul_into
from .lnsteps import MASK, NONE, _lngru_back_rows, _lngru_rows, _lnlstm_back_rows, _lnlstm_rows
from .scalar import JIT

inline = njit(inline="always", **JIT)


@inline
def _previous(dst, seq, init, t, n, active, reverse):
    """dst[:n] = each running row's state before step t (bptt._previous): ``seq`` at the step before in
    the direction's order, or ``init`` for a row that starts at t."""
    if not reverse:
        if t == 0:
            dst[:n] = init[:n]
        else:
            dst[:n] = seq[t - 1, :n]
        return
    m = active[t + 1] if t + 1 < active.shape[0] else 0
    if m > 0:
        dst[:m] = seq[t + 1, :m]
    dst[m:n] = init[m:n]


@inline
def _step_gemm(a, w_full, w_part, out, n):
    """out[:n] = a[:n] @ W, by ``w_full`` where the step runs every row (n = B), else ``w_part``."""
    if n == a.shape[0]:
        matmul_into(a, w_full, out)
    else:
        matmul_into(a[:n], w_part, out[:n])


@inline
def _add_rows(dst, a, b, n):
    """dst[:n] = a[:n] + b[:n], element by element (numba's array expression would allocate)."""
    for i in range(n):
        for j in range(dst.shape[1]):
            dst[i, j] = a[i, j] + b[i, j]


@inline
def _gradient_in(dh, dy, dh_rec, t, n, has_dy):
    """dh[:n] = dy[t, :n] + dh_rec[:n]: what reaches step t's h, from the output and the step after."""
    if has_dy:
        _add_rows(dh, dy[t], dh_rec, n)
    else:
        dh[:n] = dh_rec[:n]


@njit(nogil=True, **JIT)
def lnlstm_forward(gx, w_t, w_part, h, c, gamma_hh, gamma_c, beta_c, mask, masked, active, reverse,
                   out, c_seq, gates, hh_hat, c_hat, rstd, gh):
    """Every step t: gh = h[:n] @ W_hh^T, then the training step into out[t], c_seq[t] and the saved
    rows. ``h`` and ``c`` (B, H) start as the initial state and end as the final one."""
    T = gx.shape[0]
    for s in range(T):
        t = T - 1 - s if reverse else s
        n = active[t]
        if n == 0:
            continue
        _step_gemm(h, w_t, w_part, gh, n)
        if masked:
            _lnlstm_rows(gx[t, :n], gh[:n], c[:n], h[:n], gamma_hh, gamma_c, beta_c, 0.0, mask[t, :n],
                         out[t, :n], c_seq[t, :n], gates[t, :n], hh_hat[t, :n], c_hat[t, :n], rstd[t, :n], MASK, True)
        else:
            _lnlstm_rows(gx[t, :n], gh[:n], c[:n], h[:n], gamma_hh, gamma_c, beta_c, 0.0, out[t, :n],
                         out[t, :n], c_seq[t, :n], gates[t, :n], hh_hat[t, :n], c_hat[t, :n], rstd[t, :n], NONE, True)
        h[:n] = out[t, :n]
        c[:n] = c_seq[t, :n]


@njit(nogil=True, **JIT)
def lnlstm_backward(w, w_part, y, c_seq, gates, hh_hat, c_hat, rstd, h0, c0, dy, has_dy, gamma_hh, gamma_c, beta_c,
                    mask, masked, active, reverse, dh_rec, dc_rec, hprev, cprev, dh, dc, direct, dgx, dgh, dcn):
    """BPTT from the last step in the direction's order to the first: the fused backward step, then
    dh_rec[:n] = dgh[t, :n] @ W_hh (+ what zoneout passes by). ``dh_rec`` and ``dc_rec`` start as the
    final state's gradients and end as the initial state's; hprev[t] gets each step's h_prev (for
    dW_hh); dgx, dgh and dcn get every step's rows."""
    T = y.shape[0]
    for s in range(T):
        t = s if reverse else T - 1 - s
        n = active[t]
        if n == 0:
            continue
        _previous(hprev[t], y, h0, t, n, active, reverse)
        _previous(cprev, c_seq, c0, t, n, active, reverse)
        _gradient_in(dh, dy, dh_rec, t, n, has_dy)
        dc[:n] = dc_rec[:n]
        if masked:
            _lnlstm_back_rows(gates[t, :n], hh_hat[t, :n], c_hat[t, :n], rstd[t, :n], cprev[:n], dh[:n], dc[:n],
                              gamma_hh, gamma_c, beta_c, 0.0, mask[t, :n], dgx[t, :n], dgh[t, :n], dc_rec[:n],
                              direct[:n], dcn[t, :n], MASK)
        else:
            _lnlstm_back_rows(gates[t, :n], hh_hat[t, :n], c_hat[t, :n], rstd[t, :n], cprev[:n], dh[:n], dc[:n],
                              gamma_hh, gamma_c, beta_c, 0.0, dh[:n], dgx[t, :n], dgh[t, :n], dc_rec[:n],
                              dcn[t, :n], dcn[t, :n], NONE)
        _step_gemm(dgh[t], w, w_part, dh_rec, n)
        if masked:
            _add_rows(dh_rec, dh_rec, direct, n)


@njit(nogil=True, **JIT)
def lngru_forward(gx, w_t, w_part, h, gamma_hh, b_hh, mask, masked, active, reverse, out, gates, hh_hat, rstd, gh):
    """Every step t: gh = h[:n] @ W_hh^T, then the training step into out[t] and the saved rows;
    ``h`` (B, H) starts as the initial state and ends as the final one."""
    T = gx.shape[0]
    for s in range(T):
        t = T - 1 - s if reverse else s
        n = active[t]
        if n == 0:
            continue
        _step_gemm(h, w_t, w_part, gh, n)
        if masked:
            _lngru_rows(gx[t, :n], gh[:n], h[:n], gamma_hh, b_hh, 0.0, mask[t, :n], out[t, :n], gates[t, :n],
                        hh_hat[t, :n], rstd[t, :n], MASK, True)
        else:
            _lngru_rows(gx[t, :n], gh[:n], h[:n], gamma_hh, b_hh, 0.0, out[t, :n], out[t, :n], gates[t, :n],
                        hh_hat[t, :n], rstd[t, :n], NONE, True)
        h[:n] = out[t, :n]


@njit(nogil=True, **JIT)
def lngru_backward(w, w_part, y, gates, hh_hat, rstd, h0, dy, has_dy, gamma_hh, b_hh, mask, masked, active, reverse,
                   dh_rec, hprev, dh, direct, dgx, dghn, dgh):
    """BPTT as lnlstm_backward's: the fused backward step, then dh_rec[:n] = dgh[t, :n] @ W_hh + the
    part of dh that reaches h_prev directly (through z, and zoneout)."""
    T = y.shape[0]
    for s in range(T):
        t = s if reverse else T - 1 - s
        n = active[t]
        if n == 0:
            continue
        _previous(hprev[t], y, h0, t, n, active, reverse)
        _gradient_in(dh, dy, dh_rec, t, n, has_dy)
        if masked:
            _lngru_back_rows(gates[t, :n], hh_hat[t, :n], rstd[t, :n], hprev[t, :n], dh[:n], gamma_hh, b_hh, 0.0,
                             mask[t, :n], dgx[t, :n], dghn[t, :n], dgh[t, :n], direct[:n], MASK)
        else:
            _lngru_back_rows(gates[t, :n], hh_hat[t, :n], rstd[t, :n], hprev[t, :n], dh[:n], gamma_hh, b_hh, 0.0,
                             dh[:n], dgx[t, :n], dghn[t, :n], dgh[t, :n], direct[:n], NONE)
        _step_gemm(dgh[t], w, w_part, dh_rec, n)
        _add_rows(dh_rec, dh_rec, direct, n)
