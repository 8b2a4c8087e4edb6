"""Import Keras 3 recurrent layers: LSTM, GRU, SimpleRNN (-> RNN), Bidirectional, stacks.

Keras keeps ``kernel`` (I, G*H), ``recurrent_kernel`` (H, G*H) and ``bias`` (G*H,), or (2, G*H) for a
GRU with ``reset_after=True`` (input and recurrent biases), gate blocks LSTM i, f, c, o (PyTorch's
i, f, g, o) and GRU z, r, h (-> r, z, n). Keras is batch-major: the layers are built with
batch_first=True. ``go_backwards=True`` maps to direction="reverse": Keras returns that layer's
outputs in processing order, so its ``y[:, t]`` is rnnkern's ``y[:, T-1-t]`` (rnnkern keeps each
output at its time index, as a Bidirectional's backward half does); the final states agree.
Keras is never imported here: everything is read from configs and weight arrays. Training-time
settings (dropout, recurrent_dropout) and execution settings (unroll, stateful) do not change a
layer's outputs at inference and are not carried over.
"""

import numpy as np

from .convert import DEFAULT_ACTIVATIONS, LayerSpec, build_layer, stack_specs

KERAS_CLASSES = {"LSTM": "LSTM", "GRU": "GRU", "SimpleRNN": "RNN"}
_TO_RNNKERN_ORDER = {"LSTM": [0, 1, 2, 3], "GRU": [1, 0, 2], "RNN": [0]}
# Keras activation name -> (ONNX activation, alpha, beta) computing the same function (Keras 3's
# definitions: hard_sigmoid is relu6(x + 3) / 6 = clip(x/6 + 1/2, 0, 1); leaky_relu's slope is 0.2).
KERAS_ACTIVATIONS = {
    "tanh": ("Tanh", None, None), "sigmoid": ("Sigmoid", None, None), "relu": ("Relu", None, None),
    "hard_sigmoid": ("HardSigmoid", 1.0 / 6.0, 0.5), "linear": ("Affine", 1.0, 0.0), "elu": ("Elu", 1.0, None),
    "softsign": ("Softsign", None, None), "softplus": ("Softplus", None, None),
    "leaky_relu": ("LeakyRelu", 0.2, None),
}


def _describe(layer):
    """(Keras class name, config dict, weights or None) of a layer object or a (serialised) config."""
    if isinstance(layer, dict):
        if "class_name" in layer and "config" in layer:  # keras.saving.serialize_keras_object / model configs
            return layer["class_name"], layer["config"], None
        return ("Bidirectional" if "layer" in layer and "merge_mode" in layer else None), layer, None
    if hasattr(layer, "get_config") and hasattr(layer, "get_weights"):
        return type(layer).__name__, layer.get_config(), [np.asarray(w) for w in layer.get_weights()]
    raise TypeError(f"from_keras: layer must be a Keras layer, its get_config() dict or a list of them, "
                    f"got {type(layer).__name__}")


def _activation(config, key, where):
    name = config.get(key, "tanh" if key == "activation" else "sigmoid")
    if not isinstance(name, str) or name not in KERAS_ACTIVATIONS:
        raise ValueError(f"{where}: {key}={name!r} has no ONNX equivalent in rnnkern; supported: "
                         f"{', '.join(KERAS_ACTIVATIONS)}")
    return KERAS_ACTIVATIONS[name]


def _activation_options(op, config, where):
    """Constructor options for Keras's activation / recurrent_activation (none for the defaults)."""
    act = _activation(config, "activation", where)
    funcs = [act] if op == "RNN" else [_activation(config, "recurrent_activation", where), act]
    if op == "LSTM":
        funcs.append(act)  # the cell input (g) and the output (h) activations are both `activation`
    names = [f[0] for f in funcs]
    if op == "RNN" and names in (["Tanh"], ["Relu"]):
        return {"nonlinearity": names[0].lower()}
    if tuple(names) == DEFAULT_ACTIVATIONS[op]:
        return {}
    options = {"activations": names}
    alphas = [f[1] for f in funcs if f[1] is not None]
    betas = [f[2] for f in funcs if f[2] is not None]
    if alphas:
        options["activation_alpha"] = alphas
    if betas:
        options["activation_beta"] = betas
    return options


def _blocks(matrix, op, H):
    """Keras's (in, G*H) matrix (or (G*H,) bias) as rnnkern's (G*H, in) rows, gate blocks reordered."""
    m = np.asarray(matrix)
    m = m.T if m.ndim == 2 else m
    return np.concatenate([m[k * H:(k + 1) * H] for k in _TO_RNNKERN_ORDER[op]])


def _direction_arrays(op, config, weights, suffix, where):
    """rnnkern's state_dict entries of one Keras recurrent layer (one direction)."""
    H, G = int(config["units"]), {"LSTM": 4, "GRU": 3, "RNN": 1}[op]
    use_bias = config.get("use_bias", True)
    if len(weights) != (3 if use_bias else 2):
        raise ValueError(f"{where}: expected {3 if use_bias else 2} weight arrays (kernel, recurrent_kernel"
                         f"{', bias' if use_bias else ''}; use_bias={use_bias}), got {len(weights)}")
    kernel, recurrent = np.asarray(weights[0]), np.asarray(weights[1])
    if kernel.ndim != 2 or kernel.shape[1] != G * H or recurrent.shape != (H, G * H):
        raise ValueError(f"{where}: kernel must be (input_size, {G}*units) and recurrent_kernel ({H}, {G * H}) "
                         f"for units={H}, got {kernel.shape} and {recurrent.shape}")
    out = {f"weight_ih{suffix}": _blocks(kernel, op, H), f"weight_hh{suffix}": _blocks(recurrent, op, H)}
    if use_bias:
        bias = np.asarray(weights[2])
        two = op == "GRU" and config.get("reset_after", True)
        expected = (2, G * H) if two else (G * H,)
        if bias.shape != expected:
            raise ValueError(f"{where}: bias must have shape {expected}, got {bias.shape}")
        out[f"bias_ih{suffix}"] = _blocks(bias[0] if two else bias, op, H)
        out[f"bias_hh{suffix}"] = _blocks(bias[1], op, H) if two else np.zeros_like(out[f"bias_ih{suffix}"])
    return out, int(kernel.shape[0])


def _options(op, config, where):
    """Constructor options of one Keras recurrent layer's config (those a Bidirectional's halves share)."""
    options = {"hidden_size": int(config["units"]), "bias": bool(config.get("use_bias", True)), "batch_first": True}
    options.update(_activation_options(op, config, where))
    if op == "GRU":
        options["linear_before_reset"] = bool(config.get("reset_after", True))
    return options


def layer_spec(op, layer, weights=None, index=0):
    """LayerSpec of one Keras layer (recurrent or Bidirectional) for rnnkern's ``op``."""
    class_name, config, own_weights = _describe(layer)
    weights = own_weights if weights is None else [np.asarray(w) for w in weights]
    name = config.get("name", class_name or op)
    where = f"from_keras: layer {index} ({name!r})"
    if weights is None:
        raise ValueError(f"{where}: a config needs its weights: pass weights=layer.get_weights()")
    if not weights:
        raise ValueError(f"{where}: the Keras layer has no weights yet; build it first (call it on an input, "
                         "or layer.build((None, T, input_size)))")
    if class_name == "Bidirectional":
        return _bidirectional_spec(op, config, weights, where)
    if class_name is not None and KERAS_CLASSES.get(class_name) != op:
        raise ValueError(f"{where}: a Keras {class_name} does not map to rnnkern.{op} "
                         f"(LSTM -> LSTM, GRU -> GRU, SimpleRNN -> RNN)")
    arrays, input_size = _direction_arrays(op, config, weights, "_l0", where)
    options = {"input_size": input_size, **_options(op, config, where), "bidirectional": False}
    if config.get("go_backwards", False):
        options["direction"] = "reverse"
    return LayerSpec(op, options, arrays)


def _bidirectional_spec(op, config, weights, where):
    if config.get("merge_mode", "concat") != "concat":
        raise ValueError(f"{where}: Bidirectional merge_mode={config.get('merge_mode')!r} is not supported "
                         "(rnnkern concatenates the directions: merge_mode='concat')")
    halves = [config["layer"], config.get("backward_layer")]
    if halves[1] is None:  # Keras builds the backward layer as a go_backwards copy of the forward one
        halves[1] = {**halves[0], "config": {**halves[0]["config"], "go_backwards": True}}
    for half in halves:
        if KERAS_CLASSES.get(half.get("class_name")) != op:
            raise ValueError(f"{where}: the Bidirectional wraps a Keras {half.get('class_name')}, "
                             f"which does not map to rnnkern.{op}")
    forward, backward = (h["config"] for h in halves)
    if forward.get("go_backwards", False) or not backward.get("go_backwards", False):
        raise ValueError(f"{where}: the Bidirectional's forward layer must run forwards and its backward layer "
                         "backwards (go_backwards)")
    if _options(op, forward, where) != _options(op, backward, where):
        raise ValueError(f"{where}: the Bidirectional's two layers differ in units, use_bias, activations or "
                         "reset_after; rnnkern's bidirectional layers share them")
    half = len(weights) // 2
    arrays, input_size = _direction_arrays(op, forward, weights[:half], "_l0", where)
    reverse, _ = _direction_arrays(op, backward, weights[half:], "_l0_reverse", where)
    options = {"input_size": input_size, **_options(op, forward, where), "bidirectional": True}
    for key in ("activation_alpha", "activation_beta"):  # consumed over both directions' activations
        if key in options:
            options[key] = options[key] * 2
    return LayerSpec(op, options, {**arrays, **reverse})


def keras_spec(op, layer, weights=None):
    """LayerSpec of a Keras layer or of a list of them (a stack)."""
    if isinstance(layer, (list, tuple)):
        if weights is not None and len(weights) != len(layer):
            raise ValueError(f"from_keras: {len(layer)} layers but {len(weights)} weight lists")
        specs = [layer_spec(op, item, None if weights is None else weights[k], k) for k, item in enumerate(layer)]
        for k, item in enumerate(layer[:-1]):
            config = _describe(item)[1]
            inner = config["layer"]["config"] if "layer" in config else config  # a Bidirectional's wrapped layer
            if not inner.get("return_sequences", True):
                raise ValueError(f"from_keras: layer {k} has return_sequences=False, so it cannot feed layer {k + 1}")
        return specs[0] if len(specs) == 1 else stack_specs(specs, op, "from_keras")
    return layer_spec(op, layer, weights)


def from_keras(cls, layer, weights=None, device="cpu", dtype=None):
    return build_layer(cls, keras_spec(cls.__name__, layer, weights), device, dtype, "from_keras")
