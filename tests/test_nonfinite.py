"""Infinite and NaN values (issue 15, defect 5): no NumPy warnings where torch gives the same numbers
silently, on the NumPy steps and the numba steps."""

import importlib.util
import warnings

import numpy as np
import pytest

import kernel_host
import rnnkern
from backend_swap import on_backend, parts
from rnnkern._backend._numpy import NumpyBackend

CPU_BACKENDS = ["numpy", pytest.param("numba", marks=pytest.mark.skipif(
    importlib.util.find_spec("numba") is None, reason="numba is not installed"))]


def cpu_backend(name):
    if name == "numpy":
        return NumpyBackend()
    from rnnkern._backend._numba import NumbaBackend
    return NumbaBackend()


# --- infinities: NaN as torch gives it, without "invalid value encountered" ------------------------
LAYERS = [("RNN", {}), ("RNN", {"nonlinearity": "relu", "num_layers": 2}), ("LSTM", {}), ("GRU", {}),
          ("GRU", {"linear_before_reset": False}), ("LSTM", {"activations": ["HardSigmoid", "Relu", "Tanh"],
                                                              "clip": 1.5})]


def _state(layer, where_inf):
    """The layer's (h_0[, c_0]) of zeros for batch 2, with +inf in h_0 when ``where_inf`` is "state"."""
    rows, dtype = layer.num_layers * layer.num_directions, layer.dtype
    h = np.zeros((rows, 2, layer.hidden_size), dtype)
    if where_inf == "state":
        h[0, 0, 0] = np.inf
    return (h, np.zeros_like(h)) if isinstance(layer, rnnkern.LSTM) else h


def _everything(layer, x, state):
    """Inference, packed inference, forward_train and backward, all with warnings as errors."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y, _ = layer(x, state)
        layer(x, state, lengths=np.array([len(x), 1]))
        y_train, state_n, tape = layer.forward_train(x, state)
        layer.backward(tape, np.ones_like(y_train), state_n)
    return y


@pytest.mark.parametrize("where_inf", ["input", "state"])
@pytest.mark.parametrize("case", range(len(LAYERS)))
@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_an_infinite_input_or_state_gives_no_warning(backend, case, where_inf):
    kind, options = LAYERS[case]
    layer = on_backend(getattr(rnnkern, kind)(4, 3, bidirectional=True, dtype="float64", seed=case, **options),
                       cpu_backend(backend))
    x = np.random.default_rng(case).standard_normal((4, 2, 4))
    if where_inf == "input":
        x[1, 0, 0] = np.inf
    y = _everything(layer, x, _state(layer, where_inf))
    assert np.isfinite(y[:, 1]).all()  # the other sequence of the batch is untouched by the inf


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_a_tanh_rnn_squashes_an_infinite_input_to_a_finite_output(backend):
    layer = on_backend(rnnkern.RNN(1, 2, dtype="float64", seed=0), cpu_backend(backend))
    y = _everything(layer, np.array([[[np.inf], [1.0]], [[1.0], [-np.inf]]]), None)
    assert np.isfinite(y).all()  # tanh(+-inf) = +-1, as in torch


@pytest.mark.parametrize("kind", ["RNNCell", "LSTMCell", "GRUCell"])
def test_a_cell_with_an_infinite_state_gives_no_warning(kind):
    cell = getattr(rnnkern, kind)(2, 3, dtype="float64", seed=0)
    h = np.zeros((2, 3))
    h[0, 0] = np.inf
    state = (h, np.zeros_like(h)) if kind == "LSTMCell" else h
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cell(np.ones((2, 2)), state)
        new, tape = cell.forward_train(np.ones((2, 2)), state)
        cell.backward(tape, tuple(np.ones_like(p) for p in parts(new)) if isinstance(new, tuple)
                      else np.ones_like(new))
