"""Infinite and NaN values (issue 15, defect 5): no NumPy warnings where torch gives the same numbers
silently, and a ReLU's gradient at a NaN output passed on as torch passes it, on every backend:
the NumPy steps, the numba steps and the CUDA kernels (compiled for the host, kernel_host.py)."""

import importlib.util
import warnings

import numpy as np
import pytest

import kernel_host
import rnnkern
from backend_swap import on_backend, parts
from rnnkern._backend.cupy import kernels as _kernels
from rnnkern._recurrences.activations import Act
from rnnkern._backend.numpy.steps import NumpyBackend
from rnnkern._recurrences.semantics import CellMath, default_math

CPU_BACKENDS = ["numpy", pytest.param("numba", marks=pytest.mark.skipif(
    importlib.util.find_spec("numba") is None, reason="numba is not installed"))]
RELU_VARIANT = CellMath("RNN", (Act("Relu"),))  # names the CUDA host build's kernel (host_relu)
RELU = default_math("RNN", "relu")  # the default math: backward takes h, the output
RELU_PRE = CellMath("GRU", (Act("Sigmoid"), Act("Relu")))  # not the default: backward takes n's pre-activation


def cpu_backend(name):
    if name == "numpy":
        return NumpyBackend()
    from rnnkern._backend.numba.backend import NumbaBackend
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


# --- the ReLU's gradient at a NaN output: torch's threshold_backward, (h <= 0) ? 0 : dh -----------
def _issue_example(backend):
    """The issue's RNN(1, 1, 'relu'), every weight and bias 0.5, on x = [1, NaN], backward from ones."""
    layer = rnnkern.RNN(1, 1, nonlinearity="relu", dtype="float64")
    layer.load_state_dict({k: np.full(v.shape, 0.5) for k, v in layer.state_dict().items()})
    layer = on_backend(layer, cpu_backend(backend))
    y, state_n, tape = layer.forward_train(np.array([[[1.0]], [[np.nan]]]))
    return y, layer.backward(tape, np.ones_like(y))


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_relu_rnn_passes_the_gradient_of_a_nan_output_as_torch(backend):
    y, (dx, dh0, grads) = _issue_example(backend)
    np.testing.assert_array_equal(y.ravel(), [1.5, np.nan])
    # torch 2.x: h_2 = NaN is not <= 0, so its gradient 1 flows on: dh_1 = 1 + 0.5 * 1
    np.testing.assert_array_equal(dx.ravel(), [0.75, 0.5])
    np.testing.assert_array_equal(dh0.ravel(), [0.75])
    np.testing.assert_array_equal(grads["weight_hh_l0"].ravel(), [1.5])
    np.testing.assert_array_equal(grads["bias_ih_l0"].ravel(), [2.5])


@pytest.fixture(scope="module")
def host_relu(tmp_path_factory):
    """CupyBackend on the host builds of just the ReLU backward kernels: the default ReLU RNN's (its
    derivative from the output) and a GRU's with ONNX's Relu (from the pre-activation)."""
    if kernel_host.GXX is None:
        pytest.skip("g++ not found: the kernels' math cannot be compiled for the host")
    names = sorted({_kernels.kernel_for("rnn_backward", RELU_VARIANT),
                    _kernels.kernel_for("gru_backward_update", RELU_PRE)})
    lib, _ = kernel_host.build(tmp_path_factory.mktemp("relu_kernels"), names, ["float32", "float64"])
    return kernel_host.host_backend(lib)


ALL_BACKENDS = CPU_BACKENDS + ["cuda-on-host"]


def _backend(name, request):
    return request.getfixturevalue("host_relu") if name == "cuda-on-host" else cpu_backend(name)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_relu_backward_step_is_a_select_on_the_output(backend, dtype, request):
    bk = _backend(backend, request)
    h = np.array([[np.nan, 0.0, -0.0, 2.0, np.nan, 0.0]], dtype)
    dh = np.array([[3.0, 3.0, 3.0, 3.0, np.nan, np.nan]], dtype)
    da = np.full_like(h, 7.0)
    bk.rnn_backward(RELU, h, dh, da)
    # torch: (result <= 0) ? 0 : grad; a NaN gradient where the unit is off is 0 too
    np.testing.assert_array_equal(da, np.array([[3.0, 0.0, 0.0, 3.0, np.nan, 0.0]], dtype))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_relu_activation_derivative_is_one_at_nan(backend, dtype, request):
    """ONNX's Relu outside the default math (there the derivative is taken at the pre-activation):
    n = Relu(a_n) in a GRU with z = sigmoid(0) = 1/2 and dh = 2, so da_n = Relu'(a_n)."""
    bk = _backend(backend, request)
    a = np.array([[np.nan, -1.0, 0.0, 2.0]], dtype)
    dgx = np.full((1, 12), 7.0, dtype)
    bk.gru_backward_update(RELU_PRE, np.zeros_like(a), a, np.zeros_like(a), np.full_like(a, 2.0), dgx,
                           np.empty_like(a))
    np.testing.assert_array_equal(dgx[:, 8:], np.array([[1.0, 0.0, 0.0, 1.0]], dtype))
