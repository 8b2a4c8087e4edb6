"""The fused CUDA kernels: where their source lives and what each one computes.

``KERNELS`` is the one table of fused steps: header in ``kernels/``, device
function, inputs and outputs. From it come both the arguments of CuPy's
``ElementwiseKernel`` (used by the GPU backend) and standalone translation units
that mirror what ElementwiseKernel compiles, for NVRTC (``rnnkern info
--compile-kernels``, the CPU-side compile check) and for g++ (the tests run the
very same device functions on the host).
"""

import functools
import hashlib
from pathlib import Path
from typing import NamedTuple

import numpy as np


class KernelSpec(NamedTuple):
    header: str  # file in kernels/ holding the device function
    func: str  # device function template: func<C>(inputs..., outputs...)
    inputs: tuple  # read; a name that is also an output is read, then overwritten (in-out)
    outputs: tuple  # written
    targs: str = ""  # leading template arguments of func (a variant's struct), before the compute type
    variant_text: str = ""  # generated code the variant needs (its struct)

    @property
    def in_params(self):
        """The inputs that are not also outputs: ElementwiseKernel's in_params, in order."""
        return tuple(p for p in self.inputs if p not in self.outputs)


COMMON_HEADER = "common.cuh"
_GX, _GH, _ACTS = ("gx_r", "gx_z", "gx_n"), ("gh_r", "gh_z", "gh_n"), ("a_i", "a_f", "a_g", "a_o")
_LSTM_GX, _LSTM_GH = ("gx_i", "gx_f", "gx_g", "gx_o"), ("gh_i", "gh_f", "gh_g", "gh_o")


def _k(header, func, inputs, outputs):
    return KernelSpec(header, func, tuple(inputs), tuple(outputs))


# Training variants write the activations over the gate pre-activations in gh (in-out), as
# the NumPy backend leaves them there; backward kernels read them.
KERNELS = {
    "rnn_tanh": _k("rnn.cuh", "rk_rnn_tanh", ("gx", "gh"), ("h_out",)),
    "rnn_relu": _k("rnn.cuh", "rk_rnn_relu", ("gx", "gh"), ("h_out",)),
    "lstm_step": _k("lstm.cuh", "rk_lstm_step", _LSTM_GX + _LSTM_GH + ("c_prev",), ("h_out", "c_out")),
    "lstm_step_train": _k("lstm.cuh", "rk_lstm_step_train", _LSTM_GX + _LSTM_GH + ("c_prev",),
                          _LSTM_GH + ("h_out", "c_out")),
    "gru_step": _k("gru.cuh", "rk_gru_step", _GX + _GH + ("b_hn", "h_prev"), ("h_out",)),
    "gru_step_nobias": _k("gru.cuh", "rk_gru_step_nobias", _GX + _GH + ("h_prev",), ("h_out",)),
    "gru_step_train": _k("gru.cuh", "rk_gru_step_train", _GX + _GH + ("b_hn", "h_prev"),
                         _GH + ("ghn_out", "h_out")),
    "gru_step_train_nobias": _k("gru.cuh", "rk_gru_step_train_nobias", _GX + _GH + ("h_prev",),
                                _GH + ("ghn_out", "h_out")),
    "gru_reset": _k("gru.cuh", "rk_gru_reset", ("gx_r", "gh_r", "h_prev"), ("gh_r", "rh_out")),
    "gru_update": _k("gru.cuh", "rk_gru_update", ("gx_z", "gx_n", "gh_z", "gh_n", "h_prev"), ("h_out",)),
    "gru_update_train": _k("gru.cuh", "rk_gru_update_train", ("gx_z", "gx_n", "gh_z", "gh_n", "h_prev"),
                           ("gh_z", "gh_n", "h_out")),
    "rnn_backward_tanh": _k("rnn.cuh", "rk_rnn_backward_tanh", ("h", "dh"), ("da_out",)),
    "rnn_backward_relu": _k("rnn.cuh", "rk_rnn_backward_relu", ("h", "dh"), ("da_out",)),
    "lstm_backward": _k("lstm.cuh", "rk_lstm_backward", _ACTS + ("c_prev", "c", "dh", "dc"),
                        ("da_i", "da_f", "da_g", "da_o", "dc_prev_out")),
    "gru_backward": _k("gru_grad.cuh", "rk_gru_backward", ("r", "z", "n", "ghn", "h_prev", "dh"),
                       ("da_r", "da_z", "da_n", "dgh_r", "dgh_z", "dgh_n", "dh_direct_out")),
    "gru_backward_update": _k("gru_grad.cuh", "rk_gru_backward_update", ("z", "n", "h_prev", "dh"),
                              ("da_z", "da_n", "dh_direct_out")),
    "gru_backward_reset": _k("gru_grad.cuh", "rk_gru_backward_reset", ("r", "h_prev", "d_rh", "dh_direct_out"),
                             ("da_r", "dh_direct_out")),
}

# Storage dtype -> compute type: float16 is computed in float32 (as cuDNN does).
COMPUTE_TYPE = {"float16": "float", "float32": "float", "float64": "double"}
DTYPES = tuple(COMPUTE_TYPE)


def _candidate_dirs():
    here = Path(__file__).resolve().parent
    # An installed wheel carries kernels/ inside the package (pyproject's force-include);
    # a source checkout or an editable install has it at the repository root (src/rnnkern/..).
    return [here / "kernels", here.parent.parent / "kernels"]


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
    """The KernelSpec called ``name`` (a fixed kernel or a registered variant), or a KeyError listing them."""
    found = KERNELS.get(name) or VARIANTS.get(name)
    if found is None:
        raise KeyError(f"kernel must be one of {', '.join(KERNELS)} (or a variant made by variant_kernel), "
                       f"got {name!r}")
    return found


# --- variant kernels: ONNX's activations, clip, input_forget, peepholes (kernels/variant.cuh) ----
_PRE = ("a_i", "a_f", "a_g", "a_o")
_VARIANT_OPS = {  # op: (device function, inputs, outputs), as KERNELS
    "rnn_v": ("rk_rnn_v", ("gx", "gh"), ("gh", "h_out")),
    "rnn_v_backward": ("rk_rnn_v_backward", ("a", "dh"), ("da_out",)),
    "lstm_v": ("rk_lstm_v", _LSTM_GX + _LSTM_GH + ("c_prev", "p_i", "p_o", "p_f"), _LSTM_GH + ("h_out", "c_out")),
    "lstm_v_nopeep": ("rk_lstm_v_nopeep", _LSTM_GX + _LSTM_GH + ("c_prev",), _LSTM_GH + ("h_out", "c_out")),
    "lstm_v_backward": ("rk_lstm_v_backward", _PRE + ("c_prev", "c", "dh", "dc", "p_i", "p_o", "p_f"),
                        ("da_i", "da_f", "da_g", "da_o", "dc_prev_out")),
    "lstm_v_backward_nopeep": ("rk_lstm_v_backward_nopeep", _PRE + ("c_prev", "c", "dh", "dc"),
                               ("da_i", "da_f", "da_g", "da_o", "dc_prev_out")),
    "gru_v": ("rk_gru_v", _GX + _GH + ("b_hn", "h_prev"), _GH + ("ghn_out", "h_out")),
    "gru_v_nobias": ("rk_gru_v_nobias", _GX + _GH + ("h_prev",), _GH + ("ghn_out", "h_out")),
    "gru_v_backward": ("rk_gru_v_backward", ("a_r", "a_z", "a_n", "ghn", "h_prev", "dh"),
                       ("da_r", "da_z", "da_n", "dgh_r", "dgh_z", "dgh_n", "dh_direct_out")),
    "gru_v_reset": ("rk_gru_v_reset", ("gx_r", "gh_r", "h_prev"), ("gh_r", "rh_out")),
    "gru_v_update": ("rk_gru_v_update", ("gx_z", "gx_n", "gh_z", "gh_n", "h_prev"), ("gh_z", "gh_n", "h_out")),
    "gru_v_backward_update": ("rk_gru_v_backward_update", ("a_z", "a_n", "h_prev", "dh"),
                              ("da_z", "da_n", "dh_direct_out")),
    "gru_v_backward_reset": ("rk_gru_v_backward_reset", ("a_r", "h_prev", "d_rh", "dh_direct_out"),
                             ("da_r", "dh_direct_out")),
}
VARIANT_OPS = tuple(_VARIANT_OPS)
VARIANT_HEADERS = ("activations.cuh", "variant.cuh")
VARIANTS = {}  # name -> KernelSpec of every variant kernel made so far


def _variant_struct(struct, variant):
    """The C++ struct ``V`` of kernels/variant.cuh for one ``_semantics.Variant``."""
    acts = list(variant.acts) + [variant.acts[0]] * (3 - len(variant.acts))  # unused slots: any activation
    guard = struct.upper()  # several kernels of one variant may share a translation unit
    lines = [f"#ifndef {guard}", f"#define {guard}", f"struct {struct} {{",
             f"  static const bool input_forget = {str(bool(variant.input_forget)).lower()};",
             f"  static const bool peephole = {str(bool(variant.peephole)).lower()};"]
    for slot, act in zip("fgh", acts):
        fwd, grad = act.cuda()
        lines += [f"  template <typename C> static RK_FUNC C act_{slot}(C x) {{ return {fwd}; }}",
                  f"  template <typename C> static RK_FUNC C grad_{slot}(C x) {{ return {grad}; }}"]
    if variant.clip is None:
        lines += ["  template <typename C> static RK_FUNC C clip(C x) { return x; }",
                  "  template <typename C> static RK_FUNC C inside(C) { return C(1); }"]
    else:
        t = f"C({variant.clip!r})"
        lines += [f"  template <typename C> static RK_FUNC C clip(C x) {{ return rk_clip(x, {t}); }}",
                  f"  template <typename C> static RK_FUNC C inside(C x) {{ return rk_inside(x, {t}); }}"]
    return "\n".join(lines + ["};", "#endif", ""])


@functools.lru_cache(maxsize=None)
def variant_kernel(op, variant):
    """The name of kernel ``op`` (one of VARIANT_OPS) for ``variant`` (a _semantics.Variant),
    registering its KernelSpec on first use: one kernel per op and combination in use."""
    if op not in _VARIANT_OPS:
        raise KeyError(f"variant op must be one of {', '.join(_VARIANT_OPS)}, got {op!r}")
    digest = hashlib.sha1(repr(tuple(variant)).encode()).hexdigest()[:12]
    struct, name = f"rk_variant_{digest}", f"{op}_{digest}"
    func, inputs, outputs = _VARIANT_OPS[op]
    VARIANTS[name] = KernelSpec("variant.cuh", func, tuple(inputs), tuple(outputs), f"{struct}, ",
                                _variant_struct(struct, variant))
    return name


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
    """The headers one kernel needs, common.cuh first (so the kernel header's #include is skipped)."""
    s = spec(name)
    headers = VARIANT_HEADERS if s.variant_text else (s.header,)
    text = header_text(COMMON_HEADER) + "".join(map(header_text, headers))
    if s.variant_text:
        text += f'#line 1 "<generated variant struct of {name}>"\n{s.variant_text}'

    # Whatever follows (the code CuPy generates) is not in kernels/: say so in error messages.
    return text + f'#line 1 "<generated code of {name}>"\n'


def operation(name, dtype):
    """The ElementwiseKernel body: load in the compute type, call the device function, store.
    Every store follows the call, so an in-out argument is read before it is overwritten.

    Inputs and outputs are CuPy's per-element ``const T &`` / ``T &`` variables, so this
    is the same code for every storage type that converts to and from C (CuPy's float16 does).
    """
    s, c = spec(name), COMPUTE_TYPE[dtype_name(dtype)]
    results = [f"{out}_v" for out in s.outputs]
    args = [f"static_cast<{c}>({arg})" for arg in s.inputs] + results
    stores = " ".join(f"{out} = {res};" for out, res in zip(s.outputs, results))
    return f"{c} {', '.join(results)}; {s.func}<{s.targs}{c}>({', '.join(args)}); {stores}"


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
