"""LayerNormLSTM / LayerNormGRU against golden vectors of an independent PyTorch autograd transcription
of Haste's equations (tests/golden/make_golden_layernorm.py): training forward (zoneout masks,
DropConnect and dropout drawn by the documented rule), inference (zoneout's blend), and the
gradients of the input, the initial state and every parameter, in Haste's names via to_haste;
on every CPU backend with the LayerNorm steps, in float64 and float32."""

import numpy as np
import pytest

import rnnkern
from conftest import assert_close, requires_gpu
from layernorm_cases import GOLDEN, assert_grads_in_haste_names, check_layer, ln_backends, load, state
from rnnkern._backend import use_cpu_kernels


def test_golden_files_exist():
    assert len(GOLDEN) >= 12


@pytest.mark.parametrize("kernels", ln_backends())
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
def test_layer_matches_haste_transcription(path, dtype, kernels):
    check_layer(*load(path), dtype, kernels)


@pytest.mark.gpu
@requires_gpu
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
def test_layer_on_the_gpu(path, dtype):
    check_layer(*load(path), dtype, None, device="gpu")


SINGLE = [p for p in GOLDEN if load(p)[0]["num_layers"] == 1 and not load(p)[0]["bidirectional"]]


@pytest.mark.parametrize("path", SINGLE, ids=lambda p: p.stem)
def test_from_haste_and_gradients_in_haste_names(path):
    config, haste, grads, a = load(path)
    kind = config["kind"]
    cls = getattr(rnnkern, "LayerNorm" + kind)
    layer = cls.from_haste(haste[(0, 0)], batch_first=config["batch_first"], zoneout=config["zoneout"])
    _, _, tape = layer.forward_train(a["x"], state(a, kind), a.get("lengths"), generator=config["seed"],
                                     recurrent_dropout=config["recurrent_dropout"])
    dstate_n = (a["dh_n"], a["dc_n"]) if kind == "LSTM" else a["dh_n"]
    _, _, dparams = layer.backward(tape, a["dy"], dstate_n)
    in_haste = layer.to_haste(dparams)
    assert set(in_haste) == set(grads[(0, 0)])
    for name, value in grads[(0, 0)].items():
        assert_close(in_haste[name], value, "float64")
    back = layer.to_haste()
    for name, value in haste[(0, 0)].items():
        np.testing.assert_array_equal(back[name], value)


CELL_CASES = [p for p in SINGLE if load(p)[3]["x"].shape[0] == 1 and not load(p)[0]["batch_first"]]


@pytest.mark.parametrize("kernels", ln_backends())
@pytest.mark.parametrize("path", CELL_CASES, ids=lambda p: p.stem)
def test_cell_matches_haste_transcription(path, kernels):
    """A cell is one step of the layer: the one-step golden cases, masks drawn by the same rule (T = 1)."""
    config, haste, grads, a = load(path)
    kind = config["kind"]
    with use_cpu_kernels(kernels):
        cell = getattr(rnnkern, f"LayerNorm{kind}Cell").from_haste(haste[(0, 0)], zoneout=config["zoneout"])
    st = (a["h0"][0], a["c0"][0]) if kind == "LSTM" else a["h0"][0]
    new, tape = cell.forward_train(a["x"][0], st, generator=config["seed"],
                                   recurrent_dropout=config["recurrent_dropout"])
    assert_close(new[0] if kind == "LSTM" else new, a["h_n"][0], "float64")
    dh = a["dy"][0] + a["dh_n"][0]
    dx, dstate, dparams = cell.backward(tape, (dh, a["dc_n"][0]) if kind == "LSTM" else dh)
    assert_close(dx, a["grad/x"][0], "float64")
    assert_close(dstate[0] if kind == "LSTM" else dstate, a["grad/h0"][0], "float64")
    assert_grads_in_haste_names(cell, dparams, grads, "float64")
    blended = cell(a["x"][0], st)
    assert_close(blended[0] if kind == "LSTM" else blended, a["h_n_eval"][0], "float64")
