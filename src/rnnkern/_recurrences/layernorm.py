"""The layer-normalised LSTM and GRU (Haste's cells) as recurrences of sequence.py and bptt.py.

A recurrence is bound to one layer and direction's parameters (keyed without their suffix:
``weight_ih``, ``weight_hh``, ``bias`` (LSTM) or ``bias_ih``/``bias_hh`` (GRU),
``layer_norm_ih_weight``, ``layer_norm_hh_weight``, and the LSTM's ``layer_norm_c_weight`` /
``layer_norm_c_bias``), and to its zoneout: the probability (inference blend), or in training the
(T, B, H) 0/1 mask of every step, kept on the tape with the step's other saved rows. With
DropConnect (``recurrent_dropout``) it runs with W_hh * mask / (1 - p) and scales dW_hh alike.

The input side LN(x W_ih^T; gamma_ih) (+ bias) is one GEMM and a row LayerNorm over all steps
(training keeps its normalised rows and rstd on the recurrence, which the tape keeps); each step is the recurrent GEMM
and the backend's ``lnlstm_step`` / ``lngru_step``. After the time loop, ``parameter_grads`` sums
what the steps left per (t, b): the biases, gamma_hh (dgx * hh_hat; the GRU's from dghn), gamma_c
and beta_c (from dcn), and takes the input side's LayerNorm backward.
"""

from .cells import Weights, _Recurrence
from .sequence import project_inputs
from .layernorm_math import NO_ZONEOUT, LNGRUNorms, LNLSTMNorms, Zoneout


class _LayerNormRecurrence(_Recurrence):
    shares_dgh = False  # dgh: the gradient of the raw h W_hh^T, through LN_hh
    _bias = "bias"  # the name of the bias folded into gx

    def __init__(self, backend, hidden_size, params, zoneout=0.0, zoneout_mask=None, dropconnect=None):
        """``zoneout_mask`` (T, B, H) 0/1 in training (then the step uses it), else ``zoneout`` blends;
        ``dropconnect``: W_hh's (G*H, H) mask, already scaled by 1 / (1 - p), or None."""
        super().__init__(backend, hidden_size)
        self.params = params
        self.zoneout = Zoneout(float(zoneout), None) if zoneout else NO_ZONEOUT
        self.zoneout_mask = zoneout_mask
        self.dropconnect = dropconnect
        self._w_hh = params["weight_hh"] if dropconnect is None else params["weight_hh"] * dropconnect
        self._gh = None

    def weights_of(self, params):
        return Weights(params["weight_ih"], self._w_hh)

    def project(self, x, batch_first):
        """gx of every step for inference, in chunks (sequence.InputProjection)."""
        p = self.params
        return project_inputs(self.backend, x, p["weight_ih"], p.get(self._bias), batch_first,
                              norm=p["layer_norm_ih_weight"])

    def saved_arrays(self, steps, batch, dtype):
        zeros = self.backend.zeros
        saved = {name: zeros((steps, batch, cols), dtype) for name, cols in self.step_columns().items()}
        if self.zoneout_mask is not None:
            saved["zoneout_mask"] = self.zoneout_mask
        return saved

    def train_inputs(self, x, weights, saved):
        """gx = LN(x W_ih^T; gamma_ih) + bias of every step; the input side's normalised rows and rstd
        are kept by the recurrence (which the tape keeps), not sliced per step with ``saved``."""
        T, B, I = x.shape
        bk, p, GH = self.backend, self.params, self.gates * self.hidden_size
        gx = bk.matmul(x.reshape(T * B, I), weights.w_ih.T)
        self._ih_hat, self._ih_rstd = bk.empty((T * B, GH), x.dtype), bk.empty((T * B, 1), x.dtype)
        bk.layer_norm_rows(gx, p["layer_norm_ih_weight"], p.get(self._bias), self._ih_hat, self._ih_rstd)
        return gx.reshape(T, B, GH), None

    def _train_zoneout(self, saved):
        mask = saved.get("zoneout_mask")
        return self.zoneout if mask is None else Zoneout(self.zoneout.prob, mask)

    def _scratch(self, rows, dtype):
        """gh of a training step: (rows, G*H), a prefix of one buffer kept by the recurrence."""
        if self._gh is None or self._gh.shape[0] < rows or self._gh.dtype != dtype:
            self._gh = self.backend.empty((rows, self.gates * self.hidden_size), dtype)
        return self._gh[:rows]

    def _finish_grads(self, grads, dgx, dgh):
        """The input side's LayerNorm backward (its bias's gradient on the way: the sum of dgx's rows) and
        DropConnect's scale; returns d(x W_ih^T) (T*B, G*H), written into dgh's buffer (done with by now)."""
        if self.dropconnect is not None:
            grads["weight_hh"] *= self.dropconnect
        dproj, grads["layer_norm_ih_weight"], grads[self._bias] = self.backend.layer_norm_rows_backward(
            dgx, self.params["layer_norm_ih_weight"], self._ih_hat, self._ih_rstd, dgh)
        return dproj

    @staticmethod
    def _sum_product(xp, a, b):
        """sum over (t, b) of a*b: (T, B, N) each -> (N,)."""
        return xp.einsum("tbn,tbn->n", a, b)


class LayerNormLSTMRecurrence(_LayerNormRecurrence):
    gates = 4
    has_cell_state = True

    def __init__(self, backend, hidden_size, params, zoneout=0.0, zoneout_mask=None, dropconnect=None):
        super().__init__(backend, hidden_size, params, zoneout, zoneout_mask, dropconnect)
        self.norms = LNLSTMNorms(params["layer_norm_hh_weight"], params["layer_norm_c_weight"],
                                 params["layer_norm_c_bias"])

    def step_columns(self):
        H = self.hidden_size
        return {"gates": 4 * H, "hh_hat": 4 * H, "c": H, "c_hat": H, "rstd": 2}

    def step(self, gx, h_prev, c_prev, w_hh, b_hn, ws, h_out, c_out):
        self.backend.matmul(h_prev, w_hh.T, out=ws["gh"])
        self.backend.lnlstm_step(gx, ws["gh"], c_prev, h_prev, self.norms, self.zoneout, h_out, c_out)

    def step_train(self, gx, h_prev, c_prev, w_hh, b_hn, saved, h_out, c_out):
        gh = self.backend.matmul(h_prev, w_hh.T, out=self._scratch(h_prev.shape[0], h_prev.dtype))
        self.backend.lnlstm_step(gx, gh, c_prev, h_prev, self.norms, self._train_zoneout(saved), h_out, c_out, saved)

    def backward_arrays(self, steps, batch, dtype):
        return {"dcn": self.backend.zeros((steps, batch, self.hidden_size), dtype)}

    def backward_step(self, s):
        bk, zoneout = self.backend, self._train_zoneout(s.saved)
        direct = None if zoneout.mask is None and not zoneout.prob else bk.empty(s.dh.shape, s.dh.dtype)
        bk.lnlstm_backward(s.saved, s.c_prev, s.dh, s.dc, self.norms, zoneout, s.dgx, s.dgh, s.dc_prev_out,
                           direct, s.saved["dcn"])
        bk.matmul(s.dgh, s.w_hh, out=s.dh_prev_out)
        if direct is not None:
            bk.xp.add(s.dh_prev_out, direct, out=s.dh_prev_out)

    def parameter_grads(self, grads, dgx, dgh, arrays, weights):
        xp, (T, B, GH) = self.backend.xp, arrays["gates"].shape
        grads["layer_norm_hh_weight"] = self._sum_product(xp, dgx.reshape(T, B, GH), arrays["hh_hat"])
        grads["layer_norm_c_weight"] = self._sum_product(xp, arrays["dcn"], arrays["c_hat"])
        grads["layer_norm_c_bias"] = arrays["dcn"].sum(axis=(0, 1))
        return self._finish_grads(grads, dgx, dgh)


class LayerNormGRURecurrence(_LayerNormRecurrence):
    gates = 3
    _bias = "bias_ih"

    def __init__(self, backend, hidden_size, params, zoneout=0.0, zoneout_mask=None, dropconnect=None):
        super().__init__(backend, hidden_size, params, zoneout, zoneout_mask, dropconnect)
        self.norms = LNGRUNorms(params["layer_norm_hh_weight"], params["bias_hh"])

    def step_columns(self):
        return {"gates": 3 * self.hidden_size, "hh_hat": 3 * self.hidden_size, "rstd": 1}

    def step(self, gx, h_prev, c_prev, w_hh, b_hn, ws, h_out, c_out=None):
        self.backend.matmul(h_prev, w_hh.T, out=ws["gh"])
        self.backend.lngru_step(gx, ws["gh"], h_prev, self.norms, self.zoneout, h_out)

    def step_train(self, gx, h_prev, c_prev, w_hh, b_hn, saved, h_out, c_out=None):
        gh = self.backend.matmul(h_prev, w_hh.T, out=self._scratch(h_prev.shape[0], h_prev.dtype))
        self.backend.lngru_step(gx, gh, h_prev, self.norms, self._train_zoneout(saved), h_out, saved)

    def backward_arrays(self, steps, batch, dtype):
        return {"dghn": self.backend.zeros((steps, batch, 3 * self.hidden_size), dtype)}

    def backward_step(self, s):
        bk = self.backend
        direct = bk.empty(s.dh.shape, s.dh.dtype)
        bk.lngru_backward(s.saved, s.h_prev, s.dh, self.norms, self._train_zoneout(s.saved), s.dgx,
                          s.saved["dghn"], s.dgh, direct)
        bk.matmul(s.dgh, s.w_hh, out=s.dh_prev_out)
        bk.xp.add(s.dh_prev_out, direct, out=s.dh_prev_out)

    def parameter_grads(self, grads, dgx, dgh, arrays, weights):
        xp, dghn = self.backend.xp, arrays["dghn"]
        grads["bias_hh"] = dghn.sum(axis=(0, 1))
        grads["layer_norm_hh_weight"] = self._sum_product(xp, dghn, arrays["hh_hat"])
        return self._finish_grads(grads, dgx, dgh)
