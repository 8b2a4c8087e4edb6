"""Regressions found reviewing the issue 9-12 change: each test failed before its fix."""

import numpy as np
import pytest

import rnnkern
from rnnkern._interop import keras as _keras
from rnnkern._recurrences.semantics import default_math


def _keras_gru_config(go_backwards, recurrent_activation):
    return {"class_name": "GRU", "config": {"name": "gru", "units": 3, "use_bias": True, "reset_after": True,
                                            "activation": "tanh", "recurrent_activation": recurrent_activation,
                                            "go_backwards": go_backwards, "return_sequences": True}}


def _keras_gru_weights(rng, inputs=2, units=3):
    return [rng.standard_normal((inputs, 3 * units)).astype("f4"),
            rng.standard_normal((units, 3 * units)).astype("f4"), rng.standard_normal((2, 3 * units)).astype("f4")]


def test_keras_bidirectional_gives_both_directions_the_activation_parameters():
    rng = np.random.default_rng(0)
    bidirectional = {"layer": _keras_gru_config(False, "hard_sigmoid"),
                     "backward_layer": _keras_gru_config(True, "hard_sigmoid"), "merge_mode": "concat"}
    layer = rnnkern.GRU.from_keras(bidirectional, _keras_gru_weights(rng) + _keras_gru_weights(rng))
    assert layer.activation_alpha == pytest.approx((1 / 6, 1 / 6))  # Keras's hard_sigmoid in both directions
    assert layer.activation_beta == pytest.approx((0.5, 0.5))


def test_keras_stack_rejects_a_bidirectional_that_returns_only_its_last_step():
    rng = np.random.default_rng(0)
    last_only = {**_keras_gru_config(False, "sigmoid")}
    last_only["config"] = {**last_only["config"], "return_sequences": False}
    backward = {**_keras_gru_config(True, "sigmoid")}
    backward["config"] = {**backward["config"], "return_sequences": False}
    first = {"layer": last_only, "backward_layer": backward, "merge_mode": "concat"}
    second = _keras_gru_config(False, "sigmoid")
    weights = [_keras_gru_weights(rng) + _keras_gru_weights(rng), _keras_gru_weights(rng, inputs=6)]
    with pytest.raises(ValueError, match="layer 0 has return_sequences=False"):
        _keras.keras_spec("GRU", [first, second], weights)


def test_from_onnx_with_an_empty_node_list_says_so():
    onnx = pytest.importorskip("onnx")
    model = onnx.load_from_string(rnnkern.GRU(2, 3, seed=0).to_onnx().SerializeToString())
    with pytest.raises(ValueError, match="node must name at least one node, got an empty list"):
        rnnkern.GRU.from_onnx(model, node=[])


@pytest.mark.parametrize("make_seed", [np.random.default_rng, np.random.SeedSequence, np.random.PCG64])
def test_layers_take_every_seed_the_cells_take(make_seed):
    a, b = rnnkern.LSTM(3, 4, num_layers=2, dropout=0.5, seed=make_seed(1)), rnnkern.LSTM(3, 4, seed=make_seed(1))
    assert a.weight_ih_l0.shape == b.weight_ih_l0.shape == (16, 3)


def test_a_stray_peephole_key_in_a_gru_cell_state_dict_is_named():
    sd = {**rnnkern.GRUCell(2, 3).state_dict(), "weight_p": np.zeros(9, "f4")}
    with pytest.raises(KeyError, match="unexpected key.*'weight_p'"):
        rnnkern.GRUCell.from_state_dict(sd)


@pytest.mark.parametrize("step", ["x", -1, True])
def test_optimiser_checkpoint_with_a_bad_step_count_is_named(step):
    layer = rnnkern.GRU(2, 3, dtype="float64", seed=0)
    opt = rnnkern.optim.Adam(layer)
    y, _, tape = layer.forward_train(np.ones((4, 1, 2)))
    opt.step(layer.backward(tape, np.ones_like(y))[2])
    checkpoint = opt.state_dict()
    name = next(iter(checkpoint["state"]))
    checkpoint["state"][name] = {**checkpoint["state"][name], "step": step}
    with pytest.raises(ValueError, match=rf"state\[{name!r}\]\['step'\] must be a non-negative int"):
        opt.load_state_dict(checkpoint)


def test_rnn_with_relu_given_as_an_activation_runs_the_relu_recurrence():
    layer = rnnkern.RNN(3, 4, activations=["Relu"])
    assert layer._recurrence.math == default_math("RNN", "relu")
    assert layer._direction_recurrence("_l0") is layer._recurrence
