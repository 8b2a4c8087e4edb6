"""Intel MKL (the optional ``rnnkern[mkl]`` extra: the ``mkl`` and ``intel-openmp`` wheels), loaded with ctypes.

What rnnkern takes from it is the packed GEMM (what oneDNN's RNNs run on): ``cblas_?gemm_pack`` lays
W_hh^T out once in MKL's own blocked format, and each step's ``cblas_?gemm_compute`` multiplies by it
without re-packing the weights, as a plain GEMM does at every call. The wheels put ``libmkl_rt`` and
``libiomp5`` in the environment's ``lib`` folder; they are found through the wheels' own file lists
(``importlib.metadata``), loaded once, and their CBLAS symbols registered with LLVM under their own
names, so that the compiled time loops call them like NumPy's OpenBLAS (``blas``) and stay cacheable.
MKL's default interface (LP64) takes 32-bit integers.

``LIBRARY`` is the loaded ``Mkl``, or None with ``UNAVAILABLE`` saying why (not installed, say).
"""

import ctypes
import importlib.metadata
import os
import re

import llvmlite.binding as llvm
import numpy as np

ROW_MAJOR, NO_TRANS, TRANS, PACKED, B_MATRIX = 101, 111, 112, 151, 162
EXTRA = "pip install 'rnnkern[mkl]' (the mkl and intel-openmp wheels)"
# Registered with LLVM for the compiled loops (blas.matmul_into on a packed operand, or on a blas.MklMatrix)
COMPILED_NAMES = ("cblas_sgemm_compute", "cblas_dgemm_compute", "cblas_sgemm", "cblas_dgemm")


def _wheel_file(distribution, prefix):
    """The path of the wheel's shared library whose name starts with ``prefix``, or None."""
    try:
        files = importlib.metadata.distribution(distribution).files or ()
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in files:
        name = os.path.basename(str(f))
        if name.startswith(prefix) and ".so" in name or name == prefix + ".dll":
            path = f.locate()
            if os.path.exists(path):
                return str(path)
    return None


class Mkl:
    """The loaded library: ctypes functions with their signatures, the version, the thread controls."""

    def __init__(self, rt_path, omp_path):
        if omp_path is not None:  # MKL's threading layer dlopens libiomp5 by name: load the wheel's first
            ctypes.CDLL(omp_path, mode=ctypes.RTLD_GLOBAL)
        lib = self.lib = ctypes.CDLL(rt_path, mode=ctypes.RTLD_GLOBAL)
        self.path = rt_path
        size_t, i32, ptr = ctypes.c_size_t, ctypes.c_int, ctypes.c_void_p
        for letter, real in (("s", ctypes.c_float), ("d", ctypes.c_double)):
            get_size = getattr(lib, f"cblas_{letter}gemm_pack_get_size")
            get_size.restype, get_size.argtypes = size_t, [i32, i32, i32, i32]
            pack = getattr(lib, f"cblas_{letter}gemm_pack")
            pack.restype, pack.argtypes = None, [i32, i32, i32, i32, i32, i32, real, ptr, i32, ptr]
            gemm = getattr(lib, f"cblas_{letter}gemm")
            gemm.restype = None
            gemm.argtypes = [i32, i32, i32, i32, i32, i32, real, ptr, i32, ptr, i32, real, ptr, i32]
            compute = getattr(lib, f"cblas_{letter}gemm_compute")
            compute.restype = None
            compute.argtypes = [i32, i32, i32, i32, i32, i32, ptr, i32, ptr, i32, real, ptr, i32]
        lib.MKL_Set_Num_Threads_Local.restype, lib.MKL_Set_Num_Threads_Local.argtypes = i32, [i32]
        lib.MKL_Get_Max_Threads.restype = i32
        lib.MKL_Get_Version_String.argtypes = [ctypes.c_char_p, i32]
        text = ctypes.create_string_buffer(256)
        lib.MKL_Get_Version_String(text, 256)
        full = text.value.decode(errors="replace").strip()
        found = re.search(r"Version ([0-9][0-9.]*)", full)
        self.version = f"MKL {found.group(1)}" if found else full
        for name in COMPILED_NAMES:
            llvm.add_symbol(name, ctypes.cast(getattr(lib, name), ctypes.c_void_p).value)

    def set_threads_local(self, n):
        """Set the calling thread's MKL thread count (0: the global one); returns the previous value,
        which must be given back: it stays set on the thread (the prototype's trap 1)."""
        return self.lib.MKL_Set_Num_Threads_Local(n)

    def max_threads(self):
        return self.lib.MKL_Get_Max_Threads()

    def pack_size(self, dtype, rows, K, N):
        """Bytes of a packing of a (K, N) matrix for ``rows``-row products (at least 7.9 MB in MKL
        2026.2, even for a few bytes of weights)."""
        letter = "s" if np.dtype(dtype).itemsize == 4 else "d"
        return getattr(self.lib, f"cblas_{letter}gemm_pack_get_size")(B_MATRIX, rows, N, K)

    def pack(self, w_t, rows):
        """W^T (K, N), a row-major matrix (C-contiguous, or rows of it), packed for ``rows``-row products:
        a 64-byte aligned uint8 array, which ``blas.matmul_into`` and ``gemm`` take as the B operand."""
        from .blas import leading_dim

        letter = "s" if w_t.dtype.itemsize == 4 else "d"
        K, N = w_t.shape
        ld = leading_dim(K, N, w_t.strides[0], w_t.strides[1], w_t.itemsize)
        if ld < 0:  # not a row-major matrix as it is (a one-column view, say): packed from a copy
            w_t = np.ascontiguousarray(w_t)
            ld = max(1, N)
        size = getattr(self.lib, f"cblas_{letter}gemm_pack_get_size")(B_MATRIX, rows, N, K)
        buffer = _aligned(size)
        real = ctypes.c_float if letter == "s" else ctypes.c_double
        getattr(self.lib, f"cblas_{letter}gemm_pack")(ROW_MAJOR, B_MATRIX, NO_TRANS, rows, N, K, real(1.0),
                                                     w_t.ctypes.data, ld, buffer.ctypes.data)
        return buffer

    def gemm(self, a, trans_a, lda, b, trans_b, ldb, c, ldc, M, N, K):
        """c (M, N), row-major with ``ldc`` = op(a) @ op(b): CBLAS's row-major GEMM on raw pointers."""
        letter = "s" if c.dtype.itemsize == 4 else "d"
        real = ctypes.c_float if letter == "s" else ctypes.c_double
        getattr(self.lib, f"cblas_{letter}gemm")(ROW_MAJOR, TRANS if trans_a else NO_TRANS,
                                                TRANS if trans_b else NO_TRANS, M, N, K, real(1.0),
                                                a.ctypes.data, lda, b.ctypes.data, ldb, real(0.0),
                                                c.ctypes.data, ldc)


    def gemm_compute(self, a, lda, packed, c, ldc, M, N, K):
        """c (M, N), row-major with ``ldc`` = a (M, K), row-major with ``lda``, @ the matrix ``pack``
        packed (its N columns)."""
        letter = "s" if c.dtype.itemsize == 4 else "d"
        real = ctypes.c_float if letter == "s" else ctypes.c_double
        getattr(self.lib, f"cblas_{letter}gemm_compute")(ROW_MAJOR, NO_TRANS, PACKED, M, N, K, a.ctypes.data, lda,
                                                        packed.ctypes.data, N, real(0.0), c.ctypes.data, ldc)


def _aligned(size, alignment=64):
    raw = np.empty(size + alignment, np.uint8)
    offset = (-raw.ctypes.data) % alignment
    return raw[offset:offset + size]


def _load():
    if os.environ.get("RNNKERN_NO_MKL"):  # tests of the "not installed" messages
        return None, "RNNKERN_NO_MKL is set"
    rt = _wheel_file("mkl", "libmkl_rt")
    if rt is None:
        return None, f"MKL is not installed; {EXTRA}"
    try:
        return Mkl(rt, _wheel_file("intel-openmp", "libiomp5")), None
    except (OSError, AttributeError) as exc:
        return None, f"MKL is installed but could not be loaded from {rt} ({type(exc).__name__}: {exc})"


LIBRARY, UNAVAILABLE = _load()
