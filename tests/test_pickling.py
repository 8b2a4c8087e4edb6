"""Layers, cells and optimisers pickle exactly, and so do their state_dicts (what Dask's workers
receive); rnnkern.dask is optional: ``import rnnkern`` never imports dask (issue 18)."""

import pickle
import subprocess
import sys

import numpy as np
import pytest

import rnnkern

LAYERS = [
    lambda: rnnkern.RNN(3, 4, nonlinearity="relu", num_layers=2, bidirectional=True, dropout=0.3, seed=0),
    lambda: rnnkern.LSTM(3, 4, num_layers=2, proj_size=2, batch_first=True, dropout=0.5, seed=0),
    lambda: rnnkern.LSTM(3, 4, peephole=True, clip=1.5, activations=["HardSigmoid", "Tanh", "Softsign"], seed=0),
    lambda: rnnkern.GRU(3, 4, linear_before_reset=False, direction="reverse", dtype="float64", seed=0),
]
CELLS = [
    lambda: rnnkern.RNNCell(3, 4, nonlinearity="relu", seed=0),
    lambda: rnnkern.LSTMCell(3, 4, input_forget=True, seed=0),
    lambda: rnnkern.GRUCell(3, 4, linear_before_reset=False, bias=False, dtype="float64", seed=0),
]


def _same(a, b):
    if isinstance(a, tuple):
        assert isinstance(b, tuple) and len(a) == len(b)
        for p, q in zip(a, b):
            _same(p, q)
    else:
        assert type(a) is type(b) and a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("make", LAYERS)
def test_layers_pickle_exactly(make):
    layer = make()
    layer.initial_state = None if layer.batch_first else layer.initial_state
    x = np.random.default_rng(1).standard_normal((2, 5, 3) if layer.batch_first else (5, 2, 3)).astype(layer.dtype)
    copy = pickle.loads(pickle.dumps(layer))
    assert repr(copy) == repr(layer)
    _same(copy(x, lengths=[5, 2]), layer(x, lengths=[5, 2]))
    # forward_train draws the same dropout masks from the copied generator, and backward agrees
    y, _, tape = layer.forward_train(x)
    y_copy, _, tape_copy = copy.forward_train(x)
    _same(y_copy, y)
    _same(copy.backward(tape_copy, np.ones_like(y))[0], layer.backward(tape, np.ones_like(y))[0])
    assert copy.generator_state() == layer.generator_state()


def test_initial_state_pickles():
    layer = rnnkern.LSTM(3, 4, seed=0)
    layer.initial_state = (np.ones((1, 2, 4), "float32"), np.full((1, 2, 4), 0.5, "float32"))
    x = np.zeros((5, 2, 3), "float32")
    _same(pickle.loads(pickle.dumps(layer))(x), layer(x))


@pytest.mark.parametrize("make", CELLS)
def test_cells_pickle_exactly(make):
    cell = make()
    x = np.random.default_rng(2).standard_normal((2, 3)).astype(cell.dtype)
    copy = pickle.loads(pickle.dumps(cell))
    assert repr(copy) == repr(cell)
    _same(copy(x), cell(x))


@pytest.mark.parametrize("make", LAYERS + CELLS)
def test_state_dicts_pickle_and_load(make):
    module = make()
    state = pickle.loads(pickle.dumps(module.state_dict()))
    assert list(state) == list(module.state_dict())
    fresh = type(module).from_state_dict(state, **module._rebuild_options())
    for key, value in module.state_dict().items():
        np.testing.assert_array_equal(fresh.state_dict()[key], value)


@pytest.mark.parametrize("kind", ["SGD", "Adam"])
def test_optimisers_and_their_state_dicts_pickle(kind):
    """A pickled optimiser (with its module) and one loaded from a pickled state_dict both take the
    next step exactly as the original."""
    layer = rnnkern.GRU(3, 4, num_layers=2, dtype="float64", seed=0)
    opt = rnnkern.optim.SGD(layer, 0.1, momentum=0.9) if kind == "SGD" else rnnkern.optim.Adam(layer, lr=0.01)
    rng = np.random.default_rng(3)
    grads = [{k: rng.standard_normal(v.shape) for k, v in layer.state_dict().items()} for _ in range(2)]
    opt.step(grads[0])
    layer_copy, opt_copy = pickle.loads(pickle.dumps((layer, opt)))
    assert opt_copy.params["weight_ih_l0"] is layer_copy._params["weight_ih_l0"]  # still the module's arrays
    fresh = rnnkern.GRU.from_state_dict(layer.state_dict())
    fresh_opt = type(opt)(fresh, **{k: v for k, v in opt.hyperparameters().items()})
    fresh_opt.load_state_dict(pickle.loads(pickle.dumps(opt.state_dict())))
    for module, optimiser in ((layer, opt), (layer_copy, opt_copy), (fresh, fresh_opt)):
        optimiser.step(grads[1])
    for key, value in layer.state_dict().items():
        np.testing.assert_array_equal(layer_copy.state_dict()[key], value)
        np.testing.assert_array_equal(fresh.state_dict()[key], value)
    assert opt_copy.steps == fresh_opt.steps == opt.steps == 2


def _run(code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_import_rnnkern_does_not_import_dask():
    done = _run("import sys, rnnkern; rnnkern.LSTM(2, 3); print(sorted(m for m in sys.modules if m.split('.')[0] in "
                "('dask', 'distributed')))")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_rnnkern_dask_without_dask_names_the_extra():
    done = _run("import sys; sys.modules['dask'] = None\n"
                "try:\n    import rnnkern.dask\nexcept ImportError as exc:\n    print(exc)")
    assert done.returncode == 0, done.stderr
    assert "rnnkern.dask needs Dask" in done.stdout and "pip install 'rnnkern[dask]'" in done.stdout
