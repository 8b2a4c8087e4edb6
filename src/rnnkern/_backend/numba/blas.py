"""NumPy's own BLAS, callable from compiled code: the recurrent GEMM inside a compiled time loop.

numba's ``np.dot`` goes through SciPy's BLAS, a second OpenBLAS with its own thread pool, and two
pools on the same cores fight (1.4-1.8x slower). NumPy's Linux, Windows and Intel-macOS wheels
ship OpenBLAS as ``scipy-openblas64``, which exports CBLAS as ``scipy_cblas_sgemm64_`` (64-bit
integers): that library is already loaded, so its symbols are registered with LLVM under their
own names and the compiled loops call them like C functions (which keeps them cacheable: no
pointer is baked into the code). Where the probe finds no such library (NumPy built against
Accelerate or MKL, say), ``AVAILABLE`` is False and the Python time loop runs instead.

``matmul_into`` also takes, as its B operand, weights packed by MKL (``mkl.Mkl.pack``, a 1-D uint8
array): it then calls ``cblas_?gemm_compute``, registered with LLVM by ``mkl`` when MKL is loaded (the
compiled loops are compiled for that operand type only when the ``mkl`` provider runs them).
It takes a ``RowMatrix`` too, a row-major matrix that rnnkern's own one-row product multiplies by
(``rowgemm``, chosen for batch 1 where it measures faster than OpenBLAS's GEMV: ``rowchoice``). And an
``MklMatrix``, a row-major matrix that MKL's own ``cblas_?gemm`` multiplies by (registered likewise):
a loop whose steps run where the process's GEMMs run MKL's thread pool, unpacked (an OpenBLAS GEMM
there would wake a second pool, which fights the first for the cores).
``openblas_threads`` reads and sets OpenBLAS's thread count through its own exported functions
(threadpoolctl would also find and reconfigure MKL: see ``gemm``).
"""

import ctypes
import glob
import os
from typing import Any, NamedTuple

import llvmlite.binding as llvm
import numpy as np
from numba import types
from numba.extending import overload, register_jitable

_ROW_MAJOR, _NO_TRANS, _TRANS, _PACKED = 101, 111, 112, 151  # _PACKED: MKL's CblasPacked
_I32, _I64, _PTR = types.int32, types.int64, types.intp  # pointers passed as integers (same ABI)


def _probe():
    """Register NumPy's CBLAS symbols with LLVM; False where NumPy's BLAS is not scipy-openblas64."""
    here = os.path.dirname(np.__file__)
    for path in sorted(glob.glob(here + ".libs/*scipy_openblas64*") + glob.glob(os.path.join(here, ".dylibs",
                                                                                              "*scipy_openblas64*"))):
        try:
            lib = ctypes.CDLL(path)  # already loaded by NumPy: the same handle, the same thread pool
            symbols = {name: getattr(lib, name) for name in _NAMES}
        except (OSError, AttributeError):
            continue
        for name, fn in symbols.items():
            llvm.add_symbol(name, ctypes.cast(fn, ctypes.c_void_p).value)
        return lib
    return None


def _gemm_type(real):
    return types.void(_I32, _I32, _I32, _I64, _I64, _I64, real, _PTR, _I64, _PTR, _I64, real, _PTR, _I64)


def _gemv_type(real):
    return types.void(_I32, _I32, _I64, _I64, real, _PTR, _I64, _PTR, _I64, real, _PTR, _I64)


_NAMES = ("scipy_cblas_sgemm64_", "scipy_cblas_dgemm64_", "scipy_cblas_sgemv64_", "scipy_cblas_dgemv64_")
_LIB = _probe()
AVAILABLE = _LIB is not None


def openblas_threads(n=None):
    """OpenBLAS's thread count (a process-wide setting); with ``n``, set it to n and return the
    previous count. None where NumPy's BLAS is not scipy-openblas64."""
    if _LIB is None:
        return None
    previous = _LIB.scipy_openblas_get_num_threads64_()
    if n is not None and n != previous:
        _LIB.scipy_openblas_set_num_threads64_(ctypes.c_int(n))
    return previous


def matmul_into(a, b, c):
    """c = a @ b for 2-D row-major arrays, in compiled code (row-major CBLAS; one row goes to GEMV,
    which OpenBLAS runs several times faster than a one-row GEMM).

    Every leading dimension is derived from the shape and the layout (``leading_dim``), never read
    from a stride NumPy leaves arbitrary (the row stride of a one-row array, say). An operand BLAS
    cannot describe raises ValueError: OpenBLAS would print a message to stdout and return without
    computing, leaving whatever was in ``c``."""
    raise NotImplementedError("matmul_into runs in compiled code only")


@register_jitable
def leading_dim(rows, cols, row_stride, col_stride, itemsize):
    """The leading dimension (in elements) of a row-major matrix for BLAS, or -1 where there is none:
    columns not adjacent, rows overlapping (a broadcast or reversed view), a stride that is not a
    whole number of elements. A single row or column has no stride to read: BLAS only needs
    ld >= max(1, cols) then."""
    if cols > 1 and col_stride != itemsize:
        return -1
    if rows <= 1:
        return max(1, cols)
    if row_stride % itemsize != 0 or row_stride < cols * itemsize:
        return -1
    return row_stride // itemsize


def describable(array):
    """Whether ``matmul_into`` can take the 2-D ``array`` as it is (the Python side of leading_dim)."""
    rows, cols = array.shape
    return leading_dim(rows, cols, array.strides[0], array.strides[1], array.itemsize) > 0


def _packed_type(real):
    return types.void(_I32, _I32, _I32, _I32, _I32, _I32, _PTR, _I32, _PTR, _I32, real, _PTR, _I32)


def _packed_impl(real):
    """c = a @ B for B packed by MKL (a 1-D uint8 array): cblas_?gemm_compute (32-bit integers)."""
    letter = "s" if real == types.float32 else "d"
    compute = types.ExternalFunction(f"cblas_{letter}gemm_compute", _packed_type(real))
    dtype = np.float32 if real == types.float32 else np.float64
    zero, size = dtype(0), np.dtype(dtype).itemsize

    def impl(a, b, c):
        M, K, N = a.shape[0], a.shape[1], c.shape[1]
        if c.shape[0] != M:
            raise ValueError("matmul_into: shapes do not match (a is (M, K), c (M, N))")
        lda = leading_dim(M, K, a.strides[0], a.strides[1], size)
        ldc = leading_dim(M, N, c.strides[0], c.strides[1], size)
        if lda < 0 or ldc < 0:
            raise ValueError("matmul_into: an operand is not a row-major matrix BLAS can take "
                             "(broadcast, reversed, overlapping or column-strided): copy it first")
        i32 = np.int32
        compute(i32(_ROW_MAJOR), i32(_NO_TRANS), i32(_PACKED), i32(M), i32(N), i32(K), a.ctypes.data, i32(lda),
                b.ctypes.data, i32(N), zero, c.ctypes.data, i32(ldc))

    return impl


class RowMatrix(NamedTuple):
    """``matmul_into``'s B operand for rnnkern's own one-row product (``rowgemm``): ``matrix``, a row-major
    (K, N) array."""
    matrix: Any


def _row_impl(real):
    """c = a @ b.matrix by ``rowgemm.row_matmul``."""
    from .rowgemm import row_matmul

    size = np.dtype(np.float32 if real == types.float32 else np.float64).itemsize

    def impl(a, b, c):
        lda, ldb, ldc = _leading_dims(a, b.matrix, c, size)
        if not _empty_product(a, c):
            row_matmul(a, lda, b.matrix, ldb, c, ldc)

    return impl


class MklMatrix(NamedTuple):
    """``matmul_into``'s B operand for MKL's unpacked GEMM: ``matrix``, a row-major (K, N) array."""
    matrix: Any


def _mkl_gemm_type(real):
    i32 = types.int32
    return types.void(i32, i32, i32, i32, i32, i32, real, _PTR, i32, _PTR, i32, real, _PTR, i32)


def _mkl_impl(real):
    """c = a @ b.matrix by MKL's cblas_?gemm (32-bit integers), registered with LLVM by ``mkl``."""
    letter = "s" if real == types.float32 else "d"
    gemm = types.ExternalFunction(f"cblas_{letter}gemm", _mkl_gemm_type(real))
    dtype = np.float32 if real == types.float32 else np.float64
    one, zero, size = dtype(1), dtype(0), np.dtype(dtype).itemsize

    def impl(a, b, c):
        w = b.matrix
        M, K, N = a.shape[0], a.shape[1], w.shape[1]
        lda, ldb, ldc = _leading_dims(a, w, c, size)
        if _empty_product(a, c):
            return
        i32 = np.int32
        gemm(i32(_ROW_MAJOR), i32(_NO_TRANS), i32(_NO_TRANS), i32(M), i32(N), i32(K), one, a.ctypes.data,
             i32(lda), w.ctypes.data, i32(ldb), zero, c.ctypes.data, i32(ldc))

    return impl


@register_jitable
def _empty_product(a, c):
    """Whether a has no columns (K = 0), c then set to the product's zeros (BLAS would leave it as it was,
    and rnnkern's row product would read past a's row)."""
    if a.shape[1] == 0:
        for i in range(c.shape[0]):
            for j in range(c.shape[1]):
                c[i, j] = 0
        return True
    return False


@register_jitable
def _leading_dims(a, b, c, size):
    """(lda, ldb, ldc) of c (M, N) = a (M, K) @ b (K, N); ValueError on shapes that do not match or an
    operand BLAS cannot take."""
    M, K, N = a.shape[0], a.shape[1], b.shape[1]
    if b.shape[0] != K or c.shape[0] != M or c.shape[1] != N:
        raise ValueError("matmul_into: shapes do not match (a is (M, K), b (K, N), c (M, N))")
    lda = leading_dim(M, K, a.strides[0], a.strides[1], size)
    ldb = leading_dim(K, N, b.strides[0], b.strides[1], size)
    ldc = leading_dim(M, N, c.strides[0], c.strides[1], size)
    if lda < 0 or ldb < 0 or ldc < 0:
        raise ValueError("matmul_into: an operand is not a row-major matrix BLAS can take "
                         "(broadcast, reversed, overlapping or column-strided): copy it first")
    return lda, ldb, ldc


@overload(matmul_into, jit_options=dict(error_model="numpy"))
def _matmul_into(a, b, c):
    real = a.dtype
    if isinstance(b, types.Array) and b.ndim == 1:
        return _packed_impl(real)
    if isinstance(b, types.BaseNamedTuple) and b.instance_class is MklMatrix:
        return _mkl_impl(real)
    if isinstance(b, types.BaseNamedTuple) and b.instance_class is RowMatrix:
        return _row_impl(real)
    letter = "s" if real == types.float32 else "d"
    gemm = types.ExternalFunction(f"scipy_cblas_{letter}gemm64_", _gemm_type(real))
    gemv = types.ExternalFunction(f"scipy_cblas_{letter}gemv64_", _gemv_type(real))
    dtype = np.float32 if real == types.float32 else np.float64
    one, zero, size = dtype(1), dtype(0), np.dtype(dtype).itemsize

    def impl(a, b, c):
        M, K, N = a.shape[0], a.shape[1], b.shape[1]
        lda, ldb, ldc = _leading_dims(a, b, c, size)
        if _empty_product(a, c):
            return
        if M == 1:  # y = B^T x, with B (K, N) row-major; x and y are single rows, unit stride
            gemv(np.int32(_ROW_MAJOR), np.int32(_TRANS), K, N, one, b.ctypes.data, ldb,
                 a.ctypes.data, 1, zero, c.ctypes.data, 1)
        else:
            gemm(np.int32(_ROW_MAJOR), np.int32(_NO_TRANS), np.int32(_NO_TRANS), M, N, K,
                 one, a.ctypes.data, lda, b.ctypes.data, ldb, zero, c.ctypes.data, ldc)

    return impl
