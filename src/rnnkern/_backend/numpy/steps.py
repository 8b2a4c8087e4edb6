"""The CPU backend: NumPy arrays, BLAS GEMMs and the cells' step math as ufuncs, each cell once.

The step functions mirror the fused CUDA kernels in ``kernels/`` one for one, with the step API of
every backend: each takes the direction's ``CellMath`` ``m`` (``_semantics.py``: activations, clip,
input_forget, peepholes) and writes its results into the arrays it is given. ``gh`` (the recurrent
GEMM's output) is left holding the gates in *gate form*, which training saves and the backward
steps (``_numpy_grad.py``) take: the activations when ``m.saves_activations`` (the default math,
computed in place, so no gate gets an array of its own), else the pre-activations (peephole terms
added, before the clip), since clipped and piecewise activations need their argument for the
derivative. On the default math ``_act_`` runs the fast forms below, and the LSTM's four gates
share one exp.
"""

import contextlib
import functools

import numpy as np

from ..host import to_host
from .grad import NumpyGradSteps, blocks, clipped
from .lnsteps import NumpyLayerNormSteps


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


_FAST = {"Sigmoid": sigmoid_, "Tanh": tanh_, "Relu": lambda x: np.maximum(x, 0, out=x)}


def _act_(m, default, act, a):
    """act(clip(a)): in place on the default math (``default``: m.is_default; a then holds the
    activation, its gate form), else a new array (a keeps the pre-activation)."""
    return _FAST[act.name](a) if default else act(clipped(m, a))


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


class NumpyBackend(NumpyGradSteps, NumpyLayerNormSteps):
    """NumPy on the host. After each forward step the gates (i, f, g, o; r, z, n) are left in ``gh``
    in gate form, which is what training saves."""

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

    def matmul(self, a, b, out=None):
        """Every GEMM of the recurrences (NumbaBackend's goes to the chosen GEMM provider)."""
        return np.matmul(a, b, out=out)

    def packed(self, b, rows, room=0):
        """A block whose GEMMs by ``b`` (``rows`` rows at a time) may use it packed: the numba backend's
        MKL packs; here nothing changes."""
        return contextlib.nullcontext()

    # --- fused steps (m: the direction's CellMath) ---------------------------------------------
    def rnn_step(self, m, gx, gh, h_out, train=False):
        """h_out = f(clip(gx + gh)). Without m.saves_activations gh is left holding a = gx + gh."""
        d = m.is_default
        a = np.add(gx, gh, out=h_out if d else gh)
        h = _act_(m, d, m.acts[0], a)
        if h is not h_out:
            h_out[...] = h

    def lstm_step(self, m, gx, gh, c_prev, p, h_out, c_out, train=False):
        """Gates (i, f, g, o) = gx + gh (+ peepholes p = (p_i, p_o, p_f)); c = f*c_prev + i*g;
        h = o*h(c). gh is left holding the gates in gate form; c_out may be c_prev."""
        H, d = c_prev.shape[-1], m.is_default
        gates = np.add(gh, gx, out=gh)
        a_i, a_f, a_g, a_o = blocks(gates, 4, H)
        if d:  # one exp (or tanh) over all four gates, in place
            _lstm_activations_(gates, H)
            i, f, g = a_i, a_f, a_g
        else:
            F, G, _ = m.acts
            if p is not None:
                a_i += p[:H] * c_prev
                a_f += p[2 * H:] * c_prev
            i = _act_(m, d, F, a_i)
            f = 1 - i if m.input_forget else _act_(m, d, F, a_f)
            g = _act_(m, d, G, a_g)
        np.multiply(f, c_prev, out=c_out)
        np.multiply(i, g, out=h_out)  # h_out as scratch keeps the gates in gh for training
        np.add(c_out, h_out, out=c_out)
        if d:
            tanh_(c_out, out=h_out)
            o = a_o
        else:
            if p is not None:
                a_o += p[H:2 * H] * c_out
            o = _act_(m, d, m.acts[0], a_o)
            h_out[...] = m.acts[2](c_out)
        np.multiply(h_out, o, out=h_out)

    def gru_step(self, m, gx, gh, b_hn, h_prev, h_out, ghn_out=None):
        """linear_before_reset=True: n = g(gx_n + r*(gh_n + b_hn)); h = (1-z)*n + z*h_prev.
        ``ghn_out``, when given (training), receives gh_n + b_hn (the backward pass needs it)."""
        H, d = h_prev.shape[-1], m.is_default
        F, G = m.acts
        a_rz = np.add(gh[..., :2 * H], gx[..., :2 * H], out=gh[..., :2 * H])
        if d:  # one call over both sigmoid gates
            sigmoid_(a_rz)
            r, z = a_rz[..., :H], a_rz[..., H:]
        else:
            r, z = _act_(m, d, F, a_rz[..., :H]), _act_(m, d, F, a_rz[..., H:])
        a_n = gh[..., 2 * H:]
        if b_hn is not None:
            np.add(a_n, b_hn, out=a_n)
        if ghn_out is not None:
            ghn_out[...] = a_n
        np.multiply(a_n, r, out=a_n)
        np.add(a_n, gx[..., 2 * H:], out=a_n)
        self._gru_blend(z, _act_(m, d, G, a_n), h_prev, h_out)

    def gru_reset(self, m, gx, gh_rz, h_prev, rh_out):
        """linear_before_reset=False, phase 1: rh_out = f(clip(gx_r + gh_r)) * h_prev.

        ``gh_rz`` (B, 2H) holds h_prev @ [W_hr; W_hz]^T; its r half is left with r in gate form."""
        H, d = h_prev.shape[-1], m.is_default
        a_r = np.add(gh_rz[..., :H], gx[..., :H], out=gh_rz[..., :H])
        np.multiply(_act_(m, d, m.acts[0], a_r), h_prev, out=rh_out)

    def gru_update(self, m, gx, gh_rz, gh_n, h_prev, h_out, train=False):
        """linear_before_reset=False, phase 2, with gh_n = (r*h_prev) @ W_hn^T:
        z = f(gx_z + gh_z); n = g(gx_n + gh_n); h = (1-z)*n + z*h_prev. gh_rz's z half and gh_n
        are left in gate form; h_out may be h_prev."""
        H, d = h_prev.shape[-1], m.is_default
        F, G = m.acts
        z = _act_(m, d, F, np.add(gh_rz[..., H:], gx[..., H:2 * H], out=gh_rz[..., H:]))
        n = _act_(m, d, G, np.add(gh_n, gx[..., 2 * H:], out=gh_n))
        self._gru_blend(z, n, h_prev, h_out)

    @staticmethod
    def _gru_blend(z, n, h_prev, h_out):
        """h_out = n + z*(h_prev - n), i.e. (1-z)*n + z*h_prev; h_out may be h_prev."""
        np.subtract(h_prev, n, out=h_out)
        np.multiply(h_out, z, out=h_out)
        np.add(h_out, n, out=h_out)
