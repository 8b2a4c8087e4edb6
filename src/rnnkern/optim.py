"""Minimal optimisers that update parameters in place from gradients keyed like ``state_dict()``.

    opt = rnnkern.optim.Adam(layer, lr=1e-3, clip_norm=1.0)
    y, state, tape = layer.forward_train(x)
    dx, dstate0, dparams = layer.backward(tape, dy)
    opt.step(dparams)            # returns the gradients' global norm before clipping

Works on either device: the arrays' own operators do the arithmetic.
"""

import collections.abc
import math
import numbers


def _param_dict(params):
    if hasattr(params, "parameters") and callable(params.parameters):
        params = params.parameters()
    if not isinstance(params, collections.abc.Mapping) or not params:
        raise TypeError(f"params must be a module with parameters() or a non-empty mapping of name to array, "
                        f"got {type(params).__name__}")
    return dict(params)


def _check_positive(name, value, allow_zero=False):
    what = "non-negative" if allow_zero else "positive"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a {what} number, got {type(value).__name__} {value!r}")
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be a {what} number, got {value!r}")
    return float(value)


class Optimizer:
    def __init__(self, params, lr, clip_norm=None, weight_decay=0.0):
        self.params = _param_dict(params)
        self.lr = _check_positive("lr", lr)
        self.clip_norm = None if clip_norm is None else _check_positive("clip_norm", clip_norm)
        self.weight_decay = _check_positive("weight_decay", weight_decay, allow_zero=True)
        self.steps = 0

    def step(self, grads):
        """Apply one update from ``grads`` (a subset of the parameters' keys is allowed; missing
        ones are not updated). Returns the global L2 norm of the gradients before clipping."""
        grads = self._checked(grads)
        # squares summed in float64: float16 gradients above 256 would overflow in their own dtype
        norm = math.sqrt(sum(float((g.astype("float64") ** 2).sum()) for g in grads.values()))
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
        return norm

    def _checked(self, grads):
        if not isinstance(grads, collections.abc.Mapping):
            raise TypeError(f"grads must be a mapping of parameter name to gradient, got {type(grads).__name__}")
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


class SGD(Optimizer):
    """p -= lr * (g + momentum buffer), torch.optim.SGD's update (dampening 0)."""

    def __init__(self, params, lr, momentum=0.0, clip_norm=None, weight_decay=0.0):
        super().__init__(params, lr, clip_norm, weight_decay)
        self.momentum = _check_positive("momentum", momentum, allow_zero=True)
        self._velocity = {}

    def _update(self, name, param, grad):
        if self.momentum:
            v = self._velocity.get(name)
            v = grad.copy() if v is None else v * self.momentum + grad
            self._velocity[name] = grad = v
        param -= self.lr * grad


class Adam(Optimizer):
    """torch.optim.Adam's update (Kingma & Ba, with bias correction)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, clip_norm=None, weight_decay=0.0):
        super().__init__(params, lr, clip_norm, weight_decay)
        if not (isinstance(betas, (tuple, list)) and len(betas) == 2
                and all(isinstance(b, numbers.Real) and not isinstance(b, bool) and 0 <= b < 1 for b in betas)):
            raise ValueError(f"betas must be a pair of numbers in [0, 1), got {betas!r}")
        self.betas, self.eps = tuple(float(b) for b in betas), _check_positive("eps", eps)
        self._m, self._v, self._t = {}, {}, {}  # per parameter: a subset of grads may skip some

    def _update(self, name, param, grad):
        b1, b2 = self.betas
        t = self._t[name] = self._t.get(name, 0) + 1
        m = self._m[name] = self._m[name] * b1 + (1 - b1) * grad if name in self._m else (1 - b1) * grad
        v = self._v[name] = self._v[name] * b2 + (1 - b2) * grad * grad if name in self._v else (1 - b2) * grad * grad
        m_hat = m / (1 - b1 ** t)
        v_hat = v / (1 - b2 ** t)
        param -= self.lr * m_hat / (v_hat ** 0.5 + self.eps)
