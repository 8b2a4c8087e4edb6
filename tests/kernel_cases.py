"""Test helper: one step of each fused kernel on arrays in a chosen memory layout, for any backend.

Shared by the host-compiled kernel tests (test_kernels.py, xp = NumPy) and the GPU tests
(test_gpu_backend.py, xp = CuPy). Values are drawn on the host; ``run`` lays them out on
the backend's device (contiguous, strided or transposed views), runs the step through the backend's
step API at the step's default CellMath (or the one given) and returns host copies.
"""

import numpy as np

# Forward steps (inference); their outputs must stay finite for any finite input.
STEPS = ["rnn_tanh", "rnn_relu", "lstm", "gru", "gru_nobias", "gru_two_phase"]
# Training: forward steps that keep the activations, and the backward steps.
TRAIN_STEPS = ["lstm_train", "gru_train", "gru_nobias_train", "gru_two_phase_train",
               "rnn_backward_tanh", "rnn_backward_relu", "lstm_backward", "gru_backward", "gru_backward_two_phase"]
ALL_STEPS = STEPS + TRAIN_STEPS
_GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def draw(step, B, H, dtype, rng, extreme=False):
    """Host arrays for one step; ``extreme``: a quarter of the entries +-1e4 or +-1e30 (float16: +-1e4)."""
    def sample(*shape):
        x = rng.standard_normal(shape) * 2
        if extreme:
            big = rng.choice([1e4, -1e4, 1e30, -1e30] if dtype != "float16" else [1e4, -1e4], shape)
            x = np.where(rng.random(shape) < 0.25, big, x)
        return x.astype(dtype)

    k = _GATES[step.split("_")[0]]
    two_phase = "two_phase" in step and "backward" not in step
    return {"gx": sample(B, k * H), "gh": sample(B, (2 if two_phase else k) * H), "gh_n": sample(B, H),
            "b_hn": sample(H), "h_prev": sample(B, H), "c_prev": sample(B, H), "c": sample(B, H),
            "dh": sample(B, H), "dc": sample(B, H), "d_rh": sample(B, H), "ghn": sample(B, H),
            # activations: sigmoid outputs in (0, 1), tanh outputs in (-1, 1)
            "acts": rng.uniform(0, 1, (B, k * H)).astype(dtype), "h": rng.uniform(-1, 1, (B, H)).astype(dtype),
            "n": rng.uniform(-1, 1, (B, H)).astype(dtype), "p": sample(3 * H)}  # p: the LSTM's peepholes


def contiguous(xp, values):
    return xp.asarray(np.array(values))  # always a fresh array: gh is overwritten by a step


def strided(xp, values):
    """The same values as a non-contiguous view: every other column of a wider buffer."""
    buf = xp.full((values.shape[0], 2 * values.shape[1]), np.nan, values.dtype)
    buf[:, ::2] = xp.asarray(values)
    return buf[:, ::2]


def transposed(xp, values):
    return xp.asarray(np.array(values.T, order="C")).T  # a copy in Fortran order: columns contiguous


LAYOUTS = {"contiguous": contiguous, "strided": strided, "transposed": transposed}


def default_math(step):
    """The default CellMath of ``step``'s cell (rnn_*: its nonlinearity)."""
    from rnnkern._recurrences.semantics import default_math as default

    kind = step.split("_")[0].upper()
    return default("RNN", step.rsplit("_", 1)[1]) if kind == "RNN" else default(kind)


def run(backend, xp, step, values, layout=contiguous, alias=False, math=None):
    """Run ``step`` on ``backend`` at CellMath ``math`` (None: the step's default); {output name: host
    copy}. ``alias``: h_out is h_prev, c_out is c_prev (dc_prev_out is dc in backward). Training steps
    return the gates gh holds afterwards (in gate form); an RNN step named *_train as well."""
    m = default_math(step) if math is None else math
    a = {k: layout(xp, v) if v.ndim == 2 else xp.asarray(np.array(v)) for k, v in values.items()}
    a["p"] = a["p"] if m.peephole else None
    B, H = values["h_prev"].shape

    def fresh(width=1):  # NaN, so that an element a kernel forgets to write shows
        return layout(xp, np.full((B, width * H), np.nan, values["h_prev"].dtype))

    out = {"h": a["h_prev"] if alias else fresh()}
    if step.startswith("rnn_backward"):
        out = {"da": fresh()}
        backend.rnn_backward(m, a["h"], a["dh"], out["da"])
    elif step.startswith("rnn"):
        train = step.endswith("train")
        backend.rnn_step(m, a["gx"], a["gh"], out["h"], train)
        if train and not m.saves_activations:
            out["pre"] = a["gh"]
    elif step.startswith("lstm"):
        _lstm(backend, m, step, a, out, fresh, alias)
    elif "backward" in step:
        _gru_backward(backend, m, step, a, out, fresh, H)
    else:
        _gru(backend, m, step, a, out, fresh)
    return {k: np.array(backend.to_numpy(v)) for k, v in out.items()}


def _lstm(backend, m, step, a, out, fresh, alias):
    if step == "lstm_backward":
        out.clear()
        out.update(da=fresh(4), dc_prev=a["dc"] if alias else fresh())
        backend.lstm_backward(m, a["acts"], a["c_prev"], a["c"], a["dh"], a["dc"], a["p"], out["da"], out["dc_prev"])
        return
    out["c"] = a["c_prev"] if alias else fresh()
    backend.lstm_step(m, a["gx"], a["gh"], a["c_prev"], a["p"], out["h"], out["c"], step == "lstm_train")
    if step == "lstm_train":
        out["acts"] = a["gh"]


def _gru(backend, m, step, a, out, fresh):
    b_hn = None if "nobias" in step else a["b_hn"]
    if step == "gru_two_phase" or step == "gru_two_phase_train":
        out["rh"] = fresh()
        backend.gru_reset(m, a["gx"], a["gh"], a["h_prev"], out["rh"])
        if step == "gru_two_phase":
            backend.gru_update(m, a["gx"], a["gh"], a["gh_n"], a["h_prev"], out["h"])
            out["r"] = a["gh"][:, :a["h_prev"].shape[1]]  # training saves r from here
        else:
            backend.gru_update(m, a["gx"], a["gh"], a["gh_n"], a["h_prev"], out["h"], True)
            out.update(rz=a["gh"], n=a["gh_n"])
    elif step.endswith("train"):
        out["ghn"] = fresh()
        backend.gru_step(m, a["gx"], a["gh"], b_hn, a["h_prev"], out["h"], out["ghn"])
        out["acts"] = a["gh"]
    else:
        backend.gru_step(m, a["gx"], a["gh"], b_hn, a["h_prev"], out["h"])


def _gru_backward(backend, m, step, a, out, fresh, H):
    out.clear()
    out.update(dgx=fresh(3), direct=fresh())
    if step == "gru_backward":
        out["dgh"] = fresh(3)
        backend.gru_backward(m, a["acts"], a["ghn"], a["h_prev"], a["dh"], out["dgx"], out["dgh"], out["direct"])
    else:  # as _bptt does: z from the saved (r, z), n saved apart
        backend.gru_backward_update(m, a["acts"][:, H:2 * H], a["n"], a["h_prev"], a["dh"], out["dgx"], out["direct"])
        backend.gru_backward_reset(m, a["acts"][:, :H], a["h_prev"], a["d_rh"], out["dgx"], out["direct"])


# Fused kernel vs unfused ufuncs on the same device: only FMA contraction and rounding order differ.
FUSED_TOL = {"float16": 2 ** -10, "float32": 1e-6, "float64": 1e-12}


def unfused(step, xp, a):
    """Forward ``step`` in plain ufuncs of ``xp`` (float32 or wider): the fused kernel's reference.
    Its keys are those ``run`` returns for the step (two-phase GRU: r, rh and h)."""
    H = a["h_prev"].shape[1]

    def sig(x):
        return xp.tanh(x * 0.5) * 0.5 + 0.5
    gx, gh = a["gx"], a["gh"]
    if step.startswith("rnn"):
        s = gx + gh
        return {"h": xp.tanh(s) if step == "rnn_tanh" else xp.maximum(s, 0)}
    if step == "lstm":
        i, f, g, o = (gx[:, k * H:(k + 1) * H] + gh[:, k * H:(k + 1) * H] for k in range(4))
        c = sig(f) * a["c_prev"] + sig(i) * xp.tanh(g)
        return {"h": sig(o) * xp.tanh(c), "c": c}
    r = sig(gx[:, :H] + gh[:, :H])
    z = sig(gx[:, H:2 * H] + gh[:, H:2 * H])
    if step == "gru_two_phase":
        n = xp.tanh(gx[:, 2 * H:] + a["gh_n"])
        return {"r": r, "rh": r * a["h_prev"], "h": (1 - z) * n + z * a["h_prev"]}
    b = a["b_hn"] if step == "gru" else 0
    n = xp.tanh(gx[:, 2 * H:] + r * (gh[:, 2 * H:] + b))
    return {"h": (1 - z) * n + z * a["h_prev"]}


def check_fused_matches_unfused(backend, xp, step, dtype, shape, layout, alias, tol):
    """One forward ``step`` through ``backend`` in ``layout`` against ``unfused`` on the same array module."""
    values = draw(step, *shape, dtype, np.random.default_rng(0))
    got = run(backend, xp, step, values, LAYOUTS[layout], alias)
    wide = "float32" if dtype == "float16" else dtype  # the kernels compute float16 in float32
    ref = unfused(step, xp, {k: xp.asarray(v.astype(wide)) for k, v in values.items()})
    check_close(got, {k: np.asarray(xp.asnumpy(v)) for k, v in ref.items()}, values, tol)


def check_close(got, expected, values, tol):
    """Per element |got - expected| <= tol * (1 + |expected| + |h_prev| + |c_prev|).

    The blends (h_prev - n)*z + n and f*c_prev + i*g carry a last-bit difference of a
    gate times |h_prev| or |c_prev|, so the bound scales with the states as well."""
    assert set(got) == set(expected), (sorted(got), sorted(expected))
    for key in expected:
        assert np.isfinite(got[key]).all(), f"{key}: non-finite output"
        scale = 1 + np.abs(expected[key]).astype("float64")
        if expected[key].shape == values["h_prev"].shape:
            scale = scale + np.abs(values["h_prev"]) + np.abs(values["c_prev"])
        error = np.abs(got[key].astype("float64") - expected[key].astype("float64"))
        worst = np.unravel_index(np.argmax(error / scale), error.shape)
        assert (error <= tol * scale).all(), (
            f"{key}: scaled error {(error / scale)[worst]:.3g} > {tol:g} at {worst}: "
            f"got {got[key][worst]!r}, expected {expected[key][worst]!r}")
