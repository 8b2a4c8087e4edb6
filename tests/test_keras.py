"""from_keras against golden vectors made by Keras 3 (tests/golden/make_golden_keras.py), and live
against Keras when it is installed. Cases with go_backwards or activations other than Keras's
defaults (and SimpleRNN's tanh/relu) need issue 12's new layer options; RNNKERN_TEST_REFERENCE_LAYERS=1
runs them all on tests/onnx_reference.ReferenceLayer instead (see test_onnx_import.py)."""

import json
import os
import pathlib

import numpy as np
import pytest

import onnx_reference as ref
import rnnkern
from rnnkern._interop import keras as _keras

GOLDEN = pathlib.Path(__file__).resolve().parent / "golden" / "keras"
CASES = sorted(p.stem for p in GOLDEN.glob("*.npz"))
REFERENCE_LAYERS = os.environ.get("RNNKERN_TEST_REFERENCE_LAYERS") == "1"
OPS = {"lstm": "LSTM", "gru": "GRU", "simplernn": "RNN"}


def load(name):
    data = np.load(GOLDEN / f"{name}.npz")
    configs = json.loads(str(data["config"]))
    weights = [[data[f"w{k}_{j}"] for j in range(sum(key.startswith(f"w{k}_") for key in data.files))]
               for k in range(len(configs))]
    return data, configs, weights


def import_layer(op, layer, weights=None):
    if REFERENCE_LAYERS:
        return ref.ReferenceLayer(_keras.keras_spec(op, layer, weights))
    return getattr(rnnkern, op).from_keras(layer, weights, dtype="float64")


def keras_outputs(layer, x, go_backwards):
    """The rnnkern layer's (y, h, c) as Keras gives them: a go_backwards layer's y in processing order."""
    y, state = layer(np.asarray(x, np.float64))
    h, c = state if isinstance(state, tuple) else (state, None)
    y, h = np.asarray(y), np.asarray(h)
    if go_backwards:
        y = y[:, ::-1]
    return y, h, None if c is None else np.asarray(c)


def test_golden_cases_exist():
    assert len(CASES) == 21


@pytest.mark.parametrize("name", CASES)
def test_from_keras_config_and_weights_match_keras(name):
    data, configs, weights = load(name)
    op = OPS[name.split("_")[0]]
    layer = import_layer(op, configs if len(configs) > 1 else configs[0], weights if len(configs) > 1 else weights[0])
    assert layer.batch_first
    y, h, c = keras_outputs(layer, data["x"], "go_backwards" in name)
    last = h[-2:] if h.shape[0] > 1 and "bidirectional" in name else h[-1]
    np.testing.assert_allclose(y, data["y"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(last, data["h"], rtol=1e-5, atol=1e-5)
    if "c" in data.files:
        np.testing.assert_allclose(c[-2:] if "bidirectional" in name else c[-1], data["c"], rtol=1e-5, atol=1e-5)


def test_gate_order_and_biases():
    """Keras LSTM i, f, c, o is PyTorch's order; GRU z, r, h -> r, z, n; reset_after's (2, 3H) bias splits."""
    H, I = 2, 3
    kernel = np.concatenate([np.full((I, H), k + 1.0) for k in range(3)], axis=1)  # blocks z=1, r=2, h=3
    recurrent = np.concatenate([np.full((H, H), 10.0 * (k + 1)) for k in range(3)], axis=1)
    bias = np.stack([np.repeat([100.0, 200.0, 300.0], H), np.repeat([1000.0, 2000.0, 3000.0], H)])
    config = {"units": H, "reset_after": True}
    sd = _keras.keras_spec("GRU", {"class_name": "GRU", "config": config}, [kernel, recurrent, bias]).state_dict
    np.testing.assert_array_equal(sd["weight_ih_l0"][:, 0], np.repeat([2.0, 1.0, 3.0], H))
    np.testing.assert_array_equal(sd["weight_hh_l0"][:, 0], np.repeat([20.0, 10.0, 30.0], H))
    np.testing.assert_array_equal(sd["bias_ih_l0"], np.repeat([200.0, 100.0, 300.0], H))
    np.testing.assert_array_equal(sd["bias_hh_l0"], np.repeat([2000.0, 1000.0, 3000.0], H))
    spec = _keras.keras_spec("GRU", {"units": H, "reset_after": False}, [kernel, recurrent, bias[0]])
    assert spec.options["linear_before_reset"] is False
    np.testing.assert_array_equal(spec.state_dict["bias_hh_l0"], 0.0)


def test_activation_mapping():
    """Keras 3's hard_sigmoid is clip(x/6 + 1/2, 0, 1): HardSigmoid(1/6, 1/2); linear is Affine(1, 0)."""
    options = _keras._activation_options("LSTM", {"activation": "linear", "recurrent_activation": "hard_sigmoid"}, "t")
    assert options == {"activations": ["HardSigmoid", "Affine", "Affine"], "activation_alpha": [1 / 6, 1.0, 1.0],
                       "activation_beta": [0.5, 0.0, 0.0]}
    assert _keras._activation_options("RNN", {"activation": "relu"}, "t") == {"nonlinearity": "relu"}
    assert _keras._activation_options("GRU", {}, "t") == {}


def test_errors():
    kernel, recurrent, bias = np.zeros((3, 8)), np.zeros((2, 8)), np.zeros(8)
    with pytest.raises(ValueError, match="activation='gelu' has no ONNX equivalent"):
        rnnkern.LSTM.from_keras({"units": 2, "activation": "gelu"}, [kernel, recurrent, bias])
    with pytest.raises(ValueError, match="a config needs its weights"):
        rnnkern.LSTM.from_keras({"units": 2})
    with pytest.raises(ValueError, match="recurrent_kernel"):
        rnnkern.LSTM.from_keras({"units": 3}, [kernel, recurrent, bias])
    with pytest.raises(ValueError, match="does not map to rnnkern.GRU"):
        rnnkern.GRU.from_keras({"class_name": "LSTM", "config": {"units": 2}}, [kernel, recurrent, bias])
    with pytest.raises(ValueError, match="merge_mode='sum'"):
        rnnkern.LSTM.from_keras({"class_name": "Bidirectional", "config": {"merge_mode": "sum", "layer": {}}},
                                [kernel, recurrent, bias] * 2)
    with pytest.raises(ValueError, match="expected 2 weight arrays"):
        rnnkern.LSTM.from_keras({"units": 2, "use_bias": False}, [kernel, recurrent, bias])
    with pytest.raises(ValueError, match="has no weights yet; build it first"):
        rnnkern.LSTM.from_keras({"units": 2}, [])
    with pytest.raises(TypeError, match="must be a Keras layer"):
        rnnkern.LSTM.from_keras("lstm")


# --- live against Keras (when installed) --------------------------------------------------------
@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    return pytest.importorskip("keras")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Keras's torch backend's __array__ under NumPy 2
@pytest.mark.parametrize("kind", ["LSTM", "GRU", "SimpleRNN"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_live_keras_layer_objects(keras, kind, bidirectional):
    rng = np.random.default_rng(7)
    x = rng.normal(size=(3, 6, 4)).astype(np.float32)
    layer = getattr(keras.layers, kind)(5, return_sequences=True)
    if bidirectional:
        layer = keras.layers.Bidirectional(layer)
    layer(x)
    layer.set_weights([rng.uniform(-0.5, 0.5, w.shape).astype(np.float32) for w in layer.get_weights()])
    expected = keras.ops.convert_to_numpy(layer(x))
    ours = import_layer(_keras.KERAS_CLASSES[kind], layer)
    y, _, _ = keras_outputs(ours, x, False)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
