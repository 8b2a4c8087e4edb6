"""Minimal optimisers that update parameters in place from gradients keyed like ``state_dict()``.

    opt = rnnkern.optim.Adam(layer, lr=1e-3, clip_norm=1.0)
    y, state, tape = layer.forward_train(x)
    dx, dstate0, dparams = layer.backward(tape, dy)
    opt.step(dparams)            # returns the gradients' global norm before clipping

Several modules (an encoder and a decoder) are named, and their gradients keyed the same way,
flat (``"encoder.weight_ih_l0"``) or nested:

    opt = rnnkern.optim.Adam({"encoder": encoder, "decoder": decoder}, lr=1e-3)
    opt.step({"encoder": encoder_grads, "decoder": decoder_grads})

``opt.state_dict()`` / ``opt.load_state_dict(sd)`` checkpoint and resume training (with the
modules' own state_dicts). Works on either device: the arrays' own operators do the arithmetic,
and the gradients' norm is reduced on the device and read back once per step.
"""

from __future__ import annotations

import collections.abc
import math
import numbers
from typing import Any, Iterable, Mapping, Optional, Union

import numpy as np

from ._backend import device_of, get_backend, to_host

Array = Any  # numpy.ndarray or cupy.ndarray
Params = Union[Any, Mapping[str, Any], Iterable[tuple]]  # a module, a mapping, or (name, x) pairs
Grads = Mapping[str, Any]


def _is_module(value):
    return callable(getattr(value, "named_parameters", None))


def _flatten_params(params, prefix, arrays, owners):
    """Fill ``arrays`` (dotted name -> array) and ``owners`` (name -> module) from a module, a mapping
    of names to arrays, modules or mappings, or an iterable of (name, any of those) pairs."""
    if _is_module(params):
        for name, array in params.named_parameters(prefix):
            arrays[name], owners[name] = array, params
        return
    if isinstance(params, collections.abc.Mapping):
        items = params.items()
    elif isinstance(params, collections.abc.Iterable) and not hasattr(params, "shape"):
        items = list(params)
        if not all(isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str) for item in items):
            raise TypeError("params given as a sequence must hold (name, module or array) pairs, e.g. "
                            "[('encoder', encoder), ('decoder', decoder)] or {'encoder': encoder, 'decoder': decoder}, "
                            "or the module itself rather than module.parameters(): gradients are matched to "
                            "parameters by name")
    else:
        raise TypeError(f"params must be a module, a mapping of names to arrays or modules, or (name, value) "
                        f"pairs, got {type(params).__name__}")
    for key, value in items:
        name = prefix + str(key)
        if _is_module(value) or isinstance(value, collections.abc.Mapping):
            _flatten_params(value, name + ".", arrays, owners)
        elif hasattr(value, "shape") and hasattr(value, "astype"):
            if name in arrays:
                raise ValueError(f"params: the name {name!r} is given twice")
            arrays[name] = value
        else:
            raise TypeError(f"params[{name!r}] must be an array or a module, got {type(value).__name__}")


def _flatten_grads(grads, prefix="", out=None):
    """Nested mappings of gradients ({"encoder": {...}}) as one flat mapping of dotted names."""
    out = {} if out is None else out
    if not isinstance(grads, collections.abc.Mapping):
        raise TypeError(f"grads must be a mapping of parameter name to gradient, got {type(grads).__name__}")
    for key, value in grads.items():
        if isinstance(value, collections.abc.Mapping):
            _flatten_grads(value, f"{prefix}{key}.", out)
        else:
            out[f"{prefix}{key}"] = value
    return out


def _check_positive(name, value, allow_zero=False):
    what = "non-negative" if allow_zero else "positive"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a {what} number, got {type(value).__name__} {value!r}")
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be a {what} number, got {value!r}")
    return float(value)


def _to_host(value):
    """A host copy of an array (NumPy or CuPy); anything else as it is."""
    return np.array(to_host(value)) if hasattr(value, "shape") else value


class Optimizer:
    """Base class: parameters by name, global-norm clipping, weight decay, checkpoints.

    Subclasses define ``_configure`` (their hyperparameters, checked), ``_update`` (one parameter's
    in-place update) and ``_state_fields`` (the per-parameter state that checkpoints carry)."""

    _state_fields: tuple = ()

    def __init__(self, params: Params, **hyperparameters):
        arrays: dict = {}
        owners: dict = {}
        _flatten_params(params, "", arrays, owners)
        if not arrays:
            raise TypeError(f"params must hold at least one parameter, got an empty {type(params).__name__}")
        seen: dict = {}
        for name, array in arrays.items():
            if id(array) in seen:
                raise ValueError(f"params: the same array is given as {seen[id(array)]!r} and {name!r}")
            seen[id(array)] = name
        self.params: dict = arrays
        self._owners = owners
        self._configure(**hyperparameters)
        self.steps = 0
        self.state: dict = {}  # parameter name -> its state (momentum buffer, Adam's moments...)

    def _configure(self, lr, clip_norm=None, weight_decay=0.0):
        self.lr = _check_positive("lr", lr)
        self.clip_norm = None if clip_norm is None else _check_positive("clip_norm", clip_norm)
        self.weight_decay = _check_positive("weight_decay", weight_decay, allow_zero=True)

    def hyperparameters(self) -> dict:
        """The options the optimiser was built with (and that ``state_dict()`` saves)."""
        return {"lr": self.lr, "clip_norm": self.clip_norm, "weight_decay": self.weight_decay}

    def _update(self, name, param, grad):
        """Update ``param`` in place from its (clipped, decayed) gradient."""
        raise NotImplementedError

    def step(self, grads: Grads) -> float:
        """Apply one update from ``grads`` (a subset of the parameters' keys is allowed; missing
        ones are not updated; nested mappings stand for dotted names). Returns the global L2 norm of
        the gradients before clipping, read back from the device once."""
        grads = self._checked(_flatten_grads(grads))
        norm = self._global_norm(grads)
        scale = 1.0
        if self.clip_norm is not None and norm > self.clip_norm:
            scale = self.clip_norm / (norm + 1e-6)  # as torch.nn.utils.clip_grad_norm_
        self.steps += 1
        for name, grad in grads.items():
            param = self.params[name]
            grad = grad * scale if scale != 1.0 else grad
            if self.weight_decay:
                grad = grad + self.weight_decay * param
            self._update(name, param, grad.astype(param.dtype, copy=False))
        for module in {id(self._owners[n]): self._owners[n] for n in grads if n in self._owners}.values():
            module._mark_params_written()  # tapes recorded with the old weights now fail in backward
        return norm

    @staticmethod
    def _global_norm(grads):
        """sqrt of the sum of squares, summed on the device in float64 (float16 gradients above 256
        would overflow in their own dtype) and synchronised once."""
        total = 0.0
        for grad in grads.values():
            flat = grad.astype("float64", copy=False).ravel()
            total = total + flat.dot(flat)
        return math.sqrt(float(total))

    def _checked(self, grads):
        for name, grad in grads.items():
            if not hasattr(grad, "shape") or not hasattr(grad, "astype"):
                raise TypeError(f"grads[{name!r}] must be an array on the parameters' device, "
                                f"got {type(grad).__name__}")
            if name not in self.params:
                raise KeyError(f"grads has key {name!r}, which is not a parameter (parameters: {', '.join(self.params)})")
            if tuple(grad.shape) != tuple(self.params[name].shape):
                raise ValueError(f"grads[{name!r}] must have shape {tuple(self.params[name].shape)}, "
                                 f"got {tuple(grad.shape)}")
        return grads

    # --- checkpoints -----------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything needed to resume: the optimiser's kind, hyperparameters, step count and
        per-parameter state (host NumPy copies, so that it pickles anywhere)."""
        return {"optimizer": type(self).__name__, "hyperparameters": self.hyperparameters(), "steps": self.steps,
                "state": {name: {k: _to_host(v) for k, v in st.items()} for name, st in self.state.items()}}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Resume from ``state_dict()`` of an optimiser of the same kind over the same parameter names
        (arrays go to the parameters' device and dtype). Everything is checked before anything changes."""
        kind = type(self).__name__
        if not isinstance(state_dict, collections.abc.Mapping) or \
                set(state_dict) != {"optimizer", "hyperparameters", "steps", "state"}:
            raise TypeError(f"{kind}.load_state_dict: expected the mapping that {kind}.state_dict() returns "
                            f"(keys optimizer, hyperparameters, steps, state), got {_describe(state_dict)}")
        if state_dict["optimizer"] != kind:
            raise ValueError(f"{kind}.load_state_dict: this state_dict is {state_dict['optimizer']!r}'s, not {kind}'s")
        steps = state_dict["steps"]
        if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 0:
            raise ValueError(f"{kind}.load_state_dict: steps must be a non-negative int, got {steps!r}")
        hyper, saved = state_dict["hyperparameters"], self.hyperparameters()
        if not isinstance(hyper, collections.abc.Mapping) or set(hyper) != set(saved):
            raise ValueError(f"{kind}.load_state_dict: hyperparameters must have the keys {', '.join(saved)}, "
                             f"got {_describe(hyper)}")
        if not isinstance(state_dict["state"], collections.abc.Mapping):
            raise TypeError(f"{kind}.load_state_dict: state must be a mapping of parameter name to state, "
                            f"got {_describe(state_dict['state'])}")
        state = {name: self._loaded_state(name, st) for name, st in state_dict["state"].items()}
        try:
            self._configure(**hyper)
        except Exception:
            self._configure(**saved)
            raise
        self.steps, self.state = int(steps), state

    def _loaded_state(self, name, entry):
        kind = type(self).__name__
        if name not in self.params:
            raise KeyError(f"{kind}.load_state_dict: state for {name!r}, which is not a parameter of this "
                           f"optimiser (parameters: {', '.join(self.params)})")
        if not isinstance(entry, collections.abc.Mapping) or set(entry) != set(self._state_fields):
            raise ValueError(f"{kind}.load_state_dict: the state of {name!r} must have the fields "
                             f"{', '.join(self._state_fields)}, got {_describe(entry)}")
        param, loaded = self.params[name], {}
        for field, value in entry.items():
            if field == "step":
                if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
                    raise ValueError(f"{kind}.load_state_dict: state[{name!r}]['step'] must be a non-negative "
                                     f"int, got {value!r}")
                loaded[field] = int(value)
                continue
            value = np.asarray(_to_host(value))
            if value.shape != tuple(param.shape):
                raise ValueError(f"{kind}.load_state_dict: state[{name!r}][{field!r}] must have shape "
                                 f"{tuple(param.shape)} (the parameter's), got {value.shape}")
            loaded[field] = get_backend(device_of(param)).asarray(value, param.dtype)
        return loaded

    def __repr__(self):
        options = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}({len(self.params)} parameters, {options}, steps={self.steps})"


def _describe(value):
    if isinstance(value, collections.abc.Mapping):
        return f"a mapping with keys {', '.join(map(str, value)) or 'none'}"
    return type(value).__name__


class SGD(Optimizer):
    """p -= lr * (g + momentum buffer), torch.optim.SGD's update (dampening 0)."""

    _state_fields = ("momentum_buffer",)

    def __init__(self, params: Params, lr: float, momentum: float = 0.0, clip_norm: Optional[float] = None,
                 weight_decay: float = 0.0):
        super().__init__(params, lr=lr, momentum=momentum, clip_norm=clip_norm, weight_decay=weight_decay)

    def _configure(self, lr, momentum=0.0, clip_norm=None, weight_decay=0.0):
        super()._configure(lr, clip_norm, weight_decay)
        self.momentum = _check_positive("momentum", momentum, allow_zero=True)

    def hyperparameters(self):
        return {**super().hyperparameters(), "momentum": self.momentum}

    def _update(self, name, param, grad):
        if self.momentum:
            state = self.state.get(name)
            v = grad.copy() if state is None else state["momentum_buffer"] * self.momentum + grad
            self.state[name] = {"momentum_buffer": v}
            grad = v
        param -= self.lr * grad


class Adam(Optimizer):
    """torch.optim.Adam's update (Kingma & Ba, with bias correction); steps are counted per parameter,
    since a step's gradients may cover a subset of them."""

    _state_fields = ("step", "exp_avg", "exp_avg_sq")

    def __init__(self, params: Params, lr: float = 1e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 clip_norm: Optional[float] = None, weight_decay: float = 0.0):
        super().__init__(params, lr=lr, betas=betas, eps=eps, clip_norm=clip_norm, weight_decay=weight_decay)

    def _configure(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, clip_norm=None, weight_decay=0.0):
        super()._configure(lr, clip_norm, weight_decay)
        if not (isinstance(betas, (tuple, list)) and len(betas) == 2
                and all(isinstance(b, numbers.Real) and not isinstance(b, bool) and 0 <= b < 1 for b in betas)):
            raise ValueError(f"betas must be a pair of numbers in [0, 1), got {betas!r}")
        self.betas, self.eps = tuple(float(b) for b in betas), _check_positive("eps", eps)

    def hyperparameters(self):
        return {**super().hyperparameters(), "betas": self.betas, "eps": self.eps}

    def _update(self, name, param, grad):
        b1, b2 = self.betas
        state = self.state.get(name)
        if state is None:
            t, m, v = 1, (1 - b1) * grad, (1 - b2) * grad * grad
        else:
            t = state["step"] + 1
            m = state["exp_avg"] * b1 + (1 - b1) * grad
            v = state["exp_avg_sq"] * b2 + (1 - b2) * grad * grad
        self.state[name] = {"step": t, "exp_avg": m, "exp_avg_sq": v}
        m_hat = m / (1 - b1 ** t)
        v_hat = v / (1 - b2 ** t)
        param -= self.lr * m_hat / (v_hat ** 0.5 + self.eps)
