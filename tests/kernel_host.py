"""Test helper: the fused CUDA kernels compiled as host C++ (g++) and run on NumPy arrays.

``build(tmpdir)`` compiles ``rnnkern._backend.cupy.kernels.translation_unit(name, dtype, "host")`` for
every kernel and dtype (the same preamble and ElementwiseKernel operation the GPU runs)
into one shared library. ``fake_cupy(lib)`` is a stand-in for the ``cupy`` module whose
``ElementwiseKernel`` runs those host functions, so ``CupyBackend`` itself (its gate
slicing, argument order and kernel table use) can be tested on a machine without a GPU:
``host_backend(lib)`` is that CupyBackend.
"""

import ctypes
import shutil
import subprocess
import types
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from rnnkern._backend.cupy import kernels as _kernels
from rnnkern._backend.cupy.backend import CupyBackend

GXX = shutil.which("g++")


def _gxx(args, cwd):
    done = subprocess.run([GXX, *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"g++ {' '.join(args)} failed:\n{done.stderr}")


def supports_float16(tmpdir):
    """Whether this g++ knows _Float16 (GCC >= 12 on x86-64)."""
    probe = Path(tmpdir) / "f16_probe.cpp"
    probe.write_text("_Float16 half(float x) { return (_Float16)x; }\n")
    try:
        _gxx(["-c", "-o", str(probe.with_suffix(".o")), str(probe)], tmpdir)
    except RuntimeError:
        return False
    return True


def build(tmpdir, names=None, dtypes=None):
    """(ctypes.CDLL of every default kernel (or those ``names``, from kernel_for) x dtype, the dtypes it holds)."""
    tmpdir = Path(tmpdir)
    dtypes = [d for d in (dtypes or _kernels.DTYPES) if d != "float16" or supports_float16(tmpdir)]
    sources = []
    if names is not None:  # a few kernels (headers and traits include-guarded): one file per dtype, far faster
        for dtype in dtypes:  # a repeated typedef of T to the same type is legal C++
            path = tmpdir / f"variants_{dtype}.cpp"
            path.write_text("".join(_kernels.translation_unit(name, dtype, "host") for name in names))
            sources.append(path)
    for name in _kernels.KERNELS if names is None else ():
        for dtype in dtypes:  # one file each: every unit typedefs its own T
            path = tmpdir / f"{_kernels.kernel_name(name, dtype)}.cpp"
            path.write_text(_kernels.translation_unit(name, dtype, "host"))
            sources.append(path)
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda p: _gxx(["-O2", "-fPIC", "-c", "-o", str(p.with_suffix(".o")), str(p)], tmpdir),
                      sources))
    lib = tmpdir / "librnnkern_host.so"
    _gxx(["-shared", "-o", str(lib), *[str(p.with_suffix(".o")) for p in sources]], tmpdir)
    return ctypes.CDLL(str(lib)), tuple(dtypes)


def launch(lib, name, ins, outs):
    """Run host kernel ``name`` (dtype from the outputs) like ElementwiseKernel: inputs are
    broadcast to the outputs' 2-D shape, every array indexed by its own strides."""
    spec = _kernels.spec(name)
    if len(ins) != len(spec.in_params) or len(outs) != len(spec.outputs):  # as CuPy: a TypeError
        raise TypeError(f"Wrong number of arguments for {name!r}")
    dtype = outs[0].dtype
    shape = outs[0].shape
    assert len(shape) == 2, "the host wrapper indexes 2-D arrays"
    args = [ctypes.c_longlong(shape[0]), ctypes.c_longlong(shape[1])]
    for array in list(ins) + list(outs):
        # As CuPy's ElementwiseKernel does: a TypeError for anything but its arrays of the one type T.
        if not isinstance(array, np.ndarray):
            raise TypeError(f"Unsupported type {type(array)}")
        if array.dtype != dtype:
            raise TypeError(f"Type is mismatched. {name} {array.dtype} {dtype} T")
        view = np.broadcast_to(array, shape)  # stride 0 where broadcast (b_hn)
        assert all(s % dtype.itemsize == 0 for s in view.strides)
        args += [ctypes.c_void_p(view.ctypes.data)] + [ctypes.c_longlong(s // dtype.itemsize) for s in view.strides]
    getattr(lib, _kernels.kernel_name(name, dtype))(*args)


class FakeElementwiseKernel:
    """Records what CupyBackend asks cupy.ElementwiseKernel for, and runs the host build of it."""

    def __init__(self, lib, in_params, out_params, operation, name, preamble=""):
        self.lib, self.name = lib, name
        self.args = {"in_params": in_params, "out_params": out_params, "operation": operation,
                     "name": name, "preamble": preamble}
        # The host library was built from the table; the backend must ask for exactly that.
        kernel = name[len("rnnkern_"):name.rindex("_")]
        assert self.args == _kernels.elementwise_args(kernel, name.rsplit("_", 1)[1]), name
        self.kernel = kernel

    def __call__(self, *arrays):
        nin = len(_kernels.spec(self.kernel).in_params)
        launch(self.lib, self.kernel, arrays[:nin], arrays[nin:])


class _FakeCupy(types.SimpleNamespace):
    """Whatever is not set explicitly is NumPy's (array creation, matmul, ...)."""

    def __getattr__(self, name):
        return getattr(np, name)


def fake_cupy(lib):
    """A stand-in for the cupy module, on NumPy, whose kernels are the host builds."""
    fake = _FakeCupy(asnumpy=np.asarray, built=[])

    def memoize(for_each_device=False):
        assert for_each_device, "kernels must be cached per device"

        def decorator(f):
            memo = {}

            def cached(*args):
                if args not in memo:
                    memo[args] = f(*args)
                    fake.built.append(args)
                return memo[args]
            return cached
        return decorator

    fake.memoize = memoize
    fake.ElementwiseKernel = lambda **kw: FakeElementwiseKernel(lib, **kw)
    fake.cuda = types.SimpleNamespace(Device=lambda: types.SimpleNamespace(synchronize=lambda: None))
    return fake


def host_backend(lib):
    """CupyBackend over ``fake_cupy(lib)``: the GPU backend's code path on the host-compiled kernels."""
    return CupyBackend(fake_cupy(lib))
