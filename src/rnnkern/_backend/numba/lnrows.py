"""Row LayerNorm in numba: the pieces every LayerNorm kernel uses (row statistics, the backward's row
means), and the input side's LayerNorm over all time steps, forward and backward, one kernel each.

LN(a; gamma) normalises each row over its last axis, (a - mean) * rstd * gamma, rstd = 1/sqrt(var + EPS)
with the biased variance, two passes (never E[a^2] - E[a]^2): layernorm_math.py is the spec.

The row reductions run in functions that may reassociate (``REDUCE``): with strict IEEE order LLVM
cannot vectorise a sum, and these reductions would cost more than the math around them. They
accumulate in the row's dtype, in vector lanes; a row is re-read from L1 by their passes (4H float32
values are 8 KiB at H = 512).

The input side (``layer_norm_rows``, ``layer_norm_rows_backward``) is (T*B, G*H): the NumPy version
made seven passes over it, each through memory (at T=100 B=64 H=512 it took longer than the
input projection's GEMM); here a row is read once from memory and its passes run in L1. The
backward's sums over the rows (gamma's gradient, the bias's) accumulate in float64 whatever the
dtype: 6,400 float32 rows summed one after another would lose digits that NumPy's pairwise sum kept.

lnsteps.py's kernels inline these functions; their caches follow this file too (``cachekey``).
"""

import numpy as np
from numba import njit

from .scalar import FASTMATH, JIT, ONE, like
from ..._recurrences.layernorm_math import EPS

inline = njit(inline="always", **JIT)
REDUCE = dict(JIT, fastmath=FASTMATH | {"reassoc"})  # sums only: no exp in them (see scalar.py)


@njit(**REDUCE)
def row_stats(x):
    """(mean, 1/sqrt(var + EPS)) of the row ``x``, var the biased variance, in x's dtype."""
    n = like(x[0], x.shape[0])
    s = like(x[0], 0.0)
    for j in range(x.shape[0]):
        s += x[j]
    mean = s / n
    q = like(x[0], 0.0)
    for j in range(x.shape[0]):
        d = x[j] - mean
        q += d * d
    return mean, ONE / np.sqrt(q / n + like(s, EPS))


@njit(**REDUCE)
def grad_means(dy, gamma, hat):
    """(mean(dy*gamma), mean(dy*gamma*hat)) over the row: LayerNorm's backward means."""
    n = like(dy[0], dy.shape[0])
    s1 = like(dy[0], 0.0)
    s2 = like(dy[0], 0.0)
    for j in range(dy.shape[0]):
        d = dy[j] * gamma[j]
        s1 += d
        s2 += d * hat[j]
    return s1 / n, s2 / n


@inline
def normalise(x, mean, rstd, out):
    """out = (x - mean)*rstd over a row."""
    for j in range(x.shape[0]):
        out[j] = (x[j] - mean) * rstd


@inline
def norm_backward(dy, gamma, hat, rstd, dx):
    """dx = rstd*(d - mean(d) - hat*mean(d*hat)), d = dy*gamma: the gradient of LN's input (dx may be dy)."""
    m1, m2 = grad_means(dy, gamma, hat)
    for j in range(dx.shape[0]):
        dx[j] = rstd * (dy[j] * gamma[j] - m1 - hat[j] * m2)


# --- the input side over all steps: (rows, N) ------------------------------------------------------
@inline
def _rows(a, gamma, bias, hat, rstd, save):
    for b in range(a.shape[0]):
        row = a[b]
        mean, r = row_stats(row)
        if save:
            normalise(row, mean, r, hat[b])
            rstd[b, 0] = r
        for j in range(row.shape[0]):
            row[j] = (row[j] - mean) * r * gamma[j] + bias[j]


@njit(**JIT)
def ln_rows(a, gamma, bias):
    """In place: a <- LN(a; gamma) + bias, row by row (bias: zeros where there is none)."""
    _rows(a, gamma, bias, a, a, False)


@njit(**JIT)
def ln_rows_save(a, gamma, bias, hat, rstd):
    """ln_rows, keeping each row's (a - mean)*rstd in ``hat`` and rstd in ``rstd`` (rows, 1)."""
    _rows(a, gamma, bias, hat, rstd, True)


@njit(**REDUCE)
def _accumulate(d, hat, dgamma, dsum):
    for j in range(d.shape[0]):
        dgamma[j] += d[j] * hat[j]
        dsum[j] += d[j]


@njit(**JIT)
def ln_rows_backward(dout, gamma, hat, rstd, dx, dgamma, dsum):
    """dx <- the gradient of LN's input from ``dout`` (of its output; dx may be dout); dgamma (float64)
    <- sum over rows of dout*hat, dsum (float64) <- sum over rows of dout (the bias's gradient)."""
    dgamma[:] = 0.0
    dsum[:] = 0.0
    for b in range(dout.shape[0]):
        _accumulate(dout[b], hat[b], dgamma, dsum)
        norm_backward(dout[b], gamma, hat[b], rstd[b, 0], dx[b])
