"""Sequence layers: a hand loop of cells equals the layer, ONNX's GRU equations, long sequences, errors."""

import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rnnkern
from conftest import assert_close, to_numpy

CELLS = {"RNN": rnnkern.RNNCell, "LSTM": rnnkern.LSTMCell, "GRU": rnnkern.GRUCell}


def _cell_for(layer, kind, suffix):
    """The cell holding one layer/direction's weights (suffix such as '_l1_reverse')."""
    sd = {k[: -len(suffix)]: v for k, v in layer.state_dict().items() if k.endswith(suffix)}
    opts = {"RNN": {"nonlinearity": getattr(layer, "nonlinearity", "tanh")},
            "GRU": {"linear_before_reset": getattr(layer, "linear_before_reset", True)}}.get(kind, {})
    return CELLS[kind].from_state_dict(sd, device=layer.device, **opts)


def _hand_loop(layer, kind, x, h0, c0, lengths):
    """Cells stepped by hand, one sequence at a time: x (T, B, I) -> y (T, B, D*H), h_n, c_n."""
    T, B, _ = x.shape
    D, H = layer.num_directions, layer.hidden_size
    h_n, c_n = np.zeros_like(h0), np.zeros_like(h0)
    inp = x
    for layer_index in range(layer.num_layers):
        y = np.zeros((T, B, D * H), dtype=x.dtype)
        for d in range(D):
            cell = _cell_for(layer, kind, f"_l{layer_index}" + ("_reverse" if d else ""))
            k = layer_index * D + d
            for b in range(B):
                steps = range(lengths[b] - 1, -1, -1) if d else range(lengths[b])
                h, c = h0[k, b], c0[k, b]
                for t in steps:
                    if kind == "LSTM":
                        h, c = cell(inp[t, b], (h, c))
                    else:
                        h = cell(inp[t, b], h)
                    y[t, b, d * H:(d + 1) * H] = to_numpy(h)
                h_n[k, b], c_n[k, b] = to_numpy(h), to_numpy(c)
        inp = y
    return y, h_n, c_n


@settings(max_examples=25, deadline=None)
@given(kind=st.sampled_from(["RNN", "LSTM", "GRU"]), num_layers=st.integers(1, 3), bidirectional=st.booleans(),
       batch_first=st.booleans(), bias=st.booleans(), use_lengths=st.booleans(), option=st.booleans(),
       T=st.integers(1, 5), B=st.integers(1, 4), dtype=st.sampled_from(["float32", "float64"]),
       seed=st.integers(0, 2**16))
def test_layer_equals_hand_loop_of_cells(kind, num_layers, bidirectional, batch_first, bias, use_lengths, option,
                                         T, B, dtype, seed):
    rng = np.random.default_rng(seed)
    extra = {"RNN": {"nonlinearity": "relu" if option else "tanh"}, "GRU": {"linear_before_reset": option}}
    layer = getattr(rnnkern, kind)(3, 4, num_layers, bias=bias, batch_first=batch_first,
                                   bidirectional=bidirectional, dtype=dtype, seed=seed, **extra.get(kind, {}))
    D = layer.num_directions
    x = rng.standard_normal((T, B, 3)).astype(dtype)
    h0 = rng.standard_normal((num_layers * D, B, 4)).astype(dtype)
    c0 = rng.standard_normal((num_layers * D, B, 4)).astype(dtype)
    lengths = rng.integers(1, T + 1, size=B) if use_lengths else np.full(B, T)
    state = (h0, c0) if kind == "LSTM" else h0
    y, state_n = layer(x.transpose(1, 0, 2) if batch_first else x, state, lengths if use_lengths else None)
    ref_y, ref_h, ref_c = _hand_loop(layer, kind, x, h0, c0, lengths)
    assert_close(y.transpose(1, 0, 2) if batch_first else y, ref_y, dtype, scale=10)
    assert_close(state_n[0] if kind == "LSTM" else state_n, ref_h, dtype, scale=10)
    if kind == "LSTM":
        assert_close(state_n[1], ref_c, dtype, scale=10)


def test_unbatched_equals_batch_of_one(device):
    layer = rnnkern.LSTM(3, 5, num_layers=2, bidirectional=True, seed=1, device=device)
    x = np.random.default_rng(0).standard_normal((6, 3)).astype("float32")
    y, (h, c) = layer(rnnkern.asarray(x, device=device))
    y1, (h1, c1) = layer(rnnkern.asarray(x[:, None], device=device))
    assert y.shape == (6, 10) and h.shape == (4, 5) and c.shape == (4, 5)
    assert_close(y, to_numpy(y1)[:, 0], "float32")
    assert_close(h, to_numpy(h1)[:, 0], "float32")


def test_lengths_equal_to_T_match_no_lengths(device):
    layer = rnnkern.GRU(3, 4, bidirectional=True, seed=2, device=device)
    x = rnnkern.asarray(np.random.default_rng(1).standard_normal((5, 3, 3)).astype("float32"), device=device)
    y, h = layer(x)
    y_len, h_len = layer(x, lengths=[5, 5, 5])
    assert_close(y_len, to_numpy(y), "float32")
    assert_close(h_len, to_numpy(h), "float32")


def test_padded_outputs_are_zero_and_order_is_free():
    layer = rnnkern.LSTM(2, 3, bidirectional=True, seed=3)
    x = np.random.default_rng(2).standard_normal((6, 3, 2)).astype("float32")
    lengths = np.array([2, 6, 4])
    y, (h, _) = layer(x, lengths=lengths)
    for b, n in enumerate(lengths):
        assert not y[n:, b].any()
        # the same sequence alone, cut to its length, gives the same result
        y_b, (h_b, _) = layer(x[:n, b:b + 1])
        np.testing.assert_allclose(y[:n, b], y_b[:, 0], rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(h[:, b], h_b[:, 0], rtol=1e-6, atol=1e-6)


# --- ONNX GRU (linear_before_reset=0): a float64 transcription of the operator's equations -----
def _onnx_gru(X, W, R, Bias, sequence_lens, initial_h, direction):
    """ONNX GRU, default linear_before_reset=0. X (T, B, I); W (D, 3H, I), R (D, 3H, H) in gate
    order z, r, h; Bias (D, 6H) = [Wb, Rb]. Returns Y (T, D, B, H) and Y_h (D, B, H)."""
    sig = lambda v: 1.0 / (1.0 + np.exp(-v))  # noqa: E731  (float64, moderate inputs)
    T, B, _ = X.shape
    D, H = W.shape[0], R.shape[2]
    Y, Y_h = np.zeros((T, D, B, H)), np.zeros((D, B, H))
    for d in range(D):
        Wz, Wr, Wh = np.split(W[d], 3)
        Rz, Rr, Rh = np.split(R[d], 3)
        Wbz, Wbr, Wbh, Rbz, Rbr, Rbh = np.split(Bias[d], 6)
        reverse = direction == "reverse" or (direction == "bidirectional" and d == 1)
        for b in range(B):
            H_t = initial_h[d, b]
            steps = range(sequence_lens[b])
            for t in (reversed(steps) if reverse else steps):
                zt = sig(X[t, b] @ Wz.T + H_t @ Rz.T + Wbz + Rbz)
                rt = sig(X[t, b] @ Wr.T + H_t @ Rr.T + Wbr + Rbr)
                ht = np.tanh(X[t, b] @ Wh.T + (rt * H_t) @ Rh.T + Rbh + Wbh)
                H_t = (1 - zt) * ht + zt * H_t
                Y[t, d, b] = H_t
            Y_h[d, b] = H_t
    return Y, Y_h


def _to_onnx(sd, suffixes, H):
    """rnnkern/PyTorch GRU weights (r, z, n) -> ONNX W, R, B (z, r, h)."""
    zrh = lambda a: np.concatenate([a[H:2 * H], a[:H], a[2 * H:]])  # noqa: E731
    W = np.stack([zrh(sd["weight_ih" + s]) for s in suffixes])
    R = np.stack([zrh(sd["weight_hh" + s]) for s in suffixes])
    Bias = np.stack([np.concatenate([zrh(sd["bias_ih" + s]), zrh(sd["bias_hh" + s])]) for s in suffixes])
    return W, R, Bias


@pytest.mark.parametrize("bidirectional", [False, True])
def test_gru_linear_before_reset_false_matches_onnx_equations(device, dtype, bidirectional):
    rng = np.random.default_rng(4)
    T, B, I, H = 7, 3, 4, 5
    gru = rnnkern.GRU(I, H, bidirectional=bidirectional, linear_before_reset=False, seed=5, dtype="float64")
    sd = gru.state_dict()
    suffixes = ["_l0", "_l0_reverse"] if bidirectional else ["_l0"]
    X = rng.standard_normal((T, B, I))
    h0 = rng.standard_normal((len(suffixes), B, H))
    lengths = np.array([7, 3, 5])
    Y, Y_h = _onnx_gru(X, *_to_onnx(sd, suffixes, H), lengths, h0,
                       "bidirectional" if bidirectional else "forward")
    ours = rnnkern.GRU.from_state_dict(sd, device=device, dtype=dtype, linear_before_reset=False)
    y, h_n = ours(rnnkern.asarray(X, device=device, dtype=dtype), rnnkern.asarray(h0, device=device, dtype=dtype),
                  lengths=lengths)
    expected_y = Y.transpose(0, 2, 1, 3).reshape(T, B, -1)  # ONNX (T, D, B, H) -> (T, B, D*H)
    assert_close(y, expected_y, dtype)
    assert_close(h_n, Y_h, dtype)


# --- long sequences ---------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_ten_thousand_steps_finite_in_memory_proportional_to_output(kind):
    T, B, I, H = 10_000, 2, 3, 8
    layer = getattr(rnnkern, kind)(I, H, seed=6)
    x = np.random.default_rng(5).standard_normal((T, B, I)).astype("float32") * 3
    layer(x[:2])  # once first: a process's first call loads numba's CPU target (16 MB traced), not this call's
    tracemalloc.start()
    y, _ = layer(x)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert np.isfinite(y).all()
    # the output plus the input projection (G times the output's size) and O(B*H) buffers
    assert peak < (1 + 4 + 1) * y.nbytes + 1_000_000, (peak, y.nbytes)


# --- bad input --------------------------------------------------------------------------------
@pytest.mark.parametrize("call, error, match", [
    (lambda m: m(np.zeros((2, 3, 4, 3), "float32")), ValueError, "Expected input to be 2D .* or 3D, got 4D"),
    (lambda m: m(np.zeros((5, 2, 4), "float32")), ValueError, "3 features .* got shape \\(5, 2, 4\\)"),
    (lambda m: m(np.zeros((5, 2, 3), "float64")), TypeError, "float32 .* float64"),
    (lambda m: m(np.zeros((0, 2, 3), "float32")), ValueError, "at least one time step"),
    (lambda m: m(np.zeros((5, 2, 3), "float32"), (np.zeros((1, 2, 4), "float32"),) * 2), ValueError,
     "state\\[0\\] \\(h_0\\) must have shape \\(2, 2, 4\\), got \\(1, 2, 4\\)"),
    (lambda m: m(np.zeros((5, 2, 3), "float32"), np.zeros((2, 2, 4), "float32")), TypeError, "tuple \\(h_0, c_0\\)"),
    (lambda m: m(np.zeros((5, 2, 3), "float32"), lengths=[5]), ValueError, "shape \\(2,\\) .* got \\(1,\\)"),
    (lambda m: m(np.zeros((5, 2, 3), "float32"), lengths=[5, 0]), ValueError, "1..5 .* got \\[0\\]"),
    (lambda m: m(np.zeros((5, 2, 3), "float32"), lengths=[-1, 5]), ValueError, "1..5 .* got \\[-1\\]"),
    (lambda m: m(np.zeros((5, 2, 3), "float32"), lengths=[6, 5]), ValueError, "1..5 .* got \\[6\\]"),
    (lambda m: m(np.zeros((5, 2, 3), "float32"), lengths=[2.5, 5]), TypeError, "lengths must be integers"),
    (lambda m: m(np.zeros((5, 3), "float32"), lengths=[5]), ValueError, "batched"),
])
def test_bad_input_gets_clear_error(call, error, match):
    lstm = rnnkern.LSTM(3, 4, num_layers=2)
    with pytest.raises(error, match=match):
        call(lstm)


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="num_layers must be a positive int, got 0"):
        rnnkern.GRU(3, 4, num_layers=0)
    with pytest.raises(ValueError, match="nonlinearity must be one of 'tanh', 'relu', got 'sigmoid'"):
        rnnkern.RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(TypeError, match="bidirectional must be a bool, got str 'yes'"):
        rnnkern.LSTM(3, 4, bidirectional="yes")


# --- state_dict -------------------------------------------------------------------------------
def test_state_dict_names_shapes_and_round_trip():
    lstm = rnnkern.LSTM(3, 4, num_layers=2, bidirectional=True, seed=7)
    sd = lstm.state_dict()
    assert list(sd) == [f"{w}_l{k}{s}" for k in range(2) for s in ("", "_reverse")
                        for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    assert sd["weight_ih_l0"].shape == (16, 3) and sd["weight_ih_l1_reverse"].shape == (16, 8)
    back = rnnkern.LSTM.from_state_dict({k: v.tolist() for k, v in sd.items()}, dtype="float32")
    assert (back.num_layers, back.bidirectional, back.bias) == (2, True, True)
    x = np.random.default_rng(6).standard_normal((4, 2, 3)).astype("float32")
    np.testing.assert_array_equal(back(x)[0], lstm(x)[0])
    no_bias = rnnkern.GRU(3, 4, bias=False).state_dict()
    assert not [k for k in no_bias if k.startswith("bias")]
    assert rnnkern.GRU.from_state_dict(no_bias).bias is False


def test_state_dict_errors():
    sd = rnnkern.GRU(3, 4, num_layers=2).state_dict()
    missing = {k: v for k, v in sd.items() if k != "bias_hh_l1"}
    with pytest.raises(KeyError, match="bias_hh_l1"):
        rnnkern.GRU.from_state_dict(missing)
    with pytest.raises(KeyError, match="unexpected key.*weight_hr_l0"):
        rnnkern.GRU.from_state_dict({**sd, "weight_hr_l0": sd["weight_hh_l0"]})
    bad = dict(sd, weight_hh_l1=np.zeros((12, 5), "float32"))
    with pytest.raises(ValueError, match="weight_hh_l1"):
        rnnkern.GRU.from_state_dict(bad)


def test_from_state_dict_rejects_another_kinds_option():
    sd = rnnkern.LSTM(3, 4).state_dict()
    with pytest.raises(TypeError, match="LSTM.from_state_dict: unexpected option\\(s\\) 'nonlinearity'"):
        rnnkern.LSTM.from_state_dict(sd, nonlinearity="relu")


@pytest.mark.parametrize("kind, options", [("RNN", {}), ("LSTM", {}), ("GRU", {"linear_before_reset": True}),
                                           ("GRU", {"linear_before_reset": False})])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_large_steps_take_the_exp_path_and_match_the_reference(kind, options, dtype):
    """Steps of 8192 values or more use the exp formulation of sigmoid and tanh (the golden and
    hypothesis tests use small sizes, which take the tanh one): check it against float64."""
    import reference

    rng = np.random.default_rng(9)
    layer = getattr(rnnkern, kind)(16, 128, bidirectional=True, dtype=dtype, seed=10, **options)
    x = (rng.standard_normal((6, 80, 16)) * 4).astype(dtype)  # large pre-activations too
    lengths = rng.integers(1, 7, size=80)
    y, state = layer(x, lengths=lengths)
    ref_y, ref_state = reference.layer(kind, layer.state_dict(), x, lengths=lengths, bidirectional=True,
                                       **options)
    assert_close(y, ref_y, dtype, scale=10)
    assert_close(state[0] if kind == "LSTM" else state, ref_state[0] if kind == "LSTM" else ref_state, dtype,
                 scale=10)
