"""Training: gradients of cells and layers against central finite differences in float64,
the optimisers against their update rules, the example's loss falling, gradflow's story."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rnnkern
from conftest import to_numpy
from finite_diff import central_differences, random_positions

EPS = 1e-6


def _numeric_grad(f, array, rng, max_entries=12):
    """Central differences of the scalar f() w.r.t. up to max_entries random entries of array
    (picked by multi-index: parameters may be stored column-major, where reshape(-1) is a copy)."""
    positions = random_positions(array, max_entries, rng)
    numeric = central_differences(f, array, EPS, positions)
    idx = tuple(np.array(axis) for axis in zip(*positions))
    return idx, numeric[idx]


def _check(analytic, f, array, rng):
    idx, numeric = _numeric_grad(f, array, rng)
    np.testing.assert_allclose(to_numpy(analytic)[idx], numeric, rtol=1e-6, atol=1e-8)


@settings(max_examples=12, deadline=None)
@given(kind=st.sampled_from(["RNN", "LSTM", "GRU"]), num_layers=st.integers(1, 2), bidirectional=st.booleans(),
       batch_first=st.booleans(), bias=st.booleans(), use_lengths=st.booleans(), option=st.booleans(),
       seed=st.integers(0, 2**16))
def test_layer_gradients_match_finite_differences(kind, num_layers, bidirectional, batch_first, bias, use_lengths,
                                                  option, seed):
    rng = np.random.default_rng(seed)
    T, B, I, H = 4, 3, 2, 3
    extra = {"RNN": {"nonlinearity": "relu" if option else "tanh"}, "GRU": {"linear_before_reset": option}}
    layer = getattr(rnnkern, kind)(I, H, num_layers, bias=bias, batch_first=batch_first,
                                   bidirectional=bidirectional, dtype="float64", seed=seed, **extra.get(kind, {}))
    D = layer.num_directions
    x = rng.standard_normal((B, T, I) if batch_first else (T, B, I))
    h0, c0 = rng.standard_normal((2, num_layers * D, B, H))
    lengths = rng.integers(1, T + 1, size=B) if use_lengths else None
    state = (h0, c0) if kind == "LSTM" else h0
    y, state_n, tape = layer.forward_train(x, state, lengths)
    w_y, w_h, w_c = rng.standard_normal(y.shape), rng.standard_normal(h0.shape), rng.standard_normal(h0.shape)

    def loss():
        out, st_n = layer(x, state, lengths)
        h_n, c_n = st_n if kind == "LSTM" else (st_n, None)
        return (out * w_y).sum() + (h_n * w_h).sum() + (0 if c_n is None else (c_n * w_c).sum())

    dstate_n = (w_h, w_c) if kind == "LSTM" else w_h
    dx, dstate0, dparams = layer.backward(tape, w_y, dstate_n)
    assert set(dparams) == set(layer.state_dict())
    _check(dx, loss, x, rng)
    _check(dstate0[0] if kind == "LSTM" else dstate0, loss, h0, rng)
    if kind == "LSTM":
        _check(dstate0[1], loss, c0, rng)
    for name, param in layer.named_parameters():
        _check(dparams[name], loss, param, rng)


@pytest.mark.parametrize("kind, option", [("RNNCell", "tanh"), ("RNNCell", "relu"), ("LSTMCell", None),
                                          ("GRUCell", True), ("GRUCell", False)])
@pytest.mark.parametrize("batched", [True, False])
def test_cell_gradients_match_finite_differences(kind, option, batched):
    rng = np.random.default_rng(1)
    opts = {"RNNCell": {"nonlinearity": option}, "GRUCell": {"linear_before_reset": option}}.get(kind, {})
    cell = getattr(rnnkern, kind)(3, 4, dtype="float64", seed=2, **opts)
    shape = (2,) if batched else ()
    x, h, c = rng.standard_normal(shape + (3,)), rng.standard_normal(shape + (4,)), rng.standard_normal(shape + (4,))
    w_h, w_c = rng.standard_normal(h.shape), rng.standard_normal(h.shape)
    lstm = kind == "LSTMCell"

    def loss():
        out = cell(x, (h, c) if lstm else h)
        return (out[0] * w_h).sum() + (out[1] * w_c).sum() if lstm else (out * w_h).sum()

    _, tape = cell.forward_train(x, (h, c) if lstm else h)
    dx, dstate, dparams = cell.backward(tape, (w_h, w_c) if lstm else w_h)
    assert dx.shape == x.shape
    _check(dx, loss, x, rng)
    _check(dstate[0] if lstm else dstate, loss, h, rng)
    if lstm:
        _check(dstate[1], loss, c, rng)
    for name, param in cell.named_parameters():
        _check(dparams[name], loss, param, rng)


def test_none_gradients_count_as_zeros():
    lstm = rnnkern.LSTM(2, 3, dtype="float64", seed=3)
    x = np.random.default_rng(2).standard_normal((4, 2, 2))
    y, _, tape = lstm.forward_train(x)
    dx_a, (dh_a, dc_a), dp_a = lstm.backward(tape, np.ones_like(y))
    dx_b, (dh_b, dc_b), dp_b = lstm.backward(tape, np.ones_like(y), (None, np.zeros((1, 2, 3))))
    np.testing.assert_array_equal(dx_a, dx_b)
    np.testing.assert_array_equal(dp_a["weight_hh_l0"], dp_b["weight_hh_l0"])


def test_backward_rejects_bad_arguments():
    gru = rnnkern.GRU(2, 3, seed=0)
    x = np.zeros((4, 2, 2), "float32")
    y, _, tape = gru.forward_train(x)
    with pytest.raises(ValueError, match="dy must have shape \\(4, 2, 3\\), got \\(4, 2, 4\\)"):
        gru.backward(tape, np.zeros((4, 2, 4), "float32"))
    with pytest.raises(TypeError, match="dy must have dtype float32"):
        gru.backward(tape, np.zeros((4, 2, 3)))
    with pytest.raises(TypeError, match="tape must come from this layer's forward_train"):
        rnnkern.GRU(2, 3).backward(tape, y)


# --- optimisers -------------------------------------------------------------------------------
def test_sgd_with_momentum_follows_its_update_rule():
    params = {"w": np.array([1.0, -2.0])}
    opt = rnnkern.optim.SGD(params, lr=0.1, momentum=0.9)
    g1, g2 = np.array([0.5, 1.0]), np.array([-1.0, 2.0])
    opt.step({"w": g1})
    opt.step({"w": g2})
    v2 = 0.9 * g1 + g2
    np.testing.assert_allclose(params["w"], np.array([1.0, -2.0]) - 0.1 * g1 - 0.1 * v2)


def test_adam_follows_kingma_and_ba():
    w0 = np.array([0.5, -1.5, 2.0])
    params = {"w": w0.copy()}
    opt = rnnkern.optim.Adam(params, lr=0.01, betas=(0.8, 0.99), eps=1e-8)
    grads = [np.array([0.1, -0.3, 1.0]), np.array([0.2, 0.1, -2.0]), np.array([-0.5, 0.0, 0.5])]
    m = v = np.zeros(3)
    w = w0.copy()
    for t, g in enumerate(grads, 1):
        opt.step({"w": g})
        m, v = 0.8 * m + 0.2 * g, 0.99 * v + 0.01 * g * g
        w = w - 0.01 * (m / (1 - 0.8 ** t)) / (np.sqrt(v / (1 - 0.99 ** t)) + 1e-8)
    np.testing.assert_allclose(params["w"], w, rtol=1e-12)


def test_clipping_scales_to_the_global_norm():
    params = {"a": np.zeros(2), "b": np.zeros(1)}
    opt = rnnkern.optim.SGD(params, lr=1.0, clip_norm=1.0)
    norm = opt.step({"a": np.array([3.0, 0.0]), "b": np.array([4.0])})
    assert norm == pytest.approx(5.0)
    np.testing.assert_allclose(np.concatenate([params["a"], params["b"]]), [-0.6, 0.0, -0.8], rtol=1e-6)


def test_optimiser_errors():
    layer = rnnkern.RNN(2, 3)
    with pytest.raises(ValueError, match="lr must be a positive number, got -1"):
        rnnkern.optim.SGD(layer, lr=-1)
    opt = rnnkern.optim.Adam(layer)
    with pytest.raises(KeyError, match="'weight_xx'"):
        opt.step({"weight_xx": np.zeros(3)})
    with pytest.raises(ValueError, match="grads\\['weight_hh_l0'\\] must have shape \\(3, 3\\), got \\(2, 3\\)"):
        opt.step({"weight_hh_l0": np.zeros((2, 3))})


def test_training_updates_layer_in_place_and_lowers_the_loss():
    """A few Adam steps on a fixed regression target lower the loss of the layer itself."""
    rng = np.random.default_rng(4)
    layer = rnnkern.GRU(3, 4, dtype="float64", seed=5)
    x, target = rng.standard_normal((6, 8, 3)), rng.uniform(-0.5, 0.5, (6, 8, 4))
    opt = rnnkern.optim.Adam(layer, lr=0.05)
    losses = []
    for _ in range(30):
        y, _, tape = layer.forward_train(x)
        losses.append(((y - target) ** 2).mean())
        opt.step(layer.backward(tape, 2 * (y - target) / y.size)[2])
    assert losses[-1] < 0.5 * losses[0]


def test_gradflow_shows_the_rnn_vanishing_where_the_lstm_does_not():
    from rnnkern._cli.gradflow import gradient_norms

    rnn = gradient_norms("RNN", 60, 16, 16, 4)
    lstm = gradient_norms("LSTM", 60, 16, 16, 4)
    assert rnn[0] / rnn[-1] < 1e-12
    assert lstm[0] / lstm[-1] > 1e-3


def test_adding_problem_example_loss_falls(capsys):
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).resolve().parents[1] / "examples" / "train_adding.py"
    spec = importlib.util.spec_from_file_location("train_adding", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    final = example.main(["--device", "cpu", "--steps", "300"])
    first = float(capsys.readouterr().out.split("step    1  loss ")[1].split()[0])
    assert final < 0.1 < first  # 0.167 is what predicting the mean scores


def test_gradflow_command_prints_a_table(capsys):
    from rnnkern.cli import main

    assert main(["gradflow", "--steps", "12", "--hidden-size", "8", "--input-size", "4", "--every", "4"]) == 0
    out = capsys.readouterr().out
    assert "RNN" in out and "LSTM" in out and "GRU" in out
    assert [line.split()[0] for line in out.splitlines() if line[:6].strip().isdigit()] == ["12", "8", "4", "1"]


def test_gradflow_plot_is_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    from rnnkern.cli import main

    png = tmp_path / "flow.png"
    assert main(["gradflow", "--steps", "12", "--hidden-size", "8", "--plot", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_gradflow_rejects_bad_sizes():
    from rnnkern.cli import main

    with pytest.raises(SystemExit, match="--steps must be at least 1, got 0"):
        main(["gradflow", "--steps", "0"])


def test_tape_is_not_changed_by_the_callers_arrays():
    """forward_train keeps its own copies: modifying x, the state or the returned y before
    backward leaves the gradients unchanged."""
    rng = np.random.default_rng(11)
    lstm = rnnkern.LSTM(3, 4, dtype="float64", seed=12)
    x, h0, c0 = rng.standard_normal((5, 2, 3)), rng.standard_normal((1, 2, 4)), rng.standard_normal((1, 2, 4))
    dy = rng.standard_normal((5, 2, 4))
    y, _, tape = lstm.forward_train(x, (h0, c0))
    expected = lstm.backward(tape, dy)[2]
    y2, _, tape2 = lstm.forward_train(x, (h0, c0))
    x[:] = 0
    h0[:] = 0
    y2 *= 0.5
    for name, grad in lstm.backward(tape2, dy)[2].items():
        np.testing.assert_array_equal(grad, expected[name])


def test_adam_counts_steps_per_parameter():
    """A parameter first updated at the optimiser's second step gets a first-step update (-lr)."""
    params = {"a": np.zeros(1), "b": np.zeros(1)}
    opt = rnnkern.optim.Adam(params, lr=0.1)
    opt.step({"a": np.ones(1)})
    opt.step({"b": np.ones(1)})
    np.testing.assert_allclose(params["b"], [-0.1], rtol=1e-6)


def test_layers_accept_an_empty_batch():
    gru = rnnkern.GRU(3, 4)
    y, h = gru(np.zeros((5, 0, 3), "float32"))
    assert y.shape == (5, 0, 4) and h.shape == (1, 0, 4)
    y, _, tape = gru.forward_train(np.zeros((5, 0, 3), "float32"))
    dx, dh0, dparams = gru.backward(tape, y)
    assert dx.shape == (5, 0, 3) and not dparams["weight_hh_l0"].any()
