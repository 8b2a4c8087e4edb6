"""The GPU backend: CuPy arrays, cuBLAS GEMMs (``xp.matmul``) and one fused CUDA kernel per step phase.

The kernels' math lives in ``kernels/*.cuh``; ``rnnkern._kernels`` turns its table into
``cupy.ElementwiseKernel`` arguments. Gate blocks are passed as strided column views
(as Chainer's LSTM does), so a kernel body is pure arithmetic and no gate is copied.
Semantics and argument conventions are those of ``NumpyBackend`` (see its docstrings).
"""

import numpy as np

from .. import _kernels
from ._cupy_variant import CupyVariantSteps
from ._host import detached, device_of, to_host


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


class CupyBackend(CupyVariantSteps):
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

        self.kernel = kernel
        self._ready = {}  # (kernel name, dtype) -> kernel, once the first launch's arguments were checked

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

    # --- fused steps -----------------------------------------------------
    def rnn_step(self, gx, gh, h_out, nonlinearity):
        """h_out = act(gx + gh), act = tanh or relu: one kernel."""
        self._launch(_rnn_kernel("rnn", nonlinearity), (gx, gh), (h_out,))

    def lstm_step(self, gx, gh, c_prev, h_out, c_out):
        """Gates (i, f, g, o) = gx + gh; c = f*c_prev + i*g; h = o*tanh(c): one kernel."""
        H = c_prev.shape[-1]
        ins = _blocks("gx", gx, 4, H) + _blocks("gh", gh, 4, H) + (c_prev,)
        self._launch("lstm_step", ins, (h_out, c_out))

    def gru_step(self, gx, gh, b_hn, h_prev, h_out, ghn_out=None):
        """linear_before_reset=True: n = tanh(gx_n + r*(gh_n + b_hn)); h = (1-z)*n + z*h_prev: one kernel.
        With ``ghn_out`` (training), gh is left holding (r, z, n) and ghn_out gh_n + b_hn."""
        H = h_prev.shape[-1]
        gx3, gh3 = _blocks("gx", gx, 3, H), _blocks("gh", gh, 3, H)
        bias = () if b_hn is None else (b_hn,)
        if ghn_out is None:
            self._launch("gru_step" if bias else "gru_step_nobias", gx3 + gh3 + bias + (h_prev,), (h_out,))
        else:
            name = "gru_step_train" if bias else "gru_step_train_nobias"
            self._launch(name, gx3 + bias + (h_prev,), gh3 + (ghn_out, h_out))

    def gru_reset(self, gx, gh_rz, h_prev, rh_out):
        """linear_before_reset=False, phase 1: r = sigmoid(gx_r + gh_r) (left in gh_rz's r half, as
        training saves it); rh_out = r * h_prev."""
        H = h_prev.shape[-1]
        gx_r, gh_r = _blocks("gx", gx, 3, H)[0], _blocks("gh_rz", gh_rz, 2, H)[0]
        self._launch("gru_reset", (gx_r, h_prev), (gh_r, rh_out))

    def gru_update(self, gx, gh_rz, gh_n, h_prev, h_out):
        """linear_before_reset=False, phase 2: z, n and the blend, one kernel."""
        H = h_prev.shape[-1]
        _, gx_z, gx_n = _blocks("gx", gx, 3, H)
        gh_z = _blocks("gh_rz", gh_rz, 2, H)[1]
        self._launch("gru_update", (gx_z, gx_n, gh_z, gh_n, h_prev), (h_out,))

    # --- training: forward steps that keep the activations, and backward steps -------------
    def lstm_step_train(self, gx, gh, c_prev, h_out, c_out):
        """lstm_step that leaves the activations (i, f, g, o) in gh."""
        H = c_prev.shape[-1]
        self._launch("lstm_step_train", _blocks("gx", gx, 4, H) + (c_prev,), _blocks("gh", gh, 4, H) + (h_out, c_out))

    def gru_step_train(self, gx, gh, b_hn, h_prev, h_out, ghn_out):
        self.gru_step(gx, gh, b_hn, h_prev, h_out, ghn_out)

    def gru_update_train(self, gx, gh_rz, gh_n, h_prev, h_out):
        """gru_update that leaves z in gh_rz's z half and n in gh_n."""
        H = h_prev.shape[-1]
        _, gx_z, gx_n = _blocks("gx", gx, 3, H)
        gh_z = _blocks("gh_rz", gh_rz, 2, H)[1]
        self._launch("gru_update_train", (gx_z, gx_n, h_prev), (gh_z, gh_n, h_out))

    def rnn_backward(self, h, dh, da_out, nonlinearity):
        """da = dh * act'(a), from the output h."""
        self._launch(_rnn_kernel("rnn_backward", nonlinearity), (h, dh), (da_out,))

    def lstm_backward(self, acts, c_prev, c, dh, dc, da_out, dc_prev_out):
        """Pre-activation gradients (B, 4H) and dc_prev (may alias dc) from the saved activations."""
        H = c.shape[-1]
        ins = _blocks("acts", acts, 4, H) + (c_prev, c, dh, dc)
        self._launch("lstm_backward", ins, _blocks("da_out", da_out, 4, H) + (dc_prev_out,))

    def gru_backward(self, acts, ghn, h_prev, dh, dgx_out, dgh_out, dh_direct_out):
        """linear_before_reset=True: dgx, dgh (B, 3H) and dh*z from (r, z, n) and ghn."""
        H = h_prev.shape[-1]
        outs = _blocks("dgx_out", dgx_out, 3, H) + _blocks("dgh_out", dgh_out, 3, H) + (dh_direct_out,)
        self._launch("gru_backward", _blocks("acts", acts, 3, H) + (ghn, h_prev, dh), outs)

    def gru_backward_update(self, z, n, h_prev, dh, dgx_out, dh_direct_out):
        """linear_before_reset=False, phase 1: dgx_out's z and n blocks, and dh*z."""
        _, da_z, da_n = _blocks("dgx_out", dgx_out, 3, h_prev.shape[-1])
        self._launch("gru_backward_update", (z, n, h_prev, dh), (da_z, da_n, dh_direct_out))

    def gru_backward_reset(self, r, h_prev, d_rh, dgx_out, dh_direct_out):
        """linear_before_reset=False, phase 2: dgx_out's r block; d_rh * r added to dh_direct_out."""
        da_r = _blocks("dgx_out", dgx_out, 3, h_prev.shape[-1])[0]
        self._launch("gru_backward_reset", (r, h_prev, d_rh), (da_r, dh_direct_out))

    _gate_blocks = staticmethod(_blocks)

    def _launch(self, name, ins, outs):
        """Run kernel ``name`` in the outputs' dtype; every array must be a CuPy array of that dtype.

        A step runs thousands of times per sequence, so nothing is re-checked per launch: cells and
        layers validate their inputs once per call, and CuPy itself rejects any argument that is not a
        CuPy array of the kernel's type T (TypeError); only then are the arguments checked one by
        one, for a message that names the argument."""
        try:
            kernel = self._ready[name, outs[0].dtype]
        except (KeyError, AttributeError, TypeError):
            kernel = self._first_launch(name, ins, outs)
        try:
            kernel(*ins, *outs)
        except TypeError:
            self._check(name, ins, outs)
            raise

    def _first_launch(self, name, ins, outs):
        """Check the arguments, build (or fetch) the kernel and remember it for later launches."""
        self._check(name, ins, outs)
        dtype = outs[0].dtype
        kernel = self._ready[name, dtype] = self.kernel(name, dtype.name)
        return kernel

    def _check(self, name, ins, outs):
        """A TypeError naming the first argument that is not a CuPy array of the outputs' dtype."""
        dtype = getattr(outs[0], "dtype", None)
        spec = _kernels.spec(name)
        for arg, array in zip(spec.in_params + spec.outputs, ins + outs):
            if not isinstance(array, self.xp.ndarray) or array.dtype != dtype:
                got = f"{type(array).__module__}.{type(array).__name__}" + (
                    f" of dtype {array.dtype}" if hasattr(array, "dtype") else "")
                raise TypeError(f"{name}: {arg} must be a CuPy array of dtype {dtype} (the output's), got {got}")
        if dtype.name not in self.dtypes:
            raise TypeError(f"{name}: dtype must be one of {', '.join(self.dtypes)}, got {dtype.name}")


def _rnn_kernel(prefix, nonlinearity):
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    return f"{prefix}_{nonlinearity}"
