"""A differential fuzz of the layers: every CPU path against the float64 reference, forward and backward.

Seeded random cases (tests/fuzz_configs.py) cover RNN (tanh, relu), LSTM (with and without proj_size)
and GRU (both reset variants); float32 and float64; every size-1 dimension; batches 15, 16, 17 about
the compiled loop's edge; 1-3 layers, both directions, lengths, given initial states as broadcast,
reversed, strided, overlapping, Fortran-order and read-only views; non-contiguous, Fortran-order,
reversed and read-only inputs; unbatched inputs; layers made by the class, from_state_dict,
from_onnx (through to_onnx), from_keras (configs and weights), copy.deepcopy and pickle; and a slice
with ONNX options (clip, activations, direction='reverse'). Each case runs on the three CPU paths:
the NumPy steps, the numba steps (Python time loop) and the numba compiled time loop (batch <= 16,
no lengths). See fuzz_check.py for what is compared.

A failure prints the case (its index alone reproduces it: fuzz_configs.draw(index)).
RNNKERN_FUZZ_CASES=n runs n cases instead of CASES (e.g. a longer hunt on a quiet machine).

On the code before issue 15's fixes (baf7e69) 304 of the 1,800 items (182 of the 600 cases) failed:
on the compiled loop only, 40 cases with hidden_size=1 LSTM/GRU weights from from_state_dict,
from_onnx, from_keras, deepcopy or pickle, and 81 with an initial state whose batch stride is below H
(broadcast, reversed, overlapping) at batch 2-16; on every path, 61 cases of from_onnx(to_onnx(layer))
of a batch_first layer coming back time-major. The NumPy and numba step paths had no other failure.
"""

import os

import numpy as np
import pytest

import rnnkern

import fuzz_check as check
from conftest import TOLERANCE
from fuzz_arrays import input_view, lengths_for, parts, state_view
from fuzz_build import NUMBA_REASON, PATHS, build, intended_state_dict
from fuzz_configs import SEED, draw

CASES = int(os.environ.get("RNNKERN_FUZZ_CASES", 600))  # 55-90 s on two shared cores
CONFIGS = [draw(i) for i in range(CASES)]
_CACHE = {}  # index -> the case's arrays and reference results; (index, "numpy") -> the NumPy path's


def _arrays(cfg):
    """(intended weights, x, state, lengths, the reference's outputs, loss weights, directions), drawn
    from the case's seed."""
    rng = np.random.default_rng([SEED, cfg.index, 1])
    T, B, I, LD = cfg.steps, cfg.batch, cfg.input_size, cfg.num_layers * (2 if cfg.bidirectional else 1)
    shape = (T, I) if cfg.unbatched else ((B, T, I) if cfg.batch_first else (T, B, I))
    x = input_view(rng.standard_normal(shape).astype(cfg.dtype), cfg.input)
    widths = [cfg.proj_size or cfg.hidden_size] + ([cfg.hidden_size] if cfg.kind == "LSTM" else [])
    states = [state_view(rng, (LD, w) if cfg.unbatched else (LD, B, w), cfg.dtype, cfg.state) for w in widths]
    state = None if cfg.state == "none" else (tuple(states) if cfg.kind == "LSTM" else states[0])
    sd = intended_state_dict(cfg)
    lengths = lengths_for(rng, cfg)
    expected = check.reference_outputs(cfg, sd, x, state, lengths)
    weights = [rng.standard_normal(o.shape).astype(cfg.dtype) for o in expected]  # dy, dh_n, dc_n of the backward
    directions = {"x": rng.standard_normal(x.shape), "state": [rng.standard_normal(s.shape) for s in parts(state)],
                  "params": {k: rng.standard_normal(v.shape) for k, v in sd.items()}}
    return sd, x, state, lengths, expected, weights, directions


def _case(cfg):
    """The case's arrays, its reference outputs and directional derivatives (computed once, shared by the paths)."""
    if cfg.index not in _CACHE:
        sd, x, state, lengths, expected, weights, directions = _arrays(cfg)
        numeric = check.directional_derivatives(cfg, sd, x, state, lengths, weights, directions)
        _CACHE[cfg.index] = (sd, x, state, lengths, weights, directions, expected, numeric)
    return _CACHE[cfg.index]


def _tolerance(cfg):
    """(rtol, atol) against the float64 reference: conftest's TOLERANCE, looser with depth in time."""
    rtol, atol = TOLERANCE[cfg.dtype]
    scale = 1 + cfg.steps * cfg.num_layers / 2
    return rtol * scale, atol * scale


def _run(cfg, path, tmp_path):
    """(lines about the constructor's result, the path's results or None when the constructor failed)."""
    sd, x, state, lengths, weights, *_ = _case(cfg)
    layer = build(cfg, PATHS[path](), sd, tmp_path)
    wrong = check.constructed(layer, cfg, sd)
    return wrong, (None if wrong else check.rnnkern_results(layer, cfg, x, state, lengths, weights))


def _problems(cfg, path, tmp_path):
    """Lines describing every disagreement of this path with the reference (and the NumPy path)."""
    sd, x, state, lengths, weights, directions, expected, numeric = _case(cfg)
    wrong, results = _run(cfg, path, tmp_path)
    if wrong:
        return wrong
    rtol, atol = _tolerance(cfg)
    lines = []
    for key in ("forward", "forward_train"):
        names = ["y", "h_n", "c_n"]
        for name, got, want in zip(names, results[key], expected):
            lines.append(check.mismatch(f"{key} {name}", got, want, rtol, atol))
    # central differences of the float64 reference are good to ~1e-10 relative: no tighter than 1e-7
    lines += check.check_directions(results, numeric, directions, max(10 * rtol, 1e-7))
    if path != "numpy":  # the full gradients, against the NumPy path's (same constructor, same dtype)
        if (cfg.index, "numpy") not in _CACHE:
            _CACHE[cfg.index, "numpy"] = _run(cfg, "numpy", tmp_path)[1]
        if _CACHE[cfg.index, "numpy"] is not None:
            lines += check.compare_paths(results, _CACHE[cfg.index, "numpy"], rtol, atol)
    return [line for line in lines if line]


@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: c.id)
def test_every_cpu_path_matches_the_float64_reference(cfg, path, tmp_path):
    if PATHS[path] is None:
        pytest.skip(f"the numba paths need numba: {NUMBA_REASON}")
    try:
        problems = _problems(cfg, path, tmp_path)
    except Exception as exc:  # the case must be printed whatever goes wrong
        pytest.fail(f"{_header(cfg, path)}\nraised {type(exc).__name__}: {exc}")
    if problems:
        pytest.fail("\n".join([_header(cfg, path)] + problems))


def _header(cfg, path):
    return (f"fuzz case {cfg.index} on the {path} path (reproduce: fuzz_configs.draw({cfg.index}), or "
            f"pytest tests/test_fuzz_layers.py -k '{cfg.id} and {path}'):\n{cfg}")


def test_the_loop_path_reaches_the_compiled_loop():
    """Where the compiled loop applies (batch <= 16, no lengths), the numba_loop path must run it, or the
    fuzz would test nothing there."""
    from rnnkern._backend.numba import blas as _numba_blas

    if PATHS["numba_loop"] is None or not _numba_blas.AVAILABLE:
        pytest.skip(NUMBA_REASON or "NumPy's BLAS is not scipy-openblas64: no compiled loop here")

    class Recording(PATHS["numba_loop"]):
        ran = ()

        def time_loop(self, *args):
            self.ran += (super().time_loop(*args),)
            return self.ran[-1]

    backend = Recording()
    rnnkern.GRU(3, 4, 2, bidirectional=True, device=backend, seed=0)(np.ones((5, 16, 3), "float32"))
    assert backend.ran == (True,) * 4
