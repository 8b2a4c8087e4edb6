"""Test helper: the LayerNorm cells' CUDA kernels (cupy/lnkernels.py) compiled as host C++ with g++ and
launched like CuPy's RawModule functions: every thread of the launch runs as a std::thread
(kernels/layernorm.cuh's rk_host_group), so the row groups' loops and reductions run as written.
``ln_host_backend(lib)`` is CupyBackend over a stand-in cupy whose RawModule is this build."""

import ctypes
from pathlib import Path

import numpy as np

import kernel_host
from rnnkern._backend.cupy import lnkernels as _ln
from rnnkern._backend.cupy.backend import CupyBackend


def build(tmpdir, dtypes=("float32", "float64", "float16")):
    """(ctypes.CDLL of every LayerNorm op's entries in each dtype g++ supports, those dtypes)."""
    tmpdir = Path(tmpdir)
    dtypes = [d for d in dtypes if d != "float16" or kernel_host.supports_float16(tmpdir)]
    objects = []
    for dtype in dtypes:  # one unit per dtype (each typedefs T and C), every op in it
        source = tmpdir / f"ln_{dtype}.cpp"
        source.write_text(_ln.translation_unit(list(_ln.LN_OPS), dtype, "host"))
        kernel_host._gxx(["-O1", "-fPIC", "-pthread", "-c", "-o", str(source.with_suffix(".o")), str(source)], tmpdir)
        objects.append(str(source.with_suffix(".o")))
    lib = tmpdir / "librnnkern_ln_host.so"
    kernel_host._gxx(["-shared", "-pthread", "-o", str(lib), *objects], tmpdir)
    return ctypes.CDLL(str(lib)), tuple(dtypes)


def _c_arg(a):
    if isinstance(a, np.ndarray):
        return ctypes.c_void_p(a.ctypes.data)
    if isinstance(a, np.int64):
        return ctypes.c_longlong(int(a))
    if isinstance(a, np.float64):
        return ctypes.c_double(float(a))
    raise TypeError(f"a raw kernel argument must be an array, numpy.int64 or numpy.float64, got {type(a)}")


class FakeRawModule:
    """cupy.RawModule's stand-in: checks the code is lnkernels' and runs the host build of its functions."""

    def __init__(self, lib, code, options=()):
        self.lib, self.code = lib, code

    def get_function(self, name):
        op, _, _, dtype = name[len("rnnkern_"):].rsplit("_", 3)
        assert self.code == _ln.translation_unit(op, dtype, "cuda"), name
        function = getattr(self.lib, name)

        def launch(grid, block, args):
            assert len(grid) == 1 and len(block) == 1 and block[0] % 32 == 0 and block[0] <= 1024, (grid, block)
            function(ctypes.c_longlong(grid[0]), ctypes.c_int(block[0]), *map(_c_arg, args))
        return launch


def ln_host_backend(lib):
    fake = kernel_host.fake_cupy(None)
    fake.RawModule = lambda code, options=(): FakeRawModule(lib, code, options)
    return CupyBackend(fake)
