"""tests/onnx_reference.py, the float64 ONNX oracle, is checked against ONNX's own node conformance
cases (all 18 RNN/LSTM/GRU cases) and against ONNX Runtime over every attribute ORT supports, so
that the importer/exporter tests can trust it where ORT cannot run (layout=1, float64, rnnkern's
own defaults)."""

import numpy as np
import pytest

import onnx_reference as ref

pytest.importorskip("onnx")

ACTIVATIONS = ["Sigmoid", "Tanh", "Relu", "HardSigmoid", "LeakyRelu", "ThresholdedRelu", "ScaledTanh", "Elu",
               "Softsign", "Softplus", "Affine"]
PER_DIRECTION = {"RNN": 1, "GRU": 2, "LSTM": 3}


@pytest.fixture(scope="module")
def conformance():
    return ref.load_rnn_conformance_cases()


def test_all_conformance_cases_found(conformance):
    names = {name for name, *_ in conformance}
    assert len(names) == 18, sorted(names)
    assert "test_lstm_with_peepholes" in names and "test_gru_batchwise" in names


def test_reference_passes_every_conformance_case(conformance):
    for name, model, inputs, outputs in conformance:
        node = model.graph.node[0]
        arrays = dict(zip([i.name for i in model.graph.input], inputs))
        got = ref.reference_outputs(node, arrays)
        expected = dict(zip([o.name for o in model.graph.output], outputs))
        assert set(expected) <= set(got), name
        for key, value in expected.items():
            np.testing.assert_allclose(got[key], value, rtol=1e-5, atol=1e-6, err_msg=f"{name}: {key}")


def _ort_vs_reference(op, attrs, arrays, rtol=2e-5):
    pytest.importorskip("onnxruntime")
    dtype = np.float32  # ORT CPU runs RNN, GRU and LSTM in float32 only
    model = ref.make_model(op, dict(hidden_size=arrays["R"].shape[-1], **attrs), arrays, dtype=dtype)
    feed = {i.name: np.asarray(arrays[i.name], np.int32 if i.name == "sequence_lens" else dtype)
            for i in model.graph.input}
    got = ref.present_outputs(model.graph.node[0], ref.run_ort(model, feed))
    expected = ref.reference_outputs(model.graph.node[0], arrays)
    for key in expected:
        # relative to max(1, |value|): unbounded activations (Relu, Affine, Softplus) make large values
        scale = np.maximum(1.0, np.abs(expected[key]))
        assert np.max(np.abs(got[key] - expected[key]) / scale) < rtol, (op, attrs, key)


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
@pytest.mark.parametrize("extras", [{}, {"lengths": True, "initial": True}, {"bias": False, "lengths": True}])
def test_reference_matches_ort_directions_lengths_states(op, direction, extras):
    rng = np.random.default_rng(len(op) * 7 + len(direction))
    arrays = ref.random_case(op, rng, direction=direction, peepholes=op == "LSTM", **extras)
    _ort_vs_reference(op, {"direction": direction}, arrays)


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_reference_matches_ort_each_activation_with_alpha_beta(op, name):
    """Every activation in every slot, explicit alpha/beta (ORT's defaults differ for three, see below)."""
    rng = np.random.default_rng(ACTIVATIONS.index(name))
    n = PER_DIRECTION[op]
    for slot in range(n):
        acts = [ref.DEFAULT_ACTIVATIONS[op][k] if k != slot else name for k in range(n)] * 2
        attrs = {"direction": "bidirectional", "activations": acts,
                 "activation_alpha": list(rng.uniform(0.2, 0.9, 4)), "activation_beta": list(rng.uniform(0.1, 0.6, 4))}
        # T=3: an unbounded f (Softplus z > 1 makes the GRU grow geometrically) must not overflow float32
        arrays = ref.random_case(op, rng, direction="bidirectional", T=3, lengths=True, initial=True)
        _ort_vs_reference(op, attrs, arrays)


@pytest.mark.parametrize("acts, alpha, beta", [
    (["HardSigmoid", "Affine", "LeakyRelu"], [0.3, 0.7, 0.05], [0.4, 0.1]),
    (["Sigmoid", "Affine", "LeakyRelu"], [0.7, 0.05], [0.1]),   # consumed in order, not by position
    (["Sigmoid", "LeakyRelu", "Affine"], [0.05, 0.7], [0.1]),
    (["Sigmoid", "Tanh", "Elu"], [], []),                       # Elu's default alpha 1.0
    (["HardSigmoid", "LeakyRelu", "Tanh"], [], []),             # defaults 0.2/0.5 and 0.01
])
def test_ort_consumes_alpha_beta_in_order(acts, alpha, beta):
    rng = np.random.default_rng(5)
    attrs = {"activations": acts, "activation_alpha": alpha, "activation_beta": beta}
    _ort_vs_reference("LSTM", attrs, ref.random_case("LSTM", rng, initial=True))


@pytest.mark.parametrize("name", ["ThresholdedRelu", "ScaledTanh", "Affine"])
def test_ort_defaults_missing_alpha_beta_to_zero_for_three_activations(name):
    """ORT deviates from ONNX's operator defaults here (recorded in ISSUE12_API.md): a missing alpha or
    beta is 0, so to_onnx always writes them. The reference (spec defaults) then differs from ORT."""
    rng = np.random.default_rng(1)
    arrays = ref.random_case("RNN", rng, initial=True)
    with pytest.raises(AssertionError):
        _ort_vs_reference("RNN", {"activations": [name]}, arrays)
    zeros = {"activation_alpha": [0.0], "activation_beta": [0.0] if name != "ThresholdedRelu" else []}
    _ort_vs_reference("RNN", {"activations": [name], **zeros}, arrays)


@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
@pytest.mark.parametrize("clip", [None, 0.4])
def test_reference_matches_ort_input_forget_peepholes_clip(direction, clip):
    rng = np.random.default_rng(3)
    arrays = ref.random_case("LSTM", rng, direction=direction, lengths=True, initial=True, peepholes=True, scale=1.5)
    attrs = {"direction": direction, "input_forget": 1, **({"clip": clip} if clip else {})}
    _ort_vs_reference("LSTM", attrs, arrays)


@pytest.mark.parametrize("op, acts, lbr", [("RNN", ["Relu"], 0), ("GRU", ["Sigmoid", "Relu"], 0),
                                           ("GRU", ["Sigmoid", "Relu"], 1), ("LSTM", ["Sigmoid", "Relu", "Relu"], 0)])
def test_reference_matches_ort_clip(op, acts, lbr):
    """Large inputs so that clip binds; the LSTM's h(C_t) sees C_t unclipped (a Relu h shows it)."""
    rng = np.random.default_rng(4)
    attrs = {"clip": 0.5, "activations": acts, **({"linear_before_reset": lbr} if op == "GRU" else {})}
    _ort_vs_reference(op, attrs, ref.random_case(op, rng, T=12, scale=2.0, peepholes=op == "LSTM"))


@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
def test_reference_layout_1_matches_onnx_reference_evaluator(op):
    """ORT rejects layout=1; onnx.reference runs it (with default activations)."""
    from onnx.reference import ReferenceEvaluator

    rng = np.random.default_rng(6)
    arrays = ref.random_case(op, rng, layout=1, initial=True, direction="bidirectional")
    attrs = {"hidden_size": 3, "layout": 1, "direction": "bidirectional"}
    model = ref.make_model(op, attrs, arrays, dtype=np.float64)
    got = ReferenceEvaluator(model).run(None, {k: v for k, v in arrays.items()})
    got = ref.present_outputs(model.graph.node[0], got)
    expected = ref.reference_outputs(model.graph.node[0], arrays)
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-10, atol=1e-12, err_msg=key)


@pytest.mark.parametrize("seed", range(60))
def test_reference_matches_ort_random_nodes(seed):
    op, attrs, options = ref.random_node(seed)
    arrays = ref.random_case(op, np.random.default_rng(seed), direction=attrs["direction"], **options)
    _ort_vs_reference(op, attrs, arrays)
