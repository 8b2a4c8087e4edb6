"""One time step of each cell kind, written once for every backend and used by cells and layers.

A step is the recurrent GEMM (``xp.matmul`` on any backend: BLAS or cuBLAS)
followed by the backend's fused elementwise step. The input projection
``gx = x @ W_ih^T + bias`` is computed by the caller, for all time steps at once
in a layer. Every bias that is added linearly is folded into ``gx``; only the
GRU's b_hn, which the reset gate multiplies, stays separate.

For training, ``step_train`` saves per step what ``backward_step`` needs
(``saved_widths``: name -> width in units of H), and ``backward_step`` turns dh
(and dc) into the gradients of the gate pre-activations: ``dgx`` (input side,
whose GEMMs give dx and dW_ih) and ``dgh`` (hidden side, for dW_hh; the same
array as dgx except in the GRU with linear_before_reset=True).
"""


class _Recurrence:
    gates = 1
    has_cell_state = False
    saved_widths = {}
    shares_dgh = True  # dgh is dgx
    keeps_dh = False  # whether backward needs dh of every step (output_weight_grads)

    def __init__(self, backend, hidden_size):
        self.backend = backend
        self.hidden_size = hidden_size

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


class RNNRecurrence(_Recurrence):
    gates = 1

    def __init__(self, backend, hidden_size, nonlinearity):
        super().__init__(backend, hidden_size)
        self.nonlinearity = nonlinearity

    def step(self, gx, h_prev, c_prev, w_hh, b_hn, ws, h_out, c_out=None):
        self.backend.xp.matmul(h_prev, w_hh.T, out=ws["gh"])
        self.backend.rnn_step(gx, ws["gh"], h_out, self.nonlinearity)

    def step_train(self, gx, h_prev, c_prev, w_hh, b_hn, saved, h_out, c_out=None):
        # h_out may be a strided view of the output, so the GEMM gets a buffer of its own
        self.backend.rnn_step(gx, self.backend.xp.matmul(h_prev, w_hh.T), h_out, self.nonlinearity)

    def backward_step(self, saved, h_prev, c_prev, h, dh, dc, w_hh, dgx, dgh, dh_prev_out, dc_prev_out=None):
        self.backend.rnn_backward(h, dh, dgx, self.nonlinearity)
        self.backend.xp.matmul(dgx, w_hh, out=dh_prev_out)


class LSTMRecurrence(_Recurrence):
    gates = 4
    has_cell_state = True
    saved_widths = {"acts": 4, "c": 1}

    def step(self, gx, h_prev, c_prev, w_hh, b_hn, ws, h_out, c_out):
        self.backend.xp.matmul(h_prev, w_hh.T, out=ws["gh"])
        self.backend.lstm_step(gx, ws["gh"], c_prev, h_out, c_out)

    def step_train(self, gx, h_prev, c_prev, w_hh, b_hn, saved, h_out, c_out):
        self.backend.xp.matmul(h_prev, w_hh.T, out=saved["acts"])
        self.backend.lstm_step_train(gx, saved["acts"], c_prev, h_out, c_out)

    def backward_step(self, saved, h_prev, c_prev, h, dh, dc, w_hh, dgx, dgh, dh_prev_out, dc_prev_out):
        self.backend.lstm_backward(saved["acts"], c_prev, saved["c"], dh, dc, dgx, dc_prev_out)
        self.backend.xp.matmul(dgx, w_hh, out=dh_prev_out)


class GRURecurrence(_Recurrence):
    gates = 3

    def __init__(self, backend, hidden_size, linear_before_reset):
        super().__init__(backend, hidden_size)
        self.linear_before_reset = linear_before_reset
        self.saved_widths = {"acts": 3, "ghn": 1} if linear_before_reset else {"rz": 2, "n": 1}
        self.shares_dgh = not linear_before_reset

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

    def step(self, gx, h_prev, c_prev, w_hh, b_hn, ws, h_out, c_out=None, ghn_out=None):
        xp, bk, H = self.backend.xp, self.backend, self.hidden_size
        if self.linear_before_reset:
            xp.matmul(h_prev, w_hh.T, out=ws["gh"])
            if ghn_out is None:
                bk.gru_step(gx, ws["gh"], b_hn, h_prev, h_out)
            else:
                bk.gru_step_train(gx, ws["gh"], b_hn, h_prev, h_out, ghn_out)
            return
        xp.matmul(h_prev, w_hh[:2 * H].T, out=ws["gh_rz"])
        bk.gru_reset(gx, ws["gh_rz"], h_prev, ws["rh"])
        xp.matmul(ws["rh"], w_hh[2 * H:].T, out=ws["gh_n"])
        (bk.gru_update if ghn_out is None else bk.gru_update_train)(gx, ws["gh_rz"], ws["gh_n"], h_prev, h_out)

    def step_train(self, gx, h_prev, c_prev, w_hh, b_hn, saved, h_out, c_out=None):
        if self.linear_before_reset:
            self.step(gx, h_prev, None, w_hh, b_hn, {"gh": saved["acts"]}, h_out, ghn_out=saved["ghn"])
        else:
            ws = {"gh_rz": saved["rz"], "gh_n": saved["n"], "rh": h_out}  # h_out is free until the end
            self.step(gx, h_prev, None, w_hh, b_hn, ws, h_out, ghn_out=True)

    def backward_step(self, saved, h_prev, c_prev, h, dh, dc, w_hh, dgx, dgh, dh_prev_out, dc_prev_out=None):
        xp, bk, H = self.backend.xp, self.backend, self.hidden_size
        direct = bk.empty(dh.shape, dh.dtype)  # the part of dh_prev that bypasses W_hh
        if self.linear_before_reset:
            bk.gru_backward(saved["acts"], saved["ghn"], h_prev, dh, dgx, dgh, direct)
            xp.matmul(dgh, w_hh, out=dh_prev_out)
        else:
            rz = saved["rz"]
            bk.gru_backward_update(rz[:, H:], saved["n"], h_prev, dh, dgx, direct)
            d_rh = xp.matmul(dgx[:, 2 * H:], w_hh[2 * H:])
            bk.gru_backward_reset(rz[:, :H], h_prev, d_rh, dgx, direct)
            xp.matmul(dgx[:, :2 * H], w_hh[:2 * H], out=dh_prev_out)
        dh_prev_out += direct

    def hh_inputs(self, hprev, saved):
        if self.linear_before_reset:
            return super().hh_inputs(hprev, saved)
        H = self.hidden_size
        return [(slice(0, 2 * H), hprev), (slice(2 * H, None), saved["rz"][..., :H] * hprev)]
