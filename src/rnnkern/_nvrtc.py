"""A small ctypes binding of NVRTC, CUDA's runtime compiler: enough to compile a kernel without a GPU.

NVRTC needs no driver and no device, so the CUDA kernels can be compiled (and their
errors caught) on any machine where libnvrtc is present, e.g. from the
nvidia-cuda-nvrtc-cu12 wheel (``pip install 'rnnkern[nvrtc]'``).
"""

import ctypes
import ctypes.util
import functools
import importlib.util
import os
import sys
from pathlib import Path

INSTALL_HINT = "pip install nvidia-cuda-nvrtc-cu12 (or: pip install 'rnnkern[nvrtc]')"
_NVRTC_SUCCESS = 0


class NvrtcUnavailableError(RuntimeError):
    """libnvrtc could not be found or loaded; the message lists where it was looked for."""


class NvrtcCompileError(RuntimeError):
    """NVRTC rejected a source; ``log`` holds the compiler's log."""

    def __init__(self, message, log):
        super().__init__(message)
        self.log = log


def _wheel_dirs():
    """lib/ (and bin/ on Windows) of the nvidia-cuda-nvrtc-cu12 wheel, if installed."""
    try:
        found = importlib.util.find_spec("nvidia.cuda_nvrtc")
    except (ImportError, ValueError):
        return []
    roots = list(found.submodule_search_locations or []) if found else []
    return [Path(root) / sub for root in roots for sub in ("lib", "bin")]


def _candidates():
    """Library paths or names to try, most specific first."""
    patterns = ["nvrtc64_12*.dll"] if sys.platform == "win32" else ["libnvrtc.so.12", "libnvrtc.so"]
    dirs = _wheel_dirs()
    for var in ("CUDA_PATH", "CUDA_HOME"):
        if os.environ.get(var):
            dirs += [Path(os.environ[var]) / sub for sub in ("lib64", "lib", "bin")]
    paths = [str(p) for d in dirs for pattern in patterns for p in sorted(d.glob(pattern))]
    system = ctypes.util.find_library("nvrtc")
    return paths + ([system] if system else []) + ["libnvrtc.so.12"]


@functools.lru_cache(maxsize=None)
def load():
    """The loaded libnvrtc (a ctypes.CDLL), or NvrtcUnavailableError saying how to install it."""
    errors = []
    for candidate in _candidates():
        try:
            lib = ctypes.CDLL(candidate)
        except OSError as exc:
            errors.append(f"{candidate}: {exc}")
            continue
        _declare(lib)
        return lib
    raise NvrtcUnavailableError("NVRTC (libnvrtc.so.12) could not be loaded; install it with: "
                                f"{INSTALL_HINT}. Tried: {'; '.join(errors)}")


def unavailable_reason():
    """None when NVRTC can be loaded, else why not (a string)."""
    try:
        load()
    except NvrtcUnavailableError as exc:
        return str(exc)
    return None


def _declare(lib):
    p, i, cp = ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p
    sigs = {"nvrtcVersion": [ctypes.POINTER(i), ctypes.POINTER(i)],
            "nvrtcCreateProgram": [ctypes.POINTER(p), cp, cp, i, ctypes.POINTER(cp), ctypes.POINTER(cp)],
            "nvrtcCompileProgram": [p, i, ctypes.POINTER(cp)],
            "nvrtcGetProgramLogSize": [p, ctypes.POINTER(ctypes.c_size_t)],
            "nvrtcGetProgramLog": [p, ctypes.c_char_p],
            "nvrtcDestroyProgram": [ctypes.POINTER(p)],
            "nvrtcGetErrorString": [i]}
    for name, argtypes in sigs.items():
        fn = getattr(lib, name)
        fn.argtypes = argtypes
        fn.restype = cp if name == "nvrtcGetErrorString" else i


def _check(lib, status, what):
    if status != _NVRTC_SUCCESS:
        raise RuntimeError(f"NVRTC {what} failed: {lib.nvrtcGetErrorString(status).decode()}")


def version():
    """NVRTC's (major, minor) version."""
    lib, major, minor = load(), ctypes.c_int(), ctypes.c_int()
    _check(lib, lib.nvrtcVersion(ctypes.byref(major), ctypes.byref(minor)), "nvrtcVersion")
    return major.value, minor.value


def compile(source, name, arch="sm_90", options=()):
    """Compile CUDA C++ ``source`` for ``arch`` (e.g. "sm_90": a cubin, so ptxas checks inline PTX too).

    Returns the compiler log (often empty); raises NvrtcCompileError with the log if it fails.
    """
    if not isinstance(source, str) or not isinstance(name, str):
        raise TypeError(f"source and name must be str, got {type(source).__name__} and {type(name).__name__}")
    if not isinstance(arch, str) or not arch.startswith(("sm_", "compute_")) or not arch.split("_", 1)[1].isdigit():
        raise ValueError(f"arch must look like 'sm_90' or 'compute_90', got {arch!r}")
    lib, prog = load(), ctypes.c_void_p()
    _check(lib, lib.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), name.encode(), 0, None, None),
           "nvrtcCreateProgram")
    try:
        opts = [f"--gpu-architecture={arch}".encode()] + [o.encode() for o in options]
        status = lib.nvrtcCompileProgram(prog, len(opts), (ctypes.c_char_p * len(opts))(*opts))
        log = _log(lib, prog)
    finally:
        lib.nvrtcDestroyProgram(ctypes.byref(prog))
    if status != _NVRTC_SUCCESS:
        reason = lib.nvrtcGetErrorString(status).decode()
        raise NvrtcCompileError(f"NVRTC could not compile {name} for {arch} ({reason}):\n{log}", log)
    return log


def _log(lib, prog):
    size = ctypes.c_size_t()
    _check(lib, lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size)), "nvrtcGetProgramLogSize")
    buffer = ctypes.create_string_buffer(size.value or 1)
    _check(lib, lib.nvrtcGetProgramLog(prog, buffer), "nvrtcGetProgramLog")
    return buffer.value.decode(errors="replace").strip()
