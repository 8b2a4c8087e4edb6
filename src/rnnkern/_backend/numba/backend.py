"""The CPU backend with numba: NumpyBackend's arrays and GEMMs, each step's gate math one compiled kernel.

The step API is the backends' (``rnn_step(m, ...)`` and the rest, ``m`` a CellMath; see _numpy.py);
the kernels and time loops are ``steps``, compiled for each CellMath by ``specialise``
(the defaults are that module itself). Only the inference steps differ from NumPy's in what they
leave behind: the NumPy steps leave the activations in ``gh``, these leave ``gh`` as it was (only the
training steps, ``train=True`` or a ``ghn_out``, write the gates).
"""

import contextlib
import functools
import threading
from typing import Any, NamedTuple

import numba
import numpy as np

from ..._recurrences.cells import GRURecurrence, LSTMRecurrence, RNNRecurrence
from ..._recurrences.layernorm import LayerNormGRURecurrence, LayerNormLSTMRecurrence
from . import blas, choice, gemm, lnrows, lnsteps, shard, trainloop
from .scalar import apart
from .specialise import steps
from ..numpy.steps import NumpyBackend

# Batches up to this size run the compiled time loop (steps.*_loop); larger ones the Python
# loop, whose per-step cost is small beside their GEMMs (see benchmarks/RESULTS.md).
LOOP_MAX_BATCH = 16
_REALS = (np.float32, np.float64)
# The LayerNorm cells' inference loops (lnsteps.*_loop), and the plain cell whose size rules they follow.
_LAYER_NORM = {LayerNormLSTMRecurrence: "LSTM", LayerNormGRURecurrence: "GRU"}


@functools.lru_cache(maxsize=None)
def _zeros(size, dtype):
    """A vector of zeros, made once per size and dtype, that the kernels only read: it stands in for an
    absent peephole vector (never read) or b_hn (added as zeros), so that no step allocates one.
    (Writable, so that numba compiles the kernel for one array type, not also a read-only one.) Keyed
    by the dtype object: ``dtype.name`` builds a string each time, 4 us, as much as a small step."""
    return np.zeros(size, dtype)


class _Packed(NamedTuple):
    """A matrix packed for the GEMMs of a ``NumbaBackend.packed`` block: which array it is (its address,
    shape, strides and dtype: a view made anew each step is the same matrix), for how many rows. It
    keeps the array itself, so that no other array can take its address while the block is open."""
    key: tuple
    rows: int
    provider: Any
    operand: Any
    source: Any

    def takes(self, a, b, out):
        K, N = self.key[1]
        return (a.shape == (self.rows, K) and out is not None and out.shape == (self.rows, N)
                and _key(b) == self.key and blas.describable(a) and blas.describable(out)
                and a.dtype == out.dtype == b.dtype)


def _key(b):
    return b.ctypes.data, b.shape, b.strides, b.dtype


_SCOPE = threading.local()  # .packed: the innermost packed block's _Packed on this thread, or None


def _packed_for(b, rows):
    """This thread's open packed block where it packed ``b`` for ``rows``-row products, else None."""
    packed = getattr(_SCOPE, "packed", None)
    return packed if packed is not None and packed.key == _key(b) and packed.rows == rows else None


def _peepholes(p, like):
    return _zeros(1, like.dtype) if p is None else p


class NumbaBackend(NumpyBackend):
    _kernels = f"numba {numba.__version__} fused kernels"

    # --- GEMMs: the provider chosen for their class (choice) -----------------------------------
    def matmul(self, a, b, out=None):
        """a @ b (into ``out``) by the provider chosen for this GEMM's class; only 2-D products of
        float32 or float64 matrices are offered to a provider, anything else is np.matmul's."""
        if a.ndim != 2 or b.ndim != 2 or a.dtype not in _REALS or b.dtype != a.dtype:
            return np.matmul(a, b, out=out)
        packed = getattr(_SCOPE, "packed", None)
        if packed is not None and packed.takes(a, b, out):
            return packed.provider.matmul_packed(a, packed.operand, b.shape[1], out)
        provider = choice.decide(a.dtype, "plain", a.shape[0], a.shape[1], b.shape[1]).provider
        return provider.matmul(a, b, out=out)

    @contextlib.contextmanager
    def packed(self, b, rows, room=0):
        """Inside the block, this thread's ``matmul(a, b, out)`` with ``rows``-row ``a`` multiplies by
        ``b`` packed once, where the provider chosen for that step GEMM packs (MKL): training's step
        GEMMs, as the compiled loops' (which pack per call too). ``b`` must not change inside.
        ``room``: bytes the caller holds anyway, which the packing may take (choice.decide)."""
        previous = getattr(_SCOPE, "packed", None)
        if b.ndim == 2 and b.dtype in _REALS and rows >= 1:  # (MKL packs any layout: a copy's, if need be)
            provider = choice.decide(b.dtype, "step", rows, b.shape[0], b.shape[1], room).provider
            if provider.name == "mkl":
                _SCOPE.packed = _Packed(_key(b), rows, provider, provider.step_operand(b, rows), b)
        try:
            yield
        finally:
            _SCOPE.packed = previous

    # --- the compiled time loop --------------------------------------------------------------
    def time_loop(self, rec, gx, w_hh, b_hn, h0, out, reverse, c):
        """Run ``_sequence.run_direction``'s loop compiled, when it can: returns False (having done
        nothing) for what the compiled loops do not cover, and the Python loop runs instead. The
        batch runs in shards on both cores where ``shard.shard_count`` says so, or split by hidden units
        where ``shard.part_count`` does (batch 1); with OpenBLAS unsharded, batches above
        LOOP_MAX_BATCH keep the Python loop (as fast there, RESULTS.md)."""
        T, B, H = out.shape
        if not self._loop_covers(rec, gx, w_hh, h0, c, out, B, H):
            return False
        G = rec.gates * H
        dtype = out.dtype
        provider = choice.decide(dtype, "step", B, H, G, room=out.nbytes).provider
        layer_norm = type(rec) in _LAYER_NORM
        kind = _LAYER_NORM[type(rec)] if layer_norm else rec.math.kind  # LayerNorm cells shard as their plain ones
        shards = shard.shard_count(B, provider.name, kind)
        if shards == 1 and provider.name == "openblas" and B > LOOP_MAX_BATCH:
            return False
        # An initial state BLAS cannot take as it is (broadcast, reversed or overlapping rows) is
        # copied: B*H values, against a silently wrong product (issue 15).
        h0 = h0 if blas.describable(h0) else np.ascontiguousarray(h0)
        b_hn = _zeros(H, dtype) if b_hn is None else b_hn
        p = None if c is None else _peepholes(getattr(rec, "weight_p", None), c)
        loop = shard.Loop(None if layer_norm else steps(rec.math), rec, w_hh, b_hn, p, dtype)
        parts = shard.part_count(B, rec, provider.name) if shards == 1 else 1
        if parts > 1:
            shard.run_split(loop, provider, gx, h0, out, reverse, c, parts)
            return True
        one_thread = provider.name == "mkl" and B * H * G < gemm.ONE_THREAD_WORK
        shard.run_sharded(loop, provider, gx, h0, out, reverse, c, shard.bounds(B, shards), one_thread)
        return True

    @staticmethod
    def _loop_covers(rec, gx, w_hh, h0, c, out, B, H):
        """Whether a compiled loop computes exactly this recurrence: a known cell with nothing added
        (a projection, say, changes the shapes checked here), the input projected in chunks
        (_sequence.InputProjection), W_hh^T and every output step a row-major matrix BLAS can take
        (the initial state is copied when it is not, see time_loop). Every CellMath is covered."""
        return (blas.AVAILABLE and B >= 1 and out.dtype in (np.float32, np.float64)
                and (type(rec) in (RNNRecurrence, LSTMRecurrence, GRURecurrence)
                     or type(rec) in _LAYER_NORM and getattr(rec.zoneout, "mask", None) is None)
                and hasattr(gx, "block")
                and rec.hidden_size == H and w_hh.shape == (rec.gates * H, H) and h0.shape == (B, H)
                and blas.describable(w_hh.T) and blas.describable(out[0])
                and (c is None) == (not rec.has_cell_state) and (c is None or c.strides[-1] == out.itemsize))

    # --- the compiled training loops (the LayerNorm cells'; trainloop) -------------------------
    def train_loop(self, rec, gx, w_hh, h, c, out, saved, active, reverse):
        """bptt.forward_train_direction's time loop compiled; False (nothing done) where not covered."""
        return trainloop.forward(_packed_for(w_hh.T, gx.shape[1]), rec, gx, w_hh, h, c, out, saved, active, reverse)

    def backward_loop(self, rec, w_hh, tape, dy, dh_rec, dc_rec, hprev, dgx, dgh, rows):
        """bptt.backward_direction's time loop compiled; False (nothing done) where not covered."""
        return trainloop.backward(_packed_for(w_hh, dgx.shape[1]), rec, w_hh, tape, dy, dh_rec, dc_rec, hprev,
                                  dgx, dgh, rows)

    # --- forward ----------------------------------------------------------------------------
    def rnn_step(self, m, gx, gh, h_out, train=False):
        k = steps(m)
        (k.rnn_step_train if train else k.rnn_step)(gx, gh, h_out)

    def lstm_step(self, m, gx, gh, c_prev, p, h_out, c_out, train=False):
        k = steps(m)
        (k.lstm_step_train if train else k.lstm_step)(gx, gh, apart(c_prev, c_out), _peepholes(p, h_out),
                                                      h_out, c_out)

    def gru_step(self, m, gx, gh, b_hn, h_prev, h_out, ghn_out=None):
        k = steps(m)
        b_hn = _zeros(h_out.shape[1], h_out.dtype) if b_hn is None else b_hn
        if ghn_out is None:
            k.gru_step(gx, gh, b_hn, apart(h_prev, h_out), h_out)
        else:
            k.gru_step_train(gx, gh, b_hn, apart(h_prev, h_out), h_out, ghn_out)

    def gru_reset(self, m, gx, gh_rz, h_prev, rh_out):
        steps(m).gru_reset(gx, gh_rz, h_prev, rh_out)

    def gru_update(self, m, gx, gh_rz, gh_n, h_prev, h_out, train=False):
        k = steps(m)
        (k.gru_update_train if train else k.gru_update)(gx, gh_rz, gh_n, apart(h_prev, h_out), h_out)

    # --- backward ---------------------------------------------------------------------------
    def rnn_backward(self, m, saved, dh, da_out):
        steps(m).rnn_backward(saved, dh, da_out)

    def lstm_backward(self, m, gates, c_prev, c, dh, dc, p, da_out, dc_prev_out):
        steps(m).lstm_backward(gates, c_prev, c, dh, apart(dc, dc_prev_out), _peepholes(p, c), da_out, dc_prev_out)

    def gru_backward(self, m, gates, ghn, h_prev, dh, dgx_out, dgh_out, dh_direct_out):
        steps(m).gru_backward(gates, ghn, h_prev, dh, dgx_out, dgh_out, dh_direct_out)

    def gru_backward_update(self, m, z, n, h_prev, dh, dgx_out, dh_direct_out):
        steps(m).gru_backward_update(z, n, h_prev, dh, dgx_out, dh_direct_out)

    def gru_backward_reset(self, m, r, h_prev, d_rh, dgx_out, dh_direct_out):
        steps(m).gru_backward_reset(r, h_prev, d_rh, dgx_out, dh_direct_out)

    # --- LayerNorm LSTM and GRU with zoneout (issue 20; the step API of NumpyBackend's ln* steps) ----
    def layer_norm_rows(self, a, gamma, bias=None, hat_out=None, rstd_out=None):
        """The input side's LayerNorm over all steps (see NumpyBackend): one kernel, lnrows.ln_rows."""
        if not _row_kernel_takes(a, gamma, bias, hat_out, rstd_out):
            return super().layer_norm_rows(a, gamma, bias, hat_out, rstd_out)
        bias = _zeros(a.shape[1], a.dtype) if bias is None else bias
        if hat_out is None:
            lnrows.ln_rows(a, gamma, bias)
        else:
            lnrows.ln_rows_save(a, gamma, bias, hat_out, rstd_out)
        return a

    def layer_norm_rows_backward(self, dout, gamma, hat, rstd, dx_out):
        if not _row_kernel_takes(dout, gamma, hat, rstd, dx_out):
            return super().layer_norm_rows_backward(dout, gamma, hat, rstd, dx_out)
        dgamma, dsum = np.empty((2, dout.shape[1]))  # float64 accumulators (lnrows says why)
        lnrows.ln_rows_backward(dout, gamma, hat, rstd, dx_out, dgamma, dsum)
        return dx_out, dgamma.astype(dout.dtype), dsum.astype(dout.dtype)

    # One kernel per step (lnsteps); zoneout picks the kernel, compiled with it as a constant.
    def lnlstm_step(self, gx, gh, c_prev, h_prev, norms, zoneout, h_out, c_out, saved=None):
        """LN(gh; gamma_hh) + gx, the gates, c' = f*c + i*g into c_out, h' = zoneout(o*tanh(LN(c'))) into
        h_out; gh is scratch. With ``saved`` (training) also its gates, hh_hat, c_hat and rstd."""
        zo, arg = _zoneout(zoneout)
        kernel = _LNLSTM_STEP[zo, saved is not None]
        ins = (gx, gh, apart(c_prev, c_out)) + (() if zo == lnsteps.NONE else (apart(h_prev, h_out),))
        train = () if saved is None else (saved["gates"], saved["hh_hat"], saved["c_hat"], saved["rstd"])
        kernel(*ins, *norms, *arg, h_out, c_out, *train)

    def lnlstm_backward(self, saved, c_prev, dh, dc, norms, zoneout, dgx_out, dgh_out, dc_prev_out,
                        dh_direct_out, dcn_out):
        zo, arg = _zoneout(zoneout)
        direct = _direct_out(zo, dh_direct_out)
        kernel = _LNLSTM_BACKWARD[zo]
        kernel(saved["gates"], saved["hh_hat"], saved["c_hat"], saved["rstd"], c_prev,
               apart(dh, dh_direct_out) if direct else dh, apart(dc, dc_prev_out), *norms, *arg,
               dgx_out, dgh_out, dc_prev_out, *direct, dcn_out)

    def lngru_step(self, gx, gh, h_prev, norms, zoneout, h_out, saved=None):
        """ghn = LN(gh; gamma_hh) + b_hh, r, z, n, h' = zoneout((1-z)*n + z*h_prev) into h_out; gh is
        scratch. With ``saved`` (training) also its gates, hh_hat and rstd."""
        zo, arg = _zoneout(zoneout)
        train = () if saved is None else (saved["gates"], saved["hh_hat"], saved["rstd"])
        _LNGRU_STEP[zo, saved is not None](gx, gh, apart(h_prev, h_out), *norms, *arg, h_out, *train)

    def lngru_backward(self, saved, h_prev, dh, norms, zoneout, dgx_out, dghn_out, dgh_out, dh_direct_out):
        zo, arg = _zoneout(zoneout)
        _LNGRU_BACKWARD[zo](saved["gates"], saved["hh_hat"], saved["rstd"], h_prev, apart(dh, dh_direct_out),
                            *norms, *arg, dgx_out, dghn_out, dgh_out, dh_direct_out)


def _row_kernel_takes(*arrays):
    """Whether lnrows' kernels take these (rows, N) / (N,) arrays: NumPy arrays of one real dtype whose
    rows are contiguous (None: absent); else the NumPy code runs (float16, say)."""
    given = [a for a in arrays if a is not None]
    first = given[0]
    return (first.ndim == 2 and first.dtype in _REALS
            and all(isinstance(a, np.ndarray) and a.dtype == first.dtype and a.strides[-1] == a.itemsize
                    for a in given))


def _zoneout(zoneout):
    """(variant, the kernel's zoneout argument: () / (prob,) / (mask,)) of a Zoneout (or None)."""
    if zoneout is None:
        return lnsteps.NONE, ()
    if zoneout.mask is not None:
        return lnsteps.MASK, (zoneout.mask,)
    return (lnsteps.BLEND, (float(zoneout.prob),)) if zoneout.prob else (lnsteps.NONE, ())


def _direct_out(zo, dh_direct_out):
    """(dh_direct_out,) where zoneout lets part of dh bypass h_new, () where none does."""
    if zo == lnsteps.NONE:
        return ()
    if dh_direct_out is None:
        raise ValueError("dh_direct_out must be a (B, H) array with zoneout (the part of dh that zoneout "
                         "passes to h_prev), got None")
    return (dh_direct_out,)


_VARIANTS = {lnsteps.NONE: "", lnsteps.BLEND: "_blend", lnsteps.MASK: "_mask"}
_LNLSTM_STEP = {(zo, train): getattr(lnsteps, "lnlstm_step" + ("_train" if train else "") + suffix)
                for zo, suffix in _VARIANTS.items() for train in (False, True)}
_LNGRU_STEP = {(zo, train): getattr(lnsteps, "lngru_step" + ("_train" if train else "") + suffix)
               for zo, suffix in _VARIANTS.items() for train in (False, True)}
_LNLSTM_BACKWARD = {zo: getattr(lnsteps, "lnlstm_backward" + suffix) for zo, suffix in _VARIANTS.items()}
_LNGRU_BACKWARD = {zo: getattr(lnsteps, "lngru_backward" + suffix) for zo, suffix in _VARIANTS.items()}
