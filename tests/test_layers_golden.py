"""The sequence layers (rnnkern.RNN / LSTM / GRU) against golden vectors written by torch.nn.RNN / LSTM /
GRU (tests/golden/make_golden.py), and live against PyTorch when it is installed.

The configurations cover depth 1-3, both directions, batch_first, bias, lengths (run in PyTorch
through pack_padded_sequence(enforce_sorted=False) / pad_packed_sequence(total_length=T)),
initial states, and one unbatched input. The float64 reference layers (tests/reference.py) are
checked against the same files.
"""

import numpy as np
import pytest

import rnnkern
from conftest import TOLERANCE, assert_close
from reference import golden_files, layer, load_golden

LAYER_FILES = golden_files("layers")
IDS = [p.stem for p in LAYER_FILES]


def test_golden_layer_files_are_present():
    modules = {load_golden(p)[0]["module"] for p in LAYER_FILES}
    assert modules == {"RNN", "LSTM", "GRU"}, "golden files missing; regenerate them (tests/golden/README.md)"


def layer_options(config):
    return {"nonlinearity": config["nonlinearity"]} if config["module"] == "RNN" else {}


def initial_state(config, arrays, convert=lambda a: a):
    if not config["with_state"]:
        return None
    if config["module"] == "LSTM":
        return convert(arrays["h0"]), convert(arrays["c0"])
    return convert(arrays["h0"])


def expected_shapes(config):
    T, B, H = config["seq_len"], config["batch"], config["hidden_size"]
    D = 2 if config["bidirectional"] else 1
    if not config["batched"]:  # x (T, I): no batch dimension anywhere
        return (T, D * H), (config["num_layers"] * D, H)
    y = (B, T, D * H) if config["batch_first"] else (T, B, D * H)
    return y, (config["num_layers"] * D, B, H)


@pytest.mark.parametrize("path", LAYER_FILES, ids=IDS)
def test_reference_layer_matches_pytorch_golden(path):
    """The float64 reference layers agree with PyTorch, packed sequences included."""
    config, sd, arrays = load_golden(path)
    # the reference takes batches only: an unbatched case is a batch of one (x (T, 1, I), h0 (L*D, 1, H))
    add_batch = (lambda a: a) if config["batched"] else (lambda a: a[:, None])
    y, state_n = layer(config["module"], sd, add_batch(arrays["x"]), initial_state(config, arrays, add_batch),
                       arrays.get("lengths"), config["num_layers"], config["bidirectional"], config["batch_first"],
                       **layer_options(config))
    tol = TOLERANCE[config["dtype"]]
    np.testing.assert_allclose(y.reshape(arrays["y"].shape), arrays["y"], *tol)
    if config["module"] == "LSTM":
        np.testing.assert_allclose(state_n[0].reshape(arrays["h_n"].shape), arrays["h_n"], *tol)
        np.testing.assert_allclose(state_n[1].reshape(arrays["c_n"].shape), arrays["c_n"], *tol)
    else:
        np.testing.assert_allclose(state_n.reshape(arrays["h_n"].shape), arrays["h_n"], *tol)


@pytest.mark.parametrize("path", LAYER_FILES, ids=IDS)
def test_layer_matches_pytorch_golden(path, device):
    config, sd, arrays = load_golden(path)
    cls = getattr(rnnkern, config["module"])
    # num_layers, bidirectional, bias, sizes and dtype are read off the state_dict.
    net = cls.from_state_dict(sd, device=device, batch_first=config["batch_first"], **layer_options(config))
    assert (net.num_layers, net.bidirectional, net.bias, net.batch_first) == (
        config["num_layers"], config["bidirectional"], config["bias"], config["batch_first"])
    assert net.dtype == np.dtype(config["dtype"])

    def dev(a):
        return rnnkern.asarray(a, device=device)

    y, state_n = net(dev(arrays["x"]), state=initial_state(config, arrays, dev), lengths=arrays.get("lengths"))
    y_shape, state_shape = expected_shapes(config)
    assert y.shape == y_shape
    assert_close(y, arrays["y"], config["dtype"])
    if config["module"] == "LSTM":
        h_n, c_n = state_n
        assert h_n.shape == state_shape and c_n.shape == state_shape
        assert_close(h_n, arrays["h_n"], config["dtype"])
        assert_close(c_n, arrays["c_n"], config["dtype"])
    else:
        assert state_n.shape == state_shape
        assert_close(state_n, arrays["h_n"], config["dtype"])


@pytest.mark.parametrize("path", LAYER_FILES, ids=IDS)
def test_layer_state_dict_keys_and_shapes_are_pytorchs(path):
    """A layer built with the constructor has torch.nn's keys, in torch.nn's order, with its shapes."""
    config, sd, _ = load_golden(path)
    net = getattr(rnnkern, config["module"])(
        config["input_size"], config["hidden_size"], num_layers=config["num_layers"], bias=config["bias"],
        batch_first=config["batch_first"], bidirectional=config["bidirectional"], dtype=config["dtype"],
        seed=0, **layer_options(config))
    ours = net.state_dict()
    assert list(ours) == list(sd)
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in sd.items()}
    assert all(v.dtype == np.dtype(config["dtype"]) for v in ours.values())


# --------------------------------------------------------- live, against PyTorch
LIVE_CASES = [  # (module, options, num_layers, bidirectional, batch_first, bias, lengths)
    ("RNN", {"nonlinearity": "relu"}, 2, True, False, True, [6, 1, 4, 6]),
    ("RNN", {"nonlinearity": "tanh"}, 1, False, True, False, None),
    ("LSTM", {}, 3, True, True, True, [2, 6, 5, 3]),
    ("LSTM", {}, 1, False, False, False, [1, 1, 1, 1]),
    ("GRU", {}, 2, False, True, True, [3, 5, 6, 2]),
    ("GRU", {}, 1, True, False, False, None),
]


@pytest.mark.torch
@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
@pytest.mark.parametrize("module,options,num_layers,bidirectional,batch_first,bias,lengths", LIVE_CASES)
def test_layer_matches_live_pytorch(module, options, num_layers, bidirectional, batch_first, bias, lengths,
                                    dtype_name, device):
    torch = pytest.importorskip("torch")
    tdt = {"float32": torch.float32, "float64": torch.float64}[dtype_name]
    torch.manual_seed(7 * num_layers + len(module))
    I, H, B, T = 5, 6, 4, 6
    theirs = getattr(torch.nn, module)(I, H, num_layers=num_layers, bias=bias, batch_first=batch_first,
                                       bidirectional=bidirectional, dtype=tdt, **options)
    ours = getattr(rnnkern, module).from_state_dict(theirs.state_dict(), device=device, batch_first=batch_first,
                                                    **options)
    x = torch.randn(*((B, T) if batch_first else (T, B)), I, dtype=tdt)
    with torch.no_grad():
        if lengths is None:
            y_theirs, state_theirs = theirs(x)
        else:
            packed = torch.nn.utils.rnn.pack_padded_sequence(x, torch.tensor(lengths), batch_first=batch_first,
                                                             enforce_sorted=False)
            y_packed, state_theirs = theirs(packed)
            y_theirs, _ = torch.nn.utils.rnn.pad_packed_sequence(y_packed, batch_first=batch_first, total_length=T)
    y_ours, state_ours = ours(rnnkern.asarray(x.numpy(), device=device), lengths=lengths)
    assert_close(y_ours, y_theirs.numpy(), dtype_name, scale=10)
    if module == "LSTM":
        for a, b in zip(state_ours, state_theirs):
            assert_close(a, b.numpy(), dtype_name, scale=10)
    else:
        assert_close(state_ours, state_theirs.numpy(), dtype_name, scale=10)
