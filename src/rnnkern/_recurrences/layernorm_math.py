"""The layer-normalised cells' shared definitions (Haste's LayerNormLSTM / LayerNormGRU), written once
for every backend: the step API's NamedTuples, and the input side's row LayerNorm over all time steps.

LN(a; gamma) normalises each row of ``a`` over its last axis, (a - mean) / sqrt(var + EPS) * gamma,
with the biased variance (torch's F.layer_norm). The steps (``lnlstm_step`` and the rest, methods of
every backend) take the recurrent side's norms and the zoneout of one direction:

- ``LNLSTMNorms``: gamma_hh (4H,) on LN(h W_hh^T), gamma_c and beta_c (H,) on LN(c');
- ``LNGRUNorms``: gamma_hh (3H,) on LN(h W_hh^T) and b_hh (3H,), added after it;
- ``Zoneout``: prob and mask: a (B, H) 0/1 mask in the arrays' dtype (training: h' = h + mask*(h_new - h)),
  or None with prob > 0 (inference: h' = prob*h + (1 - prob)*h_new), or prob == 0 (no zoneout).

The input side LN(x W_ih^T; gamma_ih) (+ bias) of every time step is one GEMM and the row functions
below (xp code, NumPy or CuPy: the backends' ``layer_norm_rows`` / ``layer_norm_rows_backward``, which
the numba backend runs as kernels of its own); training keeps its normalised rows ``hat`` and ``rstd`` for
``layer_norm_rows_backward``. Row statistics are two-pass, in float32 for float16 and in the
arrays' dtype otherwise (never E[a^2] - E[a]^2).
"""

from typing import Any, NamedTuple, Optional

EPS = 1e-5


class LNLSTMNorms(NamedTuple):
    gamma_hh: Any  # (4H,)
    gamma_c: Any  # (H,)
    beta_c: Any  # (H,)


class LNGRUNorms(NamedTuple):
    gamma_hh: Any  # (3H,)
    b_hh: Any  # (3H,), zeros when the layer has no recurrent bias


class Zoneout(NamedTuple):
    prob: float
    mask: Optional[Any] = None  # (B, H) 0/1 in the dtype: training; None: inference blend (prob > 0)


NO_ZONEOUT = Zoneout(0.0, None)


def _stats_dtype(xp, dtype):
    return xp.float32 if xp.dtype(dtype) == xp.float16 else dtype


def layer_norm_rows(xp, a, gamma, bias=None, hat_out=None, rstd_out=None):
    """In place: a <- LN(a; gamma) (+ bias), rows over the last axis. ``hat_out`` (a's shape) and
    ``rstd_out`` (a's shape but 1 column), when given, receive (a - mean) * rstd and rstd."""
    acc = _stats_dtype(xp, a.dtype)
    mean = a.mean(axis=-1, keepdims=True, dtype=acc)
    centred = xp.subtract(a, mean.astype(a.dtype), out=hat_out if hat_out is not None else None)
    var = xp.mean(xp.square(centred, dtype=acc), axis=-1, keepdims=True)
    rstd = 1.0 / xp.sqrt(var + EPS)
    if rstd_out is not None:
        rstd_out[...] = rstd
    xp.multiply(centred, rstd.astype(a.dtype), out=centred)  # centred is now hat
    xp.multiply(centred, gamma, out=a)
    if bias is not None:
        xp.add(a, bias, out=a)
    return a


def layer_norm_rows_backward(xp, dout, gamma, hat, rstd, dx_out):
    """(dx_out, gamma's gradient, the sum of dout's rows): ``dout`` (rows, N) the gradient of LN's
    output, ``hat`` and ``rstd`` what layer_norm_rows saved; dx_out (rows, N) receives the gradient of
    its input, rstd * (dy - mean(dy) - hat * mean(dy * hat)) with dy = dout * gamma. The sum of
    dout's rows is the gradient of a bias added after the LayerNorm."""
    acc = _stats_dtype(xp, dout.dtype)
    # The sums over rows in float64: NumPy sums along axis 0 one row after another (pairwise only
    # along the contiguous axis), and 40,000 float32 rows drifted by 2e-4 that way
    dgamma = xp.multiply(dout, hat).sum(axis=0, dtype=xp.float64).astype(dout.dtype)
    dsum = dout.sum(axis=0, dtype=xp.float64).astype(dout.dtype)
    dy = xp.multiply(dout, gamma, out=dx_out)
    mean_dy = dy.mean(axis=-1, keepdims=True, dtype=acc).astype(dout.dtype)
    mean_dy_hat = xp.multiply(dy, hat).mean(axis=-1, keepdims=True, dtype=acc).astype(dout.dtype)
    dy -= mean_dy
    dy -= hat * mean_dy_hat
    dy *= rstd
    return dy, dgamma, dsum
