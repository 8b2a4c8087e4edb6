"""Unrolling one layer and direction of a recurrence over time, in place.

The input projection of every time step is one GEMM; each step then runs only
the recurrent GEMM and the fused elementwise step, writing ``h`` straight into
the layer's output. Variable lengths use the packed-sequence trick: with the
batch sorted by decreasing length, the sequences still running at step t are a
prefix of the batch, so a step works on ``[:n_t]`` rows and needs no mask and
no per-sequence Python work.
"""


def project_inputs(backend, x, w_ih, gx_bias, batch_first, parts=1):
    """gx = x @ W_ih^T + bias for every time step at once, returned time-major (T, B, G*H), with
    the tasks that fill it: ``parts`` GEMMs over row blocks of x (contiguous, in the caller's
    layout). With batch_first the result is a transposed view of a (B, T, G*H) buffer, so no
    layout copy is made."""
    x_rows = x.reshape(-1, x.shape[-1])
    gx_rows = backend.empty((x_rows.shape[0], w_ih.shape[0]), x.dtype)

    def project(rows):
        backend.xp.matmul(x_rows[rows], w_ih.T, out=gx_rows[rows])
        if gx_bias is not None:
            gx_rows[rows] += gx_bias

    bounds = [x_rows.shape[0] * k // parts for k in range(parts + 1)]
    tasks = [lambda rows=slice(a, b): project(rows) for a, b in zip(bounds[:-1], bounds[1:])]
    gx = gx_rows.reshape(*x.shape[:2], -1)
    return (gx.transpose(1, 0, 2) if batch_first else gx), tasks


def run_direction(rec, gx, w_hh, b_hn, h0, c0, out, reverse, h_n, c_n):
    """Unroll over all T steps (equal lengths). ``out`` (T, B, H) receives every h;
    ``h_n``/``c_n`` receive the final state. ``c_n`` doubles as the running cell state."""
    T = gx.shape[0]
    ws = rec.workspace(gx.shape[1], gx.dtype)
    order = range(T - 1, -1, -1) if reverse else range(T)
    if c_n is not None:
        c_n[...] = c0
    h_prev = h0
    for t in order:
        rec.step(gx[t], h_prev, c_n, w_hh, b_hn, ws, out[t], c_n)
        h_prev = out[t]
    h_n[...] = h_prev


def run_direction_packed(rec, gx, w_hh, b_hn, h0, c0, out, reverse, active, h_n, c_n):
    """Unroll with variable lengths: the batch is sorted by decreasing length and
    ``active[t]`` sequences run at step t. ``h_n``/``c_n`` start as the initial
    state and are updated in place, so a finished sequence keeps its last state and
    a reversed one starts from h0 at its own last step. ``out`` rows past a
    sequence's length are left untouched (zero)."""
    ws = rec.workspace(gx.shape[1], gx.dtype)
    h_n[...] = h0
    if c_n is not None:
        c_n[...] = c0
    order = range(len(active) - 1, -1, -1) if reverse else range(len(active))
    for t in order:
        n = int(active[t])
        if n == 0:
            continue
        ws_n = {name: buf[:n] for name, buf in ws.items()}
        c = None if c_n is None else c_n[:n]
        rec.step(gx[t, :n], h_n[:n], c, w_hh, b_hn, ws_n, h_n[:n], c)
        out[t, :n] = h_n[:n]


# Below this many gate values per step, a batch chunk's step is too small to be worth a thread.
MIN_CHUNK_GATES = 16384


def direction_tasks(rec, gx, w_hh, b_hn, h0, c0, out, reverse, h_n, c_n, active, parts):
    """One direction's recurrence as up to ``parts`` independent tasks over contiguous batch chunks
    (sequences never interact, so each chunk is a recurrence of its own). ``active`` None means
    equal lengths; else, per step, how many of the (length-sorted) sequences still run."""
    batch = gx.shape[1]
    bounds = [batch * k // parts for k in range(parts + 1)]
    tasks = []
    for start, stop in zip(bounds[:-1], bounds[1:]):
        rows = slice(start, stop)
        args = (rec, gx[:, rows], w_hh, b_hn, h0[rows], None if c0 is None else c0[rows], out[:, rows], reverse)
        ends = (h_n[rows], None if c_n is None else c_n[rows])
        if active is None:
            tasks.append(lambda a=args, e=ends: run_direction(*a, *e))
        else:
            chunk_active = (active - start).clip(0, stop - start)
            tasks.append(lambda a=args, e=ends, n=chunk_active: run_direction_packed(*a, n, *e))
    return tasks
