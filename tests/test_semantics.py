"""ONNX's options on the layers (direction="reverse", activations with alpha/beta, clip, input_forget,
peepholes, initial_state), forward and backward, per device x dtype, against the float64 reference in
semantics_reference.py (itself checked against ONNX Runtime in test_semantics_ort.py)."""

import numpy as np
import pytest

import rnnkern
import semantics_reference as ref
from conftest import assert_close, to_numpy
from rnnkern._recurrences.semantics import default_math

ACTS = ["Sigmoid", "Tanh", "Relu", "HardSigmoid", "LeakyRelu", "ThresholdedRelu", "ScaledTanh", "Elu",
        "Softsign", "Softplus", "Affine"]
PER = {"RNN": 1, "GRU": 2, "LSTM": 3}


def cpu_steps(device, seed, every=16):
    """The device to build on: on the CPU every ``every``-th configuration runs the default CPU backend
    (numba's kernels, compiled once per combination of options: seconds each), the others its NumPy steps
    (cpu_backend("numpy")); test_numba_variant.py checks numba's against NumPy's for variants covering
    every activation and option."""
    if device != "cpu" or seed % every == 0:
        return device
    from rnnkern._backend import cpu_backend
    return cpu_backend("numpy")


def runs_on_gpu(seed, every=4):
    """On the GPU only every ``every``-th random configuration runs: each new combination of options
    compiles its own kernels (NVRTC, a fraction of a second each), which would dominate the GPU suite.
    gpu_variants.py warms exactly these before the suite (benchmarks/gpu_check.py)."""
    return seed % every == 0


def gpu_subset(device, seed, every=4):
    if device == "gpu" and not runs_on_gpu(seed, every):
        pytest.skip(f"GPU: every {every}th random configuration (each compiles its own kernel variants)")


def random_config(seed, kind=None):
    """A random layer configuration: kind, sizes, options, call arguments."""
    rng = np.random.default_rng(seed)
    kind = kind or ["RNN", "GRU", "LSTM"][seed % 3]
    direction = ["forward", "reverse", "bidirectional"][rng.integers(3)]
    D = 2 if direction == "bidirectional" else 1
    n_acts = PER[kind] * (D if rng.random() < 0.5 else 1)
    opts = {"direction": direction}
    if rng.random() < 0.8:
        opts["activations"] = [ACTS[i] for i in rng.integers(len(ACTS), size=n_acts)]
        if kind == "LSTM" and rng.random() < 0.5:
            opts["activations"][0] = "Sigmoid"
        opts["activation_alpha"] = [float(a) for a in rng.uniform(0.1, 0.9, rng.integers(0, 4))]
        opts["activation_beta"] = [float(b) for b in rng.uniform(-0.5, 0.5, rng.integers(0, 3))]
    if rng.random() < 0.5:
        opts["clip"] = float(rng.uniform(0.3, 2.0))
    if kind == "LSTM":
        opts["input_forget"] = bool(rng.random() < 0.4)
        opts["peephole"] = bool(rng.random() < 0.6)
    if kind == "GRU":
        opts["linear_before_reset"] = bool(rng.random() < 0.5)
    return dict(kind=kind, opts=opts, T=int(rng.integers(1, 5)), B=int(rng.integers(1, 4)), I=int(rng.integers(1, 4)),
                H=int(rng.integers(1, 4)), L=int(rng.integers(1, 3)), batch_first=bool(rng.random() < 0.5),
                lengths=bool(rng.random() < 0.5), state=["none", "arg", "initial"][rng.integers(3)],
                bias=bool(rng.random() < 0.8), rng=rng)


def build(cfg, device="cpu", dtype="float64", seed=0):
    cls = getattr(rnnkern, cfg["kind"])
    device = cpu_steps(device, seed)
    return cls(cfg["I"], cfg["H"], cfg["L"], bias=cfg["bias"], batch_first=cfg["batch_first"], device=device,
               dtype=dtype, seed=seed, **cfg["opts"])


def inputs(cfg, layer):
    rng = cfg["rng"]
    T, B, D, L, H = cfg["T"], cfg["B"], layer.num_directions, cfg["L"], cfg["H"]
    x = rng.standard_normal((T, B, cfg["I"])) * 1.5
    lengths = rng.integers(1, T + 1, size=B) if cfg["lengths"] else None
    h0, c0 = rng.standard_normal((2, L * D, B, H))
    return x, lengths, h0, c0


def reference(cfg, layer, x, lengths, h0, c0):
    o = dict(cfg["opts"])
    o.pop("peephole", None)
    lbr = o.pop("linear_before_reset", True)
    sd = {k: to_numpy(v) for k, v in layer.state_dict().items()}
    use_state = cfg["state"] != "none"
    return ref.run(cfg["kind"], sd, x, num_layers=cfg["L"], h0=h0 if use_state else None,
                   c0=c0 if use_state else None, lengths=lengths, linear_before_reset=lbr, **o)


def call(layer, cfg, x, lengths, h0, c0, train=False):
    xp = layer.xp
    xin = xp.asarray((x.transpose(1, 0, 2) if cfg["batch_first"] else x).astype(layer.dtype))
    state = (h0, c0) if cfg["kind"] == "LSTM" else h0
    state = tuple(xp.asarray(s.astype(layer.dtype)) for s in state) if cfg["kind"] == "LSTM" \
        else xp.asarray(state.astype(layer.dtype))
    if cfg["state"] == "initial":
        layer.initial_state = state
    arg = state if cfg["state"] == "arg" else None
    if train:
        return layer.forward_train(xin, arg, lengths)
    return layer(xin, arg, lengths)


@pytest.mark.parametrize("seed", range(60))
def test_random_configurations_match_the_reference(seed, device, dtype):
    gpu_subset(device, seed)
    cfg = random_config(seed)
    layer = build(cfg, device, dtype, seed)
    x, lengths, h0, c0 = inputs(cfg, layer)
    y_ref, h_ref, c_ref = reference(cfg, layer, x, lengths, h0, c0)
    for train in (False, True):
        y, state, *_ = call(layer, cfg, x, lengths, h0, c0, train)
        h, c = state if cfg["kind"] == "LSTM" else (state, None)
        y = to_numpy(y)
        assert_close(y.transpose(1, 0, 2) if cfg["batch_first"] else y, y_ref, dtype, scale=20)
        assert_close(h, h_ref, dtype, scale=20)
        if c is not None:
            assert_close(c, c_ref, dtype, scale=20)


def _set(array, index, value):
    array[index] = value


@pytest.mark.parametrize("seed", range(40))
def test_gradients_match_finite_differences(seed, device):
    gpu_subset(device, seed)
    cfg = random_config(seed + 1000)
    layer = build(cfg, device, "float64", seed)
    x, lengths, h0, c0 = inputs(cfg, layer)
    xp, rng, kind = layer.xp, cfg["rng"], cfg["kind"]
    cfg["state"] = "arg"
    xin = xp.asarray(x.transpose(1, 0, 2) if cfg["batch_first"] else x)
    state = (xp.asarray(h0), xp.asarray(c0)) if kind == "LSTM" else xp.asarray(h0)
    y, state_n, tape = layer.forward_train(xin, state, lengths)
    w_y, w_h, w_c = rng.standard_normal(y.shape), rng.standard_normal(h0.shape), rng.standard_normal(h0.shape)

    def loss():
        out, st_n = layer(xin, state, lengths)
        h_n, c_n = st_n if kind == "LSTM" else (st_n, None)
        total = (to_numpy(out) * w_y).sum() + (to_numpy(h_n) * w_h).sum()
        return total + (0 if c_n is None else (to_numpy(c_n) * w_c).sum())

    dstate_n = (xp.asarray(w_h), xp.asarray(w_c)) if kind == "LSTM" else xp.asarray(w_h)
    dx, dstate0, dparams = layer.backward(tape, xp.asarray(w_y), dstate_n)
    targets = [("x", xin, dx)] + [(name, layer._params[name], dparams[name]) for name in layer._params]
    targets += [("h0", state[0] if kind == "LSTM" else state, dstate0[0] if kind == "LSTM" else dstate0)]
    eps = 1e-6
    for name, array, grad in targets:
        grad = to_numpy(grad)
        for _ in range(4):
            index = tuple(int(rng.integers(s)) for s in array.shape)
            old = float(array[index])
            _set(array, index, old + eps)
            up = loss()
            _set(array, index, old - eps)
            down = loss()
            _set(array, index, old)
            np.testing.assert_allclose(grad[index], (up - down) / (2 * eps), rtol=1e-5, atol=1e-7,
                                       err_msg=f"{name}{index} in {cfg['kind']} {cfg['opts']}")


@pytest.mark.parametrize("kind", ["RNN", "GRU", "LSTM"])
def test_reverse_is_the_reverse_half_of_a_bidirectional_layer(kind, device, dtype):
    bi = getattr(rnnkern, kind)(3, 4, bidirectional=True, device=device, dtype=dtype, seed=1)
    sd = {k[:-len("_reverse")]: v for k, v in bi.state_dict().items() if k.endswith("_reverse")}
    rev = getattr(rnnkern, kind).from_state_dict(sd, device=device, direction="reverse")
    assert rev.direction == "reverse" and rev.num_directions == 1 and not rev.bidirectional
    x = bi.xp.asarray(np.random.default_rng(0).standard_normal((5, 2, 3)).astype(dtype))
    y_bi, _ = bi(x, lengths=[5, 3])
    y_rev, _ = rev(x, lengths=[5, 3])
    assert_close(y_rev, to_numpy(y_bi)[..., 4:], dtype)
    assert list(rev.state_dict()) == list(sd)


def test_defaults_run_the_default_recurrences():
    from rnnkern._recurrences.cells import GRURecurrence, LSTMRecurrence, RNNRecurrence
    for layer, cls in [(rnnkern.RNN(2, 3, activations=["Relu"]), RNNRecurrence),
                       (rnnkern.LSTM(2, 3, bidirectional=True, activations=["sigmoid", "TANH", "tanh"]),
                        LSTMRecurrence),
                       (rnnkern.GRU(2, 3, activation_alpha=[0.5]), GRURecurrence)]:
        assert all(type(layer._direction_recurrence(s)) is cls for _, _, s in layer._suffixes())
        assert all(m.is_default and m.saves_activations for m in layer._semantics.maths)
    assert rnnkern.RNN(2, 3, activations=["Relu"]).nonlinearity == "relu"
    assert repr(rnnkern.LSTM(2, 3)) == "LSTM(2, 3, device='cpu', dtype=float32)"


def test_attributes_are_normalised():
    lstm = rnnkern.LSTM(2, 3, bidirectional=True, activations=["sigmoid", "affine", "leakyrelu"],
                        activation_alpha=[0.7, 0.05], activation_beta=[0.1], clip=2, peephole=True)
    assert lstm.activations == ("Sigmoid", "Affine", "LeakyRelu") * 2
    assert lstm.activation_alpha == (0.7, 0.05, 1.0, 0.01) and lstm.activation_beta == (0.1, 0.0)
    assert lstm.clip == 2.0 and lstm.peephole and not lstm.input_forget and lstm.direction == "bidirectional"
    assert list(lstm.state_dict())[:5] == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "weight_p_l0"]
    assert lstm.weight_p_l0_reverse.shape == (9,)
    again = rnnkern.LSTM.from_state_dict(lstm.state_dict(), **{k: getattr(lstm, k) for k in (
        "activations", "activation_alpha", "activation_beta", "clip")})
    assert again.peephole and again._semantics == lstm._semantics
    assert "peephole" not in repr(lstm) and "clip=2.0" in repr(lstm)


def test_initial_state_is_used_when_state_is_none(device):
    lstm = rnnkern.LSTM(2, 3, num_layers=2, device=device, dtype="float64", seed=0)
    rng = np.random.default_rng(0)
    x = lstm.xp.asarray(rng.standard_normal((4, 5, 2)))
    h0, c0 = (lstm.xp.asarray(a) for a in rng.standard_normal((2, 2, 5, 3)))
    expected, (h_e, c_e) = lstm(x, (h0, c0))
    lstm.initial_state = (h0, c0)
    got, (h_n, c_n) = lstm(x)
    assert_close(got, to_numpy(expected), "float64")
    got_t, _, _ = lstm.forward_train(x)
    assert_close(got_t, to_numpy(expected), "float64")
    with pytest.raises(ValueError, match=r"LSTM: initial_state is for a batch of 5 but the input is a batch of 2"):
        lstm(x[:, :2])
    with pytest.raises(ValueError, match=r"LSTM: initial_state\[0\] \(h_0\) must have shape \(2, batch, 3\)"):
        lstm.initial_state = (h0[:1], c0)
    with pytest.raises(TypeError, match=r"LSTM: initial_state must be a tuple \(h_0, c_0\)"):
        lstm.initial_state = h0
    lstm.initial_state = None
    assert lstm.initial_state is None


@pytest.mark.parametrize("make, error, match", [
    (lambda: rnnkern.LSTM(2, 3, activations=["Sigmoid", "Tanh", "Swish"]), ValueError,
     r"LSTM: activations must be ONNX activation names \(Sigmoid, .*Affine; case-insensitive\), got 'Swish'"),
    (lambda: rnnkern.LSTM(2, 3, activations=["Sigmoid", "Tanh"]), ValueError,
     r"LSTM: activations must have 3 names \(f, g, h per direction\), got 2"),
    (lambda: rnnkern.GRU(2, 3, bidirectional=True, activations=["Sigmoid"] * 3), ValueError,
     r"GRU: activations must have 2 \(one direction's\) or 4 \(both\) names"),
    (lambda: rnnkern.RNN(2, 3, activations="Tanh"), TypeError, r"RNN: activations must be a sequence"),
    (lambda: rnnkern.RNN(2, 3, nonlinearity="relu", activations=["Tanh"]), ValueError,
     r"RNN: nonlinearity='relu' contradicts activations=\['Tanh'\]"),
    (lambda: rnnkern.GRU(2, 3, clip=0), ValueError, r"GRU: clip must be a positive finite float"),
    (lambda: rnnkern.GRU(2, 3, clip=-1.0), ValueError, r"GRU: clip must be a positive finite float"),
    (lambda: rnnkern.GRU(2, 3, clip=True), TypeError, r"GRU: clip must be a positive float or None, got bool"),
    (lambda: rnnkern.GRU(2, 3, input_forget=True), TypeError,
     r"GRU.__init__\(\) got an unexpected keyword argument 'input_forget' \(input_forget: LSTM options\)"),
    (lambda: rnnkern.RNN(2, 3, peephole=True), TypeError, r"RNN.__init__\(\) got an unexpected keyword argument"),
    (lambda: rnnkern.LSTM(4, 3, proj_size=2, peephole=True), ValueError,
     r"LSTM: peephole=True cannot be combined with proj_size=2"),
    (lambda: rnnkern.LSTM(2, 3, direction="backward"), ValueError,
     r"LSTM: direction must be one of 'forward', 'reverse', 'bidirectional' or None, got 'backward'"),
    (lambda: rnnkern.LSTM(2, 3, bidirectional=True, direction="reverse"), ValueError,
     r"LSTM: bidirectional=True contradicts direction='reverse'"),
    (lambda: rnnkern.LSTM(2, 3, activation_alpha=["x"]), TypeError, r"LSTM: activation_alpha must hold real numbers"),
    (lambda: rnnkern.LSTM(2, 3, input_forget=1), TypeError, r"LSTM: input_forget must be a bool"),
])
def test_bad_options_are_explained(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_alpha_for_activations_that_take_none_is_ignored_as_onnx():
    rnn = rnnkern.RNN(2, 3, activations=["Tanh"], activation_alpha=[0.5], activation_beta=[1.0])
    assert rnn._semantics.maths == (default_math("RNN"),) and rnn.activation_alpha == ()


def test_reverse_and_options_survive_to_and_state_dict():
    gru = rnnkern.GRU(2, 3, direction="reverse", activations=["HardSigmoid", "Elu"], clip=1.5)
    again = gru.to("cpu")
    assert again is gru
    rebuilt = rnnkern.GRU.from_state_dict(gru.state_dict(), **gru._option_values())
    assert rebuilt._semantics == gru._semantics and rebuilt.direction == "reverse"


def _cell_options(opts):
    return {k: v for k, v in opts.items() if k not in ("direction", "peephole")}


def hand_loop_config(seed):
    """One direction, one layer, no lengths: a loop of the cell gives the layer's outputs."""
    cfg = random_config(seed + 3000)
    cfg["opts"]["direction"] = ["forward", "reverse"][seed % 2]
    if len(cfg["opts"].get("activations", ())) > PER[cfg["kind"]]:  # a cell takes one direction's
        del cfg["opts"]["activations"]
    cfg["L"], cfg["lengths"], cfg["batch_first"] = 1, False, False
    return cfg


@pytest.mark.parametrize("seed", range(24))
def test_hand_loop_of_cells_equals_the_layer(seed, device, dtype):
    gpu_subset(device, seed)
    cfg = hand_loop_config(seed)
    layer = build(cfg, device, dtype, seed)
    sd = {k[:-len("_l0")]: v for k, v in layer.state_dict().items()}
    cell = getattr(rnnkern, cfg["kind"] + "Cell").from_state_dict(sd, device=cpu_steps(device, seed),
                                                                  **_cell_options(cfg["opts"]))
    x, _, h0, c0 = inputs(cfg, layer)
    xp, lstm = layer.xp, cfg["kind"] == "LSTM"
    h, c = xp.asarray(h0[0].astype(dtype)), xp.asarray(c0[0].astype(dtype))
    state = (h, c) if lstm else h
    xin = xp.asarray(x.astype(dtype))
    y, state_n = layer(xin, tuple(s[None] for s in state) if lstm else state[None])
    steps = range(cfg["T"] - 1, -1, -1) if cfg["opts"]["direction"] == "reverse" else range(cfg["T"])
    for t in steps:
        state = cell(xin[t], state)
        assert_close(state[0] if lstm else state, to_numpy(y[t]), dtype, scale=10)
    for ours, theirs in zip(state if lstm else (state,), state_n if lstm else (state_n,)):
        assert_close(ours, to_numpy(theirs[0]), dtype, scale=10)


def cell_gradient_config(seed):
    """(cfg, the cell's options): one direction's activations; an LSTM cell with peepholes."""
    cfg = random_config(seed + 4000)
    opts = _cell_options(cfg["opts"])
    if len(opts.get("activations", ())) > PER[cfg["kind"]]:
        del opts["activations"]
    if cfg["kind"] == "LSTM":
        opts["peephole"] = True
    return cfg, opts


@pytest.mark.parametrize("seed", range(12))
def test_cell_gradients_match_finite_differences(seed, device):
    gpu_subset(device, seed)
    cfg, opts = cell_gradient_config(seed)
    cell = getattr(rnnkern, cfg["kind"] + "Cell")(cfg["I"], cfg["H"], bias=cfg["bias"], device=cpu_steps(device, seed),
                                                  dtype="float64", seed=seed, **opts)
    rng, xp, lstm = cfg["rng"], cell.xp, cfg["kind"] == "LSTM"
    x = xp.asarray(rng.standard_normal((cfg["B"], cfg["I"])))
    h, c = (xp.asarray(a) for a in rng.standard_normal((2, cfg["B"], cfg["H"])))
    state = (h, c) if lstm else h
    new, tape = cell.forward_train(x, state)
    w = [rng.standard_normal((cfg["B"], cfg["H"])) for _ in range(2)]

    def loss():
        out = cell(x, state)
        return sum((to_numpy(o) * wi).sum() for o, wi in zip(out if lstm else (out,), w))

    dx, dstate, dparams = cell.backward(tape, tuple(xp.asarray(a) for a in w) if lstm else xp.asarray(w[0]))
    assert set(dparams) == set(cell._params)
    for name, array, grad in [("x", x, dx)] + [(k, cell._params[k], dparams[k]) for k in cell._params]:
        for _ in range(4):
            index = tuple(int(rng.integers(s)) for s in array.shape)
            old = float(array[index])
            _set(array, index, old + 1e-6)
            up = loss()
            _set(array, index, old - 1e-6)
            down = loss()
            _set(array, index, old)
            np.testing.assert_allclose(to_numpy(grad)[index], (up - down) / 2e-6, rtol=1e-5, atol=1e-7,
                                       err_msg=f"{name}{index} {cfg['kind']}Cell {opts}")


def test_proj_size_combines_with_activations_clip_and_input_forget(device):
    """The projection wraps the LSTM recurrence with options: finite differences through both; and with a
    clip too wide to bite and the default activations, that path equals the default one."""
    rng = np.random.default_rng(5)
    lstm = rnnkern.LSTM(3, 4, proj_size=2, bidirectional=True, device=device, dtype="float64", seed=3, clip=0.7,
                        input_forget=True, activations=["HardSigmoid", "Softsign", "Elu"])
    xp = lstm.xp
    x = xp.asarray(rng.standard_normal((4, 2, 3)))
    y, _, tape = lstm.forward_train(x)
    w = rng.standard_normal(y.shape)
    _, _, dparams = lstm.backward(tape, xp.asarray(w))
    for name in ("weight_hr_l0", "weight_ih_l0_reverse", "weight_hh_l0"):
        array = lstm._params[name]
        index = tuple(int(rng.integers(s)) for s in array.shape)
        old = float(array[index])
        losses = []
        for value in (old + 1e-6, old - 1e-6):
            _set(array, index, value)
            losses.append((to_numpy(lstm(x)[0]) * w).sum())
        _set(array, index, old)
        np.testing.assert_allclose(to_numpy(dparams[name])[index], (losses[0] - losses[1]) / 2e-6, rtol=1e-5, atol=1e-7)
    plain = rnnkern.LSTM(3, 4, proj_size=2, device=device, dtype="float64", seed=3)
    wide = rnnkern.LSTM.from_state_dict(plain.state_dict(), device=device, clip=1e30)
    assert not wide._semantics.maths[0].is_default
    assert_close(wide(x)[0], to_numpy(plain(x)[0]), "float64")
