"""Parameters in PyTorch's names and layouts: shapes, initialisation, state_dict loading."""

import collections.abc
import math

import numpy as np

from ._backend import to_host


def param_shapes(gates, input_size, hidden_size, bias, suffix=""):
    """PyTorch's parameter shapes, in PyTorch's registration order."""
    rows = gates * hidden_size
    shapes = {f"weight_ih{suffix}": (rows, input_size), f"weight_hh{suffix}": (rows, hidden_size)}
    if bias:
        shapes[f"bias_ih{suffix}"] = (rows,)
        shapes[f"bias_hh{suffix}"] = (rows,)
    return shapes


def init_params(shapes, hidden_size, seed):
    """PyTorch's default init, U(-1/sqrt(H), 1/sqrt(H)) for every tensor, reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    bound = 1.0 / math.sqrt(hidden_size)
    return {name: rng.uniform(-bound, bound, size=shape) for name, shape in shapes.items()}


def read_state_dict(state_dict, owner):
    """Turn a mapping of array-likes (NumPy, CuPy, torch tensors, lists) into NumPy arrays."""
    if not isinstance(state_dict, collections.abc.Mapping):
        raise TypeError(f"{owner}.from_state_dict: state_dict must be a mapping of names to arrays, "
                        f"got {type(state_dict).__name__}")
    arrays = {}
    for name, value in state_dict.items():
        try:
            arrays[name] = np.asarray(to_host(value))  # CuPy, torch (CUDA, requiring grad), NumPy, lists
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{owner}.from_state_dict: state_dict[{name!r}] is not array-like ({exc})") from None
    return arrays


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


def check_params(arrays, shapes, owner):
    """Exactly the expected keys (KeyError naming a missing or unexpected one), each of the expected shape."""
    missing = [name for name in shapes if name not in arrays]
    if missing:
        raise KeyError(f"{owner}.from_state_dict: missing key(s) {', '.join(map(repr, missing))} "
                       f"(expected keys: {', '.join(shapes)})")
    unexpected = [name for name in arrays if name not in shapes]
    if unexpected:
        raise KeyError(f"{owner}.from_state_dict: unexpected key(s) {', '.join(map(repr, unexpected))} "
                       f"(expected keys: {', '.join(shapes)})")
    for name, shape in shapes.items():
        if arrays[name].shape != shape:
            raise ValueError(f"{owner}.from_state_dict: {name!r} must have shape {shape} "
                             f"(from the other tensors' sizes), got {arrays[name].shape}")


def gates_and_sizes(arrays, gates, owner, suffix=""):
    """(input_size, hidden_size) read off weight_ih / weight_hh, checking the gate multiple."""
    for name in (f"weight_ih{suffix}", f"weight_hh{suffix}"):
        if name not in arrays:
            raise KeyError(f"{owner}.from_state_dict: missing key {name!r}")
        if arrays[name].ndim != 2:
            raise ValueError(f"{owner}.from_state_dict: {name!r} must be 2-D, got shape {arrays[name].shape}")
    w_hh = arrays[f"weight_hh{suffix}"]
    hidden_size = w_hh.shape[1]
    if hidden_size == 0 or w_hh.shape[0] != gates * hidden_size:
        raise ValueError(f"{owner}.from_state_dict: 'weight_hh{suffix}' must have shape ({gates}*H, H), "
                         f"got {w_hh.shape}")
    return arrays[f"weight_ih{suffix}"].shape[1], hidden_size
