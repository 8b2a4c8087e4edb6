"""Device selection: one backend object per device owns everything device-specific.

A backend exposes its array module as ``xp`` (so generic code can call
``xp.matmul``), allocation, host/device transfer, and the fused elementwise
step of each cell. ``get_backend("cpu" | "gpu" | "auto")`` returns it ("cuda" and "cuda:0",
torch's names, mean "gpu").

Nothing is chosen at import: importing this package imports neither numba nor CuPy. The CPU
backend is picked when first asked for (``get_backend("cpu")``, ``cpu_kernels_description()``, a
layer made on the CPU): the ``use_cpu_kernels`` block it runs in, else the environment variable
RNNKERN_CPU_KERNELS ("numba" or "numpy", read on each call), else numba's fused kernels where numba
imports and NumPy's ufuncs where not. Tests switch in-process, without a subprocess::

    with use_cpu_kernels("numpy"):
        layer = rnnkern.LSTM(3, 4)  # keeps the NumPy steps after the block, as a layer keeps its backend

The GPU backend is probed on first use too, and kept once it works; when it cannot be used, the
DeviceUnavailableError names the device as the caller typed it ('gpu', 'cuda' or 'cuda:0').
"""

import contextlib
import contextvars
import functools
import os

import numpy as np

from .._errors import DeviceUnavailableError
from .._validate import resolve_dtype
from .host import detached, device_of, to_host  # noqa: F401 (re-exported)
from .numpy.steps import NumpyBackend

DEVICES = ("cpu", "gpu", "auto")
# the README's extras, one per CUDA major version (the old 'gpu' extra is CUDA 12's, kept for existing installs)
GPU_EXTRAS = "pip install 'rnnkern[gpu-cuda12]' (CUDA 12) or 'rnnkern[gpu-cuda13]' (CUDA 13)"


def _find_cupy():
    """(cupy, None) when CuPy imports and sees a CUDA device, else (None, what is wrong): the words that
    follow the device's name in the DeviceUnavailableError, which ``_gpu_backend`` names."""
    try:
        import cupy
    except ImportError as exc:
        return None, f" needs CuPy, which is not installed ({exc}); install it with: {GPU_EXTRAS}"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDARuntimeError without a driver, or a broken install
        return None, (f": CuPy {cupy.__version__} is installed but no CUDA device is usable "
                      f"({type(exc).__name__}: {exc}); check the NVIDIA driver (nvidia-smi) and that the "
                      "CuPy wheel matches the CUDA version, or use device='cpu' / device='auto'")
    if count == 0:
        return None, f": CuPy {cupy.__version__} found no CUDA device; use device='cpu' or device='auto'"
    return cupy, None


@functools.lru_cache(maxsize=None)
def _cupy_backend(cupy):
    """The backend on ``cupy``, made once per module (so every "gpu" is the same object)."""
    from .cupy.backend import CupyBackend

    return CupyBackend(cupy)


def _gpu_backend(device="gpu"):
    """The CuPy backend, or DeviceUnavailableError saying why it cannot be used, which names ``device``
    as the caller typed it: device='gpu', or device='cuda' (the GPU) for torch's names. A failure is
    probed again on the next call (CuPy may have been installed or set up since)."""
    cupy, problem = _find_cupy()
    if problem is not None:
        named = f"device={device!r}" + ("" if device == "gpu" else " (the GPU)")
        raise DeviceUnavailableError(named + problem)
    return _cupy_backend(cupy)


def gpu_unavailable_reason():
    """None when the GPU is usable, else the reason it is not (a string)."""
    try:
        _gpu_backend()
    except DeviceUnavailableError as exc:
        return str(exc)
    return None


CPU_KERNELS = ("numba", "numpy")


# The kernels a ``use_cpu_kernels`` block chose (None outside any): a context variable, so that a
# block in one thread does not switch another thread's layers.
_CPU_CHOICE = contextvars.ContextVar("rnnkern_cpu_kernels", default=None)


def cpu_backend(kernels=None):
    """The CPU backend whose step math runs on ``kernels``: "numba" (fused compiled kernels, the
    default where numba is installed) or "numpy" (in-place ufuncs, the fallback). None takes the
    enclosing ``use_cpu_kernels`` block's choice, else the environment variable RNNKERN_CPU_KERNELS,
    else picks numba when it imports."""
    if kernels is None:
        kernels = _CPU_CHOICE.get() or os.environ.get("RNNKERN_CPU_KERNELS") or None
    if kernels is not None and kernels not in CPU_KERNELS:
        raise ValueError(f"RNNKERN_CPU_KERNELS must be 'numba' or 'numpy', got {kernels!r}")
    return _cpu_backend(kernels or ("numba" if numba_unavailable_reason() is None else "numpy"))


@functools.lru_cache(maxsize=None)
def _cpu_backend(kernels):
    if kernels == "numpy":
        return NumpyBackend()
    reason = numba_unavailable_reason()
    if reason is not None:
        raise DeviceUnavailableError(f"RNNKERN_CPU_KERNELS=numba, but {reason}; "
                                     "install it with: pip install 'rnnkern[fast]'")
    from .numba.backend import NumbaBackend

    return NumbaBackend()


@functools.lru_cache(maxsize=None)
def numba_unavailable_reason():
    """None when numba imports, else why not (a string)."""
    try:
        import numba  # noqa: F401
    except Exception as exc:  # ImportError, or numba refusing this NumPy version
        return f"numba cannot be imported ({type(exc).__name__}: {exc})"
    return None


@contextlib.contextmanager
def use_cpu_kernels(kernels):
    """Inside the block, the CPU backend (``get_backend("cpu")``, device="auto" without a GPU, and
    every layer made there) runs its step math on ``kernels``, "numba" or "numpy", whatever
    RNNKERN_CPU_KERNELS says. Blocks nest; the previous choice comes back on leaving. Yields the backend."""
    backend = cpu_backend(kernels)  # a bad name or a missing numba fails here, before the block
    token = _CPU_CHOICE.set(kernels)
    try:
        yield backend
    finally:
        _CPU_CHOICE.reset(token)


def cpu_kernels_description():
    """What runs the CPU's step math, for ``rnnkern info`` and the benchmark header."""
    cpu = cpu_backend()
    if cpu._kernels.startswith("numba"):
        from .numba import backend as _numba, blas as _numba_blas
        from .numba.scalar import COMPILE_CACHE

        loop = (f"compiled time loop: up to batch {_numba.LOOP_MAX_BATCH} with OpenBLAS, any batch with MKL "
                "or shards" if _numba_blas.AVAILABLE
                else "no compiled time loop: NumPy's BLAS is not scipy-openblas64")
        cache = "" if COMPILE_CACHE else ("; no writable compile cache, so each process compiles them again: "
                                          "set NUMBA_CACHE_DIR to a writable folder to keep them")
        return f"{cpu._kernels} ({loop}){cache}"
    if numba_unavailable_reason() is None:
        chooser = "use_cpu_kernels('numpy')" if _CPU_CHOICE.get() else "RNNKERN_CPU_KERNELS=numpy"
        return f"{cpu._kernels} ({chooser} chose them over numba)"
    return f"{cpu._kernels}; pip install 'rnnkern[fast]' for the fused numba kernels"


def cpu_gemm_description(dtype="float32", rows=64, hidden=512, columns=2048):
    """Which GEMM provider runs a step GEMM (rows, hidden) @ (hidden, columns) on the CPU and why (the
    default LSTM's by default), for ``rnnkern info`` and the benchmark header."""
    if not cpu_backend()._kernels.startswith("numba"):
        return "NumPy's matmul (the NumPy steps have no GEMM provider: the numba kernels do)"
    from .numba import blas as _numba_blas, choice

    if not _numba_blas.AVAILABLE:
        return "NumPy's matmul (NumPy's BLAS is not scipy-openblas64: no provider to choose)"
    text = choice.describe(np.dtype(dtype).type, rows, hidden, columns)
    return f"{text}; {cpu_row_description(dtype, hidden, columns)}" if rows == 1 else text


def cpu_row_description(dtype="float32", hidden=256, columns=1024):
    """Who runs the one-row steps (1, hidden) @ (hidden, columns) of batch 1 on the CPU and why, or None
    where the NumPy steps run (no compiled loop, no row product)."""
    if not cpu_backend()._kernels.startswith("numba"):
        return None
    from .numba import blas as _numba_blas, rowchoice

    return rowchoice.describe(np.dtype(dtype).type, hidden, columns) if _numba_blas.AVAILABLE else None


# torch's names for the GPU, accepted as they are typed there (only the current CUDA device is used).
GPU_ALIASES = ("gpu", "cuda", "cuda:0")


def get_backend(device):
    """The backend for ``device``: "cpu", "gpu" (or torch's "cuda", "cuda:0"), or "auto" (the GPU when
    usable, else the CPU)."""
    if getattr(device, "is_backend", False):
        return device
    if not isinstance(device, str) or device not in DEVICES + GPU_ALIASES:
        hint = (" (rnnkern uses the current CUDA device only: select another one with "
                "cupy.cuda.Device(n).use() and pass 'cuda')") if isinstance(device, str) and \
            device.startswith("cuda:") else ""
        raise ValueError(f"device must be one of 'cpu', 'gpu', 'auto', got {device!r} (torch's 'cuda' and 'cuda:0' "
                         f"also name the GPU){hint}")
    if device == "cpu":
        return cpu_backend()
    if device in GPU_ALIASES:
        return _gpu_backend(device)
    return cpu_backend() if gpu_unavailable_reason() else _gpu_backend()


def available_devices():
    """The devices usable here, e.g. ["cpu"] or ["cpu", "gpu"]; "gpu" may also be passed as "cuda" or
    "cuda:0", as in torch."""
    return ["cpu"] if gpu_unavailable_reason() else ["cpu", "gpu"]


def asarray(x, device="cpu", dtype=None):
    """Return ``x`` as an array on ``device`` (copying between host and GPU when needed)."""
    backend = get_backend(device)
    return backend.asarray(x, None if dtype is None else resolve_dtype(dtype, "rnnkern.asarray"))
