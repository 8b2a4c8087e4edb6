"""The CPU backend's GEMM providers: who multiplies, in Python and in the compiled time loops.

- ``openblas``: NumPy's own OpenBLAS (``np.matmul`` and, in compiled code, its CBLAS through ``blas``):
  what rnnkern always ran, unchanged bit for bit.
- ``mkl``: Intel MKL (``rnnkern[mkl]``), with the recurrent weights packed once per call of a compiled
  loop (``mkl.Mkl.pack``) and each step's product ``cblas_?gemm_compute``; the other GEMMs are plain
  ``cblas_?gemm``.

Which one runs is ``choice``'s decision. A provider gives the compiled loops their B operand
(``step_operand``: W^T itself, or its packing for that many rows), runs the Python-side GEMMs
(``matmul``), and the thread settings: ``serial`` (the coordinator of a sharded loop: every GEMM in
one thread for the duration) and ``serial_thread`` (each shard's thread), and ``exclusive`` (while MKL
runs, OpenBLAS's pool is kept at one thread so that two pools never spin on the same cores). Every
thread count changed is given back on leaving.
"""

import contextlib

import numpy as np

from . import blas

# MKL GEMMs of fewer multiply-adds than this run on one thread: waking its pool each step cost more than
# it gave (T=100 B=1 H=256, 2 cores: MKL on one thread 0.04-0.23x OpenBLAS's time, on its pool
# 0.58-1.88x; issue 17's report). The choice times them on one thread too.
ONE_THREAD_WORK = 1 << 20


class OpenBLAS:
    name = "openblas"

    def version(self):
        config = np.__config__.CONFIG["Build Dependencies"]["blas"]
        return f"{config.get('name')} {config.get('version')}"

    def matmul(self, a, b, out=None):
        return np.matmul(a, b, out=out)

    def step_operand(self, w_t, rows):
        """The compiled loops' B operand for W^T, ``rows`` rows at a time."""
        return w_t

    def serial(self):
        """OpenBLAS's thread count is process-wide: one for the whole sharded section, restored after."""
        return openblas_at_one_thread()

    def serial_thread(self):
        return contextlib.nullcontext()

    def exclusive(self):
        return contextlib.nullcontext()


class MKL:
    name = "mkl"

    def __init__(self, library):
        self.lib = library

    def version(self):
        return self.lib.version

    def matmul(self, a, b, out=None):
        """a @ b with MKL where both are 2-D float matrices BLAS can describe (row-major or the transpose
        of one); anything else (a batch of matrices, a broadcast view, an empty side) goes to np.matmul."""
        operands = _describe(a, b, out)
        if operands is None:
            return np.matmul(a, b, out=out)
        (ta, lda), (tb, ldb), M, K, N = operands
        c = out if out is not None and blas.describable(out) else np.empty((M, N), a.dtype)
        with self.exclusive(), self._threads_for(M * K * N):
            self.lib.gemm(a, ta, lda, b, tb, ldb, c, _ld(c), M, N, K)
        if out is not None and c is not out:
            out[...] = c
            return out
        return c

    def _threads_for(self, work):
        """One thread for a GEMM of fewer than ONE_THREAD_WORK multiply-adds (waking the pool costs
        more than it gives there), else the pool as it is."""
        return self.serial_thread() if work < ONE_THREAD_WORK else contextlib.nullcontext()

    def matmul_packed(self, a, packed, n, out):
        """out (M, n) = a (M, K) @ the matrix ``packed`` holds (``step_operand``'s packing for M rows)."""
        lda, ldc = _ld(a), _ld(out)
        with self.exclusive(), self._threads_for(a.shape[0] * a.shape[1] * n):
            self.lib.gemm_compute(a, lda, packed, out, ldc, a.shape[0], n, a.shape[1])
        return out

    def step_operand(self, w_t, rows):
        """W^T packed for ``rows``-row products, once per call of a compiled loop (for all its steps).
        Not kept between calls: a parameter written in place through ``named_parameters()`` (as
        tests/finite_diff.py does) moves no version counter, and a kept packing would then be a
        silently wrong answer; packing costs about one step's GEMM (RESULTS.md)."""
        return self.lib.pack(w_t, rows)

    def serial(self):
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def serial_thread(self):
        """MKL's thread count for the calling thread only (MKL_Set_Num_Threads_Local), given back."""
        previous = self.lib.set_threads_local(1)
        try:
            yield
        finally:
            self.lib.set_threads_local(previous)

    def exclusive(self):
        return openblas_at_one_thread()



@contextlib.contextmanager
def openblas_at_one_thread():
    """OpenBLAS's pool held at one thread inside the block (its own setter, not threadpoolctl), restored after."""
    previous = blas.openblas_threads(1)
    try:
        yield
    finally:
        blas.openblas_threads(previous)


def _ld(array):
    rows, cols = array.shape
    return blas.leading_dim(rows, cols, array.strides[0], array.strides[1], array.itemsize)


def _orientation(m):
    """(transposed, leading dimension) of a 2-D matrix for row-major CBLAS, or None."""
    rows, cols = m.shape
    ld = blas.leading_dim(rows, cols, m.strides[0], m.strides[1], m.itemsize)
    if ld > 0:
        return False, ld
    ld = blas.leading_dim(cols, rows, m.strides[1], m.strides[0], m.itemsize)
    return (True, ld) if ld > 0 else None


def _describe(a, b, out):
    if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.ndim == 2 and b.ndim == 2):
        return None
    if a.dtype != b.dtype or a.dtype not in (np.float32, np.float64) or a.shape[1] != b.shape[0]:
        return None
    M, K, N = a.shape[0], a.shape[1], b.shape[1]
    if min(M, K, N) == 0 or max(M, K, N) >= 2**31:
        return None
    if out is not None and (out.shape != (M, N) or out.dtype != a.dtype):
        return None
    oa, ob = _orientation(a), _orientation(b)
    return None if oa is None or ob is None else (oa, ob, M, K, N)
