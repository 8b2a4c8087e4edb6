"""LSTM with projections (proj_size): against PyTorch's golden vectors and autograd
(tests/golden/make_golden_proj.py), a float64 finite-difference check, a hand loop of LSTMCells and
projections, live PyTorch (marked ``torch``), state_dicts and argument checks."""

import pathlib

import numpy as np
import pytest

import rnnkern
from conftest import assert_close, to_numpy
from finite_diff import central_differences
from golden_files import load_golden as load

FILES = sorted((pathlib.Path(__file__).resolve().parent / "golden" / "proj").glob("*.npz"))




def looser(*dtypes):
    """The dtype whose tolerance applies when results of these dtypes are compared."""
    return "float32" if "float32" in dtypes else "float64"


def test_golden_files_cover_the_options():
    configs = [load(p)[0] for p in FILES]
    assert len(configs) >= 8, "golden files missing; run tests/golden/make_golden_proj.py"
    for option in ("bidirectional", "batch_first", "bias", "batched", "with_state"):
        assert {c[option] for c in configs} == {True, False}, option
    assert {c["num_layers"] for c in configs} >= {1, 2, 3}
    assert any(c["lengths"] for c in configs) and {c["dtype"] for c in configs} == {"float32", "float64"}


def run_golden(path, device, dtype):
    config, sd, grads, arrays = load(path)
    net = rnnkern.LSTM.from_state_dict({k: v.astype(dtype) for k, v in sd.items()}, device=device,
                                       batch_first=config["batch_first"])
    on = lambda name: rnnkern.asarray(arrays[name].astype(dtype), device=device)  # noqa: E731
    state = (on("h0"), on("c0")) if config["with_state"] else None
    lengths = arrays.get("lengths")
    return config, net, on, state, lengths, grads, arrays


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_forward_matches_pytorch_golden(path, device, dtype):
    config, net, on, state, lengths, _, arrays = run_golden(path, device, dtype)
    assert (net.proj_size, net.hidden_size, net.num_layers, net.bidirectional, net.bias) == (
        config["proj_size"], config["hidden_size"], config["num_layers"], config["bidirectional"], config["bias"])
    y, (h_n, c_n) = net(on("x"), state, lengths=lengths)
    assert (y.shape, h_n.shape, c_n.shape) == (arrays["y"].shape, arrays["h_n"].shape, arrays["c_n"].shape)
    tol = looser(dtype, config["dtype"])
    for ours, name in ((y, "y"), (h_n, "h_n"), (c_n, "c_n")):
        assert_close(ours, arrays[name], tol)
    # forward_train computes the same forward
    y2, (h2, c2), _ = net.forward_train(on("x"), state, lengths=lengths)
    for ours, name in ((y2, "y"), (h2, "h_n"), (c2, "c_n")):
        assert_close(ours, arrays[name], tol)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_gradients_match_pytorch_autograd(path, device, dtype):
    config, net, on, state, lengths, expected, arrays = run_golden(path, device, dtype)
    _, _, tape = net.forward_train(on("x"), state, lengths=lengths)
    dx, (dh0, dc0), dparams = net.backward(tape, on("dy"), (on("dh_n"), on("dc_n")))
    assert set(dparams) == set(net.state_dict()) and any(k.startswith("weight_hr") for k in dparams)
    tol = looser(dtype, config["dtype"])
    assert_close(dx, expected["x"], tol)
    assert_close(dh0, expected["h0"], tol)
    assert_close(dc0, expected["c0"], tol)
    for name, grad in dparams.items():
        assert grad.shape == expected[name].shape, name
        assert_close(grad, expected[name], tol)


def test_state_dict_keys_and_shapes_are_pytorchs():
    """A constructed layer has torch's keys in torch's order (weight_hr last per direction) and shapes."""
    for path in FILES:
        config, sd, _, _ = load(path)
        net = rnnkern.LSTM(config["input_size"], config["hidden_size"], config["num_layers"], config["bias"],
                           bidirectional=config["bidirectional"], proj_size=config["proj_size"], seed=1)
        assert list(net.state_dict()) == list(sd)
        assert {k: v.shape for k, v in net.state_dict().items()} == {k: v.shape for k, v in sd.items()}


# ------------------------------------------------------------- hand loop and finite differences
def hand_loop(sd, suffix, x, h0, c0, reverse):
    """One layer and direction by hand: an LSTMCell reading [x_t, h_{t-1}] through weight_ih = [W_ih | W_hh]
    (its own W_hh zero), then the projection h_t = W_hr h_full_t. Returns (outputs (T, B, P), h_n, c_n)."""
    w_ih, w_hh, w_hr = sd["weight_ih" + suffix], sd["weight_hh" + suffix], sd["weight_hr" + suffix]
    H = w_hr.shape[1]
    cell = rnnkern.LSTMCell.from_state_dict({"weight_ih": np.concatenate([w_ih, w_hh], axis=1),
                                             "weight_hh": np.zeros((4 * H, H), w_ih.dtype),
                                             "bias_ih": sd["bias_ih" + suffix], "bias_hh": sd["bias_hh" + suffix]})
    h, c, ys = h0, c0, [None] * x.shape[0]
    for t in (reversed(range(x.shape[0])) if reverse else range(x.shape[0])):
        h_full, c = cell(np.concatenate([x[t], h], axis=-1), (np.zeros((x.shape[1], H), w_ih.dtype), c))
        h = h_full @ w_hr.T
        ys[t] = h
    return np.stack(ys), h, c


def test_hand_loop_of_cells_and_projections_equals_the_layer(dtype):
    rng = np.random.default_rng(3)
    net = rnnkern.LSTM(4, 6, 2, bidirectional=True, proj_size=3, dtype=dtype, seed=5)
    sd = net.state_dict()
    x = rng.standard_normal((7, 2, 4)).astype(dtype)
    h0, c0 = rng.standard_normal((4, 2, 3)).astype(dtype), rng.standard_normal((4, 2, 6)).astype(dtype)
    y, (h_n, c_n) = net(x, (h0, c0))
    layer_input = x
    for layer in range(2):
        outputs = []
        for d, suffix in enumerate((f"_l{layer}", f"_l{layer}_reverse")):
            k = 2 * layer + d
            out, h_ref, c_ref = hand_loop(sd, suffix, layer_input, h0[k], c0[k], reverse=d == 1)
            assert_close(h_n[k], h_ref, dtype)
            assert_close(c_n[k], c_ref, dtype)
            outputs.append(out)
        layer_input = np.concatenate(outputs, axis=-1)
    assert_close(y, layer_input, dtype)


def test_gradients_match_finite_differences():
    """float64 central differences of loss = sum(y*dy) + sum(h_n*dh_n) + sum(c_n*dc_n), for every
    parameter (weight_hr included), the input and both initial states: 2 layers, bidirectional, lengths."""
    rng = np.random.default_rng(11)
    net = rnnkern.LSTM(3, 5, 2, bidirectional=True, proj_size=2, dtype="float64", seed=2)
    T, B = 4, 3
    x, h0, c0 = rng.standard_normal((T, B, 3)), rng.standard_normal((4, B, 2)), rng.standard_normal((4, B, 5))
    lengths = np.array([2, 4, 3])
    dy, dh, dc = rng.standard_normal((T, B, 4)), rng.standard_normal((4, B, 2)), rng.standard_normal((4, B, 5))

    def loss():
        y, (h_n, c_n) = net(x, (h0, c0), lengths=lengths)
        return np.sum(y * dy) + np.sum(h_n * dh) + np.sum(c_n * dc)

    _, _, tape = net.forward_train(x, (h0, c0), lengths=lengths)
    dx, (dh0, dc0), dparams = net.backward(tape, dy, (dh, dc))
    wrt = {**{name: (dict(net.named_parameters())[name], dparams[name]) for name in dparams},
           "x": (x, dx), "h0": (h0, dh0), "c0": (c0, dc0)}
    eps = 1e-6
    for name, (array, grad) in wrt.items():
        numeric = central_differences(loss, array, eps)
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-7, err_msg=name)


# ------------------------------------------------------------------- shapes, state_dicts, checks
def test_shapes_of_states_and_outputs(device):
    net = rnnkern.LSTM(3, 6, 2, batch_first=True, bidirectional=True, proj_size=2, device=device)
    y, (h_n, c_n) = net(rnnkern.asarray(np.ones((4, 5, 3), "f4"), device=device))
    assert (y.shape, h_n.shape, c_n.shape) == ((4, 5, 4), (4, 4, 2), (4, 4, 6))
    y, (h_n, c_n) = net(rnnkern.asarray(np.ones((5, 3), "f4"), device=device))  # unbatched
    assert (y.shape, h_n.shape, c_n.shape) == ((5, 4), (4, 2), (4, 6))
    assert net.weight_hh_l1.shape == (24, 2) and net.weight_ih_l1.shape == (24, 4)
    assert net.weight_hr_l1_reverse.shape == (2, 6)


def test_initial_state_shapes_are_checked():
    net = rnnkern.LSTM(3, 6, proj_size=2)
    x = np.ones((5, 4, 3), "f4")
    with pytest.raises(ValueError, match=r"state\[0\] \(h_0\) must have shape \(1, 4, 2\)"):
        net(x, (np.zeros((1, 4, 6), "f4"), np.zeros((1, 4, 6), "f4")))
    with pytest.raises(ValueError, match=r"state\[1\] \(c_0\) must have shape \(1, 4, 6\)"):
        net(x, (np.zeros((1, 4, 2), "f4"), np.zeros((1, 4, 2), "f4")))
    _, _, tape = net.forward_train(x)
    with pytest.raises(ValueError, match=r"must have shape \(1, 4, 2\)"):
        net.backward(tape, np.zeros((5, 4, 2), "f4"), (np.zeros((1, 4, 6), "f4"), None))


def test_state_dict_round_trip_repr_and_to(device):
    net = rnnkern.LSTM(3, 6, 2, bidirectional=True, proj_size=4, dtype="float64", seed=0)
    again = rnnkern.LSTM.from_state_dict(net.state_dict(), device=device)
    assert again.proj_size == 4 and again.dtype == np.float64
    assert {k: to_numpy(v).tolist() for k, v in again.named_parameters()} == \
        {k: v.tolist() for k, v in net.state_dict().items()}
    assert repr(net) == "LSTM(3, 6, proj_size=4, num_layers=2, bidirectional=True, device='cpu', dtype=float64)"
    assert net.to("cpu") is net
    assert rnnkern.LSTM(3, 6).proj_size == 0 and "proj_size" not in repr(rnnkern.LSTM(3, 6))


@pytest.mark.parametrize("value,error,message", [
    (6, ValueError, r"proj_size must be smaller than hidden_size \(6\), got 6"),
    (7, ValueError, r"proj_size must be smaller than hidden_size \(6\), got 7"),
    (-1, ValueError, r"proj_size must be 0 \(no projection\) or a positive int, got -1"),
    (2.0, TypeError, r"proj_size must be an int \(0 for no projection\), got float 2.0"),
    (True, TypeError, r"proj_size must be an int .*got bool True"),
])
def test_bad_proj_size_is_rejected(value, error, message):
    with pytest.raises(error, match="LSTM: " + message):
        rnnkern.LSTM(3, 6, proj_size=value)


def test_proj_size_only_on_lstm():
    for cls in (rnnkern.RNN, rnnkern.GRU):
        with pytest.raises(TypeError, match="proj_size"):
            cls(3, 6, proj_size=2)
        assert cls(3, 6).proj_size == 0


def test_from_state_dict_checks_the_projection_weights():
    sd = rnnkern.LSTM(3, 6, 2, proj_size=2).state_dict()
    bad = dict(sd, weight_hr_l1=np.zeros((3, 6), "f4"))
    with pytest.raises(ValueError, match=r"'weight_hr_l1' must have shape \(2, 6\)"):
        rnnkern.LSTM.from_state_dict(bad)
    bad = dict(sd, weight_hr_l0=np.zeros((6, 6), "f4"))
    with pytest.raises(ValueError, match=r"'weight_hr_l0' must have shape \(P, H\) with 0 < P < H"):
        rnnkern.LSTM.from_state_dict(bad)
    missing = {k: v for k, v in sd.items() if k != "weight_hr_l1"}
    with pytest.raises(KeyError, match="missing key.*'weight_hr_l1'"):
        rnnkern.LSTM.from_state_dict(missing)
    with pytest.raises(TypeError, match="proj_size"):
        rnnkern.LSTM.from_state_dict(sd, proj_size=2)


# ------------------------------------------------------------------------ live, against PyTorch
@pytest.mark.torch
@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
@pytest.mark.parametrize("num_layers,bidirectional,batch_first,bias,lengths", [
    (2, True, True, True, [4, 6, 1, 5]), (1, False, False, False, None), (3, True, False, True, None)])
def test_matches_live_pytorch(num_layers, bidirectional, batch_first, bias, lengths, device, dtype):
    torch = pytest.importorskip("torch")
    tdt = getattr(torch, dtype)
    torch.manual_seed(num_layers)
    T, B, I, H, P = 6, 4, 5, 7, 3
    theirs = torch.nn.LSTM(I, H, num_layers, bias=bias, batch_first=batch_first, bidirectional=bidirectional,
                           proj_size=P, dtype=tdt)
    ours = rnnkern.LSTM.from_state_dict(theirs.state_dict(), device=device, batch_first=batch_first)
    D = 2 if bidirectional else 1
    x = torch.randn(*((B, T) if batch_first else (T, B)), I, dtype=tdt, requires_grad=True)
    h0 = torch.randn(num_layers * D, B, P, dtype=tdt, requires_grad=True)
    c0 = torch.randn(num_layers * D, B, H, dtype=tdt, requires_grad=True)
    inp = x if lengths is None else torch.nn.utils.rnn.pack_padded_sequence(
        x, torch.tensor(lengths), batch_first=batch_first, enforce_sorted=False)
    y, (h_n, c_n) = theirs(inp, (h0, c0))
    if lengths is not None:
        y, _ = torch.nn.utils.rnn.pad_packed_sequence(y, batch_first=batch_first, total_length=T)
    dy, dh, dc = torch.randn_like(y), torch.randn_like(h_n), torch.randn_like(c_n)
    ((y * dy).sum() + (h_n * dh).sum() + (c_n * dc).sum()).backward()

    on = lambda t: rnnkern.asarray(t.detach().numpy(), device=device)  # noqa: E731
    y_ours, (h_ours, c_ours), tape = ours.forward_train(on(x), (on(h0), on(c0)), lengths=lengths)
    for a, b in ((y_ours, y), (h_ours, h_n), (c_ours, c_n)):
        assert_close(a, b.detach().numpy(), dtype, scale=10)
    dx, (dh0, dc0), dparams = ours.backward(tape, on(dy), (on(dh), on(dc)))
    for a, b in ((dx, x), (dh0, h0), (dc0, c0)):
        assert_close(a, b.grad.numpy(), dtype, scale=10)
    for name, param in theirs.named_parameters():
        assert_close(dparams[name], param.grad.numpy(), dtype, scale=10)
