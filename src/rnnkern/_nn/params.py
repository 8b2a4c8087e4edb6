"""Parameters in PyTorch's names and layouts: shapes, initialisation, state_dict loading."""

import collections.abc
import math

import numpy as np

from .._backend import to_host
from .._backend.host import aligned_empty
from .._validate import native_byte_order


def param_shapes(gates, input_size, hidden_size, bias, suffix=""):
    """PyTorch's parameter shapes, in PyTorch's registration order."""
    rows = gates * hidden_size
    shapes = {f"weight_ih{suffix}": (rows, input_size), f"weight_hh{suffix}": (rows, hidden_size)}
    if bias:
        shapes[f"bias_ih{suffix}"] = (rows,)
        shapes[f"bias_hh{suffix}"] = (rows,)
    return shapes


def init_params(shapes, hidden_size, seed, dtype):
    """PyTorch's default init, U(-1/sqrt(H), 1/sqrt(H)) for every tensor, reproducible from ``seed``.

    Drawn in the target dtype a block of rows at a time, straight into an array of the layout the
    module keeps (weight matrices column-major, see ``_module._gemm_layout``), so that the peak memory
    is the parameters' own size. The blocks consume the generator's stream in the same order as one
    draw of the whole tensor would (float16, which the Generator cannot draw, goes through float32)."""
    rng = np.random.default_rng(seed)
    bound = 1.0 / math.sqrt(hidden_size)
    draw_dtype = np.float64 if np.dtype(dtype) == np.float64 else np.float32
    params = {}
    for name, shape in shapes.items():
        values = aligned_empty(shape, dtype, order="F" if len(shape) == 2 else "C")
        step = max(1, _INIT_BLOCK // max(1, int(np.prod(shape[1:]))))
        for start in range(0, shape[0], step):
            block = rng.random((min(step, shape[0] - start),) + tuple(shape[1:]), dtype=draw_dtype)
            block *= 2 * bound  # -bound + 2*bound*u: the same arithmetic as rng.uniform(-bound, bound)
            block -= bound
            values[start:start + len(block)] = block
        params[name] = values
    return params


_INIT_BLOCK = 1 << 18  # values drawn at a time by init_params


def read_state_dict(state_dict, where, copy=False):
    """Turn a mapping of array-likes (NumPy, CuPy, torch tensors, lists) into NumPy arrays in native
    byte order. ``where`` names the caller in messages, e.g. "LSTM.from_state_dict". ``copy``: never
    share memory with the caller's arrays (a module built from them must not write into them)."""
    if not isinstance(state_dict, collections.abc.Mapping):
        raise TypeError(f"{where}: state_dict must be a mapping of names to arrays, got {type(state_dict).__name__}")
    arrays = {}
    for name, value in state_dict.items():
        if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor, maybe on CUDA or bfloat16
            value = torch_to_numpy(value, f"{where}: state_dict[{name!r}]",
                                   "convert the state_dict first: {k: v.float() for k, v in state_dict.items()}")
        try:
            value = to_host(value)  # CuPy, CUDA torch tensors, other device arrays by DLPack, NumPy, lists
            arrays[name] = native_byte_order(np.array(value, copy=True) if copy else np.asarray(value))
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{where}: state_dict[{name!r}] is not array-like ({exc})") from None
    return arrays


def torch_to_numpy(tensor, what, fix):
    """A torch tensor's values as a NumPy array; dtypes NumPy has no counterpart of (bfloat16) raise a
    TypeError saying ``what`` it was and how to ``fix`` it."""
    tensor = tensor.detach()
    try:
        return tensor.cpu().numpy()
    except TypeError:
        raise TypeError(f"{what} is a torch tensor of dtype {tensor.dtype}, which NumPy cannot hold; {fix}") from None


def keys_received(expected, received, named=()):
    """'; keys received: ...' for a key error (unless the message ``named`` them all already), and
    the prefix to strip when every expected key is there behind one (a state_dict saved from a
    wrapper: 'module.weight_ih_l0', 'lstm.weight_ih_l0')."""
    received = list(received)
    shown = ", ".join(map(repr, received[:8])) + (f", ... ({len(received)} keys)" if len(received) > 8 else "")
    text = "" if received and set(received) <= set(named) else f"; keys received: {shown or 'none'}"
    first = next(iter(expected))
    for prefix in dict.fromkeys(k[:-len(first)] for k in received if k.endswith("." + first)):
        if all(prefix + key in received for key in expected):
            text += (f"{'. They' if text else '; they'} carry the prefix {prefix!r}; strip it: "
                     f"{{k[len({prefix!r}):]: v for k, v in state_dict.items() if k.startswith({prefix!r})}}")
            break
    return text


def infer_dtype(arrays, owner):
    """The one float dtype shared by all tensors of a state_dict."""
    dtypes = {a.dtype for a in arrays.values()}
    if len(dtypes) != 1:
        listing = ", ".join(f"{k}: {a.dtype}" for k, a in arrays.items())
        raise TypeError(f"{owner}.from_state_dict: the tensors have different dtypes ({listing}); pass dtype=...")
    (dtype,) = dtypes
    if dtype.kind != "f":
        raise TypeError(f"{owner}.from_state_dict: expected floating-point tensors, got dtype {dtype}; pass dtype=...")
    return dtype


def check_keys(arrays, expected, where, strict=True):
    """(missing, unexpected) keys; with ``strict``, a KeyError naming them, the keys received and the
    prefix to strip when they carry one."""
    missing = [name for name in expected if name not in arrays]
    unexpected = [name for name in arrays if name not in expected]
    if strict and (missing or unexpected):
        parts = ([f"missing key(s) {', '.join(map(repr, missing))}"] if missing else []) + \
                ([f"unexpected key(s) {', '.join(map(repr, unexpected))}"] if unexpected else [])
        raise KeyError(f"{where}: {' and '.join(parts)} (expected keys: {', '.join(expected)})"
                       + keys_received(expected, arrays, unexpected))
    return missing, unexpected


def check_params(arrays, shapes, owner, method="from_state_dict"):
    """Exactly the expected keys (KeyError naming a missing or unexpected one), each of the expected shape."""
    where = f"{owner}.{method}"
    check_keys(arrays, shapes, where)
    for name, shape in shapes.items():
        if arrays[name].shape != shape:
            raise ValueError(f"{where}: {name!r} must have shape {shape} "
                             f"(from the other tensors' sizes), got {arrays[name].shape}")


def gates_and_sizes(arrays, gates, owner, suffix=""):
    """(input_size, hidden_size) read off weight_ih / weight_hh, checking the gate multiple."""
    for name in (f"weight_ih{suffix}", f"weight_hh{suffix}"):
        if name not in arrays:
            raise KeyError(f"{owner}.from_state_dict: missing key {name!r}" + keys_received([name], arrays))
        if arrays[name].ndim != 2:
            raise ValueError(f"{owner}.from_state_dict: {name!r} must be 2-D, got shape {arrays[name].shape}")
    w_hh = arrays[f"weight_hh{suffix}"]
    hidden_size = w_hh.shape[1]
    if hidden_size == 0 or w_hh.shape[0] != gates * hidden_size:
        raise ValueError(f"{owner}.from_state_dict: 'weight_hh{suffix}' must have shape ({gates}*H, H), "
                         f"got {w_hh.shape}")
    return arrays[f"weight_ih{suffix}"].shape[1], hidden_size
