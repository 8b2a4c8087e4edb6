"""A small ctypes binding of NVRTC, CUDA's runtime compiler: enough to compile a kernel without a GPU.

NVRTC needs no driver and no device, so the CUDA kernels can be compiled (and their
errors caught) on any machine where libnvrtc is present: CUDA 12's from the
nvidia-cuda-nvrtc-cu12 wheel (``pip install 'rnnkern[nvrtc-cuda12]'``), CUDA 13's from
nvidia-cuda-nvrtc 13.x (``'rnnkern[nvrtc-cuda13]'``, files under ``nvidia/cu13/``), or a
CUDA toolkit (``CUDA_PATH`` / ``CUDA_HOME``, the system's library path).

Why hand-written rather than CuPy's ``cupy.cuda.nvrtc`` or NVIDIA's ``cuda-bindings``: this
check must compile every kernel with NVRTC 12 *and* 13 in one test environment, with or without
CuPy. CuPy's binding needs CuPy and loads one NVRTC per process, whichever its loader finds (with
both wheels installed, cupy-cuda12x 14.2 picks NVRTC 13.5); cuda-bindings is released per CUDA
major (12.x binds NVRTC 12, 13.x NVRTC 13), one per environment. The seven C functions used here
have kept their signatures from CUDA 11 to 13, so loading each major's library by path is all it
takes.
"""

import ctypes
import ctypes.util
import functools
import importlib.util
import os
import sys
from pathlib import Path

MAJORS = (13, 12)  # the CUDA major versions looked for, newest (the default) first
WHEELS = {12: "nvidia-cuda-nvrtc-cu12", 13: "'nvidia-cuda-nvrtc>=13,<14'"}
INSTALL_HINT = ("pip install nvidia-cuda-nvrtc-cu12 (CUDA 12) or 'nvidia-cuda-nvrtc>=13,<14' (CUDA 13); "
                "or: pip install 'rnnkern[nvrtc]' (both)")
_NVRTC_SUCCESS = 0
# Where each major's wheel puts the library: nvidia/cuda_nvrtc/lib (CUDA 12), nvidia/cu13/lib (CUDA 13).
_WHEEL_PACKAGES = {12: "nvidia.cuda_nvrtc", 13: "nvidia.cu13"}


class NvrtcUnavailableError(RuntimeError):
    """libnvrtc could not be found or loaded; the message lists where it was looked for."""


class NvrtcCompileError(RuntimeError):
    """NVRTC rejected a source; ``log`` holds the compiler's log."""

    def __init__(self, message, log):
        super().__init__(message)
        self.log = log


def _package_dirs(package, subdirs):
    """``subdirs`` of an installed (namespace) package's folders, e.g. the lib/ of an NVIDIA wheel."""
    try:
        found = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return []
    roots = list(found.submodule_search_locations or []) if found else []
    return [Path(root) / sub for root in roots for sub in subdirs]


def wheel_dirs(major, subdirs=("lib", "bin", "bin/x86_64")):
    """Folders of the NVIDIA wheel of CUDA ``major`` (12 or 13), if installed: lib/ by default."""
    return _package_dirs(_WHEEL_PACKAGES[major], subdirs)


def _candidates(major):
    """Library paths or names to try for NVRTC of CUDA ``major``, most specific first."""
    patterns = [f"nvrtc64_{major}*.dll"] if sys.platform == "win32" else [f"libnvrtc.so.{major}"]
    dirs = wheel_dirs(major)
    for var in ("CUDA_PATH", "CUDA_HOME"):
        if os.environ.get(var):
            dirs += [Path(os.environ[var]) / sub for sub in ("lib64", "lib", "bin", "bin/x64")]
    dirs.append(Path("/usr/local/cuda/lib64"))
    paths = [str(p) for d in dirs for pattern in patterns for p in sorted(d.glob(pattern))]
    system = ctypes.util.find_library("nvrtc")
    return list(dict.fromkeys(paths + ([system] if system else []) + [f"libnvrtc.so.{major}"]))


@functools.lru_cache(maxsize=None)
def load(major=None):
    """The loaded libnvrtc of CUDA ``major`` (12 or 13; None: the newest found), as a ctypes.CDLL,
    or NvrtcUnavailableError saying how to install it."""
    if major is not None and major not in MAJORS:
        raise ValueError(f"major must be one of {', '.join(map(str, MAJORS))} (the CUDA version), got {major!r}")
    errors = []
    for wanted in (major,) if major is not None else MAJORS:
        for candidate in _candidates(wanted):
            try:
                lib = ctypes.CDLL(candidate)
            except OSError as exc:
                errors.append(f"{candidate}: {exc}")
                continue
            _declare(lib)
            got = _lib_version(lib)
            if got[0] != wanted:
                errors.append(f"{candidate}: NVRTC {got[0]}, not {wanted}")
                continue
            try:
                lib.builtins_library = _load_builtins_beside(candidate, *got)
            except OSError as exc:
                errors.append(f"{candidate}'s builtins: {exc}")
                continue
            return lib
    wanted = f"CUDA {major}'s" if major else "CUDA 13's or 12's"
    raise NvrtcUnavailableError(f"NVRTC ({wanted} libnvrtc) could not be loaded; install it with: "
                                f"{WHEELS[major] if major else INSTALL_HINT}. Tried: {'; '.join(errors)}")


def _builtins_name(major, minor):
    """The file name NVRTC ``major.minor`` opens its builtins from (it asks the loader by this name)."""
    if sys.platform == "win32":
        return f"nvrtc-builtins64_{major}{minor}.dll"
    return f"libnvrtc-builtins.so.{major}.{minor}"


def _load_builtins_beside(library, major, minor):
    """The builtins library in the folder of ``library`` (libnvrtc's path), loaded; None if there is none.

    At each compile NVRTC opens libnvrtc-builtins.so.<major>.<minor> by name, so the loader finds it
    beside libnvrtc only through libnvrtc's RPATH. nvidia-cuda-nvrtc 13.0.88 (which torch's CUDA 13.0
    wheels pull in) ships libnvrtc.so.13 without one, and every compile failed with "failed to open
    libnvrtc-builtins.so.13.0". The loader answers a name with a library already loaded under that
    name (its soname), so loading the file by path first is enough, for any version so packaged.
    A libnvrtc found by bare name (the system's search path) has no folder to look in: that path
    finds its builtins too.
    """
    folder = os.path.dirname(library)
    path = os.path.join(folder, _builtins_name(major, minor))
    if not folder or not os.path.isfile(path):
        return None  # NVRTC's own error names the file if it then cannot find it
    return ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)


def available_majors():
    """The CUDA major versions whose NVRTC can be loaded here, newest first (e.g. [13, 12])."""
    found = []
    for major in MAJORS:
        try:
            load(major)
        except NvrtcUnavailableError:
            continue
        found.append(major)
    return found


def unavailable_reason():
    """None when some NVRTC can be loaded, else why not (a string)."""
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


def _lib_version(lib):
    major, minor = ctypes.c_int(), ctypes.c_int()
    _check(lib, lib.nvrtcVersion(ctypes.byref(major), ctypes.byref(minor)), "nvrtcVersion")
    return major.value, minor.value


def version(major=None):
    """NVRTC's (major, minor) version (of CUDA ``major``'s NVRTC; None: the newest found)."""
    return _lib_version(load(major))


def library_path(major=None):
    """The file the NVRTC of CUDA ``major`` was loaded from (None: the newest found)."""
    return load(major)._name


def compile(source, name, arch="sm_90", options=(), major=None):
    """Compile CUDA C++ ``source`` for ``arch`` (e.g. "sm_90": a cubin, so ptxas checks inline PTX too)
    with the NVRTC of CUDA ``major`` (12 or 13; None: the newest found).

    Returns the compiler log (often empty); raises NvrtcCompileError with the log if it fails.
    """
    if not isinstance(source, str) or not isinstance(name, str):
        raise TypeError(f"source and name must be str, got {type(source).__name__} and {type(name).__name__}")
    if not isinstance(arch, str) or not arch.startswith(("sm_", "compute_")) or not arch.split("_", 1)[1].isdigit():
        raise ValueError(f"arch must look like 'sm_90' or 'compute_90', got {arch!r}")
    lib, prog = load(major), ctypes.c_void_p()
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
        which = ".".join(map(str, _lib_version(lib)))
        raise NvrtcCompileError(f"NVRTC {which} could not compile {name} for {arch} ({reason}):\n{log}", log)
    return log


def _log(lib, prog):
    size = ctypes.c_size_t()
    _check(lib, lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size)), "nvrtcGetProgramLogSize")
    buffer = ctypes.create_string_buffer(size.value or 1)
    _check(lib, lib.nvrtcGetProgramLog(prog, buffer), "nvrtcGetProgramLog")
    return buffer.value.decode(errors="replace").strip()
