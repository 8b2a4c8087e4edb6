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
    return np.dtype(resolved.name)  # native byte order: a module of dtype '>f4' must not exist


def native_byte_order(array):
    """A host array in native byte order, same values: NumPy's '>f4' is unequal to float32 (kept
    as is when already native, and for device arrays, which are always native)."""
    if isinstance(array, np.ndarray) and not array.dtype.isnative:
        return array.astype(array.dtype.newbyteorder("="))
    return array


def check_seed(seed, owner):
    """None, a non-negative int or a NumPy Generator / SeedSequence / BitGenerator."""
    if seed is None or isinstance(seed, (np.random.Generator, np.random.SeedSequence, np.random.BitGenerator)):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"{owner}: seed must be None, a non-negative int or a numpy.random.Generator, "
                        f"got {type(seed).__name__} {seed!r}")
    if seed < 0:
        raise ValueError(f"{owner}: seed must be None, a non-negative int or a numpy.random.Generator, got {seed}")
    return int(seed)


def check_float_array(name, array, dtype, owner, convert=None, device_dtypes=SUPPORTED_DTYPES, device=None):
    """The array's dtype must be the owner's float dtype: no silent casts. ``owner`` may name a
    method ("GRU.backward"); the message then speaks of its module ("the dtype of the GRU").
    ``convert``: how to convert, in the caller's terms (default ``.astype('<dtype>')``);
    ``device_dtypes``: the dtypes the module's device runs (``device`` names it)."""
    if array.dtype != dtype:
        module = owner.split(".")[0]
        kind = "floating" if array.dtype.kind == "f" else "non-floating"
        rebuild = _rebuild_hint(array.dtype.name, module, device_dtypes, device)
        raise TypeError(
            f"{owner}: {name} must have dtype {dtype.name} (the dtype of the {module}), "
            f"got {kind} dtype {array.dtype.name}; convert it with {convert or f'.astype({dtype.name!r})'}{rebuild}"
        )


def _rebuild_hint(name, module, device_dtypes, device):
    """How else to match dtypes: build the module in the array's dtype, where its device runs that
    dtype (the CPU has no float16: suggesting it would only lead to the next error)."""
    if name in device_dtypes:
        return f" or build the {module} with dtype='{name}'"
    if name in SUPPORTED_DTYPES:
        return (f" ({name} is not available on device='{device}', which runs {', '.join(device_dtypes)}; "
                f"a {module} with dtype='{name}' needs device='gpu')")
    return ""


def check_shape(name, array, expected, owner):
    if tuple(array.shape) != tuple(expected):
        raise ValueError(f"{owner}: {name} must have shape {tuple(expected)}, got {tuple(array.shape)}")
