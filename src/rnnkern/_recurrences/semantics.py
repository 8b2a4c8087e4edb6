"""ONNX's RNN/LSTM/GRU options on the layers: direction, activations, clip, input_forget, peepholes,
initial_state.

``resolve`` checks the options a layer was given and returns ``Semantics``: the normalised
attributes and, per direction, a ``CellMath``: the activations and options of that direction's cell.
Every direction has one; the defaults (``default_math``) are one instance of it, which the backends
run on their fast default kernels (``CellMath.is_default``). A CellMath is hashable: it keys every
compiled kernel on every device. ONNX's rules, as ONNX Runtime applies them:

- ``activations``: per direction RNN (f), GRU (f, g), LSTM (f, g, h); one direction's list applies
  to every direction, a bidirectional layer also takes both (forward's first).
- ``activation_alpha`` / ``activation_beta``: consumed in order over the whole list, each value only
  by an activation that takes that parameter; the ONNX operators' defaults when a list runs out.
- ``clip``: every gate pre-activation is clamped to [-clip, clip] before its activation (LSTM: i, f,
  o with their peephole terms, and g; GRU: r, z and n's whole argument); the LSTM's h(c) is not.
- ``input_forget`` (LSTM): f = 1 - i; the f weights, bias and peephole are then unused.
- ``peephole`` (LSTM): ``weight_p_l{k}[_reverse]`` (3*H,) in ONNX's P order (i, o, f); i and f add
  p * c_{t-1}, o adds p * c_t, before the clip.
"""

import math
import numbers
from typing import NamedTuple, Optional

from . import activations as _activations
from .._validate import check_bool

DIRECTIONS = ("forward", "reverse", "bidirectional")
DEFAULT_ACTIVATIONS = {"RNN": ("Tanh",), "LSTM": ("Sigmoid", "Tanh", "Tanh"), "GRU": ("Sigmoid", "Tanh")}
_NONLINEARITY = {"tanh": "Tanh", "relu": "Relu"}
_DEFAULT_ACTS = {kind: _activations.bind(names, (), ()) for kind, names in DEFAULT_ACTIVATIONS.items()}
OPTION_NAMES = ("direction", "activations", "activation_alpha", "activation_beta", "clip")
LSTM_OPTION_NAMES = ("input_forget", "peephole")


_PLAIN_RNN = (_activations.Act("Tanh"), _activations.Act("Relu"))


class CellMath(NamedTuple):
    """One direction's cell math: activations and options; the key of its compiled kernels."""
    kind: str  # "RNN", "LSTM", "GRU"
    acts: tuple  # Acts: RNN (f,), GRU (f, g), LSTM (f, g, h)
    clip: Optional[float] = None
    input_forget: bool = False
    peephole: bool = False

    @property
    def is_default(self):
        """Whether this is the default math (RNN: plain tanh or relu), which the fast kernels run."""
        if self.clip is not None or self.input_forget or self.peephole:
            return False
        if self.kind == "RNN":
            return len(self.acts) == 1 and self.acts[0] in _PLAIN_RNN
        return self.acts == _DEFAULT_ACTS[self.kind]

    @property
    def saves_activations(self):
        """What training keeps of each gate: its activation (the default math), else its
        pre-activation (clipped and piecewise activations need their argument for the derivative)."""
        return self.is_default


def default_math(kind, nonlinearity="tanh"):
    """The default CellMath of ``kind`` ("RNN", "LSTM", "GRU"; the RNN's ``nonlinearity``: "tanh", "relu")."""
    if kind == "RNN":
        return CellMath(kind, (_activations.Act(_NONLINEARITY[nonlinearity or "tanh"]),))
    return CellMath(kind, _DEFAULT_ACTS[kind])


class Semantics(NamedTuple):
    direction: str
    activations: tuple  # canonical names, all directions
    activation_alpha: tuple  # the alpha of every activation that takes one, in order (defaults filled in)
    activation_beta: tuple
    clip: Optional[float]
    input_forget: bool
    peephole: bool
    maths: tuple  # per direction: its CellMath


def check_direction(direction, bidirectional, owner):
    """(direction, bidirectional): None follows ``bidirectional``; a contradicting pair is a ValueError."""
    if direction is None:
        return ("bidirectional" if bidirectional else "forward"), bidirectional
    if direction not in DIRECTIONS:
        raise ValueError(f"{owner}: direction must be one of {', '.join(map(repr, DIRECTIONS))} or None, "
                         f"got {direction!r}")
    if bidirectional and direction != "bidirectional":
        raise ValueError(f"{owner}: bidirectional=True contradicts direction={direction!r}; pass one of them")
    return direction, direction == "bidirectional"


def _floats(name, values, owner):
    if values is None:
        return ()
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise TypeError(f"{owner}: {name} must be a sequence of floats or None, got {type(values).__name__}")
    values = list(values)
    bad = [v for v in values if isinstance(v, bool) or not isinstance(v, numbers.Real)]
    if bad:
        raise TypeError(f"{owner}: {name} must hold real numbers, got {bad[0]!r}")
    if not all(map(math.isfinite, values)):
        raise ValueError(f"{owner}: {name} must hold finite numbers, got {list(values)}")
    return tuple(float(v) for v in values)


def default_names(kind, directions, nonlinearity=None):
    """The activations of every direction when none are given."""
    base = (_NONLINEARITY[nonlinearity or "tanh"],) if kind == "RNN" else DEFAULT_ACTIVATIONS[kind]
    return base * directions


def uniform_nonlinearity(names):
    """"tanh" or "relu" when every direction's RNN activation is that one, else None."""
    for key, name in _NONLINEARITY.items():
        if all(n == name for n in names):
            return key
    return None


def _names(activations, kind, directions, nonlinearity, owner):
    """The canonical names of every direction's activations."""
    per = len(DEFAULT_ACTIVATIONS[kind])
    if activations is None:
        return default_names(kind, directions, nonlinearity)
    if isinstance(activations, (str, bytes)) or not hasattr(activations, "__iter__"):
        raise TypeError(f"{owner}: activations must be a sequence of ONNX activation names or None, "
                        f"got {type(activations).__name__} {activations!r}")
    names = tuple(_activations.canonical(a, owner) for a in activations)
    if len(names) not in {per, per * directions}:
        sizes = f"{per}" + (f" (one direction's) or {per * directions} (both)" if directions > 1 else "")
        raise ValueError(f"{owner}: activations must have {sizes} names ({'f, g, h'[:3 * per - 2]} per direction), "
                         f"got {len(names)}: {list(names)}")
    return names if len(names) == per * directions else names * directions


def _check_nonlinearity(nonlinearity, names, owner):
    if nonlinearity is None:
        return
    if any(name != _NONLINEARITY[nonlinearity] for name in names):
        raise ValueError(f"{owner}: nonlinearity={nonlinearity!r} contradicts activations={list(names)}; "
                         f"pass one of them")


def _check_clip(clip, owner):
    if clip is None:
        return None
    if isinstance(clip, bool) or not isinstance(clip, numbers.Real):
        raise TypeError(f"{owner}: clip must be a positive float or None, got {type(clip).__name__} {clip!r}")
    if not clip > 0 or math.isinf(clip):
        raise ValueError(f"{owner}: clip must be a positive finite float (the cell clip threshold) or None, got {clip}")
    return float(clip)


def resolve(kind, directions, options, owner, nonlinearity=None, proj_size=0):
    """Semantics of a layer of ``kind`` ("RNN", "LSTM", "GRU") with ``directions`` directions, from its
    ONNX options (a dict; unknown keys are a TypeError naming the option)."""
    allowed = OPTION_NAMES + (LSTM_OPTION_NAMES if kind == "LSTM" else ())
    unknown = [k for k in options if k not in allowed]
    if unknown:
        lstm_only = [k for k in unknown if k in LSTM_OPTION_NAMES]
        why = f" ({', '.join(lstm_only)}: LSTM options)" if lstm_only else ""
        raise TypeError(f"{owner}.__init__() got an unexpected keyword argument {unknown[0]!r}{why}")
    names = _names(options.get("activations"), kind, directions, nonlinearity, owner)
    if kind == "RNN":
        _check_nonlinearity(nonlinearity, names, owner)
    acts = _activations.bind(names, _floats("activation_alpha", options.get("activation_alpha"), owner),
                             _floats("activation_beta", options.get("activation_beta"), owner))
    clip = _check_clip(options.get("clip"), owner)
    input_forget = check_bool("input_forget", options.get("input_forget", False), owner)
    peephole = check_bool("peephole", options.get("peephole", False), owner)
    if peephole and proj_size:
        raise ValueError(f"{owner}: peephole=True cannot be combined with proj_size={proj_size} "
                         f"(ONNX's LSTM has no projection); use one of them")
    per = len(DEFAULT_ACTIVATIONS[kind])
    maths = tuple(CellMath(kind, acts[d * per:(d + 1) * per], clip, input_forget, peephole)
                  for d in range(directions))
    return Semantics(
        direction=options.get("direction"), activations=names,
        activation_alpha=tuple(a.alpha for a in acts if a.alpha is not None),
        activation_beta=tuple(a.beta for a in acts if a.beta is not None),
        clip=clip, input_forget=input_forget, peephole=peephole, maths=maths)
