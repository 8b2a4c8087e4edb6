"""LSTM with projections (PyTorch's ``proj_size``): the LSTM step, then h = h_full @ W_hr^T.

The LSTM step (any CellMath) is unchanged: it computes the H-wide ``h_full = o * tanh(c)``
and the cell state c (H); one GEMM then projects h_full to the P-wide h that
is the output and the recurrent input (so W_hh is (4H, P)). For training,
``h_full`` of every step is kept on the tape (width H, next to the saved gates
and c), since both dh_full = dh @ W_hr and dW_hr = sum_t dh_t^T h_full_t
need it.

A ``ProjectedLSTMRecurrence`` is bound to one layer and direction's W_hr and made
per forward (or backward) call, so that it always sees the current weights.
"""

import numbers

from .cells import _Recurrence


class ProjectedLSTMRecurrence(_Recurrence):
    """An LSTMRecurrence (``inner``) followed by the projection ``w_hr`` (P, H)."""

    has_cell_state = True
    keeps_dh = True  # backward_direction keeps dh of every step for dW_hr

    def __init__(self, inner, w_hr):
        super().__init__(inner.backend, inner.hidden_size, inner.math)
        self.inner, self.w_hr = inner, w_hr
        self.gates = inner.gates
        self.proj_size = w_hr.shape[0]
        self.saved_widths = {**inner.saved_widths, "h_full": 1}

    def fold_bias(self, b_ih, b_hh):
        return self.inner.fold_bias(b_ih, b_hh)

    def workspace(self, batch, dtype):
        empty = self.backend.empty
        return {**self.inner.workspace(batch, dtype), "h_full": empty((batch, self.hidden_size), dtype),
                "h_proj": empty((batch, self.proj_size), dtype)}

    def _project(self, h_full, h_out, buffer=None):
        # h_out may alias the step's h_prev, which is read by then. A strided h_out (a direction's
        # columns of a bidirectional output) gets the GEMM's result through a contiguous buffer.
        xp = self.backend.xp
        if h_out.flags.c_contiguous:
            self.backend.matmul(h_full, self.w_hr.T, out=h_out)
        else:
            h_out[...] = self.backend.matmul(h_full, self.w_hr.T, out=buffer)

    def step(self, gx, h_prev, c_prev, w_hh, b_hn, ws, h_out, c_out):
        self.inner.step(gx, h_prev, c_prev, w_hh, b_hn, ws, ws["h_full"], c_out)
        self._project(ws["h_full"], h_out, ws["h_proj"])

    def step_train(self, gx, h_prev, c_prev, w_hh, b_hn, saved, h_out, c_out):
        self.inner.step_train(gx, h_prev, c_prev, w_hh, b_hn, saved, saved["h_full"], c_out)
        self._project(saved["h_full"], h_out)

    def backward_step(self, s):
        """dh (P) -> dh_full = dh @ W_hr (H), then the LSTM's backward step; W_hh's GEMM gives dh_prev (P)."""
        self.inner.backward_step(s._replace(h=s.saved["h_full"], dh=self.backend.matmul(s.dh, self.w_hr)))

    def hh_inputs(self, hprev, saved):
        return self.inner.hh_inputs(hprev, saved)

    def output_weight_grads(self, dh_steps, saved):
        """dW_hr = sum over steps of dh^T h_full; rows past a sequence's length are zero in both."""
        T, B, P = dh_steps.shape
        h_full = saved["h_full"].reshape(T * B, self.hidden_size)
        return {"weight_hr": self.backend.matmul(dh_steps.reshape(T * B, P).T, h_full)}


def check_proj_size(proj_size, hidden_size, owner):
    """proj_size as an int in 0..hidden_size-1 (0: no projection), or a clear error."""
    if isinstance(proj_size, bool) or not isinstance(proj_size, numbers.Integral):
        raise TypeError(f"{owner}: proj_size must be an int (0 for no projection), "
                        f"got {type(proj_size).__name__} {proj_size!r}")
    if proj_size < 0:
        raise ValueError(f"{owner}: proj_size must be 0 (no projection) or a positive int, got {proj_size}")
    if proj_size and isinstance(hidden_size, numbers.Integral) and proj_size >= hidden_size:
        raise ValueError(f"{owner}: proj_size must be smaller than hidden_size ({hidden_size}), got {proj_size}")
    return int(proj_size)


def projected_sizes(arrays, owner):
    """(input_size, hidden_size, {"proj_size": P}) of a state_dict with projections, read off
    weight_ih_l0 (4H, I) and weight_hr_l0 (P, H); check_params then checks every shape."""
    for name in ("weight_ih_l0", "weight_hr_l0"):
        if name not in arrays:
            raise KeyError(f"{owner}.from_state_dict: missing key {name!r}")
        if arrays[name].ndim != 2:
            raise ValueError(f"{owner}.from_state_dict: {name!r} must be 2-D, got shape {arrays[name].shape}")
    proj_size, hidden_size = arrays["weight_hr_l0"].shape
    if not 0 < proj_size < hidden_size:
        raise ValueError(f"{owner}.from_state_dict: 'weight_hr_l0' must have shape (P, H) with 0 < P < H "
                         f"(proj_size, hidden_size), got {arrays['weight_hr_l0'].shape}")
    return arrays["weight_ih_l0"].shape[1], hidden_size, {"proj_size": proj_size}
