"""The GPU backend: CuPy arrays, cuBLAS GEMMs (``xp.matmul``) and one fused CUDA kernel per step phase.

The kernels' math lives in ``kernels/*.cuh``, one template per cell; ``rnnkern._backend.cupy.kernels`` instantiates
it per CellMath (``m``: the defaults, or ONNX's options) and turns its table into
``cupy.ElementwiseKernel`` arguments. Gate blocks are passed as strided column views
(as Chainer's LSTM does), so a kernel body is pure arithmetic and no gate is copied.
Semantics and argument conventions are those of ``NumpyBackend`` (see its docstrings).
"""

import contextlib

import numpy as np

from . import kernels as _kernels, lnkernels as _ln
from ..host import detached, device_of, to_host
from ..._recurrences.layernorm_math import layer_norm_rows, layer_norm_rows_backward


_SLICES = {}  # (count, hidden) -> the column slices of the gate blocks, made once per size


def _blocks(name, array, count, hidden):
    """The ``count`` gate blocks of ``array`` (..., count*hidden) as views, or a ValueError naming it."""
    if array.shape[-1] != count * hidden:
        raise ValueError(f"{name} must have {count}*hidden_size = {count * hidden} columns (hidden_size "
                         f"{hidden}), got shape {tuple(array.shape)}")
    slices = _SLICES.get((count, hidden))
    if slices is None:
        slices = _SLICES[count, hidden] = tuple((Ellipsis, slice(k * hidden, (k + 1) * hidden))
                                                for k in range(count))
    return tuple([array[s] for s in slices])


class CupyBackend:
    """CuPy on the current CUDA device."""

    is_backend = True
    name = "gpu"
    dtypes = ("float16", "float32", "float64")

    def __init__(self, cupy_module):
        self.xp = cupy_module

        # Built once per device and dtype, then reused (as cupyx.scipy.ndimage memoises its
        # kernels): ElementwiseKernel compiles on first launch and caches the binary itself.
        @cupy_module.memoize(for_each_device=True)
        def kernel(name, dtype):
            """The ElementwiseKernel of fused step ``name`` for storage dtype ``dtype`` (a name)."""
            return cupy_module.ElementwiseKernel(**_kernels.elementwise_args(name, dtype))

        @cupy_module.memoize(for_each_device=True)
        def ln_module(op, dtype):
            """The RawModule of LayerNorm op ``op`` (every zoneout variant and row group) in ``dtype``."""
            return cupy_module.RawModule(code=_ln.translation_unit(op, dtype, "cuda"))

        self.kernel = kernel
        self.ln_module = ln_module
        self._ln_ready = {}  # (symbol) -> the RawModule's function, fetched once
        self._ready = {}  # (op, CellMath, dtype) -> (kernel name, kernel), once a first launch's arguments were checked

    # --- arrays ------------------------------------------------------------
    def asarray(self, x, dtype=None):
        """``x`` on the GPU: CuPy arrays pass through (cast if ``dtype`` differs), host data is copied."""
        cp = self.xp
        if isinstance(x, cp.ndarray) and (dtype is None or x.dtype == dtype):
            return x
        if isinstance(x, cp.ndarray):
            return cp.asarray(x, dtype=dtype)
        x = detached(x)  # a torch tensor that requires grad exports neither DLPack nor __cuda_array_interface__
        if device_of(x) == "gpu":  # another library's device array (a CUDA torch tensor): no host round trip
            on_device = cp.from_dlpack(x) if hasattr(x, "__dlpack__") else cp.asarray(x)
            return on_device if dtype is None else on_device.astype(dtype, copy=False)
        return cp.asarray(np.asarray(to_host(x), dtype=dtype))

    def to_numpy(self, array):
        return self.xp.asnumpy(array)

    def is_native(self, array):
        return isinstance(array, self.xp.ndarray)

    def empty(self, shape, dtype):
        return self.xp.empty(shape, dtype=dtype)

    def zeros(self, shape, dtype):
        return self.xp.zeros(shape, dtype=dtype)

    def synchronize(self):
        """Wait for all work queued on the current device (for timings)."""
        self.xp.cuda.Device().synchronize()

    def matmul(self, a, b, out=None):
        """Every GEMM of the recurrences: cuBLAS."""
        return self.xp.matmul(a, b, out=out)

    def packed(self, b, rows, room=0):
        """A block whose GEMMs by ``b`` (``rows`` rows at a time) may use it packed: the numba backend's
        MKL packs; here nothing changes."""
        return contextlib.nullcontext()

    # --- fused steps: the contract's step API; m is the direction's CellMath ------------------
    # A training step leaves the gates in gh in gate form: activations if m.saves_activations,
    # else pre-activations (peephole terms added, before the clip); backward takes the same form.
    def rnn_step(self, m, gx, gh, h_out, train=False):
        """h_out = f(clip(gx + gh)): one kernel. If train and not m.saves_activations, gh is left holding gx + gh."""
        if train and not m.saves_activations:
            self._launch("rnn_step_train", m, (gx,), (gh, h_out))
        else:
            self._launch("rnn_step", m, (gx, gh), (h_out,))

    def rnn_backward(self, m, saved, dh, da_out):
        """da_out = dh * f'(a), from ``saved``: h (m.saves_activations) or a."""
        self._launch("rnn_backward", m, (saved, dh), (da_out,))

    def lstm_step(self, m, gx, gh, c_prev, p, h_out, c_out, train=False):
        """Gates (i, f, g, o) from gx + gh (and the peepholes p); c = f*c_prev + i*g; h = o*h(c): one kernel.
        If train, gh is left holding the gates in gate form. c_out may be c_prev."""
        H = c_prev.shape[-1]
        gx4, gh4 = _blocks("gx", gx, 4, H), _blocks("gh", gh, 4, H)
        if train:
            self._launch("lstm_step_train", m, gx4 + (c_prev,) + _peep(p, H), gh4 + (h_out, c_out))
        else:
            self._launch("lstm_step", m, gx4 + gh4 + (c_prev,) + _peep(p, H), (h_out, c_out))

    def lstm_backward(self, m, gates, c_prev, c, dh, dc, p, da_out, dc_prev_out):
        """Pre-activation gradients (B, 4H) and dc_prev (may alias dc) from the gates in gate form."""
        H = c.shape[-1]
        ins = _blocks("gates", gates, 4, H) + (c_prev, c, dh, dc) + _peep(p, H)
        self._launch("lstm_backward", m, ins, _blocks("da_out", da_out, 4, H) + (dc_prev_out,))

    def gru_step(self, m, gx, gh, b_hn, h_prev, h_out, ghn_out=None):
        """linear_before_reset=True: n = g(clip(gx_n + r*(gh_n + b_hn))); h = (1-z)*n + z*h_prev: one kernel.
        With ``ghn_out`` (training), gh is left holding the gates in gate form and ghn_out gh_n + b_hn."""
        H = h_prev.shape[-1]
        gx3, gh3 = _blocks("gx", gx, 3, H), _blocks("gh", gh, 3, H)
        bias = () if b_hn is None else (b_hn,)
        if ghn_out is None:
            self._launch("gru_step" if bias else "gru_step_nobias", m, gx3 + gh3 + bias + (h_prev,), (h_out,))
        else:
            op = "gru_step_train" if bias else "gru_step_train_nobias"
            self._launch(op, m, gx3 + bias + (h_prev,), gh3 + (ghn_out, h_out))

    def gru_backward(self, m, gates, ghn, h_prev, dh, dgx_out, dgh_out, dh_direct_out):
        """linear_before_reset=True: dgx, dgh (B, 3H) and dh*z from the gates in gate form and ghn."""
        H = h_prev.shape[-1]
        outs = _blocks("dgx_out", dgx_out, 3, H) + _blocks("dgh_out", dgh_out, 3, H) + (dh_direct_out,)
        self._launch("gru_backward", m, _blocks("gates", gates, 3, H) + (ghn, h_prev, dh), outs)

    def gru_reset(self, m, gx, gh_rz, h_prev, rh_out):
        """linear_before_reset=False, phase 1: gh_rz's r half is left holding r in gate form; rh_out = r * h_prev."""
        H = h_prev.shape[-1]
        gx_r, gh_r = _blocks("gx", gx, 3, H)[0], _blocks("gh_rz", gh_rz, 2, H)[0]
        self._launch("gru_reset", m, (gx_r, h_prev), (gh_r, rh_out))

    def gru_update(self, m, gx, gh_rz, gh_n, h_prev, h_out, train=False):
        """linear_before_reset=False, phase 2: z, n and the blend, one kernel. If train, gh_rz's z half
        and gh_n are left in gate form. h_out may be h_prev."""
        H = h_prev.shape[-1]
        _, gx_z, gx_n = _blocks("gx", gx, 3, H)
        gh_z = _blocks("gh_rz", gh_rz, 2, H)[1]
        if train:
            self._launch("gru_update_train", m, (gx_z, gx_n, h_prev), (gh_z, gh_n, h_out))
        else:
            self._launch("gru_update", m, (gx_z, gx_n, gh_z, gh_n, h_prev), (h_out,))

    def gru_backward_update(self, m, z, n, h_prev, dh, dgx_out, dh_direct_out):
        """linear_before_reset=False, phase 1: dgx_out's z and n blocks, and dh*z (z, n in gate form)."""
        _, da_z, da_n = _blocks("dgx_out", dgx_out, 3, h_prev.shape[-1])
        self._launch("gru_backward_update", m, (z, n, h_prev, dh), (da_z, da_n, dh_direct_out))

    def gru_backward_reset(self, m, r, h_prev, d_rh, dgx_out, dh_direct_out):
        """linear_before_reset=False, phase 2: dgx_out's r block; d_rh * r added to dh_direct_out (r in gate form)."""
        da_r = _blocks("dgx_out", dgx_out, 3, h_prev.shape[-1])[0]
        self._launch("gru_backward_reset", m, (r, h_prev, d_rh), (da_r, dh_direct_out))

    # --- LayerNorm LSTM and GRU with zoneout (issue 20): raw kernels, one row group per batch row -----
    # The step API of NumpyBackend's ln* steps; zoneout (none, blend, mask) picks the kernel entry.
    def layer_norm_rows(self, a, gamma, bias=None, hat_out=None, rstd_out=None):
        return layer_norm_rows(self.xp, a, gamma, bias, hat_out, rstd_out)  # the input side: see NumpyBackend

    def layer_norm_rows_backward(self, dout, gamma, hat, rstd, dx_out):
        return layer_norm_rows_backward(self.xp, dout, gamma, hat, rstd, dx_out)

    def lnlstm_step(self, gx, gh, c_prev, h_prev, norms, zoneout, h_out, c_out, saved=None):
        """v = gx + LN(gh; gamma_hh), the gates, c' into c_out, h' = zoneout(o*tanh(LN(c'))) into h_out;
        gh is scratch. ``saved`` (training): its gates, hh_hat, c_hat and rstd are filled too."""
        zo, prob, mask = _ln.zoneout_variant(zoneout)
        saved = saved or {}
        self._ln_launch("lnlstm_step_train" if saved else "lnlstm_step", zo, prob, dict(
            gx=gx, gh=gh, c_prev=c_prev, h_prev=h_prev, mask=mask, gamma_hh=norms.gamma_hh, gamma_c=norms.gamma_c,
            beta_c=norms.beta_c, h_out=h_out, c_out=c_out, gates=saved.get("gates"), hh_hat=saved.get("hh_hat"),
            c_hat=saved.get("c_hat"), rstd=saved.get("rstd")))

    def lnlstm_backward(self, saved, c_prev, dh, dc, norms, zoneout, dgx_out, dgh_out, dc_prev_out,
                        dh_direct_out, dcn_out):
        zo, prob, mask = _ln.zoneout_variant(zoneout)
        if zo != "none" and dh_direct_out is None:
            raise ValueError("dh_direct_out must be a (B, H) array with zoneout (the part of dh that zoneout "
                             "passes to h_prev), got None")
        self._ln_launch("lnlstm_backward", zo, prob, dict(
            gates=saved["gates"], hh_hat=saved["hh_hat"], c_hat=saved["c_hat"], rstd=saved["rstd"], c_prev=c_prev,
            dh=dh, dc=dc, mask=mask, gamma_hh=norms.gamma_hh, gamma_c=norms.gamma_c, beta_c=norms.beta_c,
            dgx=dgx_out, dgh=dgh_out, dc_prev=dc_prev_out, dh_direct=dh_direct_out, dcn=dcn_out))

    def lngru_step(self, gx, gh, h_prev, norms, zoneout, h_out, saved=None):
        """ghn = LN(gh; gamma_hh) + b_hh, r, z, n and h' = zoneout((1-z)*n + z*h_prev) into h_out.
        ``saved`` (training): its gates, hh_hat and rstd are filled too."""
        zo, prob, mask = _ln.zoneout_variant(zoneout)
        saved = saved or {}
        self._ln_launch("lngru_step_train" if saved else "lngru_step", zo, prob, dict(
            gx=gx, gh=gh, h_prev=h_prev, mask=mask, gamma_hh=norms.gamma_hh, b_hh=norms.b_hh, h_out=h_out,
            gates=saved.get("gates"), hh_hat=saved.get("hh_hat"), rstd=saved.get("rstd")))

    def lngru_backward(self, saved, h_prev, dh, norms, zoneout, dgx_out, dghn_out, dgh_out, dh_direct_out):
        zo, prob, mask = _ln.zoneout_variant(zoneout)
        self._ln_launch("lngru_backward", zo, prob, dict(
            gates=saved["gates"], hh_hat=saved["hh_hat"], rstd=saved["rstd"], h_prev=h_prev, dh=dh, mask=mask,
            gamma_hh=norms.gamma_hh, b_hh=norms.b_hh, dgx=dgx_out, dghn=dghn_out, dgh=dgh_out,
            dh_direct=dh_direct_out))

    def _ln_launch(self, op, zoneout, prob, arrays):
        """Check the arrays (a raw kernel takes bare pointers) and launch op's entry for this zoneout and size."""
        B, H, dtype, args = _ln.launch_args(op, zoneout, arrays, prob, self.xp)
        grid, block, group = _ln.launch_shape(B, H)
        name = _ln.symbol(op, zoneout, group, dtype)
        kernel = self._ln_ready.get(name)
        if kernel is None:
            kernel = self._ln_ready[name] = self.ln_module(op, dtype.name).get_function(name)
        if B and H:
            kernel((grid,), (block,), args)

    def _launch(self, op, m, ins, outs):
        """Run kernel ``op`` at CellMath ``m`` in the outputs' dtype; every array must be a CuPy array of that dtype.

        A step runs thousands of times per sequence, so nothing is re-checked per launch: cells and
        layers validate their inputs once per call, and CuPy itself rejects any argument that is not a
        CuPy array of the kernel's type T (TypeError); only then are the arguments checked one by
        one, for a message that names the argument."""
        try:
            name, kernel = self._ready[op, m, outs[0].dtype]
        except (KeyError, AttributeError, TypeError):
            name, kernel = self._first_launch(op, m, ins, outs)
        try:
            kernel(*ins, *outs)
        except TypeError:
            self._check(name, ins, outs)
            raise

    def _first_launch(self, op, m, ins, outs):
        """Check the arguments, build (or fetch) the kernel and remember it for later launches."""
        name = _kernels.kernel_for(op, m)
        self._check(name, ins, outs)
        dtype = outs[0].dtype
        found = self._ready[op, m, dtype] = (name, self.kernel(name, dtype.name))
        return found

    def _check(self, name, ins, outs):
        """A TypeError naming the first argument that is not a CuPy array of the outputs' dtype."""
        dtype = getattr(outs[0], "dtype", None)
        spec = _kernels.spec(name)
        if len(ins) != len(spec.in_params) or len(outs) != len(spec.outputs):
            raise TypeError(f"{name} takes inputs {', '.join(spec.in_params)} and outputs {', '.join(spec.outputs)}, "
                            f"got {len(ins)} inputs and {len(outs)} outputs (peepholes p must come with a "
                            f"CellMath with peephole=True, and only then)")
        for arg, array in zip(spec.in_params + spec.outputs, ins + outs):
            if not isinstance(array, self.xp.ndarray) or array.dtype != dtype:
                got = f"{type(array).__module__}.{type(array).__name__}" + (
                    f" of dtype {array.dtype}" if hasattr(array, "dtype") else "")
                raise TypeError(f"{name}: {arg} must be a CuPy array of dtype {dtype} (the output's), got {got}")
        if dtype.name not in self.dtypes:
            raise TypeError(f"{name}: dtype must be one of {', '.join(self.dtypes)}, got {dtype.name}")


def _peep(p, H):
    """The peephole vector's blocks in ONNX's order (p_i, p_o, p_f), or () without peepholes."""
    return () if p is None else (p[:H], p[H:2 * H], p[2 * H:])
