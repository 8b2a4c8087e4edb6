"""The cells against golden vectors written by PyTorch (tests/golden/make_golden.py), and live against
PyTorch on random weights when it is installed.

Each golden file is one case: a torch.nn.RNNCell / LSTMCell / GRUCell's state_dict, inputs for a
few successive calls (each call's state being the previous call's output) and the states PyTorch
returned. The float64 reference (tests/reference.py) is checked against the same files, so the
reference the other tests rely on is itself anchored to PyTorch.
"""

import numpy as np
import pytest

import rnnkern
from conftest import TOLERANCE, assert_close, to_numpy
from reference import golden_files, gru_cell, load_golden, lstm_cell, rnn_cell

CELL_FILES = golden_files("cells")
CLASSES = {"RNNCell": rnnkern.RNNCell, "LSTMCell": rnnkern.LSTMCell, "GRUCell": rnnkern.GRUCell}


def test_golden_cell_files_are_present():
    modules = {load_golden(p)[0]["module"] for p in CELL_FILES}
    assert modules == set(CLASSES), "golden cell files missing; regenerate them (tests/golden/README.md)"


def cell_options(config):
    return {"nonlinearity": config["nonlinearity"]} if config["module"] == "RNNCell" else {}


def initial_state(config, arrays):
    if not config["with_state"]:
        return None
    if config["module"] == "LSTMCell":
        return arrays["h0"], arrays["c0"]
    return arrays["h0"]


@pytest.mark.parametrize("path", CELL_FILES, ids=[p.stem for p in CELL_FILES])
def test_cell_matches_pytorch_golden(path, device):
    config, sd, arrays = load_golden(path)
    cell = CLASSES[config["module"]].from_state_dict(sd, device=device, **cell_options(config))
    assert cell.dtype == np.dtype(config["dtype"])  # inferred from the tensors
    assert cell.bias == config["bias"]

    def dev(a):
        return rnnkern.asarray(a, device=device)

    state = initial_state(config, arrays)
    if state is not None:
        state = tuple(map(dev, state)) if isinstance(state, tuple) else dev(state)
    for t in range(config["steps"]):
        state = cell(dev(arrays["x"][t]), state)
        if config["module"] == "LSTMCell":
            assert state[0].shape == arrays["h"][t].shape and state[1].shape == arrays["c"][t].shape
            assert_close(state[0], arrays["h"][t], config["dtype"])
            assert_close(state[1], arrays["c"][t], config["dtype"])
        else:
            assert state.shape == arrays["h"][t].shape
            assert_close(state, arrays["h"][t], config["dtype"])


@pytest.mark.parametrize("path", CELL_FILES, ids=[p.stem for p in CELL_FILES])
def test_reference_matches_pytorch_golden(path):
    """The float64 transcription of the equations agrees with PyTorch: it can be trusted as a reference."""
    config, sd, arrays = load_golden(path)
    batched = config["batched"]
    x = arrays["x"] if batched else arrays["x"][:, None, :]
    H = config["hidden_size"]
    zeros = np.zeros((x.shape[1], H))
    h = zeros if not config["with_state"] else arrays["h0"].reshape(-1, H)
    c = zeros if not config["with_state"] or config["module"] != "LSTMCell" else arrays["c0"].reshape(-1, H)
    for t in range(config["steps"]):
        if config["module"] == "LSTMCell":
            h, c = lstm_cell(sd, x[t], h, c)
            np.testing.assert_allclose(c.reshape(arrays["c"][t].shape), arrays["c"][t], *TOLERANCE[config["dtype"]])
        elif config["module"] == "GRUCell":
            h = gru_cell(sd, x[t], h, linear_before_reset=True)
        else:
            h = rnn_cell(sd, x[t], h, config["nonlinearity"])
        np.testing.assert_allclose(h.reshape(arrays["h"][t].shape), arrays["h"][t], *TOLERANCE[config["dtype"]])


@pytest.mark.parametrize("module", sorted(CLASSES))
def test_state_dict_keys_and_shapes_are_pytorchs(module):
    """Same keys, in the same order, with the same shapes as the PyTorch cell's (from the golden files)."""
    for path in CELL_FILES:
        config, sd, _ = load_golden(path)
        if config["module"] != module:
            continue
        cell = CLASSES[module](config["input_size"], config["hidden_size"], bias=config["bias"],
                               dtype=config["dtype"], **cell_options(config))
        ours = cell.state_dict()
        assert list(ours) == list(sd), path.name
        assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in sd.items()}, path.name
        assert all(v.dtype == np.dtype(config["dtype"]) for v in ours.values())


# --------------------------------------------------------- live, against PyTorch
LIVE_CASES = [  # (module, options, input_size, hidden_size, batch or None for unbatched, bias)
    ("RNNCell", {"nonlinearity": "tanh"}, 7, 5, 4, True),
    ("RNNCell", {"nonlinearity": "relu"}, 1, 9, None, False),
    ("LSTMCell", {}, 6, 3, 1, True),
    ("LSTMCell", {}, 2, 11, None, False),
    ("GRUCell", {}, 5, 8, 3, True),
    ("GRUCell", {}, 9, 1, None, False),
]


@pytest.mark.torch
@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
@pytest.mark.parametrize("module,options,input_size,hidden_size,batch,bias", LIVE_CASES)
def test_cell_matches_live_pytorch(module, options, input_size, hidden_size, batch, bias, dtype_name, device):
    torch = pytest.importorskip("torch")
    tdt = {"float32": torch.float32, "float64": torch.float64}[dtype_name]
    torch.manual_seed(hidden_size * 100 + input_size)
    theirs = getattr(torch.nn, module)(input_size, hidden_size, bias=bias, dtype=tdt, **options)
    with torch.no_grad():  # weights beyond the default init, so the gates saturate sometimes
        for p in theirs.parameters():
            p.mul_(2.5)
    ours = CLASSES[module].from_state_dict(theirs.state_dict(), device=device, **options)
    lead = () if batch is None else (batch,)
    x = torch.randn(4, *lead, input_size, dtype=tdt)
    h = torch.randn(*lead, hidden_size, dtype=tdt)
    state_theirs = (h, torch.randn_like(h)) if module == "LSTMCell" else h
    state_ours = (tuple(rnnkern.asarray(s.numpy(), device=device) for s in state_theirs)
                  if module == "LSTMCell" else rnnkern.asarray(h.numpy(), device=device))
    with torch.no_grad():
        for t in range(x.shape[0]):
            state_theirs = theirs(x[t], state_theirs)
            state_ours = ours(rnnkern.asarray(x[t].numpy(), device=device), state_ours)
            if module == "LSTMCell":
                for a, b in zip(state_ours, state_theirs):
                    assert_close(a, b.numpy(), dtype_name, scale=10)
            else:
                assert_close(state_ours, state_theirs.numpy(), dtype_name, scale=10)
    # the outputs really are of the cell's dtype and shape, not merely close
    out = state_ours[0] if module == "LSTMCell" else state_ours
    assert to_numpy(out).dtype == np.dtype(dtype_name) and out.shape == lead + (hidden_size,)
