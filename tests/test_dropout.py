"""Dropout between layers: against PyTorch (tests/golden/make_golden_dropout.py: torch layer by layer with
rnnkern's masks, and torch's own module with p = 1), finite differences through the same masks,
the masks' rate and scale, reproducibility, inference untouched, argument checks."""

import copy
import pathlib
import pickle
import warnings

import numpy as np
import pytest

import rnnkern
from conftest import assert_close, to_numpy
from finite_diff import central_differences
from golden_files import load_golden as load

FILES = sorted((pathlib.Path(__file__).resolve().parent / "golden" / "dropout").glob("*.npz"))




def test_golden_files_cover_the_cases():
    configs = [load(p)[0] for p in FILES]
    assert {c["kind"] for c in configs} == {"masked", "torch_p1"}, "run tests/golden/make_golden_dropout.py"
    assert {c["module"] for c in configs} == {"RNN", "LSTM", "GRU"}
    assert any(c["options"].get("proj_size") for c in configs)
    assert {c["batched"] for c in configs} == {True, False} and any(c["lengths"] for c in configs)


def golden_layer(path, device, dtype):
    config, sd, grads, arrays = load(path)
    cls = getattr(rnnkern, config["module"])
    options = {k: v for k, v in config["options"].items() if k != "proj_size"}  # proj_size: from the weights
    net = cls.from_state_dict({k: v.astype(dtype) for k, v in sd.items()}, device=device,
                              batch_first=config["batch_first"], dropout=config["dropout"], **options)
    lstm = config["module"] == "LSTM"
    on = lambda name: rnnkern.asarray(arrays[name].astype(dtype), device=device)  # noqa: E731
    state = ((on("h0"), on("c0")) if lstm else on("h0")) if config["with_state"] else None
    return config, net, on, state, grads, arrays, lstm


def tolerance(dtype, config):
    return "float32" if "float32" in (dtype, config["dtype"]) else "float64"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_forward_train_and_backward_match_pytorch(path, device, dtype):
    config, net, on, state, expected, arrays, lstm = golden_layer(path, device, dtype)
    tol = tolerance(dtype, config)
    lengths = arrays.get("lengths")
    y, state_n, tape = net.forward_train(on("x"), state, lengths=lengths, generator=config["seed"])
    assert_close(y, arrays["y"], tol)
    h_n, c_n = state_n if lstm else (state_n, None)
    assert_close(h_n, arrays["h_n"], tol)
    if lstm:
        assert_close(c_n, arrays["c_n"], tol)
    dstate = (on("dh_n"), on("dc_n")) if lstm else on("dh_n")
    dx, dstate0, dparams = net.backward(tape, on("dy"), dstate)
    assert_close(dx, expected["x"], tol)
    assert_close(dstate0[0] if lstm else dstate0, expected["h0"], tol)
    if lstm:
        assert_close(dstate0[1], expected["c0"], tol)
    for name, grad in dparams.items():
        assert_close(grad, expected[name], tol)
    if config["kind"] == "torch_p1":  # inference never drops: torch's eval mode
        assert_close(net(on("x"), state, lengths=lengths)[0], arrays["y_eval"], tol)


@pytest.mark.parametrize("path", [p for p in FILES if "masked" in load(p)[0]["kind"]], ids=lambda p: p.stem)
def test_generator_seed_and_generator_object_give_the_same_masks(path):
    config, net, on, state, _, arrays, _ = golden_layer(path, "cpu", "float64")
    lengths = arrays.get("lengths")
    y_seed = net.forward_train(on("x"), state, lengths=lengths, generator=config["seed"])[0]
    rng = np.random.default_rng(config["seed"])
    y_rng = net.forward_train(on("x"), state, lengths=lengths, generator=rng)[0]
    np.testing.assert_array_equal(y_seed, y_rng)
    # the generator advanced: a second call with it draws new masks
    assert not np.array_equal(net.forward_train(on("x"), state, lengths=lengths, generator=rng)[0], y_rng)


def test_gradients_through_the_masks_match_finite_differences():
    """With the same seed every forward_train draws the same masks, so the loss is a function of the
    weights; its central differences match backward (float64, LSTM with projections, bidirectional, lengths)."""
    rng = np.random.default_rng(4)
    net = rnnkern.LSTM(3, 4, 3, bidirectional=True, proj_size=2, dropout=0.5, dtype="float64", seed=1)
    x, lengths = rng.standard_normal((4, 3, 3)), np.array([4, 1, 3])
    dy = rng.standard_normal((4, 3, 4))

    def loss():
        return np.sum(net.forward_train(x, lengths=lengths, generator=7)[0] * dy)

    _, _, tape = net.forward_train(x, lengths=lengths, generator=7)
    dx, _, dparams = net.backward(tape, dy)
    eps = 1e-6
    for name, (array, grad) in {"x": (x, dx), "weight_ih_l1": (dict(net.named_parameters())["weight_ih_l1"], dparams[
            "weight_ih_l1"]), "weight_hr_l0_reverse": (dict(net.named_parameters())["weight_hr_l0_reverse"],
                                                       dparams["weight_hr_l0_reverse"])}.items():
        numeric = central_differences(loss, array, eps)
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8, err_msg=name)
    assert np.abs(dparams["weight_ih_l1"]).max() > 0


@pytest.mark.parametrize("p", [0.2, 0.5, 0.9])
def test_masks_keep_one_minus_p_and_scale_by_its_inverse(p):
    """Each dropped layer output: about a fraction p of zeros (within 5 standard deviations), every kept
    element scaled by exactly 1 / (1 - p), no mask on the last layer."""
    net = rnnkern.GRU(2, 50, 3, bidirectional=True, dropout=p, dtype="float64")
    _, _, tape = net.forward_train(np.ones((40, 30, 2)), generator=0)
    assert len(tape.masks) == 2
    for mask in tape.masks:
        n = mask.size
        assert abs((mask == 0).mean() - p) < 5 * np.sqrt(p * (1 - p) / n)
        np.testing.assert_allclose(np.unique(mask[mask != 0]), [1 / (1 - p)], rtol=1e-15)
        assert not np.array_equal(mask[0], mask[1])  # independent draws per step
    assert not np.array_equal(tape.masks[0], tape.masks[1])


def test_zero_and_one():
    x = np.random.default_rng(0).standard_normal((6, 2, 3)).astype("f4")
    net = rnnkern.LSTM(3, 5, 2, dropout=0.0, seed=3)
    y, _, tape = net.forward_train(x)
    np.testing.assert_array_equal(y, net(x)[0])
    assert tape.masks == []
    net = rnnkern.LSTM(3, 5, 2, dropout=1.0, seed=3)
    _, _, tape = net.forward_train(x)
    assert not tape.masks[0].any()


def test_inference_never_drops(device):
    sd = rnnkern.GRU(3, 4, 3, seed=0).state_dict()
    x = rnnkern.asarray(np.ones((5, 2, 3), "f4"), device=device)
    plain = rnnkern.GRU.from_state_dict(sd, device=device)
    dropped = rnnkern.GRU.from_state_dict(sd, device=device, dropout=0.9)
    np.testing.assert_array_equal(to_numpy(plain(x)[0]), to_numpy(dropped(x)[0]))
    assert not np.array_equal(to_numpy(plain(x)[0]), to_numpy(dropped.forward_train(x)[0]))


def test_default_generator_is_seeded_from_the_layer_seed():
    x = np.ones((5, 2, 3), "f4")
    a, b = rnnkern.RNN(3, 8, 2, dropout=0.5, seed=11), rnnkern.RNN(3, 8, 2, dropout=0.5, seed=11)
    first = a.forward_train(x)[0]
    np.testing.assert_array_equal(first, b.forward_train(x)[0])  # same seed, same masks
    assert not np.array_equal(first, a.forward_train(x)[0])  # the layer's generator advances
    clone = copy.deepcopy(a)
    np.testing.assert_array_equal(clone.forward_train(x)[0], a.forward_train(x)[0])
    restored = pickle.loads(pickle.dumps(b))
    np.testing.assert_array_equal(restored.forward_train(x)[0], b.forward_train(x)[0])


def test_dropout_option_round_trips():
    net = rnnkern.LSTM(3, 5, 2, dropout=0.25, proj_size=2)
    assert repr(net) == "LSTM(3, 5, proj_size=2, num_layers=2, dropout=0.25, device='cpu', dtype=float32)"
    assert rnnkern.LSTM.from_state_dict(net.state_dict(), dropout=0.25).dropout == 0.25
    assert rnnkern.LSTM.from_state_dict(net.state_dict()).dropout == 0.0
    assert rnnkern.RNN(3, 5).dropout == 0.0


@pytest.mark.parametrize("value,error,message", [
    (-0.1, ValueError, r"got -0.1"), (1.5, ValueError, r"got 1.5"), (float("nan"), ValueError, r"got nan"),
    ("0.5", TypeError, r"got str '0.5'"), (True, TypeError, r"got bool True"), (None, TypeError, r"got NoneType"),
])
def test_bad_dropout_is_rejected(value, error, message):
    for cls in (rnnkern.RNN, rnnkern.LSTM, rnnkern.GRU):
        with pytest.raises(error, match=rf"{cls.__name__}: dropout must be a number in \[0, 1\].*{message}"):
            cls(3, 4, 2, dropout=value)


def test_dropout_with_one_layer_warns_as_torch_does():
    with pytest.warns(UserWarning, match=r"LSTM: dropout is applied to the output of every layer but the last, "
                                         r"so dropout=0.5 with num_layers=1 has no effect"):
        rnnkern.LSTM(3, 4, dropout=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rnnkern.LSTM(3, 4, dropout=0.0)
        rnnkern.LSTM(3, 4, 2, dropout=0.5)


@pytest.mark.parametrize("generator", ["1", -1, 1.5, True, np.random.RandomState(0)])
def test_bad_generator_is_rejected(generator):
    net = rnnkern.GRU(3, 4, 2, dropout=0.5)
    with pytest.raises(TypeError, match=r"GRU.forward_train: generator must be a numpy.random.Generator, "
                                        r"a non-negative int seed or None, got"):
        net.forward_train(np.ones((2, 1, 3), "f4"), generator=generator)


# ------------------------------------------------------------------------ live, against PyTorch
@pytest.mark.torch
@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
@pytest.mark.parametrize("module,options", [("LSTM", {"proj_size": 3}), ("GRU", {}), ("RNN", {})])
def test_p1_and_eval_match_live_pytorch(module, options, device, dtype):
    """torch's own module in training mode with dropout=1 (deterministic: every dropped element zero)
    and in eval mode (no dropout), forward and gradients."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(5)
    tdt = getattr(torch, dtype)
    T, B, I, H = 6, 3, 4, 5
    theirs = getattr(torch.nn, module)(I, H, 3, bidirectional=True, dropout=1.0, dtype=tdt, **options)
    ours = getattr(rnnkern, module).from_state_dict(theirs.state_dict(), device=device, dropout=1.0)
    x = torch.randn(T, B, I, dtype=tdt, requires_grad=True)
    on = lambda t: rnnkern.asarray(t.detach().numpy(), device=device)  # noqa: E731
    theirs.eval()
    with torch.no_grad():
        y_eval = theirs(x)[0]
    assert_close(ours(on(x))[0], y_eval.numpy(), dtype, scale=10)
    theirs.train()
    y, state = theirs(x)
    h_n = state[0] if module == "LSTM" else state
    dy, dh = torch.randn_like(y), torch.randn_like(h_n)
    ((y * dy).sum() + (h_n * dh).sum()).backward()
    y_ours, state_ours, tape = ours.forward_train(on(x))
    assert_close(y_ours, y.detach().numpy(), dtype, scale=10)
    dx, _, dparams = ours.backward(tape, on(dy), (on(dh), None) if module == "LSTM" else on(dh))
    assert_close(dx, x.grad.numpy(), dtype, scale=10)
    for name, param in theirs.named_parameters():
        assert_close(dparams[name], param.grad.numpy(), dtype, scale=10)
