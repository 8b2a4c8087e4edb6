"""What the fuzz compares: rnnkern's forward and backward on one path against the float64 reference.

Forward: ``layer(x, state, lengths)`` and ``forward_train``'s outputs against tests/reference.py (or,
with ONNX options, tests/semantics_reference.py). Backward, checked independently of rnnkern: for
the loss sum(y * w_y) + sum(h_n * w_h) (+ sum(c_n * w_c)) with random weights, the directional
derivative along one random direction per group (x, the initial state, all parameters jointly) by
central differences of the float64 reference, against the dot product of rnnkern's gradients with
that direction. The full gradients are also compared path against path (fuzz_check.compare_paths).
"""

import numpy as np

import reference
import semantics_reference
from fuzz_arrays import dot, parts

EPS = 1e-6  # central differences of a float64 function of O(1) values: error ~1e-10 relative


def reference_outputs(cfg, sd, x, state, lengths):
    """(y, h_n[, c_n]) of the float64 reference, in the caller's layout and batching."""
    x_tm = np.array(x, np.float64)
    x_tm = x_tm[:, None] if cfg.unbatched else (x_tm.transpose(1, 0, 2) if cfg.batch_first else x_tm)
    states = [np.array(s, np.float64)[:, None] if cfg.unbatched else np.array(s, np.float64) for s in parts(state)]
    if cfg.onnx_options:
        y, h_n, c_n = _semantics(cfg, sd, x_tm, states, lengths)
    else:
        given = None if not states else (tuple(states) if cfg.kind == "LSTM" else states[0])
        y, final = reference.layer(cfg.kind, sd, x_tm, given, lengths, cfg.num_layers, cfg.bidirectional,
                                   **cfg.cell)
        h_n, c_n = final if cfg.kind == "LSTM" else (final, None)
    if cfg.unbatched:
        y, h_n, c_n = y[:, 0], h_n[:, 0], (None if c_n is None else c_n[:, 0])
    elif cfg.batch_first:
        y = y.transpose(1, 0, 2)
    return (y, h_n) if c_n is None else (y, h_n, c_n)


def _semantics(cfg, sd, x_tm, states, lengths):
    """(y, h_n, c_n) of the reference with ONNX's options (the case's activations and clip)."""
    options = dict(cfg.onnx_options)
    direction = options.pop("direction", "forward")
    direction = "bidirectional" if cfg.bidirectional else direction
    h0, c0 = (states + [None, None])[:2]
    lbr = cfg.cell.get("linear_before_reset", True)
    return semantics_reference.run(cfg.kind, sd, x_tm, num_layers=cfg.num_layers, direction=direction, h0=h0,
                                   c0=c0, lengths=lengths, linear_before_reset=lbr, **options)


def loss(outputs, weights):
    return sum(float((np.asarray(o, np.float64) * w).sum()) for o, w in zip(outputs, weights))


def directional_derivatives(cfg, sd, x, state, lengths, weights, directions):
    """{group: d loss / d t at t = 0 of the reference along the group's direction}, central differences."""
    x64, s64 = np.array(x, np.float64), [np.array(s, np.float64) for s in parts(state)]
    sd64 = {k: np.array(v, np.float64) for k, v in sd.items()}

    def at(t, group):
        xs = x64 + t * directions["x"] if group == "x" else x64
        ss = [s + t * v for s, v in zip(s64, directions["state"])] if group == "state" else s64
        ps = {k: v + t * directions["params"][k] for k, v in sd64.items()} if group == "params" else sd64
        given = None if not ss else (tuple(ss) if cfg.kind == "LSTM" else ss[0])
        return loss(reference_outputs(cfg, ps, xs, given, lengths), weights)

    groups = ["x", "params"] + (["state"] if s64 else [])
    return {g: (at(EPS, g) - at(-EPS, g)) / (2 * EPS) for g in groups}


def constructed(layer, cfg, sd):
    """Lines for what the constructor got wrong: the layout option, the weights."""
    lines = []
    if layer.batch_first != cfg.batch_first:
        lines.append(f"the {cfg.constructor} constructor gave batch_first={layer.batch_first}, "
                     f"expected {cfg.batch_first}")
    got = layer.state_dict()
    if sorted(got) != sorted(sd):
        lines.append(f"the {cfg.constructor} constructor gave parameters {sorted(got)}, expected {sorted(sd)}")
    else:
        lines += [f"the {cfg.constructor} constructor changed {k}" for k in sd if not np.array_equal(got[k], sd[k])]
    return lines


def rnnkern_results(layer, cfg, x, state, lengths, weights):
    """Everything the path computes: inference and training forward, and the backward of the loss."""
    y, state_n = layer(x, state, lengths=lengths)
    y_train, state_train, tape = layer.forward_train(x, state, lengths=lengths)
    dstate_n = weights[1] if cfg.kind != "LSTM" else (weights[1], weights[2])
    dx, dstate0, dparams = layer.backward(tape, weights[0], dstate_n)
    return {"forward": (y, *parts(state_n)), "forward_train": (y_train, *parts(state_train)),
            "dx": (dx,), "dstate0": parts(dstate0), "dparams": dparams}


def mismatch(name, got, want, rtol, atol):
    """None, or a line saying where ``got`` differs from ``want`` beyond rtol/atol (atol scaled by
    the size of ``want``: a ReLU RNN's values are not bounded)."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    if got.shape != want.shape:
        return f"{name}: shape {got.shape}, expected {want.shape}"
    atol = atol * max(1.0, float(np.abs(want).max(initial=0.0)))
    bad = ~(np.abs(got - want) <= atol + rtol * np.abs(want))  # NaN counts as bad
    if not bad.any():
        return None
    where = np.unravel_index(np.argmax(np.where(bad, np.nan_to_num(np.abs(got - want), nan=np.inf), -1)), bad.shape)
    return (f"{name}: {int(bad.sum())} of {bad.size} values differ, max |diff| "
            f"{np.nanmax(np.abs(got - want)):.3g} at {tuple(int(i) for i in where)} "
            f"(got {got[where]:.6g}, expected {want[where]:.6g})")


def check_directions(results, numeric, directions, rtol):
    """Lines for the groups whose directional derivative from rnnkern's gradients is off."""
    grads = {"x": results["dx"], "state": results["dstate0"],
             "params": [results["dparams"][k] for k in directions["params"]]}
    vecs = {"x": (directions["x"],), "state": directions["state"], "params": list(directions["params"].values())}
    lines = []
    for group, value in numeric.items():
        analytic, scale = dot(grads[group], vecs[group])
        if not abs(analytic - value) <= rtol * (scale + abs(value)) + 1e-12:
            lines.append(f"d loss along a random direction in {group}: rnnkern's gradients give {analytic:.10g}, "
                         f"central differences of the reference {value:.10g}")
    return lines


def compare_paths(results, baseline, rtol, atol):
    """Lines for the gradients where this path's differ from the NumPy path's (the forward results are
    compared with the reference already)."""
    lines = []
    for key in ("dx", "dstate0", "dparams"):
        arrays = results[key]
        pairs = (zip(arrays.values(), baseline[key].values()) if isinstance(arrays, dict)
                 else zip(arrays, baseline[key]))
        for i, (got, want) in enumerate(pairs):
            line = mismatch(f"{key}[{i}] vs the NumPy path", got, want, rtol, atol)
            if line:
                lines.append(line)
    return lines
