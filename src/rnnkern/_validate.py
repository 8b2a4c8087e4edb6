"""Argument checks shared by cells and layers.

Every check raises ValueError, TypeError or KeyError with a message that names
the argument, what was expected and what was received.
"""

import numbers

import numpy as np

SUPPORTED_DTYPES = ("float16", "float32", "float64")


def check_size(name, value, owner):
    """A positive int (bool rejected, since True would silently mean 1)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{owner}: {name} must be a positive int, got {type(value).__name__} {value!r}")
    if value <= 0:
        raise ValueError(f"{owner}: {name} must be a positive int, got {value}")
    return int(value)


def check_bool(name, value, owner):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{owner}: {name} must be a bool, got {type(value).__name__} {value!r}")
    return bool(value)


def check_choice(name, value, choices, owner):
    if value not in choices:
        raise ValueError(f"{owner}: {name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def resolve_dtype(dtype, owner):
    """Normalise a dtype spec to a NumPy dtype; only float16/32/64 are accepted."""
    try:
        resolved = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"{owner}: dtype must be one of {', '.join(SUPPORTED_DTYPES)}, got {dtype!r}") from exc
    if resolved.name not in SUPPORTED_DTYPES:
        raise TypeError(f"{owner}: dtype must be one of {', '.join(SUPPORTED_DTYPES)}, got {resolved.name}")
    return resolved


def check_float_array(name, array, dtype, owner):
    """The array's dtype must be the owner's float dtype: no silent casts."""
    if array.dtype != dtype:
        kind = "floating" if array.dtype.kind == "f" else "non-floating"
        # only suggest building the owner in the array's dtype when that dtype is one it can have
        rebuild = (f" or build the {owner} with dtype='{array.dtype.name}'"
                   if array.dtype.name in SUPPORTED_DTYPES else "")
        raise TypeError(
            f"{owner}: {name} must have dtype {dtype.name} (the dtype of the {owner}), "
            f"got {kind} dtype {array.dtype.name}; convert it with .astype('{dtype.name}'){rebuild}"
        )


def check_shape(name, array, expected, owner):
    if tuple(array.shape) != tuple(expected):
        raise ValueError(f"{owner}: {name} must have shape {tuple(expected)}, got {tuple(array.shape)}")
