"""Training one layer and direction: a forward pass that saves what backward needs, and BPTT.

Everything is time-major (T, B, F) and the batch is sorted by decreasing length,
so that the ``active[t]`` sequences still running at step t are the prefix
``[:active[t]]`` (as in _sequence.py); without lengths every step is full.
Per step only the recurrent GEMM and the fused backward step run; the weights'
gradients are GEMMs over all time steps at once.

Where the backend has compiled loops for a recurrence (``train_loop``, ``backward_loop``: the numba
backend's, for the LayerNorm cells), they run the same steps with no Python between them, and the
Python loops below do nothing.

``forward_train_direction`` returns a ``DirectionTape``, which ``backward_direction`` takes back with
the direction's ``Weights``; each step's backward gets one ``StepGrad`` (_recurrence.py).
"""

from typing import Any, NamedTuple, Optional

from .ieee import nan_from_inf_expected
from .cells import StepGrad, Weights  # noqa: F401 (Weights is re-exported)


class DirectionTape(NamedTuple):
    """What one direction's forward keeps for its backward."""
    x: Any  # (T, B, I) the direction's input
    y: Any  # (T, B, P) its output
    saved: dict  # rec.saved_arrays: (T, B, columns) each
    h0: Any  # (B, P)
    c0: Optional[Any]  # (B, H), the LSTM's
    active: Any  # the sequences running at each step
    reverse: bool


@nan_from_inf_expected
def forward_train_direction(rec, weights, x, h0, c0, out, active, reverse):
    """Run one direction, writing h into ``out`` (T, B, H). Returns (DirectionTape, h_n, c_n); its
    ``saved`` holds ``rec.saved_arrays`` (T, B, columns): the gates per step."""
    w_hh = weights.w_hh
    T, B = x.shape[:2]
    saved = rec.saved_arrays(T, B, x.dtype)
    h = h0.copy()
    c = c0.copy() if c0 is not None else None
    # Entered first: the step GEMM's provider sets the process's. The packing may take as much as the
    # direction holds anyway: its output, its tape and the input projection (choice.decide)
    held = out.nbytes + sum(a.nbytes for a in saved.values()) + T * B * w_hh.shape[0] * x.dtype.itemsize
    with rec.backend.packed(w_hh.T, B, room=held):
        gx, b_hn = rec.train_inputs(x, weights, saved)
        train_loop = getattr(rec.backend, "train_loop", None)  # a compiled loop, where the backend has one
        steps = () if train_loop is not None and train_loop(rec, gx, w_hh, h, c, out, saved, active, reverse) \
            else (range(T - 1, -1, -1) if reverse else range(T))
        for t in steps:
            n = int(active[t])
            if n == 0:
                continue
            saved_t = {name: buf[t, :n] for name, buf in saved.items()}
            rec.step_train(gx[t, :n], h[:n], None if c is None else c[:n], w_hh, b_hn, saved_t, out[t, :n],
                           saved_t.get("c"))
            h[:n] = out[t, :n]
            if c is not None:
                c[:n] = saved_t["c"]
    return DirectionTape(x, out, saved, h0, c0, active, reverse), h, c


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
def backward_direction(rec, weights, tape, dy, dh_n, dc_n):
    """BPTT through one direction, from its ``DirectionTape``: ``dy`` the gradients of its outputs
    (or None), ``dh_n`` and ``dc_n`` of its final state. Returns (grads keyed
    weight_ih/weight_hh/bias_ih/bias_hh, dx (T, B, I), dh0, dc0)."""
    bk, xp, H = rec.backend, rec.backend.xp, rec.hidden_size
    w_ih, w_hh = weights.w_ih, weights.w_hh
    x, y, saved, h0, c0, active, reverse = tape
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
    scratch = rec.backward_arrays(T, B, x.dtype)
    rows = {**saved, **scratch}
    held = sum(a.nbytes for a in (y, dgx, hprev, *rows.values())) + (0 if dgh is dgx else dgh.nbytes)
    with bk.packed(w_hh, B, room=held):  # dh_prev = dgh @ W_hh at each step
        loop = getattr(bk, "backward_loop", None)
        steps = () if loop is not None and loop(rec, w_hh, tape, dy, dh_rec, dc_rec, hprev, dgx, dgh, rows) \
            else (range(T) if reverse else range(T - 1, -1, -1))
        for t in steps:
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
            dc = None if dc_rec is None else dc_rec[:n]
            rec.backward_step(StepGrad(saved={k: v[t, :n] for k, v in rows.items()}, h_prev=hprev[t, :n],
                                       c_prev=None if cprev is None else cprev[:n], h=y[t, :n], dh=dh[:n],
                                       dc=dc, w_hh=w_hh, dgx=dgx[t, :n], dgh=dgh[t, :n], dh_prev_out=dh_rec[:n],
                                       dc_prev_out=dc))
    dgx2 = dgx.reshape(T * B, G * H)
    dgh2 = dgx2 if dgh is dgx else dgh.reshape(T * B, G * H)  # the same array stays one (parameter_grads)
    grads = {"weight_ih": None, "weight_hh": bk.empty(w_hh.shape, x.dtype)}
    for block, inputs in rec.hh_inputs(hprev, saved):
        grads["weight_hh"][block] = bk.matmul(dgh2[:, block].T, inputs.reshape(T * B, P))
    grads.update(rec.output_weight_grads(dh_steps, saved))
    dproj = rec.parameter_grads(grads, dgx2, dgh2, rows, weights)  # the biases (and norms); d(x W_ih^T)
    grads["weight_ih"] = bk.matmul(dproj.T, x.reshape(T * B, x.shape[-1]))
    dx = bk.matmul(dproj, w_ih).reshape(T, B, w_ih.shape[1])
    return grads, dx, dh_rec, dc_rec
