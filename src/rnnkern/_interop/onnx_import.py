"""Import ONNX RNN, LSTM and GRU nodes: ONNX node -> (layer class, options, state_dict, initial state).

ONNX keeps one tensor per input for all directions: W (D, G*H, I), R (D, G*H, H), B (D, 2*G*H) =
[Wb; Rb], P (D, 3*H), gate blocks LSTM i, o, f, c and GRU z, r, h. rnnkern keeps PyTorch's names
and layouts (LSTM i, f, g, o; GRU r, z, n; bias_ih = Wb, bias_hh = Rb), and the peepholes in ONNX's
own (i, o, f) order. The mapping here is pure (arrays in, arrays out); ``onnx`` is imported lazily.
"""

import pathlib

import numpy as np

from .convert import DEFAULT_ACTIVATIONS, LayerSpec, build_layer, canonical_activation, stack_specs

GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}
# For each of rnnkern's gate blocks, the ONNX block it comes from (and the inverse, for the export).
FROM_ONNX_ORDER = {"RNN": [0], "LSTM": [0, 2, 3, 1], "GRU": [1, 0, 2]}
TO_ONNX_ORDER = {op: list(np.argsort(order)) for op, order in FROM_ONNX_ORDER.items()}
# output_sequence (opset 1 only) chose whether Y is an output: it does not change the computation.
_KNOWN_ATTRIBUTES = {"hidden_size", "direction", "layout", "activations", "activation_alpha", "activation_beta",
                     "clip", "output_sequence"}
_OP_ATTRIBUTES = {"RNN": set(), "GRU": {"linear_before_reset"}, "LSTM": {"input_forget"}}


def import_onnx():
    try:
        import onnx
    except ImportError as exc:
        raise ImportError("rnnkern's ONNX import/export needs the onnx package: pip install 'rnnkern[onnx]' "
                          f"(or pip install onnx); importing it failed: {exc}") from None
    return onnx


def load_model(model):
    """An onnx.ModelProto from a ModelProto, a path or bytes."""
    onnx = import_onnx()
    if isinstance(model, onnx.ModelProto):
        return model
    if isinstance(model, (str, pathlib.Path)):
        return onnx.load(str(model))
    if isinstance(model, (bytes, bytearray)):
        return onnx.load_from_string(bytes(model))
    raise TypeError("from_onnx: model must be an onnx.ModelProto or a path to a .onnx file, "
                    f"got {type(model).__name__}")


def select_nodes(graph, op, node):
    """The NodeProto(s) that ``node`` (name, index among the ``op`` nodes, a list of them, or None) picks."""
    nodes = [n for n in graph.node if n.op_type == op]
    listing = ", ".join(f"{i}: {n.name or '(unnamed)'}" for i, n in enumerate(nodes))
    if not nodes:
        ops = sorted({n.op_type for n in graph.node}) or ["none"]
        raise ValueError(f"{op}.from_onnx: the model has no {op} node (its nodes' op types: {', '.join(ops)})")
    if node is None:
        if len(nodes) > 1:
            raise ValueError(f"{op}.from_onnx: the model has {len(nodes)} {op} nodes ({listing}); choose one with "
                             "node=<name or index>, or a stack with node=[...]")
        return nodes
    picks = list(node) if isinstance(node, (list, tuple)) else [node]
    if not picks:
        raise ValueError(f"{op}.from_onnx: node must name at least one node, got an empty list "
                         f"(the {op} nodes: {listing})")
    chosen = []
    for pick in picks:
        if isinstance(pick, (int, np.integer)) and not isinstance(pick, bool):
            if not -len(nodes) <= pick < len(nodes):
                raise ValueError(f"{op}.from_onnx: node index {pick} is out of range; the {op} nodes are {listing}")
            chosen.append(nodes[pick])
        elif isinstance(pick, str):
            named = [n for n in nodes if n.name == pick]
            if not named:
                raise ValueError(f"{op}.from_onnx: no {op} node is named {pick!r}; the {op} nodes are {listing}")
            chosen.append(named[0])
        else:
            raise TypeError(f"{op}.from_onnx: node must be a node name, an index or a list of them, "
                            f"got {type(pick).__name__}")
    return chosen


def constants(graph):
    """{tensor name: NumPy array} of the graph's initializers and Constant nodes' values."""
    onnx = import_onnx()
    values = {t.name: onnx.numpy_helper.to_array(t) for t in graph.initializer}
    for n in graph.node:
        if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value":
            values[n.output[0]] = onnx.numpy_helper.to_array(n.attribute[0].t)
    return values


def attributes(node):
    """The node's attributes as Python values (strings decoded)."""
    onnx = import_onnx()
    out = {}
    for a in node.attribute:
        value = onnx.helper.get_attribute_value(a)
        if isinstance(value, bytes):
            value = value.decode()
        elif isinstance(value, list):
            value = [v.decode() if isinstance(v, bytes) else v for v in value]
        out[a.name] = value
    return out


class _NodeReader:
    """Reads one node's inputs and attributes, with errors that name the node and what is wrong."""

    def __init__(self, node, values):
        self.node, self.values, self.op = node, values, node.op_type
        self.where = f"ONNX node {node.name or '(unnamed)'!r} ({node.op_type})"
        self.attrs = attributes(node)
        unknown = set(self.attrs) - _KNOWN_ATTRIBUTES - _OP_ATTRIBUTES[self.op]
        if unknown:
            raise ValueError(f"{self.where}: unsupported attribute(s) {', '.join(sorted(unknown))}")

    def input(self, index, required=False):
        """The constant value of input ``index``, None if absent (or a runtime input, when not required)."""
        names = ("X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P")
        name = self.node.input[index] if index < len(self.node.input) else ""
        if name and name in self.values:
            return np.asarray(self.values[name])
        if required:
            raise ValueError(f"{self.where}: input {names[index]} ({name!r}) must be an initializer or a Constant "
                             "(rnnkern imports the weights), but it is computed or fed at run time")
        return None

    def choice(self, key, default, choices):
        value = self.attrs.get(key, default)
        if value not in choices:
            raise ValueError(f"{self.where}: attribute {key}={value!r} is not supported "
                             f"(expected one of {', '.join(map(repr, choices))})")
        return value

    def check_shape(self, what, array, shape):
        if array.shape != shape:
            raise ValueError(f"{self.where}: input {what} has shape {array.shape}, but hidden_size and the other "
                             f"inputs require {shape}")


def _blocks(array, op, H):
    """ONNX gate blocks (along axis 0) in rnnkern's order."""
    return np.concatenate([array[k * H:(k + 1) * H] for k in FROM_ONNX_ORDER[op]])


def node_spec(node, values):
    """LayerSpec of one ONNX RNN/GRU/LSTM node; ``values`` holds the graph's constants by name."""
    r = _NodeReader(node, values)
    op, G = r.op, GATES[r.op]
    W, R, B, P = r.input(1, True), r.input(2, True), r.input(3), r.input(7) if op == "LSTM" else None
    direction = r.choice("direction", "forward", ("forward", "reverse", "bidirectional"))
    D = 2 if direction == "bidirectional" else 1
    if R.ndim != 3 or R.shape[0] != D:
        raise ValueError(f"{r.where}: input R must have shape ({D}, {G}*hidden_size, hidden_size) for "
                         f"direction={direction!r}, got {R.shape}")
    H = int(r.attrs.get("hidden_size", R.shape[-1]))
    r.check_shape("R", R, (D, G * H, H))
    if W.ndim != 3:
        raise ValueError(f"{r.where}: input W must be 3-D ({D}, {G * H}, input_size), got shape {W.shape}")
    r.check_shape("W", W, (D, G * H, W.shape[2]))
    if B is not None:
        r.check_shape("B", B, (D, 2 * G * H))
    if P is not None:
        r.check_shape("P", P, (D, 3 * H))
    if r.input(4) is not None:
        raise ValueError(f"{r.where}: input sequence_lens is a constant; rnnkern takes sequence lengths per call "
                         "(layer(x, lengths=...)), so feed them at run time instead")
    options = {"input_size": int(W.shape[2]), "hidden_size": H, "bias": B is not None,
               "batch_first": r.choice("layout", 0, (0, 1)) == 1, "bidirectional": D == 2}
    if direction == "reverse":
        options["direction"] = "reverse"
    options.update(_semantics(r, D))
    state_dict = {}
    for d in range(D):
        suffix = "_l0" + ("_reverse" if d else "")
        state_dict["weight_ih" + suffix] = _blocks(W[d], op, H)
        state_dict["weight_hh" + suffix] = _blocks(R[d], op, H)
        if B is not None:
            state_dict["bias_ih" + suffix] = _blocks(B[d, :G * H], op, H)
            state_dict["bias_hh" + suffix] = _blocks(B[d, G * H:], op, H)
        if P is not None:
            state_dict["weight_p" + suffix] = np.array(P[d])  # ONNX's (i, o, f) order, kept
    if P is not None:
        options["peephole"] = True
    return LayerSpec(op, options, state_dict, _initial_state(r, options["batch_first"], D, H))


def _semantics(r, D):
    """Constructor options for the node's activations, clip, input_forget and linear_before_reset."""
    op, options = r.op, {}
    defaults = DEFAULT_ACTIVATIONS[op]
    names = r.attrs.get("activations", list(defaults) * D)
    names = [canonical_activation(a, f"{r.where}: attribute activations") for a in names]
    if len(names) not in (len(defaults), len(defaults) * D):
        raise ValueError(f"{r.where}: attribute activations has {len(names)} names; {op} takes "
                         f"{len(defaults)} per direction ({len(defaults) * D} for this node)")
    if D == 2 and names[:len(defaults)] == names[len(defaults):]:
        names = names[:len(defaults)]
    if op == "RNN" and names in (["Tanh"], ["Relu"]):
        options["nonlinearity"] = names[0].lower()
    elif tuple(names) != defaults:
        options["activations"] = names
        for key in ("activation_alpha", "activation_beta"):
            if r.attrs.get(key):
                options[key] = [_float(v) for v in r.attrs[key]]
    if "clip" in r.attrs:
        clip = _float(r.attrs["clip"])
        if not clip > 0:
            raise ValueError(f"{r.where}: attribute clip={clip} is not supported (expected a positive threshold)")
        options["clip"] = clip
    if op == "LSTM" and r.choice("input_forget", 0, (0, 1)):
        options["input_forget"] = True
    if op == "GRU":
        options["linear_before_reset"] = bool(r.choice("linear_before_reset", 0, (0, 1)))
    return options


def _float(value):
    """An ONNX float attribute (float32) as the shortest decimal that rounds to it: 0.8, not 0.800000011920929."""
    return float(str(np.float32(value)))


def _initial_state(r, batch_first, D, H):
    """initial_h / initial_c from constants as rnnkern's (D, B, H) state, or None."""
    parts = [r.input(5)] + ([r.input(6)] if r.op == "LSTM" else [])
    if all(p is None for p in parts):
        return None
    batch = next(p for p in parts if p is not None).shape[0 if batch_first else 1]
    shape = (batch, D, H) if batch_first else (D, batch, H)
    states = []
    for name, p in zip(("initial_h", "initial_c"), parts):
        if p is None:
            p = np.zeros(shape, next(q for q in parts if q is not None).dtype)
        r.check_shape(name, p, shape)
        states.append(p.transpose(1, 0, 2) if batch_first else p)
    return tuple(states) if r.op == "LSTM" else states[0]


def model_spec(model, op, node=None, batch_first=None):
    """LayerSpec of the node(s) of ``model`` that ``node`` chooses (see select_nodes); ``batch_first``
    None reads the layout off the graph (see graph_batch_first), a bool overrides it."""
    model = load_model(model)
    values = constants(model.graph)
    nodes = select_nodes(model.graph, op, node)
    specs = [node_spec(n, values) for n in nodes]
    spec = specs[0] if len(specs) == 1 else stack_specs(specs, op)
    if batch_first is None:
        batch_first = spec.options["batch_first"] or fed_through_batch_first_transpose(model.graph, nodes[0])
    elif not isinstance(batch_first, (bool, np.bool_)):
        raise TypeError(f"{op}.from_onnx: batch_first must be None (read it off the graph), True or False, "
                        f"got {type(batch_first).__name__} {batch_first!r}")
    spec.options["batch_first"] = bool(batch_first)  # the initial state was already read in the node's layout
    return spec


def fed_through_batch_first_transpose(graph, node):
    """Whether the node's input X is a Transpose with perm [1, 0, 2] of another tensor: (B, T, I) turned
    into the (T, B, I) of a layout=0 node. to_onnx writes exactly that in front of a batch_first layer
    (ONNX Runtime rejects layout=1), and torch.onnx.export does the same for batch_first modules."""
    producer = next((n for n in graph.node if node.input[0] in n.output), None)
    return (producer is not None and producer.op_type == "Transpose"
            and list(attributes(producer).get("perm", [])) == [1, 0, 2])


def from_onnx(cls, model, node=None, device="cpu", dtype=None, batch_first=None):
    return build_layer(cls, model_spec(model, cls.__name__, node, batch_first), device, dtype)
