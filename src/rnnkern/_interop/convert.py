"""What the importers (ONNX, Keras) share: the layer spec they produce, stacking, building the layer,
ONNX's activation names (which rnnkern's layers take)."""

import dataclasses

import numpy as np

from .._recurrences import activations as _activations
from .._nn import params as _params
from .._recurrences.semantics import DEFAULT_ACTIVATIONS  # noqa: F401 (the importers take it from here)


def canonical_activation(name, where):
    """ONNX's spelling of an activation name given in any case, or a ValueError naming ``where``."""
    try:
        return _activations.canonical(name, where)
    except ValueError:
        raise ValueError(f"{where}: unknown activation {name!r}; supported: {', '.join(_activations.NAMES)}") from None


@dataclasses.dataclass
class LayerSpec:
    """Everything needed to build the layer of an ONNX node or a Keras layer (or a stack of them)."""
    op: str              # "RNN", "GRU" or "LSTM"
    options: dict        # constructor keyword arguments
    state_dict: dict     # NumPy arrays in PyTorch's names and layouts
    initial_state: object = None  # None, h_0 or (h_0, c_0), each (L*D, B, H)


def stack_specs(specs, op, what="from_onnx"):
    """One LayerSpec for a stack of single-layer specs (layer k reads layer k-1's output)."""
    first = specs[0]
    per_layer = {k: v for k, v in first.options.items() if k != "input_size"}
    state_dict, states = {}, []
    for k, spec in enumerate(specs):
        if {key: v for key, v in spec.options.items() if key != "input_size"} != per_layer:
            raise ValueError(f"{op}.{what}: the stacked layers 0 and {k} differ in their attributes or inputs "
                             "(hidden_size, direction, layout, activations, clip, biases...); a stack needs equal ones")
        expected = (2 if first.options["bidirectional"] else 1) * first.options["hidden_size"]
        if k and spec.options["input_size"] != expected:
            raise ValueError(f"{op}.{what}: stacked layer {k} reads {spec.options['input_size']} features, but "
                             f"layer {k - 1} outputs {expected}")
        state_dict.update({key.replace("_l0", f"_l{k}"): v for key, v in spec.state_dict.items()})
        states.append(spec.initial_state)
    options = {**first.options, "num_layers": len(specs)}
    return LayerSpec(op, options, state_dict, _stack_states(states, op, what))


def _stack_states(states, op, what):
    """The stack's initial state: each node's (zeros for a node without one), concatenated over layers."""
    given = next((s for s in states if s is not None), None)
    if given is None:
        return None
    as_list = lambda s: list(s) if isinstance(s, tuple) else [s]  # noqa: E731
    template = as_list(given)
    filled = [as_list(s) if s is not None else [np.zeros_like(t) for t in template] for s in states]
    if len({f[0].shape for f in filled}) != 1:
        raise ValueError(f"{op}.{what}: the stacked layers' initial states have different shapes "
                         f"({', '.join(str(f[0].shape) for f in filled)})")
    stacked = [np.concatenate([f[i] for f in filled]) for i in range(len(template))]
    return tuple(stacked) if op == "LSTM" else stacked[0]


def build_layer(cls, spec, device="cpu", dtype=None, what="from_onnx"):
    """An instance of ``cls`` holding the spec's weights, options and initial state (``what`` names the
    importer in messages)."""
    options = dict(spec.options)
    input_size, hidden_size = options.pop("input_size"), options.pop("hidden_size")
    if dtype is None:
        dtype = next(iter(spec.state_dict.values())).dtype
        dtype = dtype if dtype.kind == "f" else np.dtype("float32")
    layer = cls(input_size, hidden_size, **options, device=device, dtype=dtype)
    _params.check_params(spec.state_dict, layer._shapes(), cls.__name__, what)
    layer._set_params(spec.state_dict)
    if spec.initial_state is not None:
        states = spec.initial_state if isinstance(spec.initial_state, tuple) else (spec.initial_state,)
        converted = tuple(layer._backend.asarray(s, layer.dtype) for s in states)
        layer.initial_state = converted if len(converted) > 1 else converted[0]
    return layer
