"""from_torch (issue 15, defect 4): a layer or cell from a torch.nn module, whose configuration says what
its state_dict cannot (a ReLU RNN loads as tanh through from_state_dict). Stand-ins with torch.nn's
attributes and a state_dict() run without torch; the live tests compare with torch itself."""

import pathlib

import numpy as np
import pytest

import rnnkern

README = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text()


def _stand_in(kind, state_dict, **config):
    """An object of a class called ``kind`` (as torch.nn's) with ``config`` as attributes and a state_dict()."""
    cls = type(kind, (), {"state_dict": lambda self: dict(state_dict)})
    module = cls()
    vars(module).update(config)
    return module


def _relu_rnn_weights():
    """A two-layer bidirectional ReLU RNN's weights, from an rnnkern layer (same names as torch's)."""
    return rnnkern.RNN(3, 4, num_layers=2, bidirectional=True, nonlinearity="relu", seed=0).state_dict()


TORCH_RNN_CONFIG = dict(input_size=3, hidden_size=4, num_layers=2, nonlinearity="relu", bias=True,
                        batch_first=True, dropout=0.25, bidirectional=True, proj_size=0, mode="RNN_RELU")


def test_from_torch_reads_the_nonlinearity_that_from_state_dict_cannot_know():
    weights = _relu_rnn_weights()
    layer = rnnkern.RNN.from_torch(_stand_in("RNN", weights, **TORCH_RNN_CONFIG))
    assert (layer.nonlinearity, layer.batch_first, layer.dropout) == ("relu", True, 0.25)
    assert rnnkern.RNN.from_state_dict(weights).nonlinearity == "tanh"  # the documented limit
    x = np.random.default_rng(0).standard_normal((2, 5, 3)).astype("float32")
    expected = rnnkern.RNN.from_state_dict(weights, nonlinearity="relu", batch_first=True)(x)[0]
    np.testing.assert_array_equal(layer(x)[0], expected)


@pytest.mark.parametrize("kind, config", [
    ("LSTM", dict(batch_first=False, dropout=0.0, proj_size=2, num_layers=1, bias=False)),
    ("GRU", dict(batch_first=True, dropout=0.0, num_layers=1, bias=True)),
    ("RNNCell", dict(nonlinearity="relu", bias=True)),
    ("LSTMCell", dict(bias=True)),
    ("GRUCell", dict(bias=False)),
])
def test_from_torch_builds_every_layer_and_cell(kind, config):
    made = getattr(rnnkern, kind)(3, 5, seed=1, **config)  # torch.nn's names are the constructor's
    built = getattr(rnnkern, kind).from_torch(_stand_in(kind, made.state_dict(), input_size=3, hidden_size=5,
                                                        **config))
    assert repr(built) == repr(made)
    for key, value in made.state_dict().items():
        np.testing.assert_array_equal(built.state_dict()[key], value)


def test_from_torch_of_another_kind_of_module_is_an_error():
    with pytest.raises(TypeError, match=r"^GRU.from_torch: module must be a torch.nn.GRU, got .*\.LSTM$"):
        rnnkern.GRU.from_torch(_stand_in("LSTM", {}))


def test_from_torch_of_a_module_missing_an_attribute_names_it():
    config = {k: v for k, v in TORCH_RNN_CONFIG.items() if k != "nonlinearity"}
    with pytest.raises(TypeError, match=r"^RNN.from_torch: module has no attribute 'nonlinearity'"):
        rnnkern.RNN.from_torch(_stand_in("RNN", _relu_rnn_weights(), **config))


def test_from_torch_checks_the_module_against_its_state_dict():
    config = {**TORCH_RNN_CONFIG, "hidden_size": 6}
    with pytest.raises(ValueError, match=r"^RNN.from_torch: the module's state_dict gives hidden_size=4, but the "
                                         r"module says hidden_size=6$"):
        rnnkern.RNN.from_torch(_stand_in("RNN", _relu_rnn_weights(), **config))


def test_importing_rnnkern_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, rnnkern; rnnkern.RNN.from_torch; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


# --- documentation ------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["RNN", "RNNCell"])
def test_from_state_dict_says_it_cannot_know_the_nonlinearity(kind):
    doc = " ".join(getattr(rnnkern, kind).from_state_dict.__doc__.split())
    assert "does not say" in doc and 'nonlinearity="relu"' in doc and "from_torch" in doc


def test_readme_interop_says_a_relu_rnn_needs_its_nonlinearity_or_from_torch():
    interop = " ".join(README[README.index("## Bring your model"):README.index("## Command line")].split())
    assert "cannot tell a ReLU `torch.nn.RNN`" in interop and 'nonlinearity="relu"' in interop
    assert "RNN.from_torch(torch.nn.RNN(10, 20, nonlinearity=\"relu\"))" in interop


# --- live, against torch ------------------------------------------------------------------------
@pytest.mark.torch
@pytest.mark.parametrize("make", [
    lambda nn: nn.RNN(3, 4, num_layers=2, nonlinearity="relu", batch_first=True, bidirectional=True),
    lambda nn: nn.LSTM(3, 4, proj_size=2, batch_first=True),
    lambda nn: nn.GRU(3, 4, bias=False),
])
def test_from_torch_matches_the_torch_module(make):
    torch = pytest.importorskip("torch")
    module = make(torch.nn).double()
    layer = type(module).__name__
    ours = getattr(rnnkern, layer).from_torch(module)
    assert ours.dtype == np.float64 and ours.batch_first == module.batch_first
    x = np.random.default_rng(0).standard_normal((2, 5, 3))
    expected = module(torch.from_numpy(x))[0].detach().numpy()
    np.testing.assert_allclose(ours(x)[0], expected, rtol=1e-10, atol=1e-12)


@pytest.mark.torch
def test_from_torch_of_a_relu_rnn_cell_matches_torch():
    torch = pytest.importorskip("torch")
    module = torch.nn.RNNCell(3, 4, nonlinearity="relu").double()
    x = np.random.default_rng(1).standard_normal((2, 3))
    expected = module(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(rnnkern.RNNCell.from_torch(module)(x), expected, rtol=1e-10, atol=1e-12)
