"""The cells against the float64 transcription of their equations (tests/reference.py), over random sizes,
batches, dtypes and options (hypothesis); their numerically stable activations; and their
parameters: zero default state, state_dict round trip, initialisation, seeds, devices.
"""

import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rnnkern
from conftest import assert_close, to_numpy
from reference import gru_cell, lstm_cell, rnn_cell

GATES = {"RNNCell": 1, "LSTMCell": 4, "GRUCell": 3}
CLASSES = {"RNNCell": rnnkern.RNNCell, "LSTMCell": rnnkern.LSTMCell, "GRUCell": rnnkern.GRUCell}
VARIANTS = [  # (cell class name, constructor options)
    ("RNNCell", {"nonlinearity": "tanh"}),
    ("RNNCell", {"nonlinearity": "relu"}),
    ("LSTMCell", {}),
    ("GRUCell", {"linear_before_reset": True}),
    ("GRUCell", {"linear_before_reset": False}),
]
VARIANT_IDS = ["rnn_tanh", "rnn_relu", "lstm", "gru_lbr", "gru_no_lbr"]


def random_state_dict(rng, module, input_size, hidden_size, bias, dtype, scale=1.0):
    """PyTorch-layout weights, U(-scale/sqrt(H), scale/sqrt(H)), in ``dtype``."""
    rows = GATES[module] * hidden_size
    shapes = {"weight_ih": (rows, input_size), "weight_hh": (rows, hidden_size)}
    if bias:
        shapes.update(bias_ih=(rows,), bias_hh=(rows,))
    bound = scale / math.sqrt(hidden_size)
    return {k: rng.uniform(-bound, bound, size=s).astype(dtype) for k, s in shapes.items()}


def reference_step(module, options, sd, x, state):
    """The float64 reference for one call; x and the state as 2-D (B, features) arrays."""
    if module == "LSTMCell":
        return lstm_cell(sd, x, *state)
    if module == "GRUCell":
        return gru_cell(sd, x, state, options["linear_before_reset"])
    return rnn_cell(sd, x, state, options["nonlinearity"])


def term_magnitude(sd, x, h):
    """max over units of sum |terms| of the pre-activations, the size rounding errors scale with."""
    total = np.abs(x.astype(np.float64)) @ np.abs(sd["weight_ih"].astype(np.float64)).T
    total = total + np.abs(h.astype(np.float64)) @ np.abs(sd["weight_hh"].astype(np.float64)).T
    if "bias_ih" in sd:
        total = total + np.abs(sd["bias_ih"]) + np.abs(sd["bias_hh"])
    return float(total.max(initial=0.0))


def call(cell, x, state, device):
    """Call ``cell`` with host arrays moved to ``device``; returns host arrays."""
    def dev(a):
        return None if a is None else rnnkern.asarray(a, device=device)

    state = tuple(map(dev, state)) if isinstance(state, tuple) else dev(state)
    out = cell(dev(x), state)
    return tuple(map(to_numpy, out)) if isinstance(out, tuple) else to_numpy(out)


# ------------------------------------------------------------ vs the reference
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    variant=st.sampled_from(range(len(VARIANTS))),
    input_size=st.integers(1, 20),
    hidden_size=st.integers(1, 20),
    batch=st.one_of(st.none(), st.integers(1, 6)),  # None: unbatched input
    dtype_name=st.sampled_from(["float32", "float64"]),
    bias=st.booleans(),
    with_state=st.booleans(),
    scale=st.sampled_from([0.5, 1.0, 4.0]),  # 4x PyTorch's init: saturated gates and large ReLU outputs
    seed=st.integers(0, 2**32 - 1),
)
def test_cell_matches_reference(device, variant, input_size, hidden_size, batch, dtype_name, bias, with_state,
                                scale, seed):
    module, options = VARIANTS[variant]
    rng = np.random.default_rng(seed)
    sd = random_state_dict(rng, module, input_size, hidden_size, bias, dtype_name, scale)
    cell = CLASSES[module].from_state_dict(sd, device=device, **options)
    lead = () if batch is None else (batch,)
    x = rng.standard_normal(lead + (input_size,)).astype(dtype_name)
    h, c = (rng.standard_normal(lead + (hidden_size,)).astype(dtype_name) if with_state
            else np.zeros(lead + (hidden_size,), dtype_name) for _ in range(2))
    state = None if not with_state else (h, c) if module == "LSTMCell" else h

    out = call(cell, x, state, device)

    x2, h2, c2 = np.atleast_2d(x), np.atleast_2d(h), np.atleast_2d(c)  # the reference wants (B, features)
    expected = reference_step(module, options, sd, x2, (h2, c2) if module == "LSTMCell" else h2)
    outs, expected = (out, expected) if module == "LSTMCell" else ((out,), (expected,))
    tolerance_scale = max(1.0, term_magnitude(sd, x2, h2))  # float32 sums of large terms round more
    for got, want in zip(outs, expected):
        assert got.shape == lead + (hidden_size,)
        assert got.dtype == np.dtype(dtype_name)
        assert_close(got, want.reshape(got.shape), dtype_name, scale=tolerance_scale)


@pytest.mark.parametrize("module,options", VARIANTS, ids=VARIANT_IDS)
def test_successive_calls_match_reference(module, options, device, dtype):
    """Feeding each call's state into the next: ten steps stay with the reference."""
    rng = np.random.default_rng(11)
    sd = random_state_dict(rng, module, 6, 5, True, dtype)
    cell = CLASSES[module].from_state_dict(sd, device=device, **options)
    xs = rng.standard_normal((10, 3, 6)).astype(dtype)
    state = ref = None
    for x in xs:
        state = cell(rnnkern.asarray(x, device=device), state)
        if ref is None:
            ref = (np.zeros((3, 5)),) * 2 if module == "LSTMCell" else np.zeros((3, 5))
        ref = reference_step(module, options, sd, x, ref)
        if module == "LSTMCell":
            assert_close(state[0], ref[0], dtype, scale=10)
            assert_close(state[1], ref[1], dtype, scale=10)
        else:
            assert_close(state, ref, dtype, scale=10)


# ------------------------------------------------------- numerically stable
HUGE = {"float32": 1e30, "float64": 1e300}


@pytest.mark.parametrize("magnitude", ["1e4", "huge"])
@pytest.mark.parametrize("module,options", VARIANTS, ids=VARIANT_IDS)
def test_extreme_inputs_give_finite_outputs_without_warnings(module, options, magnitude, dtype, device):
    """Pre-activations of +-1e4 and beyond (1e30 in float32, 1e300 in float64), of both signs in the
    input and in the state: finite outputs, saturated as the equations say, and no RuntimeWarning."""
    value = 1e4 if magnitude == "1e4" else HUGE[dtype]
    rng = np.random.default_rng(5)
    sd = random_state_dict(rng, module, 4, 6, True, dtype)
    cell = CLASSES[module].from_state_dict(sd, device=device, **options)
    signs = rng.choice([-1.0, 1.0], size=(8, 4 + 6 + 6))
    x = (value * signs[:, :4]).astype(dtype)
    h = (value * signs[:, 4:10]).astype(dtype)
    state = (h, (value * signs[:, 10:]).astype(dtype)) if module == "LSTMCell" else h

    for s in (None, state):
        with np.errstate(over="warn", invalid="warn", divide="warn"), warnings.catch_warnings():
            warnings.simplefilter("error")  # any RuntimeWarning (overflow in exp, inf - inf, ...) fails the test
            out = call(cell, x, s, device)
        outs = out if isinstance(out, tuple) else (out,)
        for o in outs:
            assert np.all(np.isfinite(o)), f"non-finite output for inputs of {value:g}"
        if s is None:
            s = (np.zeros((8, 6)),) * 2 if module == "LSTMCell" else np.zeros((8, 6))
        expected = reference_step(module, options, sd, x, s)
        # elementwise: absolute error on saturated outputs, relative on huge ones (ReLU, c, GRU's z*h)
        for got, want in zip(outs, expected if isinstance(expected, tuple) else (expected,)):
            assert_close(got, want, dtype)


# ------------------------------------------------------------- parameters
@pytest.mark.parametrize("module,options", VARIANTS, ids=VARIANT_IDS)
def test_missing_state_is_a_zero_state(module, options, device, dtype):
    cell = CLASSES[module](5, 7, dtype=dtype, device=device, seed=3, **options)
    for lead in ((4,), ()):
        x = rnnkern.asarray(np.random.default_rng(0).standard_normal(lead + (5,)), device=device, dtype=dtype)
        zeros = rnnkern.asarray(np.zeros(lead + (7,)), device=device, dtype=dtype)
        implicit = cell(x)
        explicit = cell(x, (zeros, zeros) if module == "LSTMCell" else zeros)
        if module == "LSTMCell":
            for a, b in zip(implicit, explicit):
                np.testing.assert_array_equal(to_numpy(a), to_numpy(b))
        else:
            np.testing.assert_array_equal(to_numpy(implicit), to_numpy(explicit))


def expected_shapes(module, input_size, hidden_size, bias):
    """PyTorch's parameters of torch.nn.<module>, in its registration order."""
    rows = GATES[module] * hidden_size
    shapes = {"weight_ih": (rows, input_size), "weight_hh": (rows, hidden_size)}
    if bias:
        shapes.update(bias_ih=(rows,), bias_hh=(rows,))
    return shapes


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("module,options", VARIANTS, ids=VARIANT_IDS)
def test_state_dict_round_trip(module, options, bias, device, dtype):
    cell = CLASSES[module](3, 5, bias=bias, dtype=dtype, device=device, seed=1, **options)
    sd = cell.state_dict()
    shapes = expected_shapes(module, 3, 5, bias)
    assert list(sd) == list(shapes)  # exactly PyTorch's keys, in PyTorch's order; no bias keys when bias=False
    assert {k: v.shape for k, v in sd.items()} == shapes
    assert all(isinstance(v, np.ndarray) and v.dtype == np.dtype(dtype) for v in sd.values())

    clone = CLASSES[module].from_state_dict(sd, device=device, **options)
    assert (clone.input_size, clone.hidden_size, clone.bias, clone.dtype) == (3, 5, bias, np.dtype(dtype))
    for k, v in clone.state_dict().items():
        np.testing.assert_array_equal(v, sd[k])
    x = rnnkern.asarray(np.random.default_rng(2).standard_normal((4, 3)), device=device, dtype=dtype)
    a, b = cell(x), clone(x)
    for u, v in zip(*((a, b) if module == "LSTMCell" else ((a,), (b,)))):
        np.testing.assert_array_equal(to_numpy(u), to_numpy(v))


def test_state_dict_is_a_copy():
    cell = rnnkern.LSTMCell(2, 3, seed=0)
    sd = cell.state_dict()
    sd["weight_ih"][...] = 0.0
    assert np.any(cell.state_dict()["weight_ih"] != 0.0)


@pytest.mark.parametrize("module,options", VARIANTS, ids=VARIANT_IDS)
def test_from_state_dict_accepts_lists_and_infers_or_overrides_dtype(module, options):
    sd64 = CLASSES[module](2, 3, dtype="float64", seed=4, **options).state_dict()
    as_lists = {k: v.tolist() for k, v in sd64.items()}
    from_lists = CLASSES[module].from_state_dict(as_lists, **options)
    assert from_lists.dtype == np.float64  # Python floats: float64, as np.asarray makes them
    for k, v in from_lists.state_dict().items():
        np.testing.assert_array_equal(v, sd64[k])

    as_tuples = {k: tuple(map(tuple, v)) if v.ndim == 2 else tuple(v) for k, v in sd64.items()}
    assert CLASSES[module].from_state_dict(as_tuples, **options).dtype == np.float64

    sd32 = {k: v.astype(np.float32) for k, v in sd64.items()}
    assert CLASSES[module].from_state_dict(sd32, **options).dtype == np.float32  # inferred

    overridden = CLASSES[module].from_state_dict(sd64, dtype="float32", **options)
    assert overridden.dtype == np.float32
    for k, v in overridden.state_dict().items():
        assert v.dtype == np.float32
        np.testing.assert_array_equal(v, sd64[k].astype(np.float32))


@pytest.mark.parametrize("module,options", VARIANTS, ids=VARIANT_IDS)
def test_seed_reproducibility(module, options, dtype):
    def weights(seed):
        return CLASSES[module](4, 6, dtype=dtype, seed=seed, **options).state_dict()

    a, b, c = weights(123), weights(123), weights(124)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert any(not np.array_equal(a[k], c[k]) for k in a)
    unseeded_1, unseeded_2 = weights(None), weights(None)
    assert any(not np.array_equal(unseeded_1[k], unseeded_2[k]) for k in a)


@pytest.mark.parametrize("module,options", VARIANTS, ids=VARIANT_IDS)
@pytest.mark.parametrize("hidden_size", [1, 4, 25])
def test_init_is_uniform_within_one_over_sqrt_hidden(module, options, hidden_size):
    """PyTorch's default: U(-1/sqrt(H), 1/sqrt(H)) for every tensor."""
    bound = 1.0 / math.sqrt(hidden_size)
    sd = CLASSES[module](300, hidden_size, dtype="float64", seed=9, **options).state_dict()
    values = np.concatenate([v.ravel() for v in sd.values()])  # at least 300 draws
    assert np.all(np.abs(values) <= bound)
    # spread over the whole interval as a uniform is (std bound/sqrt(3)), centred; loose statistical bounds
    assert values.min() < -0.9 * bound and values.max() > 0.9 * bound
    assert abs(values.std() / (bound / math.sqrt(3)) - 1) < 0.15
    assert abs(values.mean()) < 5 * bound / math.sqrt(3 * values.size)


@pytest.mark.parametrize("module,options", VARIANTS, ids=VARIANT_IDS)
def test_to_device_and_back(module, options, device, dtype):
    cell = CLASSES[module](3, 4, dtype=dtype, seed=8, **options)
    moved = cell.to(device)
    assert moved.device == device and moved.dtype == cell.dtype
    assert type(moved) is type(cell)
    for name, value in options.items():
        assert getattr(moved, name) == value
    back = moved.to("cpu")
    assert back.device == "cpu"
    for k, v in back.state_dict().items():
        np.testing.assert_array_equal(v, cell.state_dict()[k])
    x = np.random.default_rng(1).standard_normal((2, 3)).astype(dtype)
    a, b = cell(x), back(x)
    for u, v in zip(*((a, b) if module == "LSTMCell" else ((a,), (b,)))):
        np.testing.assert_array_equal(u, v)
