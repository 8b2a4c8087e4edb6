"""What the layer-normalised layers and cells (rnnkern.layernorm) share: their parameters' names,
shapes and Haste's initialisation, the checks of their options, and the training masks.

Training draws, in this order for each layer (cells: one step of one layer) and direction, from
``forward_train``'s generator (the module's own when None): DropConnect's mask of W_hh,
``generator.random((G*H, H)) >= recurrent_dropout`` (kept entries scaled by 1 / (1 - p)), when
recurrent_dropout > 0; then zoneout's, ``generator.random((T, B, H)) >= zoneout`` (1: the step's
new h is taken), when zoneout > 0, with T and B in the caller's order (time-major whatever
batch_first; B = 1 unbatched); then, for a layer but the last, the dropout mask of the layer's
output as the other layers draw it (rnnkern._recurrences.dropout).
"""

import math
import numbers

import numpy as np

from .._recurrences.dropout import draw_mask
from .._recurrences.layernorm import LayerNormGRURecurrence, LayerNormLSTMRecurrence
from .._recurrences.sequence import take

# per layer and direction, in state_dict order; the LSTM has Haste's one bias, the GRU its two
LSTM_NAMES = ("weight_ih", "weight_hh", "bias", "layer_norm_ih_weight", "layer_norm_hh_weight",
              "layer_norm_c_weight", "layer_norm_c_bias")
GRU_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "layer_norm_ih_weight", "layer_norm_hh_weight")
RECURRENCES = {"LSTM": LayerNormLSTMRecurrence, "GRU": LayerNormGRURecurrence}
NAMES = {"LSTM": LSTM_NAMES, "GRU": GRU_NAMES}


def check_probability(name, p, owner):
    """A probability in [0, 1] as a float, or a clear error."""
    if isinstance(p, bool) or not isinstance(p, numbers.Real):
        raise TypeError(f"{owner}: {name} must be a number in [0, 1], got {type(p).__name__} {p!r}")
    if not 0 <= p <= 1:
        raise ValueError(f"{owner}: {name} must be a number in [0, 1], got {p!r}")
    return float(p)


def check_forget_bias(value, owner):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise TypeError(f"{owner}: forget_bias must be a finite number (the initial bias of the forget gate), "
                        f"got {type(value).__name__} {value!r}")
    return float(value)


def param_shapes(kind, input_size, hidden_size, suffix=""):
    """The shapes of one layer and direction's parameters, keyed with ``suffix``, in state_dict order."""
    G = 4 if kind == "LSTM" else 3
    H, GH = hidden_size, G * hidden_size
    shapes = {"weight_ih": (GH, input_size), "weight_hh": (GH, H), "bias": (GH,), "bias_ih": (GH,),
              "bias_hh": (GH,), "layer_norm_ih_weight": (GH,), "layer_norm_hh_weight": (GH,),
              "layer_norm_c_weight": (H,), "layer_norm_c_bias": (H,)}
    return {name + suffix: shapes[name] for name in NAMES[kind]}


def _orthogonal(rng, n):
    """A uniformly random orthogonal n x n matrix (QR of a Gaussian one, signs fixed as torch does)."""
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.where(np.diag(r) < 0, -1.0, 1.0)


def haste_init(kind, shapes, hidden_size, seed, forget_bias):
    """Haste's initialisation, float64, from ``seed``: each gate block of W_ih xavier-uniform, of W_hh
    orthogonal, the LayerNorms' gains ones and shifts zeros, the biases zeros but the LSTM's forget
    block (forget_bias)."""
    rng, H = np.random.default_rng(seed), hidden_size
    params = {}
    for name, shape in shapes.items():
        if name.startswith("weight_ih"):
            bound = math.sqrt(6.0 / (shape[1] + H))
            value = np.concatenate([rng.uniform(-bound, bound, (H, shape[1])) for _ in range(shape[0] // H)])
        elif name.startswith("weight_hh"):
            value = np.concatenate([_orthogonal(rng, H) for _ in range(shape[0] // H)])
        elif name.startswith("layer_norm") and "weight" in name:
            value = np.ones(shape)
        else:
            value = np.zeros(shape)
            if kind == "LSTM" and name.startswith("bias"):
                value[H:2 * H] = forget_bias  # gate order i, f, g, o
        params[name] = value
    return params


def training_recurrence(module, kind, params, draws):
    """A recurrence bound to ``params`` (one layer and direction) with the training masks drawn as the
    module docstring says: zoneout's (T, B, H) and DropConnect's of W_hh."""
    bk, H, dtype, rng = module._backend, module.hidden_size, module.dtype, draws.generator
    p_drop = draws.options.get("recurrent_dropout", 0.0)
    dropconnect = bk.asarray(draw_mask(rng, p_drop, params["weight_hh"].shape, dtype)) if p_drop else None
    mask = None
    if module.zoneout:
        mask = bk.asarray((rng.random((draws.steps, draws.batch, H)) >= module.zoneout).astype(dtype))
        mask = take(bk, mask, draws.order, 1) if draws.order is not None else mask
    return RECURRENCES[kind](bk, H, params, module.zoneout, mask, dropconnect)
