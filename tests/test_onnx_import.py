"""from_onnx against ONNX's own node conformance cases, ONNX Runtime and the float64 reference.

Tests whose layers need the ONNX options of issue 12 (direction="reverse", activations, clip,
input_forget, peepholes, initial_state) run against the layers once those exist; with
RNNKERN_TEST_REFERENCE_LAYERS=1 every layer here is replaced by tests/onnx_reference.ReferenceLayer
(the float64 ONNX reference run on the importer's output), which checks the tests' own logic.
"""

import os

import numpy as np
import pytest

import onnx_reference as ref
from test_semantics import cpu_steps
import rnnkern

onnx = pytest.importorskip("onnx")
from rnnkern._interop import convert as _convert, onnx_import as _onnx  # noqa: E402  (needs onnx at call time only; imported after the skip)

REFERENCE_LAYERS = os.environ.get("RNNKERN_TEST_REFERENCE_LAYERS") == "1"
CONFORMANCE = ref.load_rnn_conformance_cases()
# The cases whose layers need issue 12's new options; the other 14 pass with today's layers.
NEEDS_NEW_OPTIONS = {"test_simple_rnn_reverse", "test_lstm_reverse", "test_gru_reverse", "test_lstm_with_peepholes"}


def import_layer(model, op, node=None, dtype="float64", device="cpu"):
    if REFERENCE_LAYERS:
        return ref.ReferenceLayer(_onnx.model_spec(model, op, node))
    return getattr(rnnkern, op).from_onnx(model, node, dtype=dtype, device=device)


def run(layer, x, lengths=None, state=None):
    dtype = np.dtype(layer.dtype)
    return layer(np.asarray(x, dtype), None if state is None else state, lengths=lengths)


def test_every_conformance_case_is_covered():
    assert len({name for name, *_ in CONFORMANCE}) == 18


@pytest.mark.parametrize("case", CONFORMANCE, ids=[c[0] for c in CONFORMANCE])
def test_conformance_case_through_from_onnx(case):
    """Every input but X and sequence_lens becomes an initializer; every output the case gives is compared."""
    name, model, inputs, outputs = case
    node = model.graph.node[0]
    arrays = dict(zip([i.name for i in model.graph.input], inputs))
    layer = import_layer(ref.fold_inputs(model, arrays), node.op_type)
    lengths = arrays.get("sequence_lens")
    y, state = run(layer, arrays["X"], lengths=None if lengths is None else lengths.astype(np.int64))
    got = ref.layer_outputs_as_onnx(y, state, layer.batch_first)
    expected = dict(zip([o.name for o in model.graph.output], outputs))
    for key, value in expected.items():
        np.testing.assert_allclose(got[key], value, rtol=1e-5, atol=1e-6, err_msg=f"{name}: {key}")


# --- random nodes against ONNX Runtime ---------------------------------------------------------
ORT_CASES = [  # (op, attributes, random_case options); activations with explicit alpha/beta (see ISSUE12_API.md)
    ("RNN", {}, {}), ("RNN", {"direction": "bidirectional"}, {"lengths": True, "initial": True}),
    ("RNN", {"activations": ["Relu"]}, {"bias": False}),
    ("GRU", {}, {"lengths": True}),
    ("GRU", {"linear_before_reset": 1, "direction": "bidirectional"}, {"initial": True}),
    ("LSTM", {}, {"initial": True}), ("LSTM", {"direction": "bidirectional"}, {"lengths": True, "initial": True}),
    # the following need issue 12's new options
    ("RNN", {"direction": "reverse", "clip": 0.6}, {"lengths": True}),
    ("RNN", {"activations": ["ScaledTanh", "Elu"], "direction": "bidirectional", "activation_alpha": [0.8, 0.6],
             "activation_beta": [1.3]}, {"initial": True}),
    ("GRU", {"direction": "reverse", "linear_before_reset": 1, "clip": 0.5}, {"lengths": True, "initial": True}),
    ("GRU", {"activations": ["HardSigmoid", "Softsign"], "activation_alpha": [0.3], "activation_beta": [0.45]},
     {"lengths": True}),
    ("LSTM", {}, {"peepholes": True, "lengths": True}),
    ("LSTM", {"direction": "reverse", "input_forget": 1}, {"peepholes": True, "initial": True}),
    ("LSTM", {"direction": "bidirectional", "clip": 0.7, "input_forget": 1}, {"peepholes": True, "lengths": True}),
    ("LSTM", {"activations": ["Sigmoid", "LeakyRelu", "Softplus", "HardSigmoid", "Affine", "ThresholdedRelu"],
              "direction": "bidirectional", "activation_alpha": [0.05, 0.25, 0.9, 0.1],
              "activation_beta": [0.5, 0.2]}, {"initial": True}),
]


@pytest.mark.parametrize("op, attrs, options", ORT_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(ORT_CASES)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("state_as", ["initializer", "runtime"])
def test_random_node_matches_onnx_runtime(op, attrs, options, dtype, state_as):
    """Weights as initializers; initial states either initializers (-> initial_state) or fed at run time."""
    pytest.importorskip("onnxruntime")
    rng = np.random.default_rng(len(ORT_CASES) + len(op) + len(attrs))
    arrays = ref.random_case(op, rng, direction=attrs.get("direction", "forward"), **options)
    arrays = {k: np.asarray(v, np.int32 if k == "sequence_lens" else np.float32) for k, v in arrays.items()}
    runtime = {"X", "sequence_lens"} | ({"initial_h", "initial_c"} if state_as == "runtime" else set())
    model = ref.make_model(op, dict(hidden_size=3, **attrs), arrays,
                           initializers=[k for k in arrays if k not in runtime])
    feed = {i.name: arrays[i.name] for i in model.graph.input}
    expected = ref.present_outputs(model.graph.node[0], ref.run_ort(model, feed))
    layer = import_layer(model, op, dtype=dtype)
    state = None
    if state_as == "runtime" and "initial_h" in arrays:
        state = (arrays["initial_h"], arrays["initial_c"]) if op == "LSTM" else arrays["initial_h"]
        state = tuple(np.asarray(s, dtype) for s in state) if op == "LSTM" else np.asarray(state, dtype)
    lengths = arrays.get("sequence_lens")
    y, st = run(layer, arrays["X"], None if lengths is None else lengths.astype(np.int64), state)
    got = ref.layer_outputs_as_onnx(y, st, False)
    for key, value in expected.items():
        np.testing.assert_allclose(got[key], value, rtol=2e-5, atol=2e-5, err_msg=key)


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
@pytest.mark.parametrize("direction", ["forward", "bidirectional"])
def test_layout_1_node_is_batch_first(op, direction):
    """ORT rejects layout=1, so the float64 reference is the oracle; initial states are (B, D, H) there."""
    rng = np.random.default_rng(9)
    arrays = ref.random_case(op, rng, direction=direction, layout=1, lengths=True)
    model = ref.make_model(op, {"hidden_size": 3, "layout": 1, "direction": direction}, arrays, dtype=np.float64,
                           initializers=["W", "R", "B"])
    layer = import_layer(model, op)
    assert layer.batch_first
    expected = ref.reference_outputs(model.graph.node[0], arrays)
    y, st = run(layer, arrays["X"], lengths=arrays["sequence_lens"].astype(np.int64))
    got = ref.layer_outputs_as_onnx(y, st, True)
    for key, value in expected.items():
        np.testing.assert_allclose(got[key], value, rtol=1e-10, atol=1e-12, err_msg=key)


def test_layout_1_initial_state_becomes_initial_state():
    """initial_h/initial_c initializers of a layout=1 node, (B, D, H), become the (D, B, H) initial_state."""
    rng = np.random.default_rng(10)
    arrays = ref.random_case("LSTM", rng, layout=1, initial=True, direction="bidirectional")
    model = ref.make_model("LSTM", {"hidden_size": 3, "layout": 1, "direction": "bidirectional"}, arrays,
                           dtype=np.float64, initializers=["W", "R", "B", "initial_h", "initial_c"])
    spec = _onnx.model_spec(model, "LSTM")
    np.testing.assert_array_equal(spec.initial_state[0], arrays["initial_h"].transpose(1, 0, 2))
    np.testing.assert_array_equal(spec.initial_state[1], arrays["initial_c"].transpose(1, 0, 2))
    layer = import_layer(model, "LSTM")  # the layer uses it when called without a state
    y, st = run(layer, arrays["X"])
    expected = ref.reference_outputs(model.graph.node[0], arrays)
    for key, value in ref.layer_outputs_as_onnx(y, st, True).items():
        np.testing.assert_allclose(value, expected[key], rtol=1e-10, atol=1e-12, err_msg=key)


def test_gate_reordering_and_bias_split_are_exact():
    """ONNX LSTM blocks i, o, f, c -> rnnkern i, f, g, o; GRU z, r, h -> r, z, n; B = [Wb; Rb] split."""
    H = 2
    for op, onnx_order, torch_order in [("LSTM", "iofc", "ifco"), ("GRU", "zrh", "rzh")]:
        G = len(onnx_order)
        marks = {g: k + 1 for k, g in enumerate(onnx_order)}  # block g holds the value marks[g]
        W = np.concatenate([np.full((H, 3), marks[g]) for g in onnx_order])[None].astype(np.float32)
        R = np.concatenate([np.full((H, H), 10 * marks[g]) for g in onnx_order])[None].astype(np.float32)
        B = np.concatenate([np.full(H, 100 * marks[g]) for g in onnx_order] +
                           [np.full(H, 1000 * marks[g]) for g in onnx_order])[None].astype(np.float32)
        model = ref.make_model(op, {"hidden_size": H}, {"X": np.zeros((1, 1, 3)), "W": W, "R": R, "B": B},
                               initializers=["W", "R", "B"])
        sd = _onnx.model_spec(model, op).state_dict
        expected = np.repeat([marks[g] for g in torch_order], H)
        np.testing.assert_array_equal(sd["weight_ih_l0"][:, 0], expected)
        np.testing.assert_array_equal(sd["weight_hh_l0"][:, 0], 10 * expected)
        np.testing.assert_array_equal(sd["bias_ih_l0"], 100 * expected)
        np.testing.assert_array_equal(sd["bias_hh_l0"], 1000 * expected)
        assert sd["weight_ih_l0"].shape == (G * H, 3)


def test_peepholes_keep_onnx_order_and_options_map():
    rng = np.random.default_rng(11)
    arrays = ref.random_case("LSTM", rng, direction="bidirectional", peepholes=True)
    attrs = {"hidden_size": 3, "direction": "bidirectional", "clip": 2.5, "input_forget": 1,
             "activations": ["sigmoid", "TANH", "Relu"] * 2}
    spec = _onnx.model_spec(ref.make_model("LSTM", attrs, arrays, initializers=["W", "R", "B", "P"]), "LSTM")
    np.testing.assert_array_equal(spec.state_dict["weight_p_l0"], arrays["P"][0].astype(np.float32))
    np.testing.assert_array_equal(spec.state_dict["weight_p_l0_reverse"], arrays["P"][1].astype(np.float32))
    assert spec.options["peephole"] is True and spec.options["clip"] == 2.5 and spec.options["input_forget"] is True
    assert spec.options["activations"] == ["Sigmoid", "Tanh", "Relu"]  # canonical, one direction's list
    assert spec.options["bidirectional"] is True and "direction" not in spec.options


def test_default_semantics_need_no_new_options():
    """Nodes with ONNX's default attributes import into today's constructor arguments only."""
    for op in ("RNN", "GRU", "LSTM"):
        arrays = ref.random_case(op, np.random.default_rng(0), direction="bidirectional")
        spec = _onnx.model_spec(ref.make_model(op, {"hidden_size": 3, "direction": "bidirectional"}, arrays,
                                               initializers=["W", "R", "B"]), op)
        extra = set(spec.options) - {"input_size", "hidden_size", "bias", "batch_first", "bidirectional",
                                     "linear_before_reset", "nonlinearity"}
        assert not extra, (op, extra)
    arrays = ref.random_case("RNN", np.random.default_rng(0))
    spec = _onnx.model_spec(ref.make_model("RNN", {"hidden_size": 3, "activations": ["relu"]}, arrays,
                                           initializers=["W", "R", "B"]), "RNN")
    assert spec.options["nonlinearity"] == "relu" and "activations" not in spec.options


def test_model_from_path_and_node_by_name_or_index(tmp_path):
    arrays = ref.random_case("GRU", np.random.default_rng(1))
    model = ref.make_model("GRU", {"hidden_size": 3, "linear_before_reset": 1}, arrays, initializers=["W", "R", "B"])
    path = tmp_path / "gru.onnx"
    onnx.save(model, str(path))
    for source, node in [(path, None), (str(path), "gru_node"), (model, 0), (model, -1)]:
        layer = rnnkern.GRU.from_onnx(source, node, dtype="float32")
        assert layer.linear_before_reset is True and layer.dtype == np.float32
    assert rnnkern.GRU.from_onnx(model).dtype == np.float32  # the weights' dtype by default


@pytest.mark.parametrize("seed", range(30))
def test_random_attribute_combinations_match_onnx_runtime(seed):
    """Random nodes over every attribute ORT supports (onnx_reference.random_node), initial states as
    initializers (-> initial_state) or fed at run time (even seeds)."""
    pytest.importorskip("onnxruntime")
    op, attrs, options = ref.random_node(seed)
    arrays = ref.random_case(op, np.random.default_rng(seed), direction=attrs["direction"], **options)
    arrays = {k: np.asarray(v, np.int32 if k == "sequence_lens" else np.float32) for k, v in arrays.items()}
    runtime = {"X", "sequence_lens"} | ({"initial_h", "initial_c"} if seed % 2 == 0 else set())
    constants = [k for k in arrays if k not in runtime]
    model = ref.make_model(op, dict(hidden_size=3, **attrs), arrays, initializers=constants)
    expected = ref.present_outputs(model.graph.node[0],
                                   ref.run_ort(model, {i.name: arrays[i.name] for i in model.graph.input}))
    # ONNX's semantics are the point here: most seeds run the NumPy steps, a few numba's kernels (cpu_steps),
    # which compile once per combination (test_numba_variant.py checks them against NumPy's).
    layer = import_layer(model, op, dtype="float64", device=cpu_steps("cpu", seed))
    state = None
    if "initial_h" in runtime and "initial_h" in arrays:
        state = (arrays["initial_h"], arrays["initial_c"]) if op == "LSTM" else arrays["initial_h"]
        state = tuple(s.astype(np.float64) for s in state) if op == "LSTM" else state.astype(np.float64)
    lengths = arrays.get("sequence_lens")
    y, st = run(layer, arrays["X"], None if lengths is None else lengths.astype(np.int64), state)
    got = ref.layer_outputs_as_onnx(y, st, False)
    for key, value in expected.items():
        scale = np.maximum(1.0, np.abs(value))  # unbounded activations make large values
        assert np.max(np.abs(got[key] - value) / scale) < 2e-5, key
