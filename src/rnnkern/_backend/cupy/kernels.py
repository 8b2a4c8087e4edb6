"""The fused CUDA kernels: where their source lives and what each one computes.

Each cell's math is one template per device function in ``kernels/`` (rnn.cuh, lstm.cuh, gru.cuh),
instantiated with a traits struct generated from a ``CellMath`` (``traits_struct``): its
activations, clip, input_forget, peephole and ``saves_activations``. ``OPS`` is the one table of
fused steps: header, device function, inputs and outputs. ``kernel_for(op, math)`` registers one
kernel (an op at one CellMath) on first use; ``KERNELS`` holds the default kernels, the ops at the
default CellMaths, registered the same way. From a kernel's spec come both the arguments of CuPy's
``ElementwiseKernel`` (used by the GPU backend) and standalone translation units that mirror what
ElementwiseKernel compiles, for NVRTC (``rnnkern info --compile-kernels``, the CPU-side compile
check) and for g++ (the tests run the very same device functions on the host).
"""

import functools
import hashlib
from pathlib import Path
from typing import NamedTuple

import numpy as np


class KernelSpec(NamedTuple):
    header: str  # file in kernels/ holding the device function
    func: str  # device function template: func<V, C>(args_in..., args_out...)
    args_in: tuple  # the function's inputs: an array name, or "0" (the constant 0: no such array)
    args_out: tuple  # its outputs: an array name, or "" (computed, not stored)
    traits: str = ""  # the traits struct V (traits_struct), the function's first template argument
    traits_text: str = ""  # its generated definition

    @property
    def inputs(self):
        """The arrays read; a name that is also an output is read, then overwritten (in-out)."""
        return tuple(a for a in self.args_in if a != "0")

    @property
    def outputs(self):
        """The arrays written."""
        return tuple(a for a in self.args_out if a)

    @property
    def in_params(self):
        """The inputs that are not also outputs: ElementwiseKernel's in_params, in order."""
        return tuple(p for p in self.inputs if p not in self.outputs)


COMMON_HEADER = "common.cuh"
HEADERS = ("activations.cuh", "cellmath.cuh")  # every kernel's, after common.cuh and before its cell's
_GX, _GH, _S3 = ("gx_r", "gx_z", "gx_n"), ("gh_r", "gh_z", "gh_n"), ("s_r", "s_z", "s_n")
_LSTM_GX, _LSTM_GH, _S4 = ("gx_i", "gx_f", "gx_g", "gx_o"), ("gh_i", "gh_f", "gh_g", "gh_o"), ("s_i", "s_f", "s_g", "s_o")
_PEEP = ("p_i", "p_o", "p_f")  # LSTM ops only; "0" each where the CellMath has no peepholes
_DA3 = ("da_r", "da_z", "da_n")

# op: (header, device function, args_in, args_out). A training op stores the gates in gate form
# (activations or pre-activations, as the CellMath's saves_activations says) over gh (in-out), as the
# NumPy backend leaves them there; inference drops them ("" outputs); backward ops read them (s_*).
OPS = {
    "rnn_step": ("rnn.cuh", "rk_rnn_step", ("gx", "gh"), ("", "h_out")),
    "rnn_step_train": ("rnn.cuh", "rk_rnn_step", ("gx", "gh"), ("gh", "h_out")),  # only if not saves_activations
    "rnn_backward": ("rnn.cuh", "rk_rnn_backward", ("s", "dh"), ("da_out",)),
    "lstm_step": ("lstm.cuh", "rk_lstm_step", _LSTM_GX + _LSTM_GH + ("c_prev",) + _PEEP, ("",) * 4 + ("h_out", "c_out")),
    "lstm_step_train": ("lstm.cuh", "rk_lstm_step", _LSTM_GX + _LSTM_GH + ("c_prev",) + _PEEP,
                        _LSTM_GH + ("h_out", "c_out")),
    "lstm_backward": ("lstm.cuh", "rk_lstm_backward", _S4 + ("c_prev", "c", "dh", "dc") + _PEEP,
                      ("da_i", "da_f", "da_g", "da_o", "dc_prev_out")),
    "gru_step": ("gru.cuh", "rk_gru_step", _GX + _GH + ("b_hn", "h_prev"), ("",) * 4 + ("h_out",)),
    "gru_step_nobias": ("gru.cuh", "rk_gru_step", _GX + _GH + ("0", "h_prev"), ("",) * 4 + ("h_out",)),
    "gru_step_train": ("gru.cuh", "rk_gru_step", _GX + _GH + ("b_hn", "h_prev"), _GH + ("ghn_out", "h_out")),
    "gru_step_train_nobias": ("gru.cuh", "rk_gru_step", _GX + _GH + ("0", "h_prev"), _GH + ("ghn_out", "h_out")),
    "gru_reset": ("gru.cuh", "rk_gru_reset", ("gx_r", "gh_r", "h_prev"), ("gh_r", "rh_out")),
    "gru_update": ("gru.cuh", "rk_gru_update", ("gx_z", "gx_n", "gh_z", "gh_n", "h_prev"), ("", "", "h_out")),
    "gru_update_train": ("gru.cuh", "rk_gru_update", ("gx_z", "gx_n", "gh_z", "gh_n", "h_prev"),
                         ("gh_z", "gh_n", "h_out")),
    "gru_backward": ("gru.cuh", "rk_gru_backward", _S3 + ("ghn", "h_prev", "dh"),
                     _DA3 + ("dgh_r", "dgh_z", "dgh_n", "dh_direct_out")),
    "gru_backward_update": ("gru.cuh", "rk_gru_backward_update", ("s_z", "s_n", "h_prev", "dh"),
                            ("da_z", "da_n", "dh_direct_out")),
    "gru_backward_reset": ("gru.cuh", "rk_gru_backward_reset", ("s_r", "h_prev", "d_rh", "dh_direct_out"),
                           ("da_r", "dh_direct_out")),
}


def ops(math):
    """The ops a CellMath has kernels for, in OPS's order."""
    kind = math.kind.lower()
    return tuple(op for op in OPS if op.startswith(kind + "_")
                 and not (op == "rnn_step_train" and math.saves_activations))


# Activations with a derivative from their output (kernels/activations.cuh's rk_dout_*): the only
# ones a CellMath that saves activations may use.
_DOUT = {"Sigmoid": "rk_dout_sigmoid", "Tanh": "rk_dout_tanh", "Relu": "rk_dout_relu"}


def _digest(math):
    return hashlib.sha1(repr(tuple(math)).encode()).hexdigest()[:12]


def traits_struct(struct, math):
    """The traits struct ``V`` of kernels/cellmath.cuh for one CellMath, named ``struct``."""
    saves = bool(math.saves_activations)
    if saves and (math.clip is not None or any(a.name not in _DOUT for a in math.acts)):
        raise ValueError(f"a CellMath that saves activations takes {', '.join(_DOUT)} and no clip "
                         f"(backward needs the derivative from the output), got {math!r}")
    acts = list(math.acts) + [math.acts[0]] * (3 - len(math.acts))  # unused slots: any activation
    guard = struct.upper()  # several kernels of one CellMath may share a translation unit
    flags = {"saves_activations": saves, "input_forget": math.input_forget, "peephole": math.peephole}
    lines = [f"#ifndef {guard}", f"#define {guard}", f"struct {struct} {{",  # enumerators: constants, no storage
             "  enum : bool { " + ", ".join(f"{flag} = {str(bool(value)).lower()}" for flag, value in flags.items())
             + " };"]
    for slot, act in zip("fgh", acts):
        fwd, grad = act.cuda()
        dout = _DOUT[act.name] if saves else "rk_dout_unused"
        lines += [f"  template <typename C> static RK_FUNC C act_{slot}(C x) {{ return {fwd}; }}",
                  f"  template <typename C> static RK_FUNC C grad_{slot}(C x) {{ return {grad}; }}",
                  f"  template <typename C> static RK_FUNC C dout_{slot}(C y, C d) {{ return {dout}(y, d); }}"]
    if math.clip is None:
        lines += ["  template <typename C> static RK_FUNC C clip(C x) { return x; }",
                  "  template <typename C> static RK_FUNC C inside(C) { return C(1); }"]
    else:
        t = f"C({math.clip!r})"
        lines += [f"  template <typename C> static RK_FUNC C clip(C x) {{ return rk_clip(x, {t}); }}",
                  f"  template <typename C> static RK_FUNC C inside(C x) {{ return rk_inside(x, {t}); }}"]
    return "\n".join(lines + ["};", "#endif", ""])


_SPECS = {}  # name -> KernelSpec of every kernel registered so far (the defaults first)


@functools.lru_cache(maxsize=None)
def kernel_for(op, math):
    """The name of kernel ``op`` (one of ``ops(math)``) at CellMath ``math``, registering its KernelSpec
    on first use: one kernel per op and CellMath in use. The default CellMaths' kernels keep short
    names (lstm_step, rnn_tanh, rnn_backward_relu, ...); any other's name ends in a digest of it."""
    if op not in ops(math):
        raise KeyError(f"op must be one of {', '.join(ops(math))} for a {math.kind} CellMath, got {op!r}")
    if math.is_default:
        act = math.acts[0].name.lower()
        name = {"rnn_step": f"rnn_{act}", "rnn_backward": f"rnn_backward_{act}"}.get(op, op)
        struct = f"rk_math_{math.kind.lower()}" + (f"_{act}" if math.kind == "RNN" else "")
    else:
        digest = _digest(math)
        name, struct = f"{op}_{digest}", f"rk_math_{digest}"
    header, func, args_in, args_out = OPS[op]
    if not math.peephole:
        args_in = tuple("0" if a in _PEEP else a for a in args_in)
    _SPECS[name] = KernelSpec(header, func, args_in, args_out, struct, traits_struct(struct, math))
    return name


def _default_maths():
    from ..._recurrences.semantics import default_math
    return (default_math("RNN", "tanh"), default_math("RNN", "relu"), default_math("LSTM"), default_math("GRU"))


# The default kernels: every op at the default CellMaths (what `rnnkern info --compile-kernels` builds).
KERNELS = {}
for _math in _default_maths():
    for _op in ops(_math):
        _name = kernel_for(_op, _math)
        KERNELS[_name] = _SPECS[_name]

# Storage dtype -> compute type: float16 is computed in float32 (as cuDNN does).
COMPUTE_TYPE = {"float16": "float", "float32": "float", "float64": "double"}
DTYPES = tuple(COMPUTE_TYPE)


def _candidate_dirs():
    package = Path(__file__).resolve().parents[2]  # rnnkern/, from rnnkern/_backend/cupy/kernels.py
    # An installed wheel carries kernels/ inside the package (pyproject's force-include);
    # a source checkout or an editable install has it at the repository root (src/rnnkern/../..).
    return [package / "kernels", package.parent.parent / "kernels"]


@functools.lru_cache(maxsize=None)
def kernel_dir():
    """The directory holding the kernels' CUDA source (``*.cuh``)."""
    for candidate in _candidate_dirs():
        if (candidate / COMMON_HEADER).is_file():
            return candidate
    tried = ", ".join(str(c) for c in _candidate_dirs())
    raise FileNotFoundError(f"rnnkern: the CUDA kernel sources ({COMMON_HEADER} and the kernel headers) were not "
                            f"found; looked in: {tried}. Reinstall rnnkern (the wheel ships them as rnnkern/kernels)")


@functools.lru_cache(maxsize=None)
def header_text(filename):
    """One header's text, led by a #line directive so compiler errors point at kernels/FILE."""
    text = (kernel_dir() / filename).read_text(encoding="utf-8")
    return f'#line 1 "kernels/{filename}"\n{text}\n'


def spec(name):
    """The KernelSpec called ``name`` (a default kernel or one registered by kernel_for), or a KeyError."""
    found = _SPECS.get(name)
    if found is None:
        raise KeyError(f"kernel must be one of {', '.join(KERNELS)} (or one made by kernel_for), got {name!r}")
    return found


def dtype_name(dtype):
    """'float16' | 'float32' | 'float64' for any dtype spec, or a TypeError naming it."""
    name = np.dtype(dtype).name
    if name not in COMPUTE_TYPE:
        raise TypeError(f"the fused kernels take dtype float16, float32 or float64, got {name}")
    return name


def kernel_name(name, dtype):
    """The CUDA symbol of one kernel in one dtype, e.g. rnnkern_lstm_step_float32."""
    return f"rnnkern_{name}_{dtype_name(dtype)}"


def preamble(name):
    """The headers one kernel needs, common.cuh first (so a header's #include is skipped), then its traits."""
    s = spec(name)
    text = header_text(COMMON_HEADER) + "".join(map(header_text, HEADERS + (s.header,)))
    text += f'#line 1 "<generated traits of {name}>"\n{s.traits_text}'
    # Whatever follows (the code CuPy generates) is not in kernels/: say so in error messages.
    return text + f'#line 1 "<generated code of {name}>"\n'


def operation(name, dtype):
    """The ElementwiseKernel body: load in the compute type, call the device function, store.
    Every store follows the call, so an in-out argument is read before it is overwritten; an output
    not stored ("" in args_out) goes to a local that the compiler drops, as does its arithmetic.

    Inputs and outputs are CuPy's per-element ``const T &`` / ``T &`` variables, so this
    is the same code for every storage type that converts to and from C (CuPy's float16 does).
    """
    s, c = spec(name), COMPUTE_TYPE[dtype_name(dtype)]
    results = [f"{out}_v" if out else f"_drop{k}" for k, out in enumerate(s.args_out)]
    args = [f"{c}(0)" if arg == "0" else f"static_cast<{c}>({arg})" for arg in s.args_in] + results
    stores = " ".join(f"{out} = {res};" for out, res in zip(s.args_out, results) if out)
    return f"{c} {', '.join(results)}; {s.func}<{s.traits}, {c}>({', '.join(args)}); {stores}"


def elementwise_args(name, dtype):
    """Keyword arguments of cupy.ElementwiseKernel for one kernel in one dtype."""
    s = spec(name)
    return {"in_params": ", ".join(f"T {p}" for p in s.in_params),
            "out_params": ", ".join(f"T {p}" for p in s.outputs),
            "operation": operation(name, dtype), "name": kernel_name(name, dtype), "preamble": preamble(name)}


# --- standalone translation units (NVRTC check, host tests) -----------------------------

# float16 storage without cuda_fp16.h (the NVRTC wheel ships no headers): the bits in an
# unsigned short, converted by PTX. Like CuPy's float16, it converts to float and is assigned from float.
_CUDA_HALF = r"""struct rk_half {
  unsigned short bits;
  __device__ operator float() const { float f; asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(bits)); return f; }
  __device__ rk_half& operator=(float f) { asm("cvt.rn.f16.f32 %0, %1;" : "=h"(bits) : "f"(f)); return *this; }
};
"""
_STORAGE = {"cuda": {"float16": "rk_half", "float32": "float", "float64": "double"},
            "host": {"float16": "_Float16", "float32": "float", "float64": "double"}}
_LOOP = {"cuda": ("__global__", "for (long long _i = blockIdx.x * (long long)blockDim.x + threadIdx.x; "
                                "_i < _n; _i += (long long)blockDim.x * gridDim.x)"),
         "host": ("", "for (long long _i = 0; _i < _n; ++_i)")}


def translation_unit(name, dtype, target):
    """A complete source for ``target`` "cuda" (NVRTC) or "host" (g++) with one extern "C" kernel.

    It mirrors CuPy's elementwise code: the same preamble and operation, each argument a
    ``const T &`` (input) or ``T &`` (output) bound to its element. Arrays are 2-D with
    explicit element strides per argument (0 broadcasts), like CuPy's CArray indexing:
    kernel(rows, cols, then per argument: pointer, stride0, stride1).
    """
    if target not in _STORAGE:
        raise ValueError(f"target must be 'cuda' or 'host', got {target!r}")
    s, dt = spec(name), dtype_name(dtype)
    qualifier, loop = _LOOP[target]
    params = ["long long _rows", "long long _cols"]
    binds = []
    for i, arg in enumerate(s.in_params + s.outputs):
        const = "const " if i < len(s.in_params) else ""
        params.append(f"{const}T *_raw_{arg}, long long _s0_{arg}, long long _s1_{arg}")
        binds.append(f"    {const}T &{arg} = _raw_{arg}[_r * _s0_{arg} + _c * _s1_{arg}];")
    half = _CUDA_HALF if target == "cuda" and dt == "float16" else ""
    body = "\n".join(binds)
    return (f"{preamble(name)}{half}typedef {_STORAGE[target][dt]} T;\n"
            f'extern "C" {qualifier} void {kernel_name(name, dt)}({", ".join(params)}) {{\n'
            f"  const long long _n = _rows * _cols;\n  {loop} {{\n"
            f"    const long long _r = _i / _cols, _c = _i % _cols;\n{body}\n"
            f"    {operation(name, dt)}\n  }}\n}}\n")
