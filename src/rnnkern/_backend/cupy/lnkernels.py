"""The LayerNorm cells' CUDA kernels (issue 20): kernels/lnlstm.cuh and lngru.cuh as raw kernels.

A LayerNorm step reduces over each batch row, so it cannot be an ElementwiseKernel: each row is one
row group (a warp for small rows, a block for large ones, kernels/layernorm.cuh) and the kernels take
pointers and row strides. ``LN_OPS`` is their table: per op, the header, the device function, its
TRAIN argument and its parameters in order. ``translation_unit(ops, dtype, target)`` writes one
source holding, for each op, an ``extern "C"`` entry per zoneout variant (none, blend, mask) and row
group (warp, block), named ``symbol(op, zoneout, group, dtype)``: for NVRTC (CuPy's ``RawModule``, and
``rnnkern info --compile-kernels``) or, as host C++, for g++ (each entry then takes the launch's grid
and block first and runs every thread of it on the CPU; the tests).
"""

from typing import NamedTuple

import numpy as np

from . import kernels as _kernels


class LNKernelSpec(NamedTuple):
    header: str  # file in kernels/
    func: str  # device function template: func<Z[, TRAIN]>(group, B, H, params...)
    train: object  # "true" / "false": its TRAIN argument; None: a backward (no TRAIN)
    params: tuple  # (name, kind): kind "in" (const row view), "out" (written row view), "vec" (const
    #                vector of the gate width or H), "prob" (the zoneout probability, a double)

    @property
    def matrices(self):
        return tuple(name for name, kind in self.params if kind in ("in", "out"))

    @property
    def vectors(self):
        return tuple(name for name, kind in self.params if kind == "vec")


_LSTM_STEP = (("gx", "in"), ("gh", "out"), ("c_prev", "in"), ("h_prev", "in"), ("mask", "in"),
              ("gamma_hh", "vec"), ("gamma_c", "vec"), ("beta_c", "vec"), ("prob", "prob"), ("h_out", "out"),
              ("c_out", "out"), ("gates", "out"), ("hh_hat", "out"), ("c_hat", "out"), ("rstd", "out"))
_LSTM_BACKWARD = (("gates", "in"), ("hh_hat", "in"), ("c_hat", "in"), ("rstd", "in"), ("c_prev", "in"), ("dh", "in"),
                  ("dc", "in"), ("mask", "in"), ("gamma_hh", "vec"), ("gamma_c", "vec"), ("beta_c", "vec"),
                  ("prob", "prob"), ("dgx", "out"), ("dgh", "out"), ("dc_prev", "out"), ("dh_direct", "out"),
                  ("dcn", "out"))
_GRU_STEP = (("gx", "in"), ("gh", "in"), ("h_prev", "in"), ("mask", "in"), ("gamma_hh", "vec"), ("b_hh", "vec"),
             ("prob", "prob"), ("h_out", "out"), ("gates", "out"), ("hh_hat", "out"), ("rstd", "out"))
_GRU_BACKWARD = (("gates", "in"), ("hh_hat", "in"), ("rstd", "in"), ("h_prev", "in"), ("dh", "in"), ("mask", "in"),
                 ("gamma_hh", "vec"), ("b_hh", "vec"), ("prob", "prob"), ("dgx", "out"), ("dghn", "out"),
                 ("dgh", "out"), ("dh_direct", "out"))

LN_OPS = {
    "lnlstm_step": LNKernelSpec("lnlstm.cuh", "rk_lnlstm_step", "false", _LSTM_STEP),
    "lnlstm_step_train": LNKernelSpec("lnlstm.cuh", "rk_lnlstm_step", "true", _LSTM_STEP),
    "lnlstm_backward": LNKernelSpec("lnlstm.cuh", "rk_lnlstm_backward", None, _LSTM_BACKWARD),
    "lngru_step": LNKernelSpec("lngru.cuh", "rk_lngru_step", "false", _GRU_STEP),
    "lngru_step_train": LNKernelSpec("lngru.cuh", "rk_lngru_step", "true", _GRU_STEP),
    "lngru_backward": LNKernelSpec("lngru.cuh", "rk_lngru_backward", None, _GRU_BACKWARD),
}
ZONEOUTS = {"none": "RK_ZONE_NONE", "blend": "RK_ZONE_BLEND", "mask": "RK_ZONE_MASK"}
GROUPS = {"warp": "true", "block": "false"}  # rk_cuda_group<WARP>
HEADER = "layernorm.cuh"

# Rows up to this many columns (H) run one warp each (a block holds WARP_ROWS rows); larger ones a block.
WARP_MAX_H = 256
WARP_ROWS = 4
BLOCK_MAX = 1024


def launch_shape(B, H):
    """(grid, block, group) of a step on B rows of H columns: a warp per row up to WARP_MAX_H
    columns, else a block per row with about 4 columns per thread (64 to 1024 threads)."""
    if H <= WARP_MAX_H:
        return -(-B // WARP_ROWS), 32 * WARP_ROWS, "warp"
    threads = min(BLOCK_MAX, max(64, 32 * -(-H // 128)))
    return B, threads, "block"


def spec(op):
    found = LN_OPS.get(op)
    if found is None:
        raise KeyError(f"op must be one of {', '.join(LN_OPS)}, got {op!r}")
    return found


def symbol(op, zoneout, group, dtype):
    """The entry's name, e.g. rnnkern_lnlstm_step_mask_warp_float32."""
    if zoneout not in ZONEOUTS or group not in GROUPS:
        raise ValueError(f"zoneout must be one of {', '.join(ZONEOUTS)} and group one of {', '.join(GROUPS)}, "
                         f"got {zoneout!r} and {group!r}")
    return f"rnnkern_{op}_{zoneout}_{group}_{_kernels.dtype_name(dtype)}"


def _params(s):
    out = ["long long B", "long long H"]
    for name, kind in s.params:
        if kind == "vec":
            out.append(f"const T* {name}")
        elif kind == "prob":
            out.append("double prob")
        else:
            out.append(f"{'const ' if kind == 'in' else ''}T* {name}, long long {name}_ld")
    return ", ".join(out)


def _call(op, zoneout, group_type):
    s = spec(op)
    args = ["g", "B", "H"]
    for name, kind in s.params:
        if kind == "vec":
            args.append(name)
        elif kind == "prob":
            args.append("C(prob)")
        else:
            args.append(f"rk_mat<{'const ' if kind == 'in' else ''}T>{{{name}, {name}_ld}}")
    template = f"{ZONEOUTS[zoneout]}" + ("" if s.train is None else f", {s.train}")
    return f"{s.func}<{template}, {group_type}, T, C>({', '.join(args)});"


def _entry(op, zoneout, group, dtype, target):
    name, params = symbol(op, zoneout, group, dtype), _params(spec(op))
    if target == "cuda":
        group_type = f"rk_cuda_group<{GROUPS[group]}>"
        return (f'extern "C" __global__ void {name}({params}) {{\n'
                f"  const {group_type} g;\n  {_call(op, zoneout, group_type)}\n}}\n")
    return (f'extern "C" void {name}(long long grid, int block, {params}) {{\n'
            f"  rk_host_launch(grid, block, {GROUPS[group]}, [&](const rk_host_group& g) {{\n"
            f"    {_call(op, zoneout, 'rk_host_group')}\n  }});\n}}\n")


def translation_unit(ops, dtype, target):
    """One source with every entry (zoneout variant x row group) of each op in ``ops`` (a name or a
    list), in storage ``dtype``, for ``target`` "cuda" (NVRTC) or "host" (g++)."""
    if target not in ("cuda", "host"):
        raise ValueError(f"target must be 'cuda' or 'host', got {target!r}")
    ops = [ops] if isinstance(ops, str) else list(ops)
    dt = _kernels.dtype_name(dtype)
    headers = [_kernels.COMMON_HEADER, HEADER] + list(dict.fromkeys(spec(op).header for op in ops))
    text = "".join(map(_kernels.header_text, headers)) + f'#line 1 "<generated entries of {", ".join(ops)}>"\n'
    if target == "cuda" and dt == "float16":
        text += _kernels._CUDA_HALF
    text += f"typedef {_kernels._STORAGE[target][dt]} T;\ntypedef {_kernels.COMPUTE_TYPE[dt]} C;\n"
    return text + "".join(_entry(op, zo, group, dt, target) for op in ops for zo in ZONEOUTS for group in GROUPS)


# --- launching: the step API's arrays as one entry's arguments ---------------------------------------
def zoneout_variant(zoneout):
    """(variant name, prob, mask) of a Zoneout (or None): mask -> "mask", prob > 0 -> "blend", else "none"."""
    if zoneout is None:
        return "none", 0.0, None
    if zoneout.mask is not None:
        return "mask", float(zoneout.prob), zoneout.mask
    return ("blend" if zoneout.prob else "none"), float(zoneout.prob), None


# The width of each row view, in units of H (the gate blocks: G), and of each vector.
_GATE_WIDE = {"gx", "gh", "gates", "hh_hat", "dgx", "dgh", "dghn", "gamma_hh", "b_hh"}


def _width(name, G, H):
    if name == "rstd":
        return 2 if G == 4 else 1
    return G * H if name in _GATE_WIDE else H


def unused(op, zoneout):
    """The parameters op's entry for ``zoneout`` never reads or writes: they may be None (a stand-in is passed)."""
    names = set() if zoneout == "mask" else {"mask"}
    if zoneout == "none" and op.startswith("lnlstm"):
        names.add("h_prev" if op != "lnlstm_backward" else "dh_direct")
    if op in ("lnlstm_step", "lngru_step"):
        names |= {"gates", "hh_hat", "c_hat", "rstd"}
    return names


def launch_args(op, zoneout, arrays, prob, xp):
    """(B, H, dtype, the kernel's argument tuple) from ``arrays`` (name -> array of op's parameters; None
    for what the variant does not use, which gets a stand-in), or a TypeError / ValueError naming the
    array: a raw kernel takes pointers, so a wrong dtype, shape or column stride must never reach it."""
    s, optional = spec(op), unused(op, zoneout)
    first = arrays["h_out"] if arrays.get("h_out") is not None else arrays["dh"]
    B, H = first.shape
    G = 4 if op.startswith("lnlstm") else 3
    dtype, stand_in = first.dtype, first
    args = [np.int64(B), np.int64(H)]
    for name, kind in s.params:
        if kind == "prob":
            args.append(np.float64(prob))
            continue
        a = arrays.get(name)
        if a is None and name not in optional:
            raise ValueError(f"{op} with zoneout {zoneout!r} needs {name}, got None")
        a = stand_in if a is None else a
        shape = (G * H if name == "gamma_hh" or name == "b_hh" else H,) if kind == "vec" else (B, _width(name, G, H))
        if not isinstance(a, xp.ndarray) or a.dtype != dtype:
            got = f"{type(a).__module__}.{type(a).__name__}" + (f" of dtype {a.dtype}" if hasattr(a, "dtype") else "")
            raise TypeError(f"{op}: {name} must be a CuPy array of dtype {dtype} (the output's), got {got}")
        if a is not stand_in and tuple(a.shape) != shape:
            raise ValueError(f"{op}: {name} must have shape {shape} (batch {B}, hidden_size {H}), got {tuple(a.shape)}")
        if a.shape[-1] > 1 and a.strides[-1] != a.itemsize or a.strides[0] % a.itemsize:
            raise ValueError(f"{op}: {name} must have contiguous columns (rows may be a strided view), got "
                             f"strides {tuple(a.strides)} for itemsize {a.itemsize}")
        args.append(a)
        if kind != "vec":
            args.append(np.int64(a.strides[0] // a.itemsize))
    return B, H, dtype, tuple(args)
