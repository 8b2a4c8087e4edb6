"""Where an array lives, and a host copy of any array-like: NumPy, CuPy, torch tensors (CUDA ones and
those requiring grad included) and other libraries' device arrays (by DLPack)."""

import math

import numpy as np

# DLPack device types of device memory: kDLCUDA and kDLCUDAManaged.
_DLPACK_GPU = (2, 13)
CACHE_LINE = 64


def aligned_empty(shape, dtype, order="C"):
    """np.empty whose data starts on a cache line. A large NumPy array starts 16 bytes past one (glibc
    maps it 16 bytes into a page), and on an Intel Xeon OpenBLAS's batch-1 GEMV took 1.3x its time
    on such a W^T than on an aligned one (benchmarks/gemv_b1.py, ``openblas-skew16``): the host weight
    matrices and the compiled loops' GEMV outputs use this (not every array: it costs a few
    microseconds a call, and aligning the outputs too measured no faster)."""
    dtype = np.dtype(dtype)
    shape = tuple(shape) if isinstance(shape, (tuple, list)) else (shape,)
    size = math.prod(shape) * dtype.itemsize
    raw = np.empty(size + CACHE_LINE, np.uint8)
    start = -raw.__array_interface__["data"][0] % CACHE_LINE  # (.ctypes.data costs 10x as much)
    return raw[start:start + size].view(dtype).reshape(shape, order=order)


def device_of(array):
    """'gpu' for device memory (a CuPy array, a CUDA torch tensor, anything whose DLPack device or
    __cuda_array_interface__ says CUDA), 'cpu' for anything else."""
    if type(array).__module__.split(".")[0] == "cupy":
        return "gpu"
    dlpack_device = getattr(array, "__dlpack_device__", None)
    if callable(dlpack_device):
        try:
            return "gpu" if dlpack_device()[0] in _DLPACK_GPU else "cpu"
        except Exception:  # not exportable (e.g. a sparse tensor): fall back to the interface below
            pass
    try:
        return "gpu" if hasattr(array, "__cuda_array_interface__") else "cpu"
    except RuntimeError:  # torch raises this (not AttributeError) for a CUDA tensor that requires grad
        return "gpu"


def detached(array):
    """A torch tensor without its autograd history (``.detach()``), so it can be exported; anything else as is."""
    detach = getattr(array, "detach", None)
    return detach() if callable(detach) and hasattr(array, "requires_grad") else array


def to_host(array):
    """A NumPy array of ``array``: CuPy arrays and torch tensors (on CUDA or not, requiring grad or not)
    are copied to the host; other device arrays go through CuPy by DLPack; anything else is np.asarray'd."""
    array = detached(array)
    if type(array).__module__.split(".")[0] == "cupy":
        return array.get()
    if hasattr(array, "cpu") and hasattr(array, "numpy"):  # a torch tensor, maybe on CUDA
        return array.cpu().numpy()
    if device_of(array) == "gpu":
        import cupy

        gpu = cupy.from_dlpack(array) if hasattr(array, "__dlpack__") else cupy.asarray(array)
        return cupy.asnumpy(gpu)
    return np.asarray(array)
