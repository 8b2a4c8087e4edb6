"""Make the Keras golden vectors of tests/test_keras.py: tests/golden/keras/<case>.npz.

Run with Keras 3 installed (any backend that runs its recurrent layers; torch's CPU build was used):
    KERAS_BACKEND=torch PYTHONPATH=src python tests/golden/make_golden_keras.py
Each case stores the input x (B, T, I), Keras's outputs y (return_sequences=True) and final states
(h, and c for the LSTM; a Bidirectional's as (2, B, H), forward first), the layers' serialised
configs (JSON, keras.saving.serialize_keras_object) and their weights (set from a NumPy generator,
not Keras's initialisers, so that every weight is non-trivial). Stacks store the last layer's states.
"""

import json
import os
import pathlib

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402

OUT = pathlib.Path(__file__).resolve().parent / "keras"
B, T, I, H = 2, 5, 3, 4
L = keras.layers


def cases():
    """name -> list of Keras layers (a stack when longer than one)."""
    seq = dict(return_sequences=True, return_state=True)
    return {
        "lstm_default": [L.LSTM(H, **seq)],
        "lstm_no_bias": [L.LSTM(H, use_bias=False, **seq)],
        "lstm_hard_sigmoid_relu": [L.LSTM(H, recurrent_activation="hard_sigmoid", activation="relu", **seq)],
        "lstm_elu_softsign": [L.LSTM(H, activation="elu", recurrent_activation="softsign", **seq)],
        "lstm_go_backwards": [L.LSTM(H, go_backwards=True, **seq)],
        "lstm_bidirectional": [L.Bidirectional(L.LSTM(H, **seq))],
        "lstm_stack": [L.LSTM(H, return_sequences=True), L.LSTM(H, **seq)],
        "gru_reset_after": [L.GRU(H, **seq)],
        "gru_reset_before": [L.GRU(H, reset_after=False, **seq)],
        "gru_no_bias": [L.GRU(H, use_bias=False, **seq)],
        "gru_softsign_hard_sigmoid": [L.GRU(H, activation="softsign", recurrent_activation="hard_sigmoid", **seq)],
        "gru_leaky_relu_linear": [L.GRU(H, activation="leaky_relu", recurrent_activation="linear", **seq)],
        "gru_go_backwards": [L.GRU(H, go_backwards=True, reset_after=False, **seq)],
        "gru_bidirectional": [L.Bidirectional(L.GRU(H, **seq))],
        "simplernn_tanh": [L.SimpleRNN(H, **seq)],
        "simplernn_relu": [L.SimpleRNN(H, activation="relu", **seq)],
        "simplernn_no_bias": [L.SimpleRNN(H, use_bias=False, **seq)],
        "simplernn_linear": [L.SimpleRNN(H, activation="linear", **seq)],
        "simplernn_softplus": [L.SimpleRNN(H, activation="softplus", **seq)],
        "simplernn_go_backwards": [L.SimpleRNN(H, go_backwards=True, **seq)],
        "simplernn_bidirectional_stack": [L.Bidirectional(L.SimpleRNN(H, return_sequences=True)),
                                          L.Bidirectional(L.SimpleRNN(H, **seq))],
    }


def run(name, layers, rng):
    x = rng.normal(size=(B, T, I)).astype(np.float32)
    arrays, y = {"x": x}, x
    for k, layer in enumerate(layers):
        out = layer(y)
        weights = [rng.uniform(-0.6, 0.6, w.shape).astype(np.float32) for w in layer.get_weights()]
        layer.set_weights(weights)
        out = [keras.ops.convert_to_numpy(o) for o in keras.tree.flatten(layer(y))]
        arrays.update({f"w{k}_{j}": w for j, w in enumerate(weights)})
        y = out[0]
    states = out[1:]
    if isinstance(layers[-1], L.Bidirectional):  # [h_f, (c_f,) h_b, (c_b)] -> h (2, B, H), c
        half = len(states) // 2
        states = [np.stack([states[j], states[half + j]]) for j in range(half)]
    arrays["y"] = y
    arrays.update(dict(zip(["h", "c"], states)))
    arrays["config"] = np.array(json.dumps([keras.saving.serialize_keras_object(layer) for layer in layers]))
    np.savez_compressed(OUT / f"{name}.npz", **arrays)


def main():
    OUT.mkdir(exist_ok=True)
    rng = np.random.default_rng(2024)
    for name, layers in cases().items():
        run(name, layers, rng)
        print(name)
    print(f"Keras {keras.__version__}, backend {keras.backend.backend()}")


if __name__ == "__main__":
    main()
