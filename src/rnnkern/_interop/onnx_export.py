"""Export a layer to ONNX: one RNN/GRU/LSTM node per layer, chained, runnable in ONNX Runtime.

The graph takes ``input`` in the layer's layout ((T, B, I), or (B, T, I) with batch_first) and gives
``output`` ((T, B, D*H) or (B, T, D*H)), ``h_n`` (L*D, B, H) and, for the LSTM, ``c_n``: rnnkern's
own shapes. Inside, every node uses layout=0 (ONNX Runtime rejects layout=1) and Transpose/Reshape
nodes turn ONNX's Y (T, D, B, H) into the next layer's (T, B, D*H) input. Optional graph inputs
``h_0`` / ``c_0`` (L*D, B, H) and ``lengths`` (B,) int32 map to each node's initial_h/initial_c
and sequence_lens. Every activation's alpha and beta are written explicitly: ONNX Runtime reads a
missing ThresholdedRelu/ScaledTanh/Affine parameter as 0, not as the operator's default.
"""

import warnings

import numpy as np

from .._backend import to_host
from .convert import DEFAULT_ACTIVATIONS
from .onnx_import import GATES, TO_ONNX_ORDER, import_onnx

DEFAULT_OPSET = 14  # RNN/GRU/LSTM-14 (layout attribute), Reshape-14; every ONNX Runtime since 1.8 runs it


def layer_attributes(layer):
    """The ONNX attributes shared by every node of ``layer``."""
    op = type(layer).__name__
    direction = layer.direction
    D = 2 if direction == "bidirectional" else 1
    attrs = {"hidden_size": layer.hidden_size}
    if direction != "forward":
        attrs["direction"] = direction
    names = list(layer.activations)  # every direction's, canonical
    if tuple(names) != DEFAULT_ACTIVATIONS[op] * D:
        attrs["activations"] = names
        # the layer holds every alpha/beta its activations take, defaults filled in
        if layer.activation_alpha:
            attrs["activation_alpha"] = list(layer.activation_alpha)
        if layer.activation_beta:
            attrs["activation_beta"] = list(layer.activation_beta)
    if layer.clip is not None:
        attrs["clip"] = float(layer.clip)
    if op == "LSTM" and getattr(layer, "input_forget", False):
        attrs["input_forget"] = 1
    if op == "GRU":
        attrs["linear_before_reset"] = int(layer.linear_before_reset)
    return attrs, D


def node_weights(state_dict, op, layer_index, D, H):
    """ONNX's W, R, B (or None), P (or None) of one layer, from rnnkern's state_dict."""
    G = GATES[op]

    def onnx_blocks(a):
        return np.concatenate([a[k * H:(k + 1) * H] for k in TO_ONNX_ORDER[op]])

    suffixes = [f"_l{layer_index}" + ("_reverse" if d else "") for d in range(D)]
    W = np.stack([onnx_blocks(state_dict["weight_ih" + s]) for s in suffixes])
    R = np.stack([onnx_blocks(state_dict["weight_hh" + s]) for s in suffixes])
    B = None
    if "bias_ih" + suffixes[0] in state_dict:
        B = np.stack([np.concatenate([onnx_blocks(state_dict["bias_ih" + s]), onnx_blocks(state_dict["bias_hh" + s])])
                      for s in suffixes])
        assert B.shape == (D, 2 * G * H)
    P = None
    if "weight_p" + suffixes[0] in state_dict:
        P = np.stack([state_dict["weight_p" + s] for s in suffixes])  # already ONNX's (i, o, f) order
    return W, R, B, P


class _GraphBuilder:
    def __init__(self, onnx, dtype):
        self.onnx, self.dtype = onnx, dtype
        self.nodes, self.inits, self.inputs = [], [], []

    def const(self, name, value, dtype=None):
        value = np.asarray(value, dtype or self.dtype)
        self.inits.append(self.onnx.numpy_helper.from_array(value, name))
        return name

    def node(self, op, inputs, outputs, **attrs):
        self.nodes.append(self.onnx.helper.make_node(op, inputs, outputs, **attrs))
        return outputs[0]

    def graph_input(self, name, elem, shape):
        self.inputs.append(self.onnx.helper.make_tensor_value_info(name, elem, shape))
        return name


def layer_to_onnx(layer, path=None, opset=None, state_inputs=False, lengths_input=False):
    """The ONNX model of ``layer`` (see the module docstring); written to ``path`` when given."""
    onnx = import_onnx()
    op = type(layer).__name__
    if getattr(layer, "proj_size", 0):
        raise ValueError(f"{op}.to_onnx: ONNX's LSTM has no projection; this layer has proj_size={layer.proj_size}")
    opset = DEFAULT_OPSET if opset is None else opset
    newest = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, int) or not DEFAULT_OPSET <= opset <= newest:
        raise ValueError(f"{op}.to_onnx: opset must be an int in {DEFAULT_OPSET}..{newest} (the installed onnx's "
                         f"newest), got {opset!r}")
    attrs, D = layer_attributes(layer)
    H, L = layer.hidden_size, layer.num_layers
    dtype = np.dtype(layer.dtype)
    if dtype == np.float64:
        _warn_float64(op)
    elem = onnx.helper.np_dtype_to_tensor_dtype(dtype)
    g = _GraphBuilder(onnx, dtype)
    feature_axis = ["batch", "T"] if layer.batch_first else ["T", "batch"]
    x = g.graph_input("input", elem, feature_axis + [layer.input_size])
    if layer.batch_first:
        x = g.node("Transpose", [x], ["input_time_major"], perm=[1, 0, 2])
    seq = g.graph_input("lengths", onnx.TensorProto.INT32, ["batch"]) if lengths_input else ""
    states = _state_sources(g, layer, op, elem, state_inputs, D)
    sd = layer.state_dict()
    y_h, y_c = [], []
    reshape_to = g.const("y_shape", [0, 0, -1], np.int64)
    for k in range(L):
        W, R, B, P = node_weights(sd, op, k, D, H)
        inputs = [x, g.const(f"W_l{k}", W), g.const(f"R_l{k}", R), g.const(f"B_l{k}", B) if B is not None else "",
                  seq] + states(k)
        if P is not None:
            inputs += [""] * (7 - len(inputs)) + [g.const(f"P_l{k}", P)]
        while inputs[-1] == "":
            inputs.pop()
        outputs = [f"Y_l{k}", f"Y_h_l{k}"] + ([f"Y_c_l{k}"] if op == "LSTM" else [])
        g.node(op, inputs, outputs, name=f"{op}_l{k}", **attrs)
        y_h.append(outputs[1])
        y_c += outputs[2:]
        y = g.node("Transpose", [outputs[0]], [f"Y_l{k}_tbdh"], perm=[0, 2, 1, 3])
        x = g.node("Reshape", [y, reshape_to], [f"output_l{k}"])
    g.node("Transpose", [x], ["output"], perm=[1, 0, 2]) if layer.batch_first else g.node("Identity", [x], ["output"])
    outputs = [("output", feature_axis + [D * H]), ("h_n", [L * D, "batch", H])]
    g.node("Concat", y_h, ["h_n"], axis=0)
    if op == "LSTM":
        g.node("Concat", y_c, ["c_n"], axis=0)
        outputs.append(("c_n", [L * D, "batch", H]))
    graph = onnx.helper.make_graph(g.nodes, f"rnnkern_{op}", g.inputs,
                                   [onnx.helper.make_tensor_value_info(n, elem, s) for n, s in outputs],
                                   initializer=g.inits)
    opsets = [onnx.helper.make_opsetid("", opset)]
    model = onnx.helper.make_model(graph, opset_imports=opsets, producer_name="rnnkern",
                                   ir_version=onnx.helper.find_min_ir_version_for(opsets))
    onnx.checker.check_model(model)
    if path is not None:
        onnx.save(model, str(path))
    return model


def _warn_float64(op):
    # The model is valid ONNX in float64 (onnx.reference runs it), so this is a warning, not an error.
    warnings.warn(f"{op}.to_onnx: this layer is float64, and so is the exported model, but ONNX Runtime runs "
                  "RNN, GRU and LSTM nodes in float32 only (a float64 model fails there: 'does not support "
                  f"double' or NOT_IMPLEMENTED); for ONNX Runtime, export a float32 {op} holding these weights "
                  "(its load_state_dict casts them)", UserWarning, stacklevel=4)


def _state_sources(g, layer, op, elem, state_inputs, D):
    """A function of the layer index k giving its initial_h (and initial_c) names: rows k*D..(k+1)*D of
    graph inputs h_0 / c_0 (L*D, B, H), or initializers from the layer's initial_state, or none."""
    names = ["h_0"] + (["c_0"] if op == "LSTM" else [])
    rows = layer.num_layers * D
    if state_inputs:
        sources = [g.graph_input(n, elem, [rows, "batch", layer.hidden_size]) for n in names]
        return lambda k: [_rows(g, s, k, D) for s in sources]
    default = getattr(layer, "initial_state", None)
    if default is None:
        return lambda k: []
    parts = default if isinstance(default, tuple) else (default,)
    host = [to_host(p) for p in parts]
    # per-node initializers (not slices of one), so that from_onnx reads them back as constants
    return lambda k: [g.const(f"{n}_l{k}", p[k * D:(k + 1) * D]) for n, p in zip(names, host)]


def _rows(g, source, k, D):
    """Rows k*D .. (k+1)*D of a (L*D, B, H) state: that layer's initial_h or initial_c."""
    starts = g.const(f"{source}_l{k}_starts", [k * D], np.int64)
    ends = g.const(f"{source}_l{k}_ends", [(k + 1) * D], np.int64)
    return g.node("Slice", [source, starts, ends], [f"{source}_l{k}"])
