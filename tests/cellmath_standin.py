"""STAND-IN, TO BE REMOVED AT THE MERGE OF ISSUE 16 (with its import in conftest.py).

The contract's ``CellMath`` and ``default_math`` (ISSUE16_SPEC.md section 1) are written in
``rnnkern._semantics`` on the NumPy/recurrence branch. Until the branches meet, the CUDA branch's tests
put this copy of them there on import (only where they are missing), so that ``rnnkern._kernels`` can build its
default kernels and the tests can name option combinations. Same fields as today's ``Variant``."""

from typing import NamedTuple, Optional

from rnnkern import _semantics
from rnnkern._activations import Act

_DEFAULT_ACTS = {"RNN": ((Act("Tanh"),), (Act("Relu"),)), "LSTM": ((Act("Sigmoid"), Act("Tanh"), Act("Tanh")),),
                 "GRU": ((Act("Sigmoid"), Act("Tanh")),)}


class CellMath(NamedTuple):
    kind: str
    acts: tuple
    clip: Optional[float] = None
    input_forget: bool = False
    peephole: bool = False

    @property
    def is_default(self):
        return (self.acts in _DEFAULT_ACTS[self.kind] and self.clip is None and not self.input_forget
                and not self.peephole)

    @property
    def saves_activations(self):
        return self.is_default


def default_math(kind, nonlinearity="tanh"):
    if kind == "RNN":
        return CellMath("RNN", (Act({"tanh": "Tanh", "relu": "Relu"}[nonlinearity]),))
    return CellMath(kind, _DEFAULT_ACTS[kind][0])


def from_variant(variant):
    """A CellMath for today's ``_semantics.Variant`` (None: not needed, the caller has a default)."""
    return getattr(_semantics, "CellMath")(*variant)


def install():
    if not hasattr(_semantics, "default_math"):
        _semantics.CellMath, _semantics.default_math = CellMath, default_math


install()  # on import: conftest.py imports this module before any test module imports rnnkern._kernels
