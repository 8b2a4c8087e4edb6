"""The exact source CuPy's ElementwiseKernel generates for each fused kernel compiles with NVRTC.

test_kernels.py compiles an equivalent standalone unit; this goes one step closer to the
GPU: CuPy's own code generator (private API, so the test skips, with the reason, if it
changes) and CuPy's headers, float16 included when cuda_fp16.h can be found. No GPU needed.
"""

import importlib.util
import os
import re
from pathlib import Path

import numpy as np
import pytest

from rnnkern._backend.cupy import kernels as _kernels, nvrtc as _nvrtc

cupy = pytest.importorskip("cupy", reason="CuPy is not installed: its generated kernel code cannot be checked")


def _codegen():
    """CuPy's private elementwise code generator and header settings, or None if they moved."""
    try:
        import cupy._core._carray as carray
        import cupy._core._kernel as kernel
        import cupy._core.core as core

        parts = (kernel._get_elementwise_kernel_code, kernel._get_param_info, kernel.ParameterInfo,
                 kernel._ArgInfo, kernel._TypeMap, carray.Indexer, core._cupy_header_list,
                 core._get_header_dir_path, core._get_cccl_include_options)
    except (ImportError, AttributeError) as exc:
        return None, f"CuPy {cupy.__version__}'s private code generator moved ({exc})"
    return parts, None


CODEGEN, CODEGEN_REASON = _codegen()


pytestmark = [pytest.mark.skipif(CODEGEN is None, reason=str(CODEGEN_REASON)),
              pytest.mark.skipif(_nvrtc.unavailable_reason() is not None,
                                 reason=f"NVRTC unavailable: {_nvrtc.unavailable_reason()}")]


def _fp16_include(major):
    """A directory with cuda_fp16.h for CUDA ``major`` (CuPy's float16 needs it): the CUDA toolkit, or
    the runtime wheel (CUDA 12: nvidia/cuda_runtime/include; CUDA 13: nvidia/cu13/include)."""
    dirs = [Path(os.environ[v]) / "include" for v in ("CUDA_PATH", "CUDA_HOME") if os.environ.get(v)]
    package = {12: "nvidia.cuda_runtime", 13: "nvidia.cu13"}[major]
    try:
        spec = importlib.util.find_spec(package)
        dirs += [Path(p) / "include" for p in (spec.submodule_search_locations or [])] if spec else []
    except (ImportError, ValueError):
        pass
    dirs.append(Path("/usr/local/cuda/include"))
    for folder in dirs:
        version_h = folder / "cuda_runtime_api.h"  # CUDART_VERSION names the toolkit's version
        text = version_h.read_text(errors="replace") if version_h.is_file() else ""
        if (folder / "cuda_fp16.h").is_file() and re.search(rf"#define\s+CUDART_VERSION\s+{major}\d\d\d\b", text):
            return folder
    return None


NVRTC_MAJORS = _nvrtc.available_majors()
CUDA_MAJORS = [pytest.param(m, id=f"cuda{m}", marks=pytest.mark.skipif(
    m not in NVRTC_MAJORS, reason=f"NVRTC of CUDA {m} not installed: pip install {_nvrtc.WHEELS[m]}"))
    for m in _nvrtc.MAJORS]


def cupy_source(name, dtype):
    """What ElementwiseKernel compiles for 2-D strided arguments of ``dtype`` (CuPy 14's layout)."""
    gen_code, param_info, parameter, arg_info, type_map, indexer, headers, _, _ = CODEGEN
    args = _kernels.elementwise_args(name, dtype)
    params = (param_info(args["in_params"], True) + param_info(args["out_params"], False)
              + (parameter("CIndexer _ind", False),))
    dt = np.dtype(dtype)
    ndarray_kind, indexer_kind = 1, 2
    infos = tuple(arg_info(ndarray_kind, cupy.ndarray, dt, 2, False, False) for _ in params[:-1])
    infos += (arg_info(indexer_kind, indexer, None, 2, False, False),)
    code = gen_code(infos, type_map((("T", dt),)), params, args["operation"], args["name"], args["preamble"])
    return "".join(f"#include <{h}>\n" for h in headers) + code


@pytest.mark.parametrize("major", CUDA_MAJORS)
@pytest.mark.parametrize("dtype", _kernels.DTYPES)
@pytest.mark.parametrize("name", list(_kernels.KERNELS))
def test_cupy_generated_kernel_compiles(name, dtype, major):
    _, _, _, _, _, _, _, header_dir, cccl = CODEGEN
    options = [f"-I{header_dir()}", *cccl(), "--std=c++17"]
    if dtype == "float16":
        include = _fp16_include(major)
        if include is None:
            wheel = "nvidia-cuda-runtime-cu12" if major == 12 else "'nvidia-cuda-runtime>=13,<14'"
            pytest.skip(f"CUDA {major}'s cuda_fp16.h not found (pip install {wheel}, or set CUDA_PATH): "
                        "CuPy's float16 kernels cannot be compiled here")
        options.append(f"-I{include}")
    try:
        source = cupy_source(name, dtype)
    except TypeError as exc:  # the private generator's signature changed
        pytest.skip(f"CuPy {cupy.__version__}'s private code generator changed: {exc}")
    assert f'#line 1 "kernels/{_kernels.spec(name).header}"' in source
    _nvrtc.compile(source, f"{name}_{dtype}.cu", "sm_80", options, major=major)
