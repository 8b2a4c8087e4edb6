"""rnnkern's own one-row GEMM (a GEMV) for the compiled loops at batch 1.

At batch 1 every step of a time loop multiplies one row h (1, K) by W_hh^T (K, N), and the loop
runs at that product's speed. ``row_matmul`` reads W^T where it lies, row-major with any leading
dimension, in blocks of ``BLOCK`` vectors of columns: the block's sums stay in registers while
``k`` runs over the rows (a multiply-add of h[k], broadcast, by 64 bytes of the row at a time),
then go to ``c`` once. With the weights in L2 this runs at 0.71-0.86x the time of OpenBLAS's sgemv
on an AVX-512 Xeon (1x128x512 to 1x1024x256, both on one thread; benchmarks/row_gemm_ab.py and
RESULTS.md); with weights larger than L2 (1x512x2048) it took 1.26-2.4x. Which one runs
is therefore measured per GEMM class on the machine at first use (``rowchoice``), as the providers
are (``choice``).

The sums run over k in order, one multiply-add a step: a given machine gives the same bits every
run, and results stay within the float64 reference's tolerances like any BLAS's.
"""

from numba import njit

from . import simd
from .scalar import JIT

BLOCK = 8  # vectors of columns summed at once: 8 of AVX-512's 32 registers (16 of AVX2's, as pairs)


@njit(nogil=True, **JIT)
def row_matmul(a, lda, w, ldb, c, ldc):
    """c = a @ w for a (M, K), w (K, N) and c (M, N), each addressed from its first element with its
    leading dimension (``blas.leading_dim``: checked by the caller), one row of ``a`` at a time."""
    M, K, N = a.shape[0], a.shape[1], c.shape[1]
    for i in range(M):  # (K >= 1: blas.matmul_into writes the zeros of K = 0 itself)
        _row(a, i * lda, K, w, ldb, c, i * ldc, N)


@njit(inline="always", **JIT)
def _row(a, a0, K, w, ldb, c, c0, N):
    L = simd.BYTES // a.itemsize
    width, j = BLOCK * L, 0
    while j + width <= N:
        s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = simd.zero(c)
        for k in range(K):
            x, o = simd.splat(simd.element(a, a0 + k)), k * ldb + j
            s0 = simd.fma(x, simd.load(w, o), s0)
            s1 = simd.fma(x, simd.load(w, o + L), s1)
            s2 = simd.fma(x, simd.load(w, o + 2 * L), s2)
            s3 = simd.fma(x, simd.load(w, o + 3 * L), s3)
            s4 = simd.fma(x, simd.load(w, o + 4 * L), s4)
            s5 = simd.fma(x, simd.load(w, o + 5 * L), s5)
            s6 = simd.fma(x, simd.load(w, o + 6 * L), s6)
            s7 = simd.fma(x, simd.load(w, o + 7 * L), s7)
        o = c0 + j
        simd.store(c, o, s0)
        simd.store(c, o + L, s1)
        simd.store(c, o + 2 * L, s2)
        simd.store(c, o + 3 * L, s3)
        simd.store(c, o + 4 * L, s4)
        simd.store(c, o + 5 * L, s5)
        simd.store(c, o + 6 * L, s6)
        simd.store(c, o + 7 * L, s7)
        j += width
    while j + L <= N:  # the last whole vectors, one at a time
        s = simd.zero(c)
        for k in range(K):
            s = simd.fma(simd.splat(simd.element(a, a0 + k)), simd.load(w, k * ldb + j), s)
        simd.store(c, c0 + j, s)
        j += L
    for jj in range(j, N):  # fewer columns than a vector
        total = simd.element(a, a0) * simd.element(w, jj)
        for k in range(1, K):
            total += simd.element(a, a0 + k) * simd.element(w, k * ldb + jj)
        simd.put(c, c0 + jj, total)
