"""The LayerNorm cells' compiled training loops (lntrain) as NumbaBackend runs them: which calls they
cover, their operands and scratch rows. Each entry returns False, having done nothing, for a call it
does not cover, and bptt.py's Python loop runs it instead.

Covered: a LayerNormLSTM or LayerNormGRU recurrence in float32 or float64 with every array in that
dtype, zoneout none or a training mask (not the inference blend), NumPy's BLAS callable from compiled
code (blas.AVAILABLE). The step GEMMs run as the Python loop's would (``_operands``), so that the
loop never wakes a second thread pool: an OpenBLAS GEMM inside a loop whose process runs MKL's pool
made a training call 2.3x slower (T=100 B=8 H=256, RESULTS.md).
"""

import numpy as np

from ..._recurrences.layernorm import LayerNormGRURecurrence, LayerNormLSTMRecurrence
from . import blas, choice, gemm, lntrain

_REALS = (np.float32, np.float64)


def _covers(rec, *arrays):
    dtype = arrays[0].dtype
    return (blas.AVAILABLE and type(rec) in (LayerNormLSTMRecurrence, LayerNormGRURecurrence)
            and dtype in _REALS and all(a is None or (isinstance(a, np.ndarray) and a.dtype == dtype) for a in arrays)
            and (rec.zoneout_mask is not None or not rec.zoneout.prob))


def _operands(packed, matrix, rows):
    """(provider, the B operand of full steps' GEMMs, of partial steps') for ``matrix`` (K, N) at
    ``rows`` rows: as bptt's Python loop multiplies, the packed block's packing for full steps, else
    the provider chosen for the plain GEMM, MKL's unpacked one (a blas.MklMatrix) or OpenBLAS's."""
    plain = choice.decide(matrix.dtype, "plain", rows, matrix.shape[0], matrix.shape[1]).provider
    # W_hh is kept as the transpose of a row-major W_hh^T: the backward's copy reads it once
    row_major = matrix if blas.describable(matrix) else np.ascontiguousarray(matrix)
    part = blas.MklMatrix(row_major) if plain.name == "mkl" else row_major
    if packed is not None:  # the open packed block's, for this matrix and rows (NumbaBackend checked)
        return packed.provider, packed.operand, part
    return plain, part, part


def _run(provider, rows, K, N, loop, *args):
    """Run a loop as time_loop runs its own: OpenBLAS held at one thread while MKL runs, and small
    MKL GEMMs on one thread."""
    with provider.exclusive():
        if provider.name == "mkl" and rows * K * N < gemm.ONE_THREAD_WORK:
            with provider.serial_thread():
                loop(*args)
        else:
            loop(*args)


def _mask(rec, like):
    """(the zoneout mask or a stand-in of its type, whether there is one)."""
    return (rec.zoneout_mask, True) if rec.zoneout_mask is not None else (like, False)


def forward(packed, rec, gx, w_hh, h, c, out, saved, active, reverse):
    """bptt.forward_train_direction's loop over ``gx`` (T, B, G*H), from the state ``h``, ``c`` (B, H;
    updated to the final one) into ``out`` (T, B, H) and the ``saved`` rows."""
    T, B, G = gx.shape
    if not _covers(rec, gx, w_hh, h, c, out, *saved.values()):
        return False
    provider, w_t, w_part = _operands(packed, w_hh.T, B)
    mask, masked = _mask(rec, out)
    gh = np.empty((B, G), gx.dtype)
    active = np.ascontiguousarray(active, dtype=np.int64)
    if rec.has_cell_state:
        _run(provider, B, w_hh.shape[1], G, lntrain.lnlstm_forward, gx, w_t, w_part, h, c, *rec.norms, mask, masked,
             active, reverse, out, saved["c"], saved["gates"], saved["hh_hat"], saved["c_hat"], saved["rstd"], gh)
    else:
        _run(provider, B, w_hh.shape[1], G, lntrain.lngru_forward, gx, w_t, w_part, h, *rec.norms, mask, masked,
             active, reverse, out, saved["gates"], saved["hh_hat"], saved["rstd"], gh)
    return True


def backward(packed, rec, w_hh, tape, dy, dh_rec, dc_rec, hprev, dgx, dgh, rows):
    """bptt.backward_direction's loop: from the gradients ``dh_rec``, ``dc_rec`` (B, H) of the final
    state (updated to the initial state's) and ``dy`` (T, B, H, or None) through every step, writing
    dgx, dgh (T, B, G*H) and the scratch ``rows`` (dcn, or the GRU's dghn) and each step's h_prev into
    ``hprev`` (T, B, H)."""
    x, y, saved, h0, c0, active, reverse = tape
    T, B, G = dgx.shape
    if not _covers(rec, dgx, w_hh, y, h0, c0, dy, dh_rec, dc_rec, hprev, dgh, *rows.values()):
        return False
    provider, w, w_part = _operands(packed, w_hh, B)
    mask, masked = _mask(rec, y)
    has_dy, dy = dy is not None, y if dy is None else dy
    H = dh_rec.shape[1]
    dh, direct = np.empty((2, B, H), dgx.dtype)
    active = np.ascontiguousarray(active, dtype=np.int64)
    steps = (saved["gates"], saved["hh_hat"])
    if rec.has_cell_state:
        cprev, dc = np.empty((2, B, H), dgx.dtype)
        _run(provider, B, G, H, lntrain.lnlstm_backward, w, w_part, y, saved["c"], *steps, saved["c_hat"], saved["rstd"],
             h0, c0, dy, has_dy, *rec.norms, mask, masked, active, reverse, dh_rec, dc_rec, hprev, cprev, dh, dc,
             direct, dgx, dgh, rows["dcn"])
    else:
        _run(provider, B, G, H, lntrain.lngru_backward, w, w_part, y, *steps, saved["rstd"], h0, dy, has_dy, *rec.norms,
             mask, masked, active, reverse, dh_rec, hprev, dh, direct, dgx, rows["dghn"], dgh)
    return True
