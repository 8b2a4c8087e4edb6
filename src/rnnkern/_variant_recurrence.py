"""Recurrences with ONNX's options (a ``_semantics.Variant``): the same steps as _recurrence.py, run
by the backends' variant steps (``*_v``: kernels/variant.cuh, _backend/_numpy_variant.py).

The default recurrences are untouched: a layer uses these only for a direction whose Variant is not
None. Differences from the default ones:

- Training saves gate *pre-activations* (peephole terms added, before the clip) instead of
  activations, in the same arrays (``acts``), since clipped and piecewise activations need their
  argument for the derivative. The GRU with linear_before_reset=False also keeps r*h_prev ("rh",
  T*B*H more), which is what dW_hn multiplies, since r is no longer saved.
- Inference always writes the pre-activations into its workspace too, so each step has one kernel
  (and training and inference the same one).
- The LSTM with peepholes is bound to its direction's ``weight_p`` (3*H,), made per call (as the
  projection is), and accumulates its gradient step by step (``output_weight_grads`` returns it).
"""

from ._recurrence import GRURecurrence, LSTMRecurrence, RNNRecurrence


class VariantRNNRecurrence(RNNRecurrence):
    saved_widths = {"acts": 1}

    def __init__(self, backend, hidden_size, variant):
        super().__init__(backend, hidden_size, None)
        self.variant = variant

    def step(self, gx, h_prev, c_prev, w_hh, b_hn, ws, h_out, c_out=None):
        self.backend.xp.matmul(h_prev, w_hh.T, out=ws["gh"])
        self.backend.rnn_step_v(self.variant, gx, ws["gh"], h_out)

    def step_train(self, gx, h_prev, c_prev, w_hh, b_hn, saved, h_out, c_out=None):
        self.step(gx, h_prev, c_prev, w_hh, b_hn, {"gh": saved["acts"]}, h_out)

    def backward_step(self, saved, h_prev, c_prev, h, dh, dc, w_hh, dgx, dgh, dh_prev_out, dc_prev_out=None):
        self.backend.rnn_backward_v(self.variant, saved["acts"], dh, dgx)
        self.backend.xp.matmul(dgx, w_hh, out=dh_prev_out)


class VariantLSTMRecurrence(LSTMRecurrence):
    def __init__(self, backend, hidden_size, variant, weight_p=None):
        super().__init__(backend, hidden_size)
        self.variant, self.weight_p = variant, weight_p
        self._grad_p = None

    def step(self, gx, h_prev, c_prev, w_hh, b_hn, ws, h_out, c_out):
        self.backend.xp.matmul(h_prev, w_hh.T, out=ws["gh"])
        self.backend.lstm_step_v(self.variant, gx, ws["gh"], c_prev, self.weight_p, h_out, c_out)

    def step_train(self, gx, h_prev, c_prev, w_hh, b_hn, saved, h_out, c_out):
        self.step(gx, h_prev, c_prev, w_hh, b_hn, {"gh": saved["acts"]}, h_out, c_out)

    def backward_step(self, saved, h_prev, c_prev, h, dh, dc, w_hh, dgx, dgh, dh_prev_out, dc_prev_out):
        bk, H = self.backend, self.hidden_size
        bk.lstm_backward_v(self.variant, saved["acts"], c_prev, saved["c"], dh, dc, self.weight_p, dgx, dc_prev_out)
        if self.weight_p is not None:  # dp_i = sum da_i c_prev, dp_o = sum da_o c, dp_f = sum da_f c_prev
            if self._grad_p is None:
                self._grad_p = bk.zeros(self.weight_p.shape, self.weight_p.dtype)
            xp, g = bk.xp, self._grad_p
            g[:H] += xp.einsum("bh,bh->h", dgx[:, :H], c_prev)
            g[H:2 * H] += xp.einsum("bh,bh->h", dgx[:, 3 * H:], saved["c"])
            g[2 * H:] += xp.einsum("bh,bh->h", dgx[:, H:2 * H], c_prev)
        bk.xp.matmul(dgx, w_hh, out=dh_prev_out)

    def output_weight_grads(self, dh_steps, saved):
        if self.weight_p is None:
            return {}
        grad, self._grad_p = self._grad_p, None
        return {"weight_p": grad if grad is not None else self.backend.zeros(self.weight_p.shape, self.weight_p.dtype)}


class VariantGRURecurrence(GRURecurrence):
    def __init__(self, backend, hidden_size, linear_before_reset, variant):
        super().__init__(backend, hidden_size, linear_before_reset)
        self.variant = variant
        if not linear_before_reset:
            self.saved_widths = {"rz": 2, "n": 1, "rh": 1}

    def workspace(self, batch, dtype):
        ws = super().workspace(batch, dtype)
        if self.linear_before_reset:
            ws["ghn"] = self.backend.empty((batch, self.hidden_size), dtype)
        return ws

    def step(self, gx, h_prev, c_prev, w_hh, b_hn, ws, h_out, c_out=None):
        xp, bk, H, v = self.backend.xp, self.backend, self.hidden_size, self.variant
        if self.linear_before_reset:
            xp.matmul(h_prev, w_hh.T, out=ws["gh"])
            bk.gru_step_v(v, gx, ws["gh"], b_hn, h_prev, h_out, ws["ghn"])
            return
        xp.matmul(h_prev, w_hh[:2 * H].T, out=ws["gh_rz"])
        bk.gru_reset_v(v, gx, ws["gh_rz"], h_prev, ws["rh"])
        xp.matmul(ws["rh"], w_hh[2 * H:].T, out=ws["gh_n"])
        bk.gru_update_v(v, gx, ws["gh_rz"], ws["gh_n"], h_prev, h_out)

    def step_train(self, gx, h_prev, c_prev, w_hh, b_hn, saved, h_out, c_out=None):
        if self.linear_before_reset:
            ws = {"gh": saved["acts"], "ghn": saved["ghn"]}
        else:
            ws = {"gh_rz": saved["rz"], "gh_n": saved["n"], "rh": saved["rh"]}
        self.step(gx, h_prev, c_prev, w_hh, b_hn, ws, h_out)

    def backward_step(self, saved, h_prev, c_prev, h, dh, dc, w_hh, dgx, dgh, dh_prev_out, dc_prev_out=None):
        xp, bk, H, v = self.backend.xp, self.backend, self.hidden_size, self.variant
        direct = bk.empty(dh.shape, dh.dtype)  # the part of dh_prev that bypasses W_hh
        if self.linear_before_reset:
            bk.gru_backward_v(v, saved["acts"], saved["ghn"], h_prev, dh, dgx, dgh, direct)
            xp.matmul(dgh, w_hh, out=dh_prev_out)
        else:
            rz = saved["rz"]
            bk.gru_backward_update_v(v, rz[:, H:], saved["n"], h_prev, dh, dgx, direct)
            d_rh = xp.matmul(dgx[:, 2 * H:], w_hh[2 * H:])
            bk.gru_backward_reset_v(v, rz[:, :H], h_prev, d_rh, dgx, direct)
            xp.matmul(dgx[:, :2 * H], w_hh[:2 * H], out=dh_prev_out)
        dh_prev_out += direct

    def hh_inputs(self, hprev, saved):
        if self.linear_before_reset:
            return super().hh_inputs(hprev, saved)
        return [(slice(0, 2 * self.hidden_size), hprev), (slice(2 * self.hidden_size, None), saved["rh"])]
