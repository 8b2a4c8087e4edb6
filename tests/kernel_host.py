"""Test helper: the fused CUDA kernels compiled as host C++ (g++) and run on NumPy arrays.

``build(tmpdir)`` compiles ``rnnkern._kernels.translation_unit(name, dtype, "host")`` for
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

from rnnkern import _kernels
from rnnkern._backend._cupy import CupyBackend

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
    """CupyBackend over ``fake_cupy(lib)`` (accepting the old recurrences' calls too, see below)."""
    return _MergeShimCupy(fake_cupy(lib))


# --- REMOVE AT THE MERGE OF ISSUE 16: shims between the contract's step API and the old one ----------
# On the CUDA branch, CupyBackend has the contract's step API (m: a CellMath first), while the NumPy
# and numba backends and the recurrences still have the old names: lstm_step(gx, gh, c_prev, h_out,
# c_out) for the defaults, lstm_step_v(v, ...) for the options. Two small adapters bridge them until the
# branches meet; at the merge, delete both, and host_backend returns CupyBackend(fake_cupy(lib)).
def _math(kind, nonlinearity=None):
    from rnnkern._semantics import default_math
    return default_math(kind, nonlinearity) if kind == "RNN" else default_math(kind)


def _cellmath(variant):
    from rnnkern._semantics import CellMath
    return CellMath(*variant)


def _new_api(args):
    return bool(args) and hasattr(args[0], "acts") and hasattr(args[0], "kind")


def _old_calls():
    """Old method name -> (new method name, the new call's arguments from the old one's)."""
    def rnn(gx, gh, h_out, nl):
        return _math("RNN", nl), gx, gh, h_out

    return {
        "rnn_step": ("rnn_step", rnn),
        "rnn_backward": ("rnn_backward", lambda h, dh, da, nl: (_math("RNN", nl), h, dh, da)),
        "lstm_step": ("lstm_step", lambda gx, gh, c, h_out, c_out: (_math("LSTM"), gx, gh, c, None, h_out, c_out)),
        "lstm_step_train": ("lstm_step", lambda gx, gh, c, h_out, c_out: (
            _math("LSTM"), gx, gh, c, None, h_out, c_out, True)),
        "lstm_backward": ("lstm_backward", lambda acts, cp, c, dh, dc, da, dcp: (
            _math("LSTM"), acts, cp, c, dh, dc, None, da, dcp)),
        "gru_step": ("gru_step", lambda *a: (_math("GRU"), *a)),
        "gru_step_train": ("gru_step", lambda *a: (_math("GRU"), *a)),
        "gru_backward": ("gru_backward", lambda *a: (_math("GRU"), *a)),
        "gru_reset": ("gru_reset", lambda *a: (_math("GRU"), *a)),
        "gru_update": ("gru_update", lambda *a: (_math("GRU"), *a)),
        "gru_update_train": ("gru_update", lambda *a: (_math("GRU"), *a, True)),
        "gru_backward_update": ("gru_backward_update", lambda *a: (_math("GRU"), *a)),
        "gru_backward_reset": ("gru_backward_reset", lambda *a: (_math("GRU"), *a)),
        # the old variant methods saved pre-activations in training and inference alike: train=True
        "rnn_step_v": ("rnn_step", lambda v, *a: (_cellmath(v), *a, True)),
        "rnn_backward_v": ("rnn_backward", lambda v, *a: (_cellmath(v), *a)),
        "lstm_step_v": ("lstm_step", lambda v, *a: (_cellmath(v), *a, True)),
        "lstm_backward_v": ("lstm_backward", lambda v, *a: (_cellmath(v), *a)),
        "gru_step_v": ("gru_step", lambda v, *a: (_cellmath(v), *a)),
        "gru_backward_v": ("gru_backward", lambda v, *a: (_cellmath(v), *a)),
        "gru_reset_v": ("gru_reset", lambda v, *a: (_cellmath(v), *a)),
        "gru_update_v": ("gru_update", lambda v, *a: (_cellmath(v), *a, True)),
        "gru_backward_update_v": ("gru_backward_update", lambda v, *a: (_cellmath(v), *a)),
        "gru_backward_reset_v": ("gru_backward_reset", lambda v, *a: (_cellmath(v), *a)),
    }


def _shim_class():
    def method(old, new, convert):
        def call(self, *args, **kwargs):
            if hasattr(CupyBackend, old) and _new_api(args):  # the contract's call: CupyBackend's own method
                return getattr(CupyBackend, old)(self, *args, **kwargs)
            return getattr(CupyBackend, new)(self, *convert(*args, **kwargs))
        call.__name__ = old
        return call

    methods = {old: method(old, new, convert) for old, (new, convert) in _old_calls().items()}
    return type("_MergeShimCupy", (CupyBackend,), {"__doc__": "CupyBackend that also takes the old recurrences' "
                                                   "calls (REMOVE AT THE MERGE OF ISSUE 16).", **methods})


_MergeShimCupy = _shim_class()


class NewApiOnOldSteps:
    """The contract's step API over a NumPy or numba backend that still has the old one (the reference the
    host kernels are compared with). REMOVE AT THE MERGE OF ISSUE 16: use the backend itself."""

    def __init__(self, old):
        self.old = old

    def __getattr__(self, name):
        return getattr(self.old, name)

    def _v(self, m):
        from rnnkern._semantics import Variant
        return Variant(*m[:5])

    def rnn_step(self, m, gx, gh, h_out, train=False):
        if m.is_default:
            return self.old.rnn_step(gx, gh, h_out, m.acts[0].name.lower())
        return self.old.rnn_step_v(self._v(m), gx, gh, h_out)

    def rnn_backward(self, m, saved, dh, da_out):
        if m.is_default:
            return self.old.rnn_backward(saved, dh, da_out, m.acts[0].name.lower())
        return self.old.rnn_backward_v(self._v(m), saved, dh, da_out)

    def lstm_step(self, m, gx, gh, c_prev, p, h_out, c_out, train=False):
        if m.is_default:
            return (self.old.lstm_step_train if train else self.old.lstm_step)(gx, gh, c_prev, h_out, c_out)
        return self.old.lstm_step_v(self._v(m), gx, gh, c_prev, p, h_out, c_out)

    def lstm_backward(self, m, gates, c_prev, c, dh, dc, p, da_out, dc_prev_out):
        if m.is_default:
            return self.old.lstm_backward(gates, c_prev, c, dh, dc, da_out, dc_prev_out)
        return self.old.lstm_backward_v(self._v(m), gates, c_prev, c, dh, dc, p, da_out, dc_prev_out)

    def gru_step(self, m, gx, gh, b_hn, h_prev, h_out, ghn_out=None):
        if m.is_default:
            return self.old.gru_step(gx, gh, b_hn, h_prev, h_out, ghn_out)
        ghn = self.old.xp.empty_like(h_prev) if ghn_out is None else ghn_out
        return self.old.gru_step_v(self._v(m), gx, gh, b_hn, h_prev, h_out, ghn)

    def gru_backward(self, m, *args):
        if m.is_default:
            return self.old.gru_backward(*args)
        return self.old.gru_backward_v(self._v(m), *args)

    def gru_reset(self, m, *args):
        return self.old.gru_reset(*args) if m.is_default else self.old.gru_reset_v(self._v(m), *args)

    def gru_update(self, m, gx, gh_rz, gh_n, h_prev, h_out, train=False):
        if m.is_default:
            return (self.old.gru_update_train if train else self.old.gru_update)(gx, gh_rz, gh_n, h_prev, h_out)
        return self.old.gru_update_v(self._v(m), gx, gh_rz, gh_n, h_prev, h_out)

    def gru_backward_update(self, m, *args):
        if m.is_default:
            return self.old.gru_backward_update(*args)
        return self.old.gru_backward_update_v(self._v(m), *args)

    def gru_backward_reset(self, m, *args):
        if m.is_default:
            return self.old.gru_backward_reset(*args)
        return self.old.gru_backward_reset_v(self._v(m), *args)


def new_api(backend):
    """``backend`` if it has the contract's step API, else NewApiOnOldSteps over it (until the merge)."""
    import inspect
    first = list(inspect.signature(backend.rnn_step).parameters)[0]
    return backend if first == "m" else NewApiOnOldSteps(backend)
