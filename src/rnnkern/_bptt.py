"""Training one layer and direction: a forward pass that saves what backward needs, and BPTT.

Everything is time-major (T, B, F) and the batch is sorted by decreasing length,
so that the ``active[t]`` sequences still running at step t are the prefix
``[:active[t]]`` (as in _sequence.py); without lengths every step is full.
Per step only the recurrent GEMM and the fused backward step run; the weights'
gradients are GEMMs over all time steps at once.
"""

from ._ieee import nan_from_inf_expected
from ._sequence import project_inputs


@nan_from_inf_expected
def forward_train_direction(rec, w_ih, w_hh, b_ih, b_hh, x, h0, c0, out, active, reverse):
    """Run one direction, writing h into ``out`` (T, B, H). Returns (saved, h_n, c_n); ``saved``
    holds ``rec.saved_widths`` arrays of shape (T, B, width*H): the gate activations per step."""
    bk, H = rec.backend, rec.hidden_size
    T, B = x.shape[:2]
    gx_bias, b_hn = rec.fold_bias(b_ih, b_hh)
    gx = project_inputs(bk, x, w_ih, gx_bias, batch_first=False)
    saved = {name: bk.zeros((T, B, width * H), x.dtype) for name, width in rec.saved_widths.items()}
    h = h0.copy()
    c = c0.copy() if c0 is not None else None
    for t in (range(T - 1, -1, -1) if reverse else range(T)):
        n = int(active[t])
        if n == 0:
            continue
        saved_t = {name: buf[t, :n] for name, buf in saved.items()}
        rec.step_train(gx[t, :n], h[:n], None if c is None else c[:n], w_hh, b_hn, saved_t, out[t, :n],
                       saved_t.get("c"))
        h[:n] = out[t, :n]
        if c is not None:
            c[:n] = saved_t["c"]
    return saved, h, c


def _previous(dst, seq, init, t, n, active, reverse):
    """dst[:n] = each running sequence's state before step t: seq at the step before it in its
    direction, or ``init`` for a sequence that starts at t (t = 0, or t = its last step in reverse)."""
    if not reverse:
        dst[:n] = init[:n] if t == 0 else seq[t - 1, :n]
        return
    m = int(active[t + 1]) if t + 1 < len(active) else 0
    if m:
        dst[:m] = seq[t + 1, :m]
    dst[m:n] = init[m:n]


@nan_from_inf_expected
def backward_direction(rec, w_ih, w_hh, has_bias, x, y, saved, h0, c0, dy, dh_n, dc_n, active, reverse):
    """BPTT through one direction. ``y`` (T, B, H) are its outputs, ``dy`` their gradients (or None).
    Returns (grads keyed weight_ih/weight_hh/bias_ih/bias_hh, dx (T, B, I), dh0, dc0)."""
    bk, xp, H = rec.backend, rec.backend.xp, rec.hidden_size
    T, B = x.shape[:2]
    G = rec.gates
    dgx = bk.zeros((T, B, G * H), x.dtype)          # zero rows: steps past a sequence's length
    dgh = dgx if rec.shares_dgh else bk.zeros((T, B, G * H), x.dtype)
    P = y.shape[-1]  # the width of h: H, or the LSTM's proj_size
    hprev = bk.zeros((T, B, P), x.dtype)
    cprev = bk.empty((B, H), x.dtype) if c0 is not None else None
    dh_rec = dh_n.copy()
    dh_steps = bk.zeros((T, B, P), x.dtype) if rec.keeps_dh else None
    dh_buffer = bk.empty((B, P), x.dtype) if dh_steps is None else None
    dc_rec = dc_n.copy() if c0 is not None else None
    for t in (range(T) if reverse else range(T - 1, -1, -1)):
        n = int(active[t])
        if n == 0:
            continue
        _previous(hprev[t], y, h0, t, n, active, reverse)
        if cprev is not None:
            _previous(cprev, saved["c"], c0, t, n, active, reverse)
        dh = dh_steps[t] if dh_steps is not None else dh_buffer
        if dy is None:
            dh[:n] = dh_rec[:n]
        else:
            xp.add(dy[t, :n], dh_rec[:n], out=dh[:n])
        rec.backward_step({k: v[t, :n] for k, v in saved.items()}, hprev[t, :n],
                          None if cprev is None else cprev[:n], y[t, :n], dh[:n],
                          None if dc_rec is None else dc_rec[:n], w_hh, dgx[t, :n], dgh[t, :n],
                          dh_rec[:n], None if dc_rec is None else dc_rec[:n])
    dgx2, dgh2 = dgx.reshape(T * B, G * H), dgh.reshape(T * B, G * H)
    grads = {"weight_ih": xp.matmul(dgx2.T, x.reshape(T * B, x.shape[-1])), "weight_hh": bk.empty(w_hh.shape, x.dtype)}
    for rows, inputs in rec.hh_inputs(hprev, saved):
        grads["weight_hh"][rows] = xp.matmul(dgh2[:, rows].T, inputs.reshape(T * B, P))
    grads.update(rec.output_weight_grads(dh_steps, saved))
    if has_bias:
        grads["bias_ih"], grads["bias_hh"] = dgx2.sum(axis=0), dgh2.sum(axis=0)
    dx = xp.matmul(dgx2, w_ih).reshape(T, B, w_ih.shape[1])
    return grads, dx, dh_rec, dc_rec
