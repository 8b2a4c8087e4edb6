"""from_onnx's errors name the node, the attribute or input, what was expected and what was found."""

import numpy as np
import pytest

import onnx_reference as ref
import rnnkern

onnx = pytest.importorskip("onnx")
from onnx import helper  # noqa: E402


def lstm_model(attrs=None, initializers=("W", "R", "B"), **arrays):
    base = ref.random_case("LSTM", np.random.default_rng(0))
    base.update(arrays)
    return ref.make_model("LSTM", {"hidden_size": 3, **(attrs or {})}, base, initializers=list(initializers))


def two_node_model():
    one, two = lstm_model(), lstm_model()
    node = two.graph.node[0]
    node.name = "second"
    node.output[:] = ["Y2", "Y_h2", "Y_c2"]
    one.graph.node.append(node)
    return one


def test_no_recurrent_node():
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [2])])
    with pytest.raises(ValueError, match=r"LSTM.from_onnx: the model has no LSTM node \(its nodes' op types: Relu\)"):
        rnnkern.LSTM.from_onnx(helper.make_model(graph))
    with pytest.raises(ValueError, match=r"GRU.from_onnx: the model has no GRU node \(its nodes' op types: LSTM\)"):
        rnnkern.GRU.from_onnx(lstm_model())


def test_ambiguous_and_unknown_node_choices():
    model = two_node_model()
    with pytest.raises(ValueError, match=r"has 2 LSTM nodes \(0: lstm_node, 1: second\); choose one with node="):
        rnnkern.LSTM.from_onnx(model)
    assert rnnkern.LSTM.from_onnx(model, "second").hidden_size == 3
    with pytest.raises(ValueError, match="no LSTM node is named 'third'; the LSTM nodes are 0: lstm_node, 1: second"):
        rnnkern.LSTM.from_onnx(model, "third")
    with pytest.raises(ValueError, match="node index 2 is out of range"):
        rnnkern.LSTM.from_onnx(model, 2)
    with pytest.raises(TypeError, match="node must be a node name, an index or a list of them, got float"):
        rnnkern.LSTM.from_onnx(model, 1.0)
    with pytest.raises(TypeError, match="model must be an onnx.ModelProto or a path"):
        rnnkern.LSTM.from_onnx(42)


def test_unknown_activation_names_node_and_attribute():
    model = lstm_model({"activations": ["Sigmoid", "Swish", "Tanh"]})
    with pytest.raises(ValueError, match=r"ONNX node 'lstm_node' \(LSTM\): attribute activations: unknown activation "
                                         r"'Swish'; supported: Sigmoid, Tanh"):
        rnnkern.LSTM.from_onnx(model)
    with pytest.raises(ValueError, match="attribute activations has 2 names; LSTM takes 3 per direction"):
        rnnkern.LSTM.from_onnx(lstm_model({"activations": ["Sigmoid", "Tanh"]}))


def test_shapes_contradicting_hidden_size():
    with pytest.raises(ValueError, match=r"'lstm_node' \(LSTM\): input R has shape \(1, 12, 3\), but hidden_size and "
                                         r"the other inputs require \(1, 16, 4\)"):
        rnnkern.LSTM.from_onnx(lstm_model({"hidden_size": 4}))
    with pytest.raises(ValueError, match=r"input W has shape \(1, 8, 2\), but .* require \(1, 12, 2\)"):
        rnnkern.LSTM.from_onnx(lstm_model(W=np.zeros((1, 8, 2))))
    with pytest.raises(ValueError, match=r"input B has shape \(1, 12\), but .* require \(1, 24\)"):
        rnnkern.LSTM.from_onnx(lstm_model(B=np.zeros((1, 12))))
    with pytest.raises(ValueError, match=r"input P has shape \(1, 12\), but .* require \(1, 9\)"):
        rnnkern.LSTM.from_onnx(lstm_model(initializers=("W", "R", "B", "P"), P=np.zeros((1, 12))))
    with pytest.raises(ValueError, match=r"input R must have shape \(2, 4\*hidden_size, hidden_size\) for "
                                         r"direction='bidirectional', got \(1, 12, 3\)"):
        rnnkern.LSTM.from_onnx(lstm_model({"direction": "bidirectional"}))


@pytest.mark.parametrize("attrs, message", [
    ({"direction": "sideways"}, r"attribute direction='sideways' is not supported \(expected one of 'forward', "
                                r"'reverse', 'bidirectional'\)"),
    ({"layout": 2}, r"attribute layout=2 is not supported \(expected one of 0, 1\)"),
    ({"input_forget": 3}, r"attribute input_forget=3 is not supported"),
    ({"clip": -1.0}, r"attribute clip=-1.0 is not supported \(expected a positive threshold\)"),
    ({"linear_before_reset": 1}, r"unsupported attribute\(s\) linear_before_reset"),  # a GRU attribute
    ({"foo": 1}, r"unsupported attribute\(s\) foo"),
])
def test_unsupported_attribute_values(attrs, message):
    with pytest.raises(ValueError, match=r"ONNX node 'lstm_node' \(LSTM\): " + message):
        rnnkern.LSTM.from_onnx(lstm_model(attrs))


def test_gru_linear_before_reset_value():
    arrays = ref.random_case("GRU", np.random.default_rng(0))
    model = ref.make_model("GRU", {"hidden_size": 3, "linear_before_reset": 2}, arrays, initializers=["W", "R", "B"])
    with pytest.raises(ValueError, match=r"'gru_node' \(GRU\): attribute linear_before_reset=2 is not supported"):
        rnnkern.GRU.from_onnx(model)


def test_weights_must_be_constants_and_lengths_must_not():
    with pytest.raises(ValueError, match=r"input W \('W'\) must be an initializer or a Constant"):
        rnnkern.LSTM.from_onnx(lstm_model(initializers=("R", "B")))
    model = lstm_model(initializers=("W", "R", "B", "sequence_lens"), sequence_lens=np.array([5, 5, 5]))
    with pytest.raises(ValueError, match=r"input sequence_lens is a constant; rnnkern takes sequence lengths per call"):
        rnnkern.LSTM.from_onnx(model)


def test_constant_nodes_are_read_like_initializers():
    model = lstm_model()
    for init in list(model.graph.initializer):
        model.graph.node.insert(0, helper.make_node("Constant", [], [init.name], value=init))
    del model.graph.initializer[:]
    expected = rnnkern.LSTM.from_onnx(lstm_model()).state_dict()
    got = rnnkern.LSTM.from_onnx(model).state_dict()
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key])


def test_stacked_nodes_must_agree():
    one = lstm_model()
    two = lstm_model({"clip": 2.0})
    node = two.graph.node[0]
    node.name, node.output[:] = "second", ["Y2", "Y_h2", "Y_c2"]
    one.graph.node.append(node)
    with pytest.raises(ValueError, match="LSTM.from_onnx: the stacked layers 0 and 1 differ"):
        rnnkern.LSTM.from_onnx(one, [0, 1])
    with pytest.raises(ValueError, match="stacked layer 1 reads 2 features, but layer 0 outputs 3"):
        rnnkern.LSTM.from_onnx(two_node_model(), [0, 1])
