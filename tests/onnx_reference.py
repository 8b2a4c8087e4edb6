"""A float64 transcription of ONNX's RNN, LSTM and GRU operators (opset 14+), every attribute.

Written from the operator specification (onnx/docs/Operators.md), independently of rnnkern: ONNX's
own layouts and gate orders (LSTM i, o, f, c; GRU z, r, h; B = [Wb; Rb]; P = [Pi; Po; Pf]), one
sequence and one time step at a time, nothing fused, everything float64. Where the specification is
silent, it follows ONNX Runtime (checked by tests/test_onnx_reference.py against ORT and against
ONNX's node conformance cases):

- ``activation_alpha`` / ``activation_beta`` are consumed in order, each only by the activations
  that take that parameter (Affine, LeakyRelu, ThresholdedRelu, ScaledTanh, HardSigmoid, Elu take
  alpha; Affine, ScaledTanh, HardSigmoid take beta); an activation finding the list exhausted uses
  the operator's default.
- ``clip`` clamps every gate's pre-activation to [-clip, clip] before its activation (RNN: the one;
  GRU: z, r and h; LSTM: i, o, f, c); the LSTM's h(C_t) sees C_t unclipped.
- ``input_forget`` (LSTM): the forget gate is f_t = 1 - i_t (i_t with its peephole), ignoring the f
  weights.
- The reverse direction runs each sequence from its last valid step to its first; its outputs stay
  at their time index, zeros past the sequence's length (as the forward's).
"""

import numpy as np

DEFAULTS = {  # (alpha, beta) of each activation; None where it takes no such parameter
    "relu": (None, None), "tanh": (None, None), "sigmoid": (None, None),
    "affine": (1.0, 0.0), "leakyrelu": (0.01, None), "thresholdedrelu": (1.0, None),
    "scaledtanh": (1.0, 1.0), "hardsigmoid": (0.2, 0.5), "elu": (1.0, None),
    "softsign": (None, None), "softplus": (None, None),
}
DEFAULT_ACTIVATIONS = {"RNN": ["Tanh"], "GRU": ["Sigmoid", "Tanh"], "LSTM": ["Sigmoid", "Tanh", "Tanh"]}
GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}


def _sigmoid(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def activation(name, alpha=None, beta=None):
    """The function ONNX names ``name`` (case-insensitive), with its alpha and beta."""
    a, b = DEFAULTS[name.lower()]
    a = a if alpha is None else alpha
    b = b if beta is None else beta
    return {
        "relu": lambda x: np.maximum(x, 0.0),
        "tanh": np.tanh,
        "sigmoid": _sigmoid,
        "affine": lambda x: a * x + b,
        "leakyrelu": lambda x: np.where(x >= 0, x, a * x),
        "thresholdedrelu": lambda x: np.where(x > a, x, 0.0),
        "scaledtanh": lambda x: a * np.tanh(b * x),
        "hardsigmoid": lambda x: np.clip(a * x + b, 0.0, 1.0),
        "elu": lambda x: np.where(x >= 0, x, a * (np.exp(np.minimum(x, 0.0)) - 1.0)),
        "softsign": lambda x: x / (1.0 + np.abs(x)),
        "softplus": lambda x: np.logaddexp(0.0, x),
    }[name.lower()]


def activation_functions(names, alphas=(), betas=()):
    """The functions of an ``activations`` list, alphas and betas consumed in order (ORT's rule)."""
    alphas, betas = list(alphas or ()), list(betas or ())
    funcs = []
    for name in names:
        a, b = DEFAULTS[name.lower()]
        alpha = alphas.pop(0) if a is not None and alphas else None
        beta = betas.pop(0) if b is not None and betas else None
        funcs.append(activation(name, alpha, beta))
    return funcs


def _clipped(clip):
    return (lambda x: np.clip(x, -clip, clip)) if clip is not None else (lambda x: x)


def _rnn_step(x, h, c, W, R, Wb, Rb, P, f, clip, **_):
    return f(clip(x @ W.T + h @ R.T + Wb + Rb)), None


def _gru_step(x, h, c, W, R, Wb, Rb, P, f, g, clip, linear_before_reset, **_):
    H = h.shape[-1]
    Wz, Wr, Wh = W[:H], W[H:2 * H], W[2 * H:]
    Rz, Rr, Rh = R[:H], R[H:2 * H], R[2 * H:]
    Wbz, Wbr, Wbh = Wb[:H], Wb[H:2 * H], Wb[2 * H:]
    Rbz, Rbr, Rbh = Rb[:H], Rb[H:2 * H], Rb[2 * H:]
    z = f(clip(x @ Wz.T + h @ Rz.T + Wbz + Rbz))
    r = f(clip(x @ Wr.T + h @ Rr.T + Wbr + Rbr))
    if linear_before_reset:
        hh = g(clip(x @ Wh.T + r * (h @ Rh.T + Rbh) + Wbh))
    else:
        hh = g(clip(x @ Wh.T + (r * h) @ Rh.T + Rbh + Wbh))
    return (1.0 - z) * hh + z * h, None


def _lstm_step(x, h, c, W, R, Wb, Rb, P, f, g, hf, clip, input_forget, **_):
    H = h.shape[-1]
    blocks = [slice(k * H, (k + 1) * H) for k in range(4)]  # i, o, f, c
    pre = [x @ W[s].T + h @ R[s].T + Wb[s] + Rb[s] for s in blocks]
    Pi, Po, Pf = P[:H], P[H:2 * H], P[2 * H:]
    i = f(clip(pre[0] + Pi * c))
    ft = 1.0 - i if input_forget else f(clip(pre[2] + Pf * c))
    ct = g(clip(pre[3]))
    C = ft * c + i * ct
    o = f(clip(pre[1] + Po * C))
    return o * hf(C), C


_STEPS = {"RNN": _rnn_step, "GRU": _gru_step, "LSTM": _lstm_step}


def onnx_rnn(op, X, W, R, B=None, sequence_lens=None, initial_h=None, initial_c=None, P=None, *,
             direction="forward", layout=0, activations=None, activation_alpha=None, activation_beta=None,
             clip=None, input_forget=0, linear_before_reset=0, hidden_size=None):
    """(Y, Y_h, Y_c) of the ONNX node ``op`` ("RNN", "GRU", "LSTM"); Y_c is None but for the LSTM.

    Shapes as ONNX: X (T, B, I) (layout 1: (B, T, I)), W (D, G*H, I), R (D, G*H, H), B (D, 2*G*H),
    P (D, 3*H), initial_h/c (D, B, H) (layout 1: (B, D, H)); Y (T, D, B, H) (layout 1: (B, T, D, H)).
    """
    X, W, R = (np.asarray(a, np.float64) for a in (X, W, R))
    if layout:
        X = X.transpose(1, 0, 2)
        initial_h = None if initial_h is None else np.asarray(initial_h).transpose(1, 0, 2)
        initial_c = None if initial_c is None else np.asarray(initial_c).transpose(1, 0, 2)
    T, batch, _ = X.shape
    D, GH, _ = W.shape
    H = R.shape[-1]
    assert hidden_size is None or hidden_size == H and GH == GATES[op] * H
    assert D == (2 if direction == "bidirectional" else 1)
    B = np.zeros((D, 2 * GH)) if B is None else np.asarray(B, np.float64)
    P = np.zeros((D, 3 * H)) if P is None else np.asarray(P, np.float64)
    lens = np.full(batch, T) if sequence_lens is None else np.asarray(sequence_lens)
    h0 = np.zeros((D, batch, H)) if initial_h is None else np.asarray(initial_h, np.float64)
    c0 = np.zeros((D, batch, H)) if initial_c is None else np.asarray(initial_c, np.float64)
    names = list(activations) if activations else DEFAULT_ACTIVATIONS[op] * D
    per = len(DEFAULT_ACTIVATIONS[op])
    if len(names) == per and D == 2:
        names = names * 2
    funcs = activation_functions(names, activation_alpha, activation_beta)
    Y = np.zeros((T, D, batch, H))
    Y_h = np.zeros((D, batch, H))
    Y_c = np.zeros((D, batch, H))
    for d in range(D):
        reverse = direction == "reverse" or d == 1
        fs = funcs[d * per:(d + 1) * per]
        kw = dict(W=W[d], R=R[d], Wb=B[d, :GH], Rb=B[d, GH:], P=P[d], clip=_clipped(clip),
                  input_forget=input_forget, linear_before_reset=linear_before_reset,
                  **dict(zip(("f", "g", "hf"), fs)))
        for b in range(batch):
            h, c = h0[d, b], c0[d, b]
            steps = range(lens[b] - 1, -1, -1) if reverse else range(lens[b])
            for t in steps:
                h, c = _STEPS[op](X[t, b], h, c, **kw)
                Y[t, d, b] = h
            Y_h[d, b] = h
            Y_c[d, b] = c if c is not None else 0.0
    if layout:
        Y, Y_h, Y_c = Y.transpose(2, 0, 1, 3), Y_h.transpose(1, 0, 2), Y_c.transpose(1, 0, 2)
    return Y, Y_h, (Y_c if op == "LSTM" else None)


def node_attributes(node):
    """The attributes of an onnx NodeProto as a dict of Python values (for ``onnx_rnn``)."""
    import onnx

    out = {}
    for a in node.attribute:
        value = onnx.helper.get_attribute_value(a)
        if isinstance(value, bytes):
            value = value.decode()
        elif isinstance(value, list) and value and isinstance(value[0], bytes):
            value = [v.decode() for v in value]
        out[a.name] = value
    return out


INPUT_NAMES = ("X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P")


def make_model(op, attrs, arrays, dtype=np.float32, initializers=(), opset=22):
    """A one-node ONNX model of ``op`` with ``attrs``; ``arrays`` maps input names to arrays (None or
    absent: omitted). Names in ``initializers`` become initializers, the others graph inputs."""
    from onnx import TensorProto, helper, numpy_helper

    names = INPUT_NAMES[:8 if op == "LSTM" else 6]
    inputs = [n if arrays.get(n) is not None else "" for n in names]
    while inputs and not inputs[-1]:
        inputs.pop()
    outputs = ["Y", "Y_h"] + (["Y_c"] if op == "LSTM" else [])
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))

    def value(n):
        return np.asarray(arrays[n], np.int32 if n == "sequence_lens" else dtype)

    graph_inputs = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(value(n).dtype), value(n).shape)
                    for n in inputs if n and n not in initializers]
    inits = [numpy_helper.from_array(value(n), n) for n in inputs if n and n in initializers]
    attrs = {k: v for k, v in attrs.items() if not (isinstance(v, (list, tuple)) and not v)}
    node = helper.make_node(op, inputs, outputs, name=f"{op.lower()}_node", **attrs)
    graph_outputs = [helper.make_tensor_value_info(o, elem, None) for o in outputs]
    graph = helper.make_graph([node], "g", graph_inputs, graph_outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10
    return model


def run_ort(model, feed):
    """Run ``model`` in ONNX Runtime's CPU provider."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, feed)


def random_case(op, rng, *, direction="forward", T=5, batch=3, input_size=2, hidden_size=3, bias=True,
                lengths=False, initial=False, peepholes=False, layout=0, scale=0.5):
    """Random ONNX inputs (a dict by input name) for ``op``, in ONNX's shapes."""
    D, G, H = (2 if direction == "bidirectional" else 1), GATES[op], hidden_size
    a = {"X": rng.normal(size=(T, batch, input_size)) * scale,
         "W": rng.normal(size=(D, G * H, input_size)) * scale,
         "R": rng.normal(size=(D, G * H, H)) * scale}
    if bias:
        a["B"] = rng.normal(size=(D, 2 * G * H)) * scale
    if lengths:
        a["sequence_lens"] = rng.integers(1, T + 1, batch)
    if initial:
        a["initial_h"] = rng.normal(size=(D, batch, H))
        if op == "LSTM":
            a["initial_c"] = rng.normal(size=(D, batch, H))
    if peepholes:
        a["P"] = rng.normal(size=(D, 3 * H)) * scale
    if layout:
        a["X"] = a["X"].transpose(1, 0, 2)
        for k in ("initial_h", "initial_c"):
            if k in a:
                a[k] = a[k].transpose(1, 0, 2)
    return a


def rnn_case_nodes(loader_cases=None):
    """ONNX's node conformance cases of RNN, LSTM and GRU: [(name, model, inputs, outputs)], the data
    rebuilt in memory by onnx's loader (onnx >= 1.23 ships no .pb files)."""
    if loader_cases is None:
        from onnx.backend.test.loader import load_model_tests

        loader_cases = load_model_tests(kind="node")
    out = []
    for case in loader_cases:
        if case.model is None or not {n.op_type for n in case.model.graph.node} & set(GATES):
            continue
        for inputs, outputs in case.data_sets:
            out.append((case.name, case.model, list(inputs), list(outputs)))
    return out


def load_rnn_conformance_cases():
    """ONNX's node conformance cases of RNN/LSTM/GRU. Imports just their three case modules, which
    register their cases on import, as ``load_model_tests(kind="node")`` does for all ~1900 cases
    (13 s here); falls back to that loader if the modules move."""
    import importlib

    try:
        import onnx.backend.test.case.node as node_cases

        for module in ("rnn", "lstm", "gru"):
            importlib.import_module(f"onnx.backend.test.case.node.{module}")
        cases = rnn_case_nodes(node_cases._NodeTestCases)
    except (ImportError, AttributeError):
        cases = []
    return cases or rnn_case_nodes()


def present_outputs(node, values):
    """{output name: value} of the node's outputs that it names (ONNX leaves unused ones '')."""
    return {name: v for name, v in zip(node.output, values) if name and v is not None}


def reference_outputs(node, arrays):
    """onnx_rnn's outputs for ``node`` given its input arrays by ONNX input name."""
    named = dict(zip(node.input, INPUT_NAMES))
    kw = {named[k]: v for k, v in arrays.items() if k in named}
    attrs = node_attributes(node)
    return present_outputs(node, onnx_rnn(node.op_type, **kw, **attrs))


# ------------------------------------------------------------------ harness for the importer tests
def fold_inputs(model, arrays, keep=("X", "sequence_lens")):
    """A copy of a one-node model whose graph inputs (but ``keep``) become initializers holding ``arrays``."""
    import onnx
    from onnx import numpy_helper

    out = onnx.ModelProto()
    out.CopyFrom(model)
    kept = [i for i in out.graph.input if i.name in keep]
    for i in out.graph.input:
        if i.name not in keep:
            out.graph.initializer.append(numpy_helper.from_array(np.asarray(arrays[i.name]), i.name))
    del out.graph.input[:]
    out.graph.input.extend(kept)
    return out


def layer_outputs_as_onnx(y, state, batch_first):
    """rnnkern's (y, h_n or (h_n, c_n)) of a one-layer model as ONNX's {Y, Y_h, Y_c} (same layout)."""
    h, c = state if isinstance(state, tuple) else (state, None)
    h, c = np.asarray(h), None if c is None else np.asarray(c)
    y = np.asarray(y)
    D = h.shape[0]
    if batch_first:  # (B, T, D*H) -> (B, T, D, H); states (D, B, H) -> (B, D, H)
        out = {"Y": y.reshape(*y.shape[:2], D, -1), "Y_h": h.transpose(1, 0, 2)}
        if c is not None:
            out["Y_c"] = c.transpose(1, 0, 2)
    else:  # (T, B, D*H) -> (T, D, B, H)
        out = {"Y": y.reshape(*y.shape[:2], D, -1).transpose(0, 2, 1, 3), "Y_h": h}
        if c is not None:
            out["Y_c"] = c
    return out


class ReferenceLayer:
    """Stands in for a rnnkern layer built from an importer's LayerSpec, computing with ``onnx_rnn``:
    lets the tests of options that the layers do not have yet be run, and checked, against this
    reference (RNNKERN_TEST_REFERENCE_LAYERS=1). It has the attributes ``to_onnx`` reads."""

    def __init__(self, spec, dtype="float64"):
        from rnnkern._interop.onnx_export import node_weights

        self._node_weights = node_weights
        o = dict(spec.options)
        self.op, self._sd, self.initial_state = spec.op, spec.state_dict, spec.initial_state
        self.input_size, self.hidden_size = o["input_size"], o["hidden_size"]
        self.num_layers, self.batch_first = o.get("num_layers", 1), o.get("batch_first", False)
        self.bidirectional = o.get("bidirectional", False)
        self.direction = o.get("direction", "bidirectional" if self.bidirectional else "forward")
        self.nonlinearity = o.get("nonlinearity", "tanh")
        self.linear_before_reset = o.get("linear_before_reset", True)
        self.clip, self.input_forget = o.get("clip"), o.get("input_forget", False)
        D = 2 if self.bidirectional else 1
        acts = o.get("activations")
        if acts is None and self.op == "RNN":
            acts = [self.nonlinearity.capitalize()]
        acts = acts or DEFAULT_ACTIVATIONS[self.op]
        self.activations = tuple(acts) * (D if len(acts) == len(DEFAULT_ACTIVATIONS[self.op]) else 1)
        self.activation_alpha, self.activation_beta = o.get("activation_alpha"), o.get("activation_beta")
        self.dtype, self.proj_size = np.dtype(dtype), 0

    def state_dict(self):
        return {k: np.array(v, self.dtype) for k, v in self._sd.items()}

    def to_onnx(self, path=None, **kw):
        from rnnkern._interop.onnx_export import layer_to_onnx

        named = type(self.op, (ReferenceLayer,), {})  # layer_to_onnx reads the op off the class name
        clone = object.__new__(named)
        clone.__dict__.update(self.__dict__)
        return layer_to_onnx(clone, path, kw.get("opset"), kw.get("state_inputs", False),
                             kw.get("lengths_input", False))

    def __call__(self, x, state=None, lengths=None):
        x = np.asarray(x, np.float64)
        x = x.transpose(1, 0, 2) if self.batch_first else x
        D, H = (2 if self.bidirectional else 1), self.hidden_size
        state = self.initial_state if state is None else state
        h0, c0 = state if isinstance(state, tuple) else (state, None)
        attrs = {"direction": self.direction, "activations": list(self.activations), "clip": self.clip,
                 "activation_alpha": self.activation_alpha, "activation_beta": self.activation_beta,
                 "input_forget": self.input_forget, "linear_before_reset": int(self.linear_before_reset)}
        h_n, c_n = [], []
        for k in range(self.num_layers):
            W, R, B, P = self._node_weights(self._sd, self.op, k, D, H)
            rows = slice(k * D, (k + 1) * D)
            Y, Y_h, Y_c = onnx_rnn(self.op, x, W, R, B, lengths, None if h0 is None else np.asarray(h0)[rows],
                                   None if c0 is None else np.asarray(c0)[rows], P, **attrs)
            x = Y.transpose(0, 2, 1, 3).reshape(Y.shape[0], Y.shape[2], D * H)
            h_n.append(Y_h)
            c_n.append(Y_c)
        y = x.transpose(1, 0, 2) if self.batch_first else x
        h_n = np.concatenate(h_n)
        return y, ((h_n, np.concatenate(c_n)) if self.op == "LSTM" else h_n)


ALL_ACTIVATIONS = ("Sigmoid", "Tanh", "Relu", "HardSigmoid", "LeakyRelu", "ThresholdedRelu", "ScaledTanh", "Elu",
                   "Softsign", "Softplus", "Affine")


def random_node(seed):
    """(op, attributes, random_case options) of a random node over every attribute ORT supports: op,
    direction, activations (each slot any of the 11, with random alpha/beta lists, possibly short),
    clip, input_forget, peepholes, bias, lengths, initial states. Short sequences (T=3), so that
    unbounded activations stay finite in float32."""
    rng = np.random.default_rng(seed)
    op = ("RNN", "GRU", "LSTM")[seed % 3]
    direction = ("forward", "reverse", "bidirectional")[rng.integers(3)]
    D = 2 if direction == "bidirectional" else 1
    attrs = {"direction": direction}
    if rng.random() < 0.8:
        per = len(DEFAULT_ACTIVATIONS[op])
        count = per * D  # ORT rejects a bidirectional node with one direction's list
        names = [ALL_ACTIVATIONS[k] for k in rng.integers(len(ALL_ACTIVATIONS), size=count)]
        # ORT's LSTM and GRU match names case-insensitively, its RNN does not
        attrs["activations"] = [n.upper() if op != "RNN" and rng.random() < 0.2 else n for n in names]
        used = names * (D if count == per else 1)
        takes_alpha = sum(DEFAULTS[n.lower()][0] is not None for n in used)
        takes_beta = sum(DEFAULTS[n.lower()][1] is not None for n in used)
        # ORT reads a missing alpha/beta as 0 for three activations (see ISSUE12_API.md): give them all
        attrs["activation_alpha"] = [float(v) for v in rng.uniform(0.1, 0.9, takes_alpha)]
        attrs["activation_beta"] = [float(v) for v in rng.uniform(0.1, 0.9, takes_beta)]
    if rng.random() < 0.4:
        attrs["clip"] = float(rng.uniform(0.3, 3.0))
    if op == "LSTM" and rng.random() < 0.4:
        attrs["input_forget"] = 1
    if op == "GRU":
        attrs["linear_before_reset"] = int(rng.integers(2))
    options = {"T": 3, "bias": rng.random() < 0.8, "lengths": rng.random() < 0.5, "initial": rng.random() < 0.5,
               "peepholes": op == "LSTM" and rng.random() < 0.5}
    return op, attrs, options
