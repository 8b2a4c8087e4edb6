"""What the benchmark ran on: CPU, thread counts, the BLAS and its kernel, library versions, GPU."""

import os
import platform
import re
import sys

import numpy as np

# Variables that change OpenBLAS's kernel choice; `make bench` unsets them (see the Makefile).
OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")


def cpu_model():
    """The CPU's model name from /proc/cpuinfo, else what the platform module knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "Hardware", "cpu model") and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def usable_cpus():
    """CPUs this process may run on (the affinity mask), else os.cpu_count()."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def bench_threads():
    """The thread count every contender is given: OMP_NUM_THREADS when it is a positive integer (the
    user's, which NumPy's OpenBLAS and PyTorch read too), else one per usable CPU."""
    value = os.environ.get("OMP_NUM_THREADS", "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else usable_cpus()


def load_average():
    """The 1-minute load average (other work competing for the CPUs), or None where unknown."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def blas_info():
    """threadpoolctl's record of each BLAS loaded (NumPy's among them), or None when threadpoolctl is missing."""
    try:
        import threadpoolctl
    except ImportError:
        return None
    keys = ("internal_api", "version", "architecture", "num_threads", "threading_layer", "filepath")
    return [{k: lib.get(k) for k in keys} for lib in threadpoolctl.threadpool_info() if lib.get("user_api") == "blas"]


def torch_info():
    """PyTorch's version, threads and BLAS, or None when it is not importable."""
    try:
        import torch
    except ImportError:
        return None
    try:  # the build description ("... BLAS_INFO=mkl, ...") is informative only
        found = re.search(r"BLAS_INFO=([^,\s]+)", torch.__config__.show())
        blas = found.group(1) if found else None
    except Exception:
        blas = None
    return {"version": torch.__version__, "num_threads": torch.get_num_threads(), "blas": blas,
            "cudnn": torch.backends.cudnn.version() if torch.cuda.is_available() else None,
            "onednn": bool(torch.backends.mkldnn.is_available()),
            "tf32": {"cudnn": bool(torch.backends.cudnn.allow_tf32),
                     "cublas": bool(torch.backends.cuda.matmul.allow_tf32)}}


def onnxruntime_info():
    """ONNX Runtime's version and the intra-op threads its sessions get here, or None when not installed."""
    try:
        import onnxruntime
    except ImportError:
        return None
    return {"version": onnxruntime.__version__, "intra_op_threads": bench_threads(), "inter_op_threads": 1,
            "execution": "sequential", "provider": "CPUExecutionProvider"}


def tf32_text(torch):
    """How PyTorch's float32 GPU math runs: "TF32 off" (full float32), or which library uses TF32."""
    on = [name for name, allowed in (torch.get("tf32") or {}).items() if allowed]
    return f"TF32 ON in {' and '.join(on)} (not full float32)" if on else "TF32 off (full float32 in cuDNN and cuBLAS)"


_LIBRARY_NAMES = {"openblas": "OpenBLAS", "mkl": "MKL", "blis": "BLIS", "accelerate": "Accelerate"}


def _library(name):
    return _LIBRARY_NAMES.get(str(name).lower(), str(name))


def torch_library(cell, device, info):
    """What torch.nn's layer of ``cell`` computes with here: cuDNN on the GPU; on the CPU oneDNN for the
    LSTM (aten::mkldnn_rnn_layer, when PyTorch has it), else PyTorch's own loop on its BLAS."""
    torch = info.get("torch") or {}
    if device == "gpu":
        return "cuDNN"
    if cell == "lstm" and torch.get("onednn"):
        return "oneDNN"
    return f"its own loop on {_library(torch['blas']) if torch.get('blas') else 'its BLAS'}"


def gemm_library(device, info):
    """The GEMM library of rnnkern and the array contenders: cuBLAS (through CuPy), or NumPy's BLAS."""
    if device == "gpu":
        return "cuBLAS"
    blas = [lib for lib in info.get("blas") or () if "numpy" in (lib.get("filepath") or "").lower()] or \
        list(info.get("blas") or ())
    return f"NumPy's {_library(blas[0]['internal_api'])}" if blas else "NumPy's BLAS"


def threads_line(info):
    """Which thread counts each library used, and whether the user's OMP_NUM_THREADS set them."""
    parts = [f"{lib['internal_api']} {lib['num_threads']}" for lib in info.get("blas") or ()]
    if info.get("torch"):
        parts.append(f"PyTorch {info['torch']['num_threads']} (torch.get_num_threads)")
    if info.get("onnxruntime"):
        parts.append(f"ONNX Runtime {info['onnxruntime']['intra_op_threads']} (intra-op; inter-op 1, sequential)")
    omp = info["env"].get("OMP_NUM_THREADS")
    source = f"OMP_NUM_THREADS={omp} (yours)" if omp else "OMP_NUM_THREADS unset"
    return f"Threads: {', '.join(parts) or 'unknown (install threadpoolctl)'}; {source}"


def gpu_name():
    try:
        import cupy
        props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
        name = props["name"]
        return name.decode() if isinstance(name, bytes) else str(name)
    except Exception:
        return None


def _cpu_kernels():
    from .._backend import cpu_kernels_description

    return cpu_kernels_description()


def _cpu_gemm():
    """The default LSTM's step GEMM, and the small configuration's one-row steps (its LSTM's)."""
    from .._backend import cpu_gemm_description, cpu_row_description
    from .common import CONFIGS

    hidden = CONFIGS["small"]["hidden_size"]
    row = cpu_row_description("float32", hidden, 4 * hidden)
    return cpu_gemm_description() + (f"; at batch 1 {row}" if row else "")


def machine_info(device, with_torch=True, with_onnxruntime=False):
    """A JSON-serialisable description of the machine (``device`` is the resolved "cpu" or "gpu");
    PyTorch is described when ``with_torch`` (it is imported then) or already imported, ONNX Runtime
    when ``with_onnxruntime``."""
    info = {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": usable_cpus(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": blas_info(),
        "torch": torch_info() if with_torch or "torch" in sys.modules else None,
        "onnxruntime": onnxruntime_info() if with_onnxruntime else None,
        "env": {k: os.environ[k] for k in OPENBLAS_VARS if k in os.environ},
        "load_average": load_average(),
        "cpu_kernels": _cpu_kernels(),
        "cpu_gemm": _cpu_gemm() if device == "cpu" else None,
    }
    if device == "gpu":
        info["gpu"] = gpu_name()
        try:
            import cupy
            info["cupy"] = cupy.__version__
        except ImportError:
            pass
    return info


def format_header(info, device, torch_selected=True, onnxruntime_selected=False):
    """Lines describing the machine, for the top of the printed report."""
    load = info.get("load_average")
    lines = [f"CPU:     {info['cpu_model']} ({info['cpu_count']} logical CPUs, {info['usable_cpus']} usable"
             + (f", load average {load:g} at start)" if load is not None else ")")]
    blas = info["blas"]
    if blas is None:
        lines.append("BLAS:    unknown (install threadpoolctl to see NumPy's BLAS, its kernel and threads)")
    elif not blas:
        lines.append("BLAS:    threadpoolctl found no BLAS library loaded")
    for lib in blas or ():
        lines.append(f"BLAS:    {lib['internal_api']} {lib['version']}, kernel {lib.get('architecture') or '?'}, "
                     f"{lib['num_threads']} threads ({os.path.basename(lib['filepath'] or '?')})")
    lines.append(f"Python:  {info['python']}, NumPy {info['numpy']}")
    lines.append(f"Kernels: CPU steps on {info['cpu_kernels']}")
    if info.get("cpu_gemm"):
        lines.append(f"GEMM:    {info['cpu_gemm']}")
    if device == "cpu":
        lines.append(threads_line(info))
    torch = info["torch"]
    if torch:
        lines.append(f"PyTorch: {torch['version']}, {torch['num_threads']} threads, its own BLAS {torch['blas'] or '?'}"
                     + (f", cuDNN {torch['cudnn']}" if torch.get("cudnn") else "")
                     + (f"; {tf32_text(torch)}" if device == "gpu" else ""))
    elif torch_selected:
        lines.append("PyTorch: not installed (the torch and torch-cell baselines are left out)")
    ort = info.get("onnxruntime")
    if ort:
        lines.append(f"ONNX RT: {ort['version']}, {ort['provider']} (MLAS), {ort['intra_op_threads']} intra-op "
                     "threads, inter-op 1, sequential; runs rnnkern's own to_onnx export of each layer")
    elif onnxruntime_selected:
        lines.append("ONNX RT: not installed (the onnxruntime variant is left out; pip install onnxruntime)")
    if device == "gpu":
        lines.append(f"GPU:     {info.get('gpu') or '?'} (CuPy {info.get('cupy', '?')})")
    for key, value in info["env"].items():
        note = " (slows OpenBLAS on some machines; `make bench` unsets it)" if key.startswith("OPENBLAS_C") or \
            key == "OPENBLAS_L2_SIZE" else ""
        lines.append(f"Env:     {key}={value}{note}")
    return lines
