"""Device selection: one backend object per device owns everything device-specific.

A backend exposes its array module as ``xp`` (so generic code can call
``xp.matmul``), allocation, host/device transfer, and the fused elementwise
step of each cell. ``get_backend("cpu" | "gpu" | "auto")`` returns it ("cuda" and "cuda:0",
torch's names, mean "gpu").
"""

import functools

import numpy as np

from .._errors import DeviceUnavailableError
from .._validate import resolve_dtype
from ._host import detached, device_of, to_host  # noqa: F401 (re-exported)
from ._numpy import NumpyBackend

DEVICES = ("cpu", "gpu", "auto")


@functools.lru_cache(maxsize=None)
def _gpu_backend():
    """The CuPy backend, or DeviceUnavailableError saying why it cannot be used."""
    try:
        import cupy
    except ImportError as exc:
        raise DeviceUnavailableError(
            "device='gpu' needs CuPy, which is not installed "
            f"({exc}); install it with: pip install 'rnnkern[gpu]'"
        ) from None
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDARuntimeError without a driver, or a broken install
        raise DeviceUnavailableError(
            f"device='gpu': CuPy {cupy.__version__} is installed but no CUDA device is usable "
            f"({type(exc).__name__}: {exc}); check the NVIDIA driver (nvidia-smi) and that the "
            "CuPy wheel matches the CUDA version, or use device='cpu' / device='auto'"
        ) from None
    if count == 0:
        raise DeviceUnavailableError(
            f"device='gpu': CuPy {cupy.__version__} found no CUDA device; use device='cpu' or device='auto'"
        )
    from ._cupy import CupyBackend

    return CupyBackend(cupy)


def gpu_unavailable_reason():
    """None when the GPU is usable, else the reason it is not (a string)."""
    try:
        _gpu_backend()
    except DeviceUnavailableError as exc:
        return str(exc)
    return None


_CPU = NumpyBackend()


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
        return _CPU
    if device in GPU_ALIASES:
        try:
            return _gpu_backend()
        except DeviceUnavailableError as exc:
            if device == "gpu":
                raise
            raise DeviceUnavailableError(str(exc).replace("device='gpu'", f"device={device!r} (the GPU)", 1)) from None
    return _CPU if gpu_unavailable_reason() else _gpu_backend()


def available_devices():
    """The devices usable here, e.g. ["cpu"] or ["cpu", "gpu"]; "gpu" may also be passed as "cuda" or
    "cuda:0", as in torch."""
    return ["cpu"] if gpu_unavailable_reason() else ["cpu", "gpu"]


def asarray(x, device="cpu", dtype=None):
    """Return ``x`` as an array on ``device`` (copying between host and GPU when needed)."""
    backend = get_backend(device)
    return backend.asarray(x, None if dtype is None else resolve_dtype(dtype, "rnnkern.asarray"))
