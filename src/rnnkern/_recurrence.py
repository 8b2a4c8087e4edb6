"""One time step of each cell kind, written once for every backend and used by cells and layers.

A step is the recurrent GEMM (``xp.matmul`` on any backend: BLAS or cuBLAS)
followed by the backend's fused elementwise step. The input projection
``gx = x @ W_ih^T + bias`` is computed by the caller, for all time steps at once
in a layer. Every bias that is added linearly is folded into ``gx``; only the
GRU's b_hn, which the reset gate multiplies, stays separate.
"""


class _Recurrence:
    gates = 1
    has_cell_state = False

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


class RNNRecurrence(_Recurrence):
    gates = 1

    def __init__(self, backend, hidden_size, nonlinearity):
        super().__init__(backend, hidden_size)
        self.nonlinearity = nonlinearity

    def step(self, gx, h_prev, c_prev, w_hh, b_hn, ws, h_out, c_out=None):
        self.backend.xp.matmul(h_prev, w_hh.T, out=ws["gh"])
        self.backend.rnn_step(gx, ws["gh"], h_out, self.nonlinearity)


class LSTMRecurrence(_Recurrence):
    gates = 4
    has_cell_state = True

    def step(self, gx, h_prev, c_prev, w_hh, b_hn, ws, h_out, c_out):
        self.backend.xp.matmul(h_prev, w_hh.T, out=ws["gh"])
        self.backend.lstm_step(gx, ws["gh"], c_prev, h_out, c_out)


class GRURecurrence(_Recurrence):
    gates = 3

    def __init__(self, backend, hidden_size, linear_before_reset):
        super().__init__(backend, hidden_size)
        self.linear_before_reset = linear_before_reset

    def fold_bias(self, b_ih, b_hh):
        if b_ih is None or not self.linear_before_reset:
            return super().fold_bias(b_ih, b_hh)
        H = self.hidden_size
        folded = b_ih.copy()
        folded[:2 * H] += b_hh[:2 * H]
        return folded, b_hh[2 * H:]

    def workspace(self, batch, dtype):
        if self.linear_before_reset:
            return super().workspace(batch, dtype)
        H, empty = self.hidden_size, self.backend.empty
        return {"gh_rz": empty((batch, 2 * H), dtype), "gh_n": empty((batch, H), dtype),
                "rh": empty((batch, H), dtype)}

    def step(self, gx, h_prev, c_prev, w_hh, b_hn, ws, h_out, c_out=None):
        xp, bk, H = self.backend.xp, self.backend, self.hidden_size
        if self.linear_before_reset:
            xp.matmul(h_prev, w_hh.T, out=ws["gh"])
            bk.gru_step(gx, ws["gh"], b_hn, h_prev, h_out)
            return
        xp.matmul(h_prev, w_hh[:2 * H].T, out=ws["gh_rz"])
        bk.gru_reset(gx, ws["gh_rz"], h_prev, ws["rh"])
        xp.matmul(ws["rh"], w_hh[2 * H:].T, out=ws["gh_n"])
        bk.gru_update(gx, ws["gh_rz"], ws["gh_n"], h_prev, h_out)
