"""ONNX's recurrent activations: one table, used by every backend, forward and derivative.

Each activation is ``f(x; alpha, beta)`` as the ONNX operator of that name defines it. An entry
gives its parameters' defaults (None: it takes no such parameter), the NumPy forward and the
derivative *at the pre-activation* x, and the same two as CUDA expressions in ``x``, ``A``
(alpha) and ``B`` (beta) that kernels/activations.cuh's functions implement. Outside the default
math the kernels keep pre-activations (not outputs) for backward, because ``clip`` and some
activations (ThresholdedRelu, Affine, HardSigmoid at its kinks) have no derivative expressible in
the output.

``Act`` binds one activation to its alpha and beta; it is hashable, so a combination of Acts
(with clip and the LSTM's options: a ``_semantics.CellMath``) keys one compiled kernel.
"""

from typing import NamedTuple, Optional

import numpy as np


def _sigmoid(x):
    return np.tanh(x * 0.5) * 0.5 + 0.5  # as kernels/common.cuh: no exp, no overflow


def _dsigmoid(x):
    s = _sigmoid(x)
    return s * (1 - s)


def _dtanh(x):
    t = np.tanh(x)
    return 1 - t * t


def _where(cond, yes, no, x):
    return np.where(cond, yes, no).astype(x.dtype, copy=False)


def _elu(x, a, b):
    return _where(x >= 0, x, a * np.expm1(np.minimum(x, 0)), x)


def _softplus(x, a, b):
    return np.logaddexp(x.dtype.type(0), x)


# name: (default alpha, default beta, forward(x, A, B), derivative(x, A, B)); x is an array.
_NUMPY = {
    "Sigmoid": (None, None, lambda x, a, b: _sigmoid(x), lambda x, a, b: _dsigmoid(x)),
    "Tanh": (None, None, lambda x, a, b: np.tanh(x), lambda x, a, b: _dtanh(x)),
    # the derivative is 1 at NaN: torch's relu backward masks where x <= 0, so NaN passes the gradient
    "Relu": (None, None, lambda x, a, b: np.maximum(x, 0), lambda x, a, b: _where(x <= 0, 0, 1, x)),
    "HardSigmoid": (0.2, 0.5, lambda x, a, b: np.clip(a * x + b, 0, 1),
                    lambda x, a, b: _where((a * x + b > 0) & (a * x + b < 1), a, 0, x)),
    "LeakyRelu": (0.01, None, lambda x, a, b: _where(x >= 0, x, a * x, x),
                  lambda x, a, b: _where(x >= 0, 1, a, x)),
    "ThresholdedRelu": (1.0, None, lambda x, a, b: _where(x > a, x, 0, x), lambda x, a, b: _where(x > a, 1, 0, x)),
    "ScaledTanh": (1.0, 1.0, lambda x, a, b: a * np.tanh(b * x), lambda x, a, b: a * b * _dtanh(b * x)),
    "Elu": (1.0, None, _elu, lambda x, a, b: _where(x >= 0, 1, a * np.exp(np.minimum(x, 0)), x)),
    "Softsign": (None, None, lambda x, a, b: x / (1 + np.abs(x)), lambda x, a, b: 1 / np.square(1 + np.abs(x))),
    "Softplus": (None, None, _softplus, lambda x, a, b: _sigmoid(x)),
    "Affine": (1.0, 0.0, lambda x, a, b: a * x + b, lambda x, a, b: np.full_like(x, a)),
}
NAMES = tuple(_NUMPY)
_CANONICAL = {name.lower(): name for name in NAMES}

# The CUDA device functions of kernels/activations.cuh: rk_act_<lower name>(x, A, B), rk_dact_...
CUDA_FUNCS = {name: (f"rk_act_{name.lower()}", f"rk_dact_{name.lower()}") for name in NAMES}


class Act(NamedTuple):
    """One activation with its parameters (None where it takes none)."""
    name: str
    alpha: Optional[float] = None
    beta: Optional[float] = None

    def __call__(self, x):
        """f(x) as a new array of x's dtype."""
        out = _NUMPY[self.name][2](x, *self._params(x))
        return out.astype(x.dtype, copy=False)

    def grad(self, x):
        """f'(x), from the pre-activation x."""
        return _NUMPY[self.name][3](x, *self._params(x)).astype(x.dtype, copy=False)

    def _params(self, x):
        kind = x.dtype.type
        return (kind(self.alpha) if self.alpha is not None else None,
                kind(self.beta) if self.beta is not None else None)

    def cuda(self):
        """(forward call, derivative call) as C++ expressions in the compute type C and x."""
        a = "C(0)" if self.alpha is None else f"C({self.alpha!r})"
        b = "C(0)" if self.beta is None else f"C({self.beta!r})"
        fwd, grad = CUDA_FUNCS[self.name]
        return f"{fwd}(x, {a}, {b})", f"{grad}(x, {a}, {b})"


def canonical(name, owner):
    """The canonical ONNX spelling of ``name`` (matched case-insensitively), or a ValueError."""
    if not isinstance(name, str) or name.lower() not in _CANONICAL:
        raise ValueError(f"{owner}: activations must be ONNX activation names ({', '.join(NAMES)}; "
                         f"case-insensitive), got {name!r}")
    return _CANONICAL[name.lower()]


def defaults(name):
    """(alpha, beta) defaults of the activation ``name`` (None where it takes no such parameter)."""
    return _NUMPY[name][:2]


def bind(names, alphas, betas):
    """Acts for canonical ``names``, consuming ``alphas`` / ``betas`` in order, each value only by an
    activation that takes that parameter (ONNX Runtime's rule); defaults when a list runs out.
    Values left over are ignored, as ONNX Runtime ignores them."""
    alphas, betas = list(alphas), list(betas)
    acts = []
    for name in names:
        a, b = defaults(name)
        if a is not None and alphas:
            a = alphas.pop(0)
        if b is not None and betas:
            b = betas.pop(0)
        acts.append(Act(name, None if a is None else float(a), None if b is None else float(b)))
    return tuple(acts)
