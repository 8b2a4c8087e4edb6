"""TEMPORARY, issue 16: REMOVE AT THE MERGE (with its uses, each marked "i16 shim").

The numba backend implements the contract's step API (``rnn_step(m, ...)``, m a CellMath) on the
i16-numba branch, while the NumPy backend and the recurrences, rewritten on their own branch at the
same time, still have the old names there. Until the three branches meet:

- ``CellMath`` / ``default_math``: a stand-in for ``_semantics.CellMath`` (same fields and properties).
- ``NumpyNewAPI``: the contract's API over the old NumPy methods (``lstm_step`` / ``lstm_step_v``...),
  the reference the numba kernels are compared with. At the merge: ``cpu_backend("numpy")``.
- ``NumbaOldAPI``: the old API over the new numba backend, so that the branch's old recurrences (and
  so whole layers, and the compiled time loop, which reads ``rec.math``) run the new kernels. At the
  merge: ``cpu_backend("numba")``.
"""

import copy
from typing import NamedTuple, Optional

from rnnkern import _recurrence
from rnnkern._activations import Act
from rnnkern._backend._numpy import NumpyBackend

_DEFAULTS = {"RNN": ((Act("Tanh"),), (Act("Relu"),)), "LSTM": ((Act("Sigmoid"), Act("Tanh"), Act("Tanh")),),
             "GRU": ((Act("Sigmoid"), Act("Tanh")),)}


class CellMath(NamedTuple):
    kind: str
    acts: tuple
    clip: Optional[float] = None
    input_forget: bool = False
    peephole: bool = False

    @property
    def is_default(self):
        return (self.acts in _DEFAULTS[self.kind] and self.clip is None and not self.input_forget
                and not self.peephole)

    @property
    def saves_activations(self):
        return self.is_default


def default_math(kind, nonlinearity="tanh"):
    return CellMath(kind, (Act(nonlinearity.capitalize()),) if kind == "RNN" else _DEFAULTS[kind][0])


def as_math(v):
    """A CellMath from a ``_semantics.Variant`` (or a CellMath)."""
    return CellMath(*v)


def _nonlinearity(m):
    return m.acts[0].name.lower()


class NumpyNewAPI:
    """The contract's step API over the old NumpyBackend (default methods or ``*_v``)."""

    def __init__(self):
        self.old = NumpyBackend()

    def rnn_step(self, m, gx, gh, h_out, train=False):
        if m.saves_activations:
            self.old.rnn_step(gx, gh, h_out, _nonlinearity(m))
        else:
            self.old.rnn_step_v(m, gx, gh, h_out)

    def rnn_backward(self, m, saved, dh, da_out):
        if m.saves_activations:
            self.old.rnn_backward(saved, dh, da_out, _nonlinearity(m))
        else:
            self.old.rnn_backward_v(m, saved, dh, da_out)

    def lstm_step(self, m, gx, gh, c_prev, p, h_out, c_out, train=False):
        if m.saves_activations:
            self.old.lstm_step(gx, gh, c_prev, h_out, c_out)
        else:
            self.old.lstm_step_v(m, gx, gh, c_prev, p, h_out, c_out)

    def lstm_backward(self, m, gates, c_prev, c, dh, dc, p, da_out, dc_prev_out):
        if m.saves_activations:
            self.old.lstm_backward(gates, c_prev, c, dh, dc, da_out, dc_prev_out)
        else:
            self.old.lstm_backward_v(m, gates, c_prev, c, dh, dc, p, da_out, dc_prev_out)

    def gru_step(self, m, gx, gh, b_hn, h_prev, h_out, ghn_out=None):
        if m.saves_activations:
            self.old.gru_step(gx, gh, b_hn, h_prev, h_out, ghn_out)
        else:
            ghn = self.old.empty(h_out.shape, h_out.dtype) if ghn_out is None else ghn_out
            self.old.gru_step_v(m, gx, gh, b_hn, h_prev, h_out, ghn)

    def gru_backward(self, m, gates, ghn, h_prev, dh, dgx_out, dgh_out, dh_direct_out):
        if m.saves_activations:
            self.old.gru_backward(gates, ghn, h_prev, dh, dgx_out, dgh_out, dh_direct_out)
        else:
            self.old.gru_backward_v(m, gates, ghn, h_prev, dh, dgx_out, dgh_out, dh_direct_out)

    def gru_reset(self, m, gx, gh_rz, h_prev, rh_out):
        if m.saves_activations:
            self.old.gru_reset(gx, gh_rz, h_prev, rh_out)
        else:
            self.old.gru_reset_v(m, gx, gh_rz, h_prev, rh_out)

    def gru_update(self, m, gx, gh_rz, gh_n, h_prev, h_out, train=False):
        if m.saves_activations:
            self.old.gru_update(gx, gh_rz, gh_n, h_prev, h_out)
        else:
            self.old.gru_update_v(m, gx, gh_rz, gh_n, h_prev, h_out)

    def gru_backward_update(self, m, z, n, h_prev, dh, dgx_out, dh_direct_out):
        if m.saves_activations:
            self.old.gru_backward_update(z, n, h_prev, dh, dgx_out, dh_direct_out)
        else:
            self.old.gru_backward_update_v(m, z, n, h_prev, dh, dgx_out, dh_direct_out)

    def gru_backward_reset(self, m, r, h_prev, d_rh, dgx_out, dh_direct_out):
        if m.saves_activations:
            self.old.gru_backward_reset(r, h_prev, d_rh, dgx_out, dh_direct_out)
        else:
            self.old.gru_backward_reset_v(m, r, h_prev, d_rh, dgx_out, dh_direct_out)


_LSTM, _GRU = default_math("LSTM"), default_math("GRU")
_BASES = {_recurrence.LSTMRecurrence: "LSTM", _recurrence.GRURecurrence: "GRU", _recurrence.RNNRecurrence: "RNN"}


def _with_math(rec):
    """The branch's recurrence as the merged one looks to time_loop: its base class, with ``math`` and
    ``weight_p`` (a recurrence of no such class, the projection's, is passed on as it is)."""
    base = next((b for b in _BASES if isinstance(rec, b)), None)
    if base is None:
        return rec
    proxy = copy.copy(rec)
    proxy.__class__ = base
    variant = getattr(rec, "variant", None)
    proxy.math = default_math(_BASES[base], rec.nonlinearity or "tanh") if variant is None and base is \
        _recurrence.RNNRecurrence else (default_math(_BASES[base]) if variant is None else as_math(variant))
    proxy.weight_p = getattr(rec, "weight_p", None)
    return proxy


class NumbaOldAPI(NumpyBackend):
    """The branch's old step API (default methods and ``*_v``) over the new NumbaBackend ``new``."""

    def __init__(self, new):
        self.new = new
        self._kernels = new._kernels

    def time_loop(self, rec, gx, w_hh, b_hn, h0, out, reverse, c):
        return self.new.time_loop(_with_math(rec), gx, w_hh, b_hn, h0, out, reverse, c)

    # default path
    def rnn_step(self, gx, gh, h_out, nonlinearity):
        self.new.rnn_step(default_math("RNN", nonlinearity), gx, gh, h_out)

    def rnn_backward(self, h, dh, da_out, nonlinearity):
        self.new.rnn_backward(default_math("RNN", nonlinearity), h, dh, da_out)

    def lstm_step(self, gx, gh, c_prev, h_out, c_out):
        self.new.lstm_step(_LSTM, gx, gh, c_prev, None, h_out, c_out)

    def lstm_step_train(self, gx, gh, c_prev, h_out, c_out):
        self.new.lstm_step(_LSTM, gx, gh, c_prev, None, h_out, c_out, train=True)

    def lstm_backward(self, acts, c_prev, c, dh, dc, da_out, dc_prev_out):
        self.new.lstm_backward(_LSTM, acts, c_prev, c, dh, dc, None, da_out, dc_prev_out)

    def gru_step(self, gx, gh, b_hn, h_prev, h_out, ghn_out=None):
        self.new.gru_step(_GRU, gx, gh, b_hn, h_prev, h_out, ghn_out)

    def gru_step_train(self, gx, gh, b_hn, h_prev, h_out, ghn_out):
        self.new.gru_step(_GRU, gx, gh, b_hn, h_prev, h_out, ghn_out)

    def gru_reset(self, gx, gh_rz, h_prev, rh_out):
        self.new.gru_reset(_GRU, gx, gh_rz, h_prev, rh_out)

    def gru_update(self, gx, gh_rz, gh_n, h_prev, h_out):
        self.new.gru_update(_GRU, gx, gh_rz, gh_n, h_prev, h_out)

    def gru_update_train(self, gx, gh_rz, gh_n, h_prev, h_out):
        self.new.gru_update(_GRU, gx, gh_rz, gh_n, h_prev, h_out, train=True)

    def gru_backward(self, acts, ghn, h_prev, dh, dgx_out, dgh_out, dh_direct_out):
        self.new.gru_backward(_GRU, acts, ghn, h_prev, dh, dgx_out, dgh_out, dh_direct_out)

    def gru_backward_update(self, z, n, h_prev, dh, dgx_out, dh_direct_out):
        self.new.gru_backward_update(_GRU, z, n, h_prev, dh, dgx_out, dh_direct_out)

    def gru_backward_reset(self, r, h_prev, d_rh, dgx_out, dh_direct_out):
        self.new.gru_backward_reset(_GRU, r, h_prev, d_rh, dgx_out, dh_direct_out)

    # the old variant path: always leaves the pre-activations (so train=True)
    def rnn_step_v(self, v, gx, gh, h_out):
        self.new.rnn_step(as_math(v), gx, gh, h_out, train=True)

    def rnn_backward_v(self, v, a, dh, da_out):
        self.new.rnn_backward(as_math(v), a, dh, da_out)

    def lstm_step_v(self, v, gx, gh, c_prev, p, h_out, c_out):
        self.new.lstm_step(as_math(v), gx, gh, c_prev, p, h_out, c_out, train=True)

    def lstm_backward_v(self, v, pre, c_prev, c, dh, dc, p, da_out, dc_prev_out):
        self.new.lstm_backward(as_math(v), pre, c_prev, c, dh, dc, p, da_out, dc_prev_out)

    def gru_step_v(self, v, gx, gh, b_hn, h_prev, h_out, ghn_out):
        self.new.gru_step(as_math(v), gx, gh, b_hn, h_prev, h_out, ghn_out)

    def gru_backward_v(self, v, pre, ghn, h_prev, dh, dgx_out, dgh_out, dh_direct_out):
        self.new.gru_backward(as_math(v), pre, ghn, h_prev, dh, dgx_out, dgh_out, dh_direct_out)

    def gru_reset_v(self, v, gx, gh_rz, h_prev, rh_out):
        self.new.gru_reset(as_math(v), gx, gh_rz, h_prev, rh_out)

    def gru_update_v(self, v, gx, gh_rz, gh_n, h_prev, h_out):
        self.new.gru_update(as_math(v), gx, gh_rz, gh_n, h_prev, h_out, train=True)

    def gru_backward_update_v(self, v, a_z, a_n, h_prev, dh, dgx_out, dh_direct_out):
        self.new.gru_backward_update(as_math(v), a_z, a_n, h_prev, dh, dgx_out, dh_direct_out)

    def gru_backward_reset_v(self, v, a_r, h_prev, d_rh, dgx_out, dh_direct_out):
        self.new.gru_backward_reset(as_math(v), a_r, h_prev, d_rh, dgx_out, dh_direct_out)


_NUMBA = None


def numba_backend():
    """The numba backend as the branch's layers can drive it (at the merge: cpu_backend("numba"))."""
    global _NUMBA
    if _NUMBA is None:
        from rnnkern._backend import cpu_backend
        _NUMBA = NumbaOldAPI(cpu_backend("numba"))
    return _NUMBA
