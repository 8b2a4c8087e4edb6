"""The CPU backend: NumPy arrays, BLAS GEMMs and the cells' step math as in-place ufuncs.

The step functions mirror the fused CUDA kernels in ``kernels/`` one for one.
Each writes its results into the arrays it is given; ``gh`` (the recurrent
GEMM's output) doubles as scratch space and is overwritten, so no gate gets an
array of its own.
"""

import numpy as np


def sigmoid_(x):
    """In-place sigmoid as tanh(x/2)/2 + 1/2: no exp, so it cannot overflow."""
    np.multiply(x, 0.5, out=x)
    np.tanh(x, out=x)
    np.multiply(x, 0.5, out=x)
    np.add(x, 0.5, out=x)
    return x


class NumpyBackend:
    """NumPy on the host."""

    is_backend = True
    name = "cpu"
    xp = np
    dtypes = ("float32", "float64")

    def asarray(self, x, dtype=None):
        if type(x).__module__.split(".")[0] == "cupy":
            x = x.get()
        return np.asarray(x, dtype=dtype)

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
            np.tanh(h_out, out=h_out)
        else:
            np.maximum(h_out, 0, out=h_out)

    def lstm_step(self, gx, gh, c_prev, h_out, c_out):
        """Gates (i, f, g, o) = gx + gh; c = f*c_prev + i*g; h = o*tanh(c)."""
        H = c_prev.shape[-1]
        gates = np.add(gh, gx, out=gh)
        i, f, g, o = (gates[..., k * H:(k + 1) * H] for k in range(4))
        sigmoid_(gates[..., :2 * H])  # i and f are adjacent: one pass
        sigmoid_(o)
        np.tanh(g, out=g)
        np.multiply(f, c_prev, out=c_out)
        np.multiply(i, g, out=i)
        np.add(c_out, i, out=c_out)
        np.tanh(c_out, out=h_out)
        np.multiply(h_out, o, out=h_out)

    def gru_step(self, gx, gh, b_hn, h_prev, h_out):
        """linear_before_reset=True: n = tanh(gx_n + r*(gh_n + b_hn)); h = (1-z)*n + z*h_prev."""
        H = h_prev.shape[-1]
        rz = np.add(gh[..., :2 * H], gx[..., :2 * H], out=gh[..., :2 * H])
        sigmoid_(rz)
        r, z, n = gh[..., :H], gh[..., H:2 * H], gh[..., 2 * H:]
        if b_hn is not None:
            np.add(n, b_hn, out=n)
        np.multiply(n, r, out=n)
        np.add(n, gx[..., 2 * H:], out=n)
        np.tanh(n, out=n)
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
        np.tanh(n, out=n)
        self._gru_blend(z, n, h_prev, h_out)

    @staticmethod
    def _gru_blend(z, n, h_prev, h_out):
        """h_out = n + z*(h_prev - n), i.e. (1-z)*n + z*h_prev; h_out may be h_prev."""
        np.subtract(h_prev, n, out=h_out)
        np.multiply(h_out, z, out=h_out)
        np.add(h_out, n, out=h_out)
