"""The CPU backend: NumPy arrays, BLAS GEMMs and the cells' step math as in-place ufuncs.

The step functions mirror the fused CUDA kernels in ``kernels/`` one for one.
Each writes its results into the arrays it is given; ``gh`` (the recurrent
GEMM's output) doubles as scratch space and is overwritten, so no gate gets an
array of its own.
"""

import functools

import numpy as np

from ._host import to_host
from ._numpy_grad import NumpyGradSteps
from ._numpy_variant import NumpyVariantSteps


# NumPy's float32 tanh costs about twice its exp on AVX2 machines (and float64's tanh is scalar),
# so on large arrays both activations go through one exp: sigmoid(a) = 1/(1 + exp(-a)),
# tanh(a) = 2*sigmoid(2a) - 1. exp(-a) overflows to inf for very negative a, which gives the exact
# limit 0 (and -1 for tanh); the overflow flag is therefore silenced, never a warning or a NaN.
# On small arrays (batch 1) each ufunc call's fixed cost dominates, and the formulations with the
# fewest calls win: tanh itself, and sigmoid(a) = tanh(a/2)/2 + 1/2, which cannot overflow either.
# (The two agree to a few ulps; with variable lengths a shrinking batch can cross the threshold.)
SMALL = 8192


def sigmoid_(x):
    """In-place logistic sigmoid; finite and warning-free for any finite input."""
    if x.size < SMALL:
        np.multiply(x, 0.5, out=x)
        np.tanh(x, out=x)
        np.multiply(x, 0.5, out=x)
        np.add(x, 0.5, out=x)
        return x
    with np.errstate(over="ignore"):
        np.negative(x, out=x)
        np.exp(x, out=x)
    np.add(x, 1, out=x)
    np.reciprocal(x, out=x)
    return x


def tanh_(x, out=None):
    """tanh(x) into ``out`` (default: in place)."""
    out = x if out is None else out
    if x.size < SMALL:
        return np.tanh(x, out=out)
    with np.errstate(over="ignore"):
        np.multiply(x, -2, out=out)
        np.exp(out, out=out)
    np.add(out, 1, out=out)
    np.divide(2, out, out=out)
    np.subtract(out, 1, out=out)
    return out


@functools.lru_cache(maxsize=64)
def _lstm_gate_factors(hidden_size, dtype, small):
    """Per-column factors of the LSTM's gates (i, f, g, o) for one shared activation call.
    Large arrays, one exp: scale -1 (sigmoid gates) or -2 (g). Small arrays, one tanh: scale
    1/2 before and after and shift 1/2 for the sigmoid gates, 1 and 0 for g."""
    H = hidden_size
    scale = np.full(4 * H, 0.5 if small else -1.0, dtype=dtype)
    scale[2 * H:3 * H] = 1.0 if small else -2.0
    shift = np.where(scale == 0.5, 0.5, 0.0).astype(dtype)
    return scale, shift


def _lstm_activations_(gates, hidden_size):
    """In place: (i, f, g, o) pre-activations -> sigmoid, sigmoid, tanh, sigmoid."""
    small = gates.size < SMALL
    scale, shift = _lstm_gate_factors(hidden_size, gates.dtype, small)
    np.multiply(gates, scale, out=gates)
    if small:
        np.tanh(gates, out=gates)
        np.multiply(gates, scale, out=gates)
        np.add(gates, shift, out=gates)
        return
    with np.errstate(over="ignore"):
        np.exp(gates, out=gates)
    np.add(gates, 1, out=gates)
    np.reciprocal(gates, out=gates)
    g = gates[..., 2 * hidden_size:3 * hidden_size]
    np.multiply(g, 2, out=g)
    np.subtract(g, 1, out=g)


class NumpyBackend(NumpyGradSteps, NumpyVariantSteps):
    """NumPy on the host. After each forward step the gate activations are left in ``gh``
    (i, f, g, o; r, z, n), which is what training saves."""

    is_backend = True
    name = "cpu"
    _kernels = "NumPy ufuncs"  # what runs the step math (``rnnkern info`` and the benchmark say it)
    xp = np
    dtypes = ("float32", "float64")

    def asarray(self, x, dtype=None):
        return np.asarray(to_host(x), dtype=dtype)  # CuPy arrays and CUDA torch tensors are copied over

    def to_numpy(self, array):
        return np.asarray(array)

    def is_native(self, array):
        return isinstance(array, np.ndarray)

    def empty(self, shape, dtype):
        return np.empty(shape, dtype=dtype)

    def zeros(self, shape, dtype):
        return np.zeros(shape, dtype=dtype)

    def synchronize(self):
        pass

    # --- fused steps -----------------------------------------------------
    def rnn_step(self, gx, gh, h_out, nonlinearity):
        """h_out = act(gx + gh), act = tanh or relu."""
        np.add(gx, gh, out=h_out)
        if nonlinearity == "tanh":
            tanh_(h_out)
        else:
            np.maximum(h_out, 0, out=h_out)

    def lstm_step(self, gx, gh, c_prev, h_out, c_out):
        """Gates (i, f, g, o) = gx + gh; c = f*c_prev + i*g; h = o*tanh(c)."""
        H = c_prev.shape[-1]
        gates = np.add(gh, gx, out=gh)
        _lstm_activations_(gates, H)
        i, f, g, o = (gates[..., k * H:(k + 1) * H] for k in range(4))
        np.multiply(f, c_prev, out=c_out)
        np.multiply(i, g, out=h_out)  # h_out as scratch keeps the activations in gh for training
        np.add(c_out, h_out, out=c_out)
        tanh_(c_out, out=h_out)
        np.multiply(h_out, o, out=h_out)

    def gru_step(self, gx, gh, b_hn, h_prev, h_out, ghn_out=None):
        """linear_before_reset=True: n = tanh(gx_n + r*(gh_n + b_hn)); h = (1-z)*n + z*h_prev.
        ``ghn_out``, when given, receives gh_n + b_hn (the backward pass needs it)."""
        H = h_prev.shape[-1]
        rz = np.add(gh[..., :2 * H], gx[..., :2 * H], out=gh[..., :2 * H])
        sigmoid_(rz)
        r, z, n = gh[..., :H], gh[..., H:2 * H], gh[..., 2 * H:]
        if b_hn is not None:
            np.add(n, b_hn, out=n)
        if ghn_out is not None:
            ghn_out[...] = n
        np.multiply(n, r, out=n)
        np.add(n, gx[..., 2 * H:], out=n)
        tanh_(n)
        self._gru_blend(z, n, h_prev, h_out)

    def gru_reset(self, gx, gh_rz, h_prev, rh_out):
        """linear_before_reset=False, phase 1: rh_out = sigmoid(gx_r + gh_r) * h_prev.

        ``gh_rz`` (B, 2H) holds h_prev @ [W_hr; W_hz]^T; its r half is overwritten."""
        H = h_prev.shape[-1]
        r = np.add(gh_rz[..., :H], gx[..., :H], out=gh_rz[..., :H])
        sigmoid_(r)
        np.multiply(r, h_prev, out=rh_out)

    def gru_update(self, gx, gh_rz, gh_n, h_prev, h_out):
        """linear_before_reset=False, phase 2, with gh_n = (r*h_prev) @ W_hn^T:
        z = sigmoid(gx_z + gh_z); n = tanh(gx_n + gh_n); h = (1-z)*n + z*h_prev."""
        H = h_prev.shape[-1]
        z = np.add(gh_rz[..., H:], gx[..., H:2 * H], out=gh_rz[..., H:])
        sigmoid_(z)
        n = np.add(gh_n, gx[..., 2 * H:], out=gh_n)
        tanh_(n)
        self._gru_blend(z, n, h_prev, h_out)

    # Training variants: the same steps leave what backward needs behind (see the class docstring).
    lstm_step_train = lstm_step

    def gru_step_train(self, gx, gh, b_hn, h_prev, h_out, ghn_out):
        self.gru_step(gx, gh, b_hn, h_prev, h_out, ghn_out)

    gru_update_train = gru_update

    @staticmethod
    def _gru_blend(z, n, h_prev, h_out):
        """h_out = n + z*(h_prev - n), i.e. (1-z)*n + z*h_prev; h_out may be h_prev."""
        np.subtract(h_prev, n, out=h_out)
        np.multiply(h_out, z, out=h_out)
        np.add(h_out, n, out=h_out)
