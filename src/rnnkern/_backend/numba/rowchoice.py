"""When rnnkern's own one-row product (``rowgemm``) runs a compiled loop's steps in place of OpenBLAS's GEMV.

Measured per GEMM class (dtype, 1 x K x N rounded up to powers of two) on this machine at first use, on
one thread, and remembered with the providers' decisions (``choice``'s file); ``RNNKERN_CPU_GEMV=
rnnkern|openblas`` (read at each call) overrides it. Only the OpenBLAS provider's one-row steps are
offered it: MKL's steps are MKL's.
"""

import functools
import statistics

import numpy as np

from . import blas, choice
from ..host import aligned_empty

CHOICES = ("rnnkern", "openblas")


def step_operand(provider, w_t, rows):
    """The compiled loops' B operand for W^T (K, N) at ``rows`` rows: a ``blas.RowMatrix`` (rnnkern's row
    product) for one row of the OpenBLAS provider where ``chosen``, else the provider's own."""
    if rows == 1 and provider.name == "openblas" and chosen(w_t.dtype, *w_t.shape):
        return blas.RowMatrix(w_t)
    return provider.step_operand(w_t, rows)


def describe(dtype, K, N):
    """Who runs the one-row steps (1, K) @ (K, N) of the OpenBLAS provider and why, for the benchmark header."""
    try:
        answer = forced()
    except ValueError as exc:
        return str(exc)
    steps = f"one-row steps 1x{K} @ {K}x{N}"
    if answer is not None:
        return f"{steps}: {'rnnkern' if answer else 'OpenBLAS'}'s (RNNKERN_CPU_GEMV)"
    if np.dtype(dtype) not in (np.float32, np.float64):
        return f"{steps}: OpenBLAS's"
    name, ratio = decision(np.dtype(dtype).name, K, N)
    return (f"{steps}: {'rnnkern' if name == 'rnnkern' else 'OpenBLAS'}'s (rnnkern's row product measured "
            f"{ratio:.2f}x OpenBLAS's GEMV)")


def forced():
    """The row kernel RNNKERN_CPU_GEMV names (True: rnnkern's, False: OpenBLAS's GEMV), None when unset."""
    value = choice.overridden("RNNKERN_CPU_GEMV", CHOICES)
    return None if value is None else value == "rnnkern"


def chosen(dtype, K, N):
    """Whether rnnkern's ``row_matmul`` runs the one-row product (1, K) @ (K, N) in ``dtype`` in place of
    OpenBLAS's GEMV: RNNKERN_CPU_GEMV's answer, else this machine's (``decision``)."""
    answer = forced()
    if answer is not None:
        return answer
    if np.dtype(dtype) not in (np.float32, np.float64) or K * N == 0:
        return False
    return decision(np.dtype(dtype).name, K, N)[0] == "rnnkern"


@functools.lru_cache(maxsize=None)
def decision(dtype_name, K, N):
    """(name, its time over OpenBLAS's GEMV) for the class of (1, K) @ (K, N): remembered with the
    providers' decisions (``choice``), else measured now on one thread."""
    cls = choice.gemm_class(dtype_name, "row", 1, K, N)
    with choice.LOCK:
        name, ratio = choice.remembered(cls, CHOICES)
        if name not in CHOICES:
            ratio = measure(np.dtype(dtype_name), K, N)
            name = "rnnkern" if ratio < 1.0 else "openblas"
            choice.remember(cls, name, ratio)
    return name, ratio


def measure(dtype, K, N):
    """row_matmul's time over OpenBLAS's GEMV for (1, K) @ (K, N) (capped as choice caps its GEMMs),
    W^T in the parameters' layout and on a cache line, both on one thread: median of per-round ratios."""
    K, N = min(K, choice.CAPS[1]), min(N, choice.CAPS[2])
    rng = np.random.default_rng(0)
    a = rng.standard_normal((1, K)).astype(dtype)
    w_t = aligned_empty((N, K), dtype, order="F").T
    w_t[...] = rng.standard_normal((K, N))
    c = np.empty((1, N), dtype)
    openblas = choice.openblas()
    times = choice.time_rounds({"rnnkern": (openblas, lambda n: choice.repeat_matmul(a, blas.RowMatrix(w_t), c, n)),
                                "openblas": (openblas, lambda n: choice.repeat_matmul(a, w_t, c, n))})
    return statistics.median(r / o for r, o in zip(times["rnnkern"], times["openblas"]))
