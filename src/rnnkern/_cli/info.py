"""``rnnkern info``: versions, the GPU (or why it is unusable), and an NVRTC build of every fused kernel."""

import argparse
import platform
import re

import numpy as np

from .._backend import GPU_EXTRAS

DEFAULT_ARCHS = ("sm_80", "sm_90")


def _arch(value):
    if not re.fullmatch(r"(sm|compute)_\d+a?", value):
        raise argparse.ArgumentTypeError(f"--arch must look like sm_90 (or compute_90), got {value!r}")
    return value


def add_arguments(parser):
    parser.add_argument("--compile-kernels", action="store_true",
                        help="compile every fused kernel in every dtype with each NVRTC found (CUDA 12 and 13; "
                             "no GPU needed)")
    parser.add_argument("--arch", type=_arch, action="append", metavar="SM",
                        help="GPU architecture to compile for, e.g. sm_90; repeatable; implies --compile-kernels "
                             f"(default: {' and '.join(DEFAULT_ARCHS)})")


def _line(label, text):
    return f"{label + ':':<14}{text}"


def _cuda_version(number):
    """CUDA's integer version (12040) as '12.4'."""
    return f"{number // 1000}.{number % 1000 // 10}"


def _cupy_lines():
    try:
        import cupy
    except ImportError as exc:
        return [_line("CuPy", f"not installed ({exc}); {GPU_EXTRAS}")]
    lines = [_line("CuPy", cupy.__version__)]
    runtime = cupy.cuda.runtime
    for label, query in (("CUDA runtime", runtime.runtimeGetVersion), ("CUDA driver", runtime.driverGetVersion)):
        try:
            number = query()
            lines.append(_line(label, _cuda_version(number) if number else "none (no NVIDIA driver)"))
        except Exception as exc:  # a broken install raises CUDARuntimeError or ImportError here
            lines.append(_line(label, f"unknown ({type(exc).__name__}: {exc})"))
    return lines


def _gpu_lines():
    from .._backend import gpu_unavailable_reason

    reason = gpu_unavailable_reason()
    if reason is not None:
        return [_line("GPU", f"unusable: {reason}")]
    import cupy

    lines = []
    for index in range(cupy.cuda.runtime.getDeviceCount()):
        props = cupy.cuda.runtime.getDeviceProperties(index)
        name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        memory = props["totalGlobalMem"] / 2**30
        lines.append(_line(f"GPU {index}", f"{name}, {memory:.1f} GiB, compute capability "
                                           f"{props['major']}.{props['minor']}"))
    return lines


def _nvrtc_line():
    from .._backend.cupy import nvrtc as _nvrtc

    majors = _nvrtc.available_majors()
    if not majors:
        return _line("NVRTC", f"unavailable ({_nvrtc.unavailable_reason()})")
    found = [f"{'.'.join(map(str, _nvrtc.version(m)))} ({_nvrtc.library_path(m)})" for m in majors]
    return _line("NVRTC", "; ".join(found))


def compile_kernels(archs, out=print, majors=None):
    """Compile every kernel x dtype x arch with the NVRTC of each CUDA major in ``majors`` (default:
    every one found), one line each; the number of failures."""
    from .._backend.cupy import kernels as _kernels, nvrtc as _nvrtc

    majors = _nvrtc.available_majors() if majors is None else majors
    if not majors:
        raise _nvrtc.NvrtcUnavailableError(_nvrtc.unavailable_reason())
    failures = 0
    for major in majors:
        nvrtc = "NVRTC " + ".".join(map(str, _nvrtc.version(major)))
        for name, dtype, source in _kernel_sources():
            for arch in archs:
                label = f"{_kernels.kernel_name(name, dtype)} {arch} {nvrtc}"
                try:
                    _nvrtc.compile(source(), f"{_kernels.kernel_name(name, dtype)}_{arch}.cu", arch, major=major)
                except _nvrtc.NvrtcCompileError as exc:
                    failures += 1
                    out(f"{label}: FAILED\n{exc.log}")
                else:
                    out(f"{label}: ok")
    return failures


def _kernel_sources():
    """(name, dtype, source()) of every kernel to compile: the cells' ElementwiseKernels, then the
    LayerNorm cells' raw kernels (one unit per op and dtype, every zoneout variant and row group)."""
    from .._backend.cupy import kernels as _kernels, lnkernels as _ln

    for name in _kernels.KERNELS:
        for dtype in _kernels.DTYPES:
            yield name, dtype, lambda name=name, dtype=dtype: _kernels.translation_unit(name, dtype, "cuda")
    for op in _ln.LN_OPS:
        for dtype in _kernels.DTYPES:
            yield op, dtype, lambda op=op, dtype=dtype: _ln.translation_unit(op, dtype, "cuda")


def run(args):
    from .. import __version__
    from .._backend.cupy.nvrtc import NvrtcUnavailableError

    from .._backend import cpu_gemm_description, cpu_kernels_description

    head = [_line("rnnkern", __version__), _line("Python", platform.python_version()), _line("NumPy", np.__version__),
            _line("CPU steps", cpu_kernels_description()), _line("CPU GEMM", cpu_gemm_description())]
    for line in head + _cupy_lines() + _gpu_lines() + [_nvrtc_line()]:
        print(line)
    if not (args.compile_kernels or args.arch):
        return 0
    archs = args.arch or list(DEFAULT_ARCHS)
    try:
        failures = compile_kernels(archs)
    except NvrtcUnavailableError as exc:
        print(f"cannot compile the kernels: {exc}")
        return 2
    print(f"{failures} of the kernel builds failed" if failures else "all kernels compiled")
    return 1 if failures else 0
