"""NumPy's own BLAS, callable from compiled code: the recurrent GEMM inside a compiled time loop.

numba's ``np.dot`` goes through SciPy's BLAS, a second OpenBLAS with its own thread pool, and two
pools on the same cores fight (1.4-1.8x slower). NumPy's Linux, Windows and Intel-macOS wheels
ship OpenBLAS as ``scipy-openblas64``, which exports CBLAS as ``scipy_cblas_sgemm64_`` (64-bit
integers): that library is already loaded, so its symbols are registered with LLVM under their
own names and the compiled loops call them like C functions (which keeps them cacheable: no
pointer is baked into the code). Where the probe finds no such library (NumPy built against
Accelerate or MKL, say), ``AVAILABLE`` is False and the Python time loop runs instead.
"""

import ctypes
import glob
import os

import llvmlite.binding as llvm
import numpy as np
from numba import types
from numba.extending import overload

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
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
        return True
    return False


def _gemm_type(real):
    return types.void(_I32, _I32, _I32, _I64, _I64, _I64, real, _PTR, _I64, _PTR, _I64, real, _PTR, _I64)


def _gemv_type(real):
    return types.void(_I32, _I32, _I64, _I64, real, _PTR, _I64, _PTR, _I64, real, _PTR, _I64)


_NAMES = ("scipy_cblas_sgemm64_", "scipy_cblas_dgemm64_", "scipy_cblas_sgemv64_", "scipy_cblas_dgemv64_")
AVAILABLE = _probe()


def matmul_into(a, b, c):
    """c = a @ b for 2-D arrays with unit column stride, in compiled code (row-major CBLAS; one row
    goes to GEMV, which OpenBLAS runs several times faster than a one-row GEMM)."""
    raise NotImplementedError("matmul_into runs in compiled code only")


@overload(matmul_into, jit_options=dict(error_model="numpy"))
def _matmul_into(a, b, c):
    real = a.dtype
    letter = "s" if real == types.float32 else "d"
    gemm = types.ExternalFunction(f"scipy_cblas_{letter}gemm64_", _gemm_type(real))
    gemv = types.ExternalFunction(f"scipy_cblas_{letter}gemv64_", _gemv_type(real))
    dtype = np.float32 if real == types.float32 else np.float64
    one, zero, size = dtype(1), dtype(0), np.dtype(dtype).itemsize

    def impl(a, b, c):
        if a.shape[0] == 1:  # y = B^T x, with B (K, N) row-major and x the one row of a
            gemv(np.int32(_ROW_MAJOR), np.int32(_TRANS), b.shape[0], b.shape[1], one, b.ctypes.data,
                 b.strides[0] // size, a.ctypes.data, a.strides[1] // size, zero, c.ctypes.data, c.strides[1] // size)
        else:
            gemm(np.int32(_ROW_MAJOR), np.int32(_NO_TRANS), np.int32(_NO_TRANS), a.shape[0], b.shape[1], a.shape[1],
                 one, a.ctypes.data, a.strides[0] // size, b.ctypes.data, b.strides[0] // size, zero, c.ctypes.data,
                 c.strides[0] // size)

    return impl
