"""The GPU backend's variant steps (ONNX's activations, clip, input_forget, peepholes): one fused
kernel of kernels/variant.cuh per step, compiled per combination in use (``_kernels.variant_kernel``)
and memoised like the default kernels. Same arguments and results as _numpy_variant.py."""

from .. import _kernels


def _peep(p, H):
    """The peephole vector's blocks in ONNX's order (p_i, p_o, p_f), or () without peepholes."""
    return () if p is None else (p[:H], p[H:2 * H], p[2 * H:])


class CupyVariantSteps:
    def _launch_v(self, op, variant, ins, outs):
        self._launch(_kernels.variant_kernel(op, variant), ins, outs)

    def rnn_step_v(self, v, gx, gh, h_out):
        self._launch_v("rnn_v", v, (gx,), (gh, h_out))

    def rnn_backward_v(self, v, a, dh, da_out):
        self._launch_v("rnn_v_backward", v, (a, dh), (da_out,))

    def lstm_step_v(self, v, gx, gh, c_prev, p, h_out, c_out):
        H = c_prev.shape[-1]
        blocks = self._gate_blocks
        ins = blocks("gx", gx, 4, H) + (c_prev,) + _peep(p, H)
        self._launch_v("lstm_v" if p is not None else "lstm_v_nopeep", v, ins, blocks("gh", gh, 4, H) + (h_out, c_out))

    def lstm_backward_v(self, v, pre, c_prev, c, dh, dc, p, da_out, dc_prev_out):
        H = c.shape[-1]
        blocks = self._gate_blocks
        ins = blocks("acts", pre, 4, H) + (c_prev, c, dh, dc) + _peep(p, H)
        op = "lstm_v_backward" if p is not None else "lstm_v_backward_nopeep"
        self._launch_v(op, v, ins, blocks("da_out", da_out, 4, H) + (dc_prev_out,))

    def gru_step_v(self, v, gx, gh, b_hn, h_prev, h_out, ghn_out):
        H = h_prev.shape[-1]
        blocks = self._gate_blocks
        bias = () if b_hn is None else (b_hn,)
        self._launch_v("gru_v" if bias else "gru_v_nobias", v, blocks("gx", gx, 3, H) + bias + (h_prev,),
                       blocks("gh", gh, 3, H) + (ghn_out, h_out))

    def gru_backward_v(self, v, pre, ghn, h_prev, dh, dgx_out, dgh_out, dh_direct_out):
        H = h_prev.shape[-1]
        blocks = self._gate_blocks
        outs = blocks("dgx_out", dgx_out, 3, H) + blocks("dgh_out", dgh_out, 3, H) + (dh_direct_out,)
        self._launch_v("gru_v_backward", v, blocks("acts", pre, 3, H) + (ghn, h_prev, dh), outs)

    def gru_reset_v(self, v, gx, gh_rz, h_prev, rh_out):
        H = h_prev.shape[-1]
        gx_r, gh_r = self._gate_blocks("gx", gx, 3, H)[0], self._gate_blocks("gh_rz", gh_rz, 2, H)[0]
        self._launch_v("gru_v_reset", v, (gx_r, h_prev), (gh_r, rh_out))

    def gru_update_v(self, v, gx, gh_rz, gh_n, h_prev, h_out):
        H = h_prev.shape[-1]
        _, gx_z, gx_n = self._gate_blocks("gx", gx, 3, H)
        gh_z = self._gate_blocks("gh_rz", gh_rz, 2, H)[1]
        self._launch_v("gru_v_update", v, (gx_z, gx_n, h_prev), (gh_z, gh_n, h_out))

    def gru_backward_update_v(self, v, a_z, a_n, h_prev, dh, dgx_out, dh_direct_out):
        _, da_z, da_n = self._gate_blocks("dgx_out", dgx_out, 3, h_prev.shape[-1])
        self._launch_v("gru_v_backward_update", v, (a_z, a_n, h_prev, dh), (da_z, da_n, dh_direct_out))

    def gru_backward_reset_v(self, v, a_r, h_prev, d_rh, dgx_out, dh_direct_out):
        da_r = self._gate_blocks("dgx_out", dgx_out, 3, h_prev.shape[-1])[0]
        self._launch_v("gru_v_backward_reset", v, (a_r, h_prev, d_rh), (da_r, dh_direct_out))
