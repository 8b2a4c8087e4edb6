"""ONNX Runtime as an oracle for one-layer rnnkern layers with ONNX's options (test helper and the
golden script's engine). Builds the ONNX node from a layer's state_dict (gate orders iofc / zrh,
B = [Wb; Rb], P as is), with every alpha/beta written explicitly (ORT's own defaults for Affine,
ScaledTanh and ThresholdedRelu differ from the operators'), and runs it in float32."""

import numpy as np

LSTM_ORDER, GRU_ORDER = [0, 3, 1, 2], [1, 0, 2]  # torch's i,f,g,o -> ONNX i,o,f,c; r,z,n -> z,r,h


def _onnx_weights(kind, sd, suffixes, H):
    order = {"LSTM": LSTM_ORDER, "GRU": GRU_ORDER, "RNN": [0]}[kind]

    def reorder(w):
        return np.concatenate([w[k * H:(k + 1) * H] for k in order])
    W = np.stack([reorder(sd["weight_ih" + s]) for s in suffixes])
    R = np.stack([reorder(sd["weight_hh" + s]) for s in suffixes])
    B = None
    if "bias_ih_l0" in sd:
        B = np.stack([np.concatenate([reorder(sd["bias_ih" + s]), reorder(sd["bias_hh" + s])]) for s in suffixes])
    P = np.stack([sd["weight_p" + s] for s in suffixes]) if "weight_p_l0" in sd else None
    return W, R, B, P


def run_ort(kind, sd, x, attrs, lengths=None, h0=None, c0=None):
    """(Y as rnnkern's y (T, B, D*H), Y_h, Y_c) from ONNX Runtime, float32."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    sd = {k: np.asarray(v, np.float32) for k, v in sd.items()}
    x = np.asarray(x, np.float32)
    T, batch, _ = x.shape
    H = sd["weight_hh_l0"].shape[1]
    direction = attrs.get("direction", "forward")
    suffixes = ["_l0", "_l0_reverse"] if direction == "bidirectional" else ["_l0"]
    W, R, B, P = _onnx_weights(kind, sd, suffixes, H)
    inits = {"W": W, "R": R, "B": B, "P": P, "initial_h": h0, "initial_c": c0,
             "sequence_lens": None if lengths is None else np.asarray(lengths, np.int32)}
    names = ["X", "W", "R", "B", "sequence_lens", "initial_h"] + (["initial_c", "P"] if kind == "LSTM" else [])
    node_inputs = [n if n == "X" or inits.get(n) is not None else "" for n in names]
    while node_inputs[-1] == "":
        node_inputs.pop()
    initializers = [numpy_helper.from_array(np.asarray(inits[n], np.int32 if n == "sequence_lens" else np.float32), n)
                    for n in node_inputs if n not in ("", "X")]
    outputs = ["Y", "Y_h"] + (["Y_c"] if kind == "LSTM" else [])
    node = helper.make_node(kind, node_inputs, outputs, hidden_size=H, **attrs)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, list(x.shape))],
                              [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
                              initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    res = sess.run(None, {"X": x})
    Y = res[0]  # (T, D, B, H)
    y = Y.transpose(0, 2, 1, 3).reshape(T, batch, -1)
    return y, res[1], (res[2] if kind == "LSTM" else None)


def attributes(layer, lbr=None):
    """The ONNX attributes of a one-layer rnnkern layer, alpha/beta explicit."""
    attrs = {"direction": layer.direction, "activations": list(layer.activations)}
    if layer.activation_alpha:
        attrs["activation_alpha"] = list(layer.activation_alpha)
    if layer.activation_beta:
        attrs["activation_beta"] = list(layer.activation_beta)
    if layer.clip is not None:
        attrs["clip"] = layer.clip
    if getattr(layer, "input_forget", False):
        attrs["input_forget"] = 1
    if lbr is not None:
        attrs["linear_before_reset"] = int(lbr)
    return attrs
