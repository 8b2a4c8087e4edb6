"""Test helper: the LayerNorm LSTM and GRU steps of issue 20, transcribed from the spec's equations in
float64 NumPy, unfused (whole arrays, no shared code with any backend), forward and backward, and the
step cases the kernel tests run on every backend (``draw``, ``run_forward``, ``run_backward``).

The backward transcriptions take the saved arrays (gates, hh_hat, c_hat, rstd) the forward returns,
as the kernels do; test_layernorm_kernels.py checks them against central differences of the forward,
so no test depends on torch.
"""

import numpy as np

from rnnkern._recurrences.layernorm_math import EPS, LNGRUNorms, LNLSTMNorms, Zoneout

ZONEOUTS = ("none", "blend", "mask")
PROB = 0.3


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def layer_norm(x):
    """(x - mean)/sqrt(var + EPS) over the last axis (biased variance), and 1/sqrt(var + EPS)."""
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    rstd = 1 / np.sqrt(var + EPS)
    return (x - mean) * rstd, rstd[..., 0]


def layer_norm_backward(dy, gamma, hat, rstd):
    """The gradient of LN's input x from dy, the gradient of gamma*hat (+ beta)."""
    d = dy * gamma
    return rstd[:, None] * (d - d.mean(-1, keepdims=True) - hat * (d * hat).mean(-1, keepdims=True))


def split(x, k):
    return np.split(x, k, axis=-1)


def zoneout(h_prev, h_new, kind, mask):
    if kind == "mask":
        return h_prev + mask * (h_new - h_prev)
    if kind == "blend":
        return PROB * h_prev + (1 - PROB) * h_new
    return h_new


def zoneout_split(dh, kind, mask):
    """(gradient into h_new, gradient straight into h_prev) from dh, the gradient of h'."""
    keep = mask if kind == "mask" else (1 - PROB if kind == "blend" else 1.0)
    return keep * dh, (1 - keep) * dh


def lnlstm_forward(v, kind):
    """v: dict of float64 arrays gx, gh, c_prev, h_prev, gamma_hh, gamma_c, beta_c, mask."""
    hh_hat, rstd = layer_norm(v["gh"])
    a_i, a_f, a_g, a_o = split(v["gx"] + v["gamma_hh"] * hh_hat, 4)
    i, f, g, o = sigmoid(a_i), sigmoid(a_f), np.tanh(a_g), sigmoid(a_o)
    c = f * v["c_prev"] + i * g
    c_hat, rstd_c = layer_norm(c)
    h_new = o * np.tanh(v["gamma_c"] * c_hat + v["beta_c"])
    return {"h": zoneout(v["h_prev"], h_new, kind, v["mask"]), "c": c, "gates": np.concatenate([i, f, g, o], 1),
            "hh_hat": hh_hat, "c_hat": c_hat, "rstd": np.stack([rstd, rstd_c], 1)}


def lnlstm_backward(v, saved, kind):
    """v: the forward's inputs plus dh (into h') and dc (into c'). Gradients of gx (= of v), raw gh,
    c_prev, h_prev (straight through zoneout) and cn = LN(c')."""
    i, f, g, o = split(saved["gates"], 4)
    d_new, d_direct = zoneout_split(v["dh"], kind, v["mask"])
    t = np.tanh(v["gamma_c"] * saved["c_hat"] + v["beta_c"])
    da_o = d_new * t * o * (1 - o)
    dcn = d_new * o * (1 - t * t)
    dc = layer_norm_backward(dcn, v["gamma_c"], saved["c_hat"], saved["rstd"][:, 1]) + v["dc"]
    dgx = np.concatenate([dc * g * i * (1 - i), dc * v["c_prev"] * f * (1 - f), dc * i * (1 - g * g), da_o], 1)
    return {"dgx": dgx, "dgh": layer_norm_backward(dgx, v["gamma_hh"], saved["hh_hat"], saved["rstd"][:, 0]),
            "dc_prev": dc * f, "dh_direct": d_direct, "dcn": dcn}


def lngru_forward(v, kind):
    """v: float64 arrays gx, gh, h_prev, gamma_hh, b_hh, mask."""
    hh_hat, rstd = layer_norm(v["gh"])
    n_r, n_z, n_n = split(v["gamma_hh"] * hh_hat + v["b_hh"], 3)
    x_r, x_z, x_n = split(v["gx"], 3)
    r, z = sigmoid(x_r + n_r), sigmoid(x_z + n_z)
    n = np.tanh(x_n + r * n_n)
    h_new = (1 - z) * n + z * v["h_prev"]
    return {"h": zoneout(v["h_prev"], h_new, kind, v["mask"]), "gates": np.concatenate([r, z, n], 1),
            "hh_hat": hh_hat, "rstd": rstd[:, None]}


def lngru_backward(v, saved, kind):
    r, z, n = split(saved["gates"], 3)
    ghn_n = split(v["gamma_hh"] * saved["hh_hat"] + v["b_hh"], 3)[2]
    d_new, d_direct = zoneout_split(v["dh"], kind, v["mask"])
    da_n = d_new * (1 - z) * (1 - n * n)
    da_r = da_n * ghn_n * r * (1 - r)
    da_z = d_new * (v["h_prev"] - n) * z * (1 - z)
    dghn = np.concatenate([da_r, da_z, da_n * r], 1)
    return {"dgx": np.concatenate([da_r, da_z, da_n], 1), "dghn": dghn,
            "dgh": layer_norm_backward(dghn, v["gamma_hh"], saved["hh_hat"], saved["rstd"][:, 0]),
            "dh_direct": z * d_new + d_direct}


FORWARD = {"lstm": lnlstm_forward, "gru": lngru_forward}
BACKWARD = {"lstm": lnlstm_backward, "gru": lngru_backward}
GATES = {"lstm": 4, "gru": 3}


def draw(cell, B, H, rng):
    """float64 inputs of one step (forward and backward) of ``cell``."""
    G = GATES[cell] * H
    v = {"gx": rng.standard_normal((B, G)), "gh": rng.standard_normal((B, G)) * 2 + 0.5,
         "h_prev": rng.standard_normal((B, H)), "c_prev": rng.standard_normal((B, H)),
         "gamma_hh": 1 + 0.3 * rng.standard_normal(G), "gamma_c": 1 + 0.3 * rng.standard_normal(H),
         "beta_c": 0.5 * rng.standard_normal(H), "b_hh": 0.5 * rng.standard_normal(G),
         "mask": (rng.random((B, H)) < 1 - PROB).astype(float),
         "dh": rng.standard_normal((B, H)), "dc": rng.standard_normal((B, H))}
    if cell == "gru":
        del v["c_prev"], v["gamma_c"], v["beta_c"], v["dc"]
    return v


# --- running a backend's step API on these cases ----------------------------------------------------------
def prefix_rows(xp, values):
    """``values`` as the first rows and columns of a bigger NaN buffer: a row stride that is not the width."""
    B, W = values.shape
    buf = xp.full((B + 2, W + 5), np.nan, values.dtype)
    buf[:B, :W] = xp.asarray(values)
    return buf[:B, :W]


def contiguous(xp, values):
    return xp.asarray(np.array(values))


LAYOUTS = {"contiguous": contiguous, "prefix": prefix_rows}


def _zoneout(kind, mask):
    return Zoneout(0.0 if kind == "none" else PROB, mask if kind == "mask" else None)


def _norms(cell, a):
    if cell == "lstm":
        return LNLSTMNorms(a["gamma_hh"], a["gamma_c"], a["beta_c"])
    return LNGRUNorms(a["gamma_hh"], a["b_hh"])


def run_forward(backend, xp, cell, values, kind, dtype, layout=contiguous, alias=False, train=False):
    """One step of ``backend``'s ln{cell}_step on ``values`` (float64, cast to ``dtype``): {name: host array}.
    ``alias``: h_out is h_prev (and c_out c_prev); ``train``: the saved arrays are returned too."""
    a = {k: layout(xp, v.astype(dtype)) if v.ndim == 2 else xp.asarray(v.astype(dtype)) for k, v in values.items()}
    B, H = values["h_prev"].shape
    G = GATES[cell] * H

    def fresh(width):
        return layout(xp, np.full((B, width), np.nan, dtype))

    h_out = a["h_prev"] if alias else fresh(H)
    saved = None
    if train:
        saved = {"gates": fresh(G), "hh_hat": fresh(G), "rstd": fresh(2 if cell == "lstm" else 1)}
        if cell == "lstm":
            saved.update(c_hat=fresh(H), c=a["c_prev"] if alias else fresh(H))
    zone = _zoneout(kind, a["mask"])
    out = {"h": h_out}
    if cell == "lstm":
        c_out = saved["c"] if train else (a["c_prev"] if alias else fresh(H))
        backend.lnlstm_step(a["gx"], a["gh"], a["c_prev"], a["h_prev"], _norms(cell, a), zone, h_out, c_out, saved)
        out["c"] = c_out
    else:
        backend.lngru_step(a["gx"], a["gh"], a["h_prev"], _norms(cell, a), zone, h_out, saved)
    if train:
        out.update({k: v for k, v in saved.items() if k != "c"})
    return {k: np.asarray(backend.to_numpy(v)).astype(np.float64) for k, v in out.items()}


def run_backward(backend, xp, cell, values, saved, kind, dtype, layout=contiguous, alias=False):
    """One ln{cell}_backward on ``values`` and ``saved`` (float64, cast to ``dtype``). ``alias``:
    dc_prev_out is dc (LSTM). Returns {name: host array} with the reference's keys."""
    cast = dict(values, **{f"saved_{k}": v for k, v in saved.items()})
    a = {k: layout(xp, v.astype(dtype)) if v.ndim == 2 else xp.asarray(v.astype(dtype)) for k, v in cast.items()}
    s = {k: a[f"saved_{k}"] for k in saved}
    B, H = values["h_prev"].shape
    G = GATES[cell] * H

    def fresh(width):
        return layout(xp, np.full((B, width), np.nan, dtype))

    zone = _zoneout(kind, a["mask"])
    out = {"dgx": fresh(G), "dgh": fresh(G), "dh_direct": fresh(H)}
    if cell == "lstm":
        if kind == "none":
            del out["dh_direct"]
        out.update(dc_prev=a["dc"] if alias else fresh(H), dcn=fresh(H))
        backend.lnlstm_backward(s, a["c_prev"], a["dh"], a["dc"], _norms(cell, a), zone, out["dgx"], out["dgh"],
                                out["dc_prev"], out.get("dh_direct"), out["dcn"])
    else:
        out["dghn"] = fresh(G)
        backend.lngru_backward(s, a["h_prev"], a["dh"], _norms(cell, a), zone, out["dgx"], out["dghn"], out["dgh"],
                               out["dh_direct"])
    return {k: np.asarray(backend.to_numpy(v)).astype(np.float64) for k, v in out.items()}


SHAPES = [(4, 8), (1, 1), (3, 33)]


def check_backend(backend, xp, cell, kind, dtype, layout, tol, shapes=SHAPES):
    """``backend``'s forward (inference and training, saved arrays included) and backward of ``cell`` with
    zoneout ``kind`` against the transcription, on each shape, with and without outputs aliasing their
    inputs (h_out = h_prev, c_out = c_prev, dc_prev_out = dc)."""
    for shape in shapes:
        v = draw(cell, *shape, np.random.default_rng(shape[0] * 100 + shape[1]))
        # the reference computes on the values the kernel sees (cast to dtype)
        v = {k: x.astype(dtype).astype(np.float64) for k, x in v.items()}
        expected = FORWARD[cell](v, kind)
        for alias in (False, True):
            for train in (False, True):
                what = f"{cell} {kind} {dtype} {shape} alias={alias} train={train}"
                got = run_forward(backend, xp, cell, v, kind, dtype, layout, alias, train)
                check_close(got, expected, tol, what)
            saved = {k: expected[k].astype(dtype).astype(np.float64) for k in ("gates", "hh_hat", "c_hat", "rstd")
                     if k in expected}
            want = BACKWARD[cell](v, saved, kind)
            got = run_backward(backend, xp, cell, v, saved, kind, dtype, layout, alias)
            check_close(got, want, tol, f"{cell} backward {kind} {dtype} {shape} alias={alias}")


def check_close(got, expected, tol, what):
    """|got - expected| <= tol * (1 + |expected|) per element, and every element finite."""
    for key in got:
        want = expected[key]
        assert got[key].shape == want.shape, (what, key, got[key].shape, want.shape)
        assert np.isfinite(got[key]).all(), f"{what}: {key} has non-finite entries (an element not written?)"
        err = np.abs(got[key] - want) / (1 + np.abs(want))
        worst = np.unravel_index(np.argmax(err), err.shape)
        assert err[worst] <= tol, (f"{what}: {key} scaled error {err[worst]:.3g} > {tol:g} at {worst}: "
                                   f"got {got[key][worst]!r}, expected {want[worst]!r}")
