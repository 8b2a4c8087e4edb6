"""One time step of each cell kind, written once for every backend and every CellMath; used by
cells and layers.

A step is the recurrent GEMM (``backend.matmul``: a CPU GEMM provider, or cuBLAS) followed by the
backend's fused elementwise step, which takes the recurrence's ``math`` (a ``_semantics.CellMath``:
activations, clip, input_forget, peepholes; the defaults are one instance of it). The input
projection ``gx = x @ W_ih^T + bias`` is computed by the caller, for all time steps at once in a
layer. Every bias that is added linearly is folded into ``gx``; only the GRU's b_hn, which the reset
gate multiplies, stays separate.

For training, ``step_train`` saves per step what ``backward_step`` needs (``saved_widths``: name ->
width in units of H). Each key has one meaning: ``gates`` / ``rz`` / ``n`` hold gate activations
(``math.saves_activations``, the default math), ``pre`` / ``pre_rz`` / ``pre_n`` gate
pre-activations (peephole terms added, before the clip), which clipped and piecewise activations
need for their derivative; ``c`` the cell state, ``ghn`` W_hn h + b_hn, ``rh`` r * h_prev.
``backward_step`` takes one step's ``StepGrad`` and turns dh (and dc) into the gradients of the gate
pre-activations: ``dgx`` (input side, whose GEMMs give dx and dW_ih) and ``dgh`` (hidden side, for
dW_hh; the same array as dgx except in the GRU with linear_before_reset=True).

The LSTM with peepholes is bound to its direction's ``weight_p`` (3*H,), made per call (as the
projection is), and accumulates its gradient step by step (``output_weight_grads`` returns it).

Training's hooks, which the layer-normalised cells (layernorm.py) override: ``weights_of`` (the
Weights a direction runs with), ``saved_arrays`` (the tape's per-step arrays), ``train_inputs`` (the
input projection of every step), ``backward_arrays`` (per-step outputs of the backward steps beside
dgx and dgh) and ``parameter_grads`` (the sums over (t, b) after the time loop: the biases; it returns
the gradient of x @ W_ih^T). A training forward keeps its recurrence on the tape for backward.
"""

from typing import Any, NamedTuple, Optional

from .sequence import project_inputs


class Weights(NamedTuple):
    """One layer and direction's weights; the biases None without bias."""
    w_ih: Any
    w_hh: Any
    b_ih: Optional[Any] = None
    b_hh: Optional[Any] = None

    @classmethod
    def of(cls, params):
        """From a dict keyed weight_ih, weight_hh (and bias_ih, bias_hh)."""
        return cls(params["weight_ih"], params["weight_hh"], params.get("bias_ih"), params.get("bias_hh"))


class StepGrad(NamedTuple):
    """One step's backward: what it reads and the arrays it writes (``*_out``, dgx and dgh)."""
    saved: dict  # this step's rows of the saved arrays (rec.saved_widths)
    h_prev: Any  # (B, P) the state before the step
    c_prev: Optional[Any]  # (B, H), the LSTM's, else None
    h: Any  # (B, P) the step's output
    dh: Any  # the gradient into h
    dc: Optional[Any]  # the gradient into c from later steps (LSTM)
    w_hh: Any
    dgx: Any  # out: (B, G*H) the input-side pre-activations' gradient
    dgh: Any  # out: the hidden side's (dgx itself but in the GRU with linear_before_reset)
    dh_prev_out: Any  # out: the gradient into h_prev
    dc_prev_out: Optional[Any] = None  # out: into c_prev (may be dc)


class _Recurrence:
    gates = 1
    has_cell_state = False
    saved_widths = {}
    shares_dgh = True  # dgh is dgx
    keeps_dh = False  # whether backward needs dh of every step (output_weight_grads)

    def __init__(self, backend, hidden_size, math=None):
        self.backend = backend
        self.hidden_size = hidden_size
        self.math = math

    def fold_bias(self, b_ih, b_hh):
        """(bias added to gx, b_hn or None)."""
        if b_ih is None:
            return None, None
        return b_ih + b_hh, None

    def workspace(self, batch, dtype):
        """Buffers one step needs, allocated once per sequence (or cell call)."""
        return {"gh": self.backend.empty((batch, self.gates * self.hidden_size), dtype)}

    def hh_inputs(self, hprev, saved):
        """What multiplies each row block of W_hh, for dW_hh = dgh^T @ input: [(rows, input)]."""
        return [(slice(None), hprev)]

    def output_weight_grads(self, dh_steps, saved):
        """Gradients of weights applied after the step (the LSTM's projection), from dh of every step."""
        return {}

    # --- what training keeps, and the gradients summed after the time loop (bptt.py) ----------
    def weights_of(self, params):
        """The ``Weights`` the recurrence runs with, from the direction's parameters (keyed without suffix)."""
        return Weights.of(params)

    def saved_arrays(self, steps, batch, dtype):
        """The tape's per-step arrays, (T, B, columns) each: ``saved_widths`` (in units of H), zeros."""
        H, zeros = self.hidden_size, self.backend.zeros
        return {name: zeros((steps, batch, width * H), dtype) for name, width in self.saved_widths.items()}

    def train_inputs(self, x, weights, saved):
        """(gx of every step, b_hn) for training: the input projection of ``x`` (T, B, I)."""
        gx_bias, b_hn = self.fold_bias(weights.b_ih, weights.b_hh)
        return project_inputs(self.backend, x, weights.w_ih, gx_bias, batch_first=False), b_hn

    def backward_arrays(self, steps, batch, dtype):
        """Arrays (T, B, columns) that the backward steps fill beside dgx and dgh (in ``StepGrad.saved``)."""
        return {}

    def parameter_grads(self, grads, dgx, dgh, arrays, weights):
        """After the time loop: adds the gradients summed over (t, b) beyond the GEMMs' (the biases)
        to ``grads`` and returns the gradient of x @ W_ih^T (T*B, G*H), from which dx and dW_ih
        follow. ``dgx``, ``dgh`` (T*B, G*H); ``arrays``: the tape's saved and the backward's arrays."""
        if weights.b_ih is not None:  # where dgh is dgx (every cell but the GRU's default), one sum for both
            grads["bias_ih"] = dgx.sum(axis=0)
            grads["bias_hh"] = grads["bias_ih"].copy() if dgh is dgx else dgh.sum(axis=0)
        return dgx


class RNNRecurrence(_Recurrence):
    gates = 1

    def __init__(self, backend, hidden_size, math):
        super().__init__(backend, hidden_size, math)
        self.saved_widths = {} if math.saves_activations else {"pre": 1}  # with activations: h itself

    def step(self, gx, h_prev, c_prev, w_hh, b_hn, ws, h_out, c_out=None):
        self.backend.matmul(h_prev, w_hh.T, out=ws["gh"])
        self.backend.rnn_step(self.math, gx, ws["gh"], h_out)

    def step_train(self, gx, h_prev, c_prev, w_hh, b_hn, saved, h_out, c_out=None):
        # h_out may be a strided view of the output, so the GEMM gets a buffer of its own: the saved
        # pre-activations, or a new one where the math keeps none. Given its output, the GEMM runs on
        # the weights training packed (NumbaBackend.packed); without one it ran MKL's unpacked GEMM
        gh = saved.get("pre")
        if gh is None:
            gh = self.backend.empty(gx.shape, gx.dtype)
        self.backend.matmul(h_prev, w_hh.T, out=gh)
        self.backend.rnn_step(self.math, gx, gh, h_out, train=True)

    def backward_step(self, s):
        self.backend.rnn_backward(self.math, s.saved.get("pre", s.h), s.dh, s.dgx)
        self.backend.matmul(s.dgx, s.w_hh, out=s.dh_prev_out)


class LSTMRecurrence(_Recurrence):
    gates = 4
    has_cell_state = True

    def __init__(self, backend, hidden_size, math, weight_p=None):
        super().__init__(backend, hidden_size, math)
        self.weight_p = weight_p  # the peephole vector (p_i, p_o, p_f), or None
        self._gates = "gates" if math.saves_activations else "pre"
        self.saved_widths = {self._gates: 4, "c": 1}
        self._grad_p = None

    def step(self, gx, h_prev, c_prev, w_hh, b_hn, ws, h_out, c_out):
        self.backend.matmul(h_prev, w_hh.T, out=ws["gh"])
        self.backend.lstm_step(self.math, gx, ws["gh"], c_prev, self.weight_p, h_out, c_out)

    def step_train(self, gx, h_prev, c_prev, w_hh, b_hn, saved, h_out, c_out):
        gates = saved[self._gates]
        self.backend.matmul(h_prev, w_hh.T, out=gates)
        self.backend.lstm_step(self.math, gx, gates, c_prev, self.weight_p, h_out, c_out, train=True)

    def backward_step(self, s):
        bk, H, p = self.backend, self.hidden_size, self.weight_p
        dgx, c = s.dgx, s.saved["c"]
        bk.lstm_backward(self.math, s.saved[self._gates], s.c_prev, c, s.dh, s.dc, p, dgx, s.dc_prev_out)
        if p is not None:  # dp_i = sum da_i c_prev, dp_o = sum da_o c, dp_f = sum da_f c_prev
            if self._grad_p is None:
                self._grad_p = bk.zeros(p.shape, p.dtype)
            xp, g = bk.xp, self._grad_p
            g[:H] += xp.einsum("bh,bh->h", dgx[:, :H], s.c_prev)
            g[H:2 * H] += xp.einsum("bh,bh->h", dgx[:, 3 * H:], c)
            g[2 * H:] += xp.einsum("bh,bh->h", dgx[:, H:2 * H], s.c_prev)
        bk.matmul(dgx, s.w_hh, out=s.dh_prev_out)

    def output_weight_grads(self, dh_steps, saved):
        p = self.weight_p
        if p is None:
            return {}
        grad, self._grad_p = self._grad_p, None
        return {"weight_p": grad if grad is not None else self.backend.zeros(p.shape, p.dtype)}


class GRURecurrence(_Recurrence):
    gates = 3

    def __init__(self, backend, hidden_size, math, linear_before_reset=True):
        super().__init__(backend, hidden_size, math)
        self.linear_before_reset = linear_before_reset
        self.shares_dgh = not linear_before_reset
        acts = math.saves_activations
        if linear_before_reset:
            self._keys = ("gates" if acts else "pre", "ghn")
            self.saved_widths = {self._keys[0]: 3, "ghn": 1}
        else:
            self._keys = ("rz", "n") if acts else ("pre_rz", "pre_n")
            self.saved_widths = {self._keys[0]: 2, self._keys[1]: 1, **({} if acts else {"rh": 1})}

    def fold_bias(self, b_ih, b_hh):
        if b_ih is None or not self.linear_before_reset:
            return super().fold_bias(b_ih, b_hh)
        H = self.hidden_size
        folded = b_ih.copy()
        folded[:2 * H] += b_hh[:2 * H]
        return folded, b_hh[2 * H:]

    def workspace(self, batch, dtype):
        H, empty = self.hidden_size, self.backend.empty
        if self.linear_before_reset:
            return super().workspace(batch, dtype)
        return {"gh_rz": empty((batch, 2 * H), dtype), "gh_n": empty((batch, H), dtype),
                "rh": empty((batch, H), dtype)}

    def step(self, gx, h_prev, c_prev, w_hh, b_hn, ws, h_out, c_out=None, ghn_out=None, train=False):
        xp, bk, H, m = self.backend.xp, self.backend, self.hidden_size, self.math
        if self.linear_before_reset:
            self.backend.matmul(h_prev, w_hh.T, out=ws["gh"])
            bk.gru_step(m, gx, ws["gh"], b_hn, h_prev, h_out, ghn_out)
            return
        self.backend.matmul(h_prev, w_hh[:2 * H].T, out=ws["gh_rz"])
        bk.gru_reset(m, gx, ws["gh_rz"], h_prev, ws["rh"])
        self.backend.matmul(ws["rh"], w_hh[2 * H:].T, out=ws["gh_n"])
        bk.gru_update(m, gx, ws["gh_rz"], ws["gh_n"], h_prev, h_out, train)

    def step_train(self, gx, h_prev, c_prev, w_hh, b_hn, saved, h_out, c_out=None):
        first, second = (saved[k] for k in self._keys)
        if self.linear_before_reset:
            self.step(gx, h_prev, None, w_hh, b_hn, {"gh": first}, h_out, ghn_out=second)
        else:  # the default math saves r, not r*h_prev: h_out is free until the end
            ws = {"gh_rz": first, "gh_n": second, "rh": saved.get("rh", h_out)}
            self.step(gx, h_prev, None, w_hh, b_hn, ws, h_out, train=True)

    def backward_step(self, s):
        xp, bk, H, m = self.backend.xp, self.backend, self.hidden_size, self.math
        first, second = (s.saved[k] for k in self._keys)
        direct = bk.empty(s.dh.shape, s.dh.dtype)  # the part of dh_prev that bypasses W_hh
        if self.linear_before_reset:
            bk.gru_backward(m, first, second, s.h_prev, s.dh, s.dgx, s.dgh, direct)
            self.backend.matmul(s.dgh, s.w_hh, out=s.dh_prev_out)
        else:
            bk.gru_backward_update(m, first[:, H:], second, s.h_prev, s.dh, s.dgx, direct)
            d_rh = self.backend.matmul(s.dgx[:, 2 * H:], s.w_hh[2 * H:])
            bk.gru_backward_reset(m, first[:, :H], s.h_prev, d_rh, s.dgx, direct)
            self.backend.matmul(s.dgx[:, :2 * H], s.w_hh[:2 * H], out=s.dh_prev_out)
        xp.add(s.dh_prev_out, direct, out=s.dh_prev_out)

    def hh_inputs(self, hprev, saved):
        if self.linear_before_reset:
            return super().hh_inputs(hprev, saved)
        H = self.hidden_size
        rh = saved["rh"] if "rh" in saved else saved["rz"][..., :H] * hprev
        return [(slice(0, 2 * H), hprev), (slice(2 * H, None), rh)]
