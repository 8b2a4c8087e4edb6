"""The fuzz's arrays: inputs and initial states in the memory layouts users hand over (views with odd
strides, read-only, Fortran order), lengths, and the random loss and directions of the gradient check.

Each view holds exactly the values of a plain array (``np.array(view)``), which is what the float64
reference gets: only rnnkern sees the layout.
"""

import numpy as np
from numpy.lib.stride_tricks import as_strided


def _readonly(a):
    a = np.array(a)
    a.flags.writeable = False
    return a


def input_view(values, how):
    """``values`` (T, B, I) or (T, I) in the layout ``how`` (fuzz_configs.INPUTS)."""
    if how == "fortran":
        return np.asfortranarray(values)
    if how == "strided":  # every other feature of a wider array
        wide = np.zeros(values.shape[:-1] + (2 * values.shape[-1],), values.dtype)
        wide[..., ::2] = values
        return wide[..., ::2]
    if how == "reversed":  # negative strides on the first axis
        return np.ascontiguousarray(values[::-1])[::-1]
    if how == "readonly":
        return _readonly(values)
    return np.ascontiguousarray(values)


def state_view(rng, shape, dtype, how):
    """An initial state of ``shape`` ((L*D, B, H), or (L*D, H) unbatched) built as ``how``
    (fuzz_configs.STATES; "none" gives None). The batch axis is the one before the last."""
    if how == "none":
        return None
    values = (0.5 * rng.standard_normal(shape)).astype(dtype)
    batch_axis = len(shape) - 2
    if how == "broadcast":  # one state for every sequence (np.broadcast_to, torch's expand): stride 0
        one = values[(slice(None),) * batch_axis + (slice(0, 1),)]
        return np.broadcast_to(one, shape)
    if how == "reversed":  # h0[:, ::-1]: a negative batch stride
        flip = (slice(None),) * batch_axis + (slice(None, None, -1),)
        return np.ascontiguousarray(values[flip])[flip]
    if how == "strided":  # every other row of a taller array: a batch stride of 2*H
        tall = np.zeros(shape[:-2] + (2 * shape[-2], shape[-1]), dtype)
        tall[..., ::2, :] = values
        return tall[..., ::2, :]
    if how == "overlapping":  # rows that share memory: a batch stride below H
        return _overlapping(rng, shape, dtype)
    if how == "fortran":
        return np.asfortranarray(values)
    if how == "readonly":
        return _readonly(values)
    return values


def _overlapping(rng, shape, dtype):
    H, item = shape[-1], np.dtype(dtype).itemsize
    step = int(rng.integers(0, H)) if H > 1 else 0  # elements between consecutive batch rows
    rows = shape[-2]
    layers = shape[0] if len(shape) == 3 else 1
    per_layer = step * (rows - 1) + H
    buffer = (0.5 * rng.standard_normal(layers * per_layer)).astype(dtype)
    strides = ((per_layer * item,) if len(shape) == 3 else ()) + (step * item, item)
    return as_strided(buffer, shape, strides, writeable=False)


def lengths_for(rng, cfg):
    """B lengths in 1..T (None unless the case asks for them)."""
    if not cfg.lengths:
        return None
    return rng.integers(1, cfg.steps + 1, size=cfg.batch)


def parts(state):
    """A state as a tuple of its arrays: () for None, (h,) or (h, c)."""
    if state is None:
        return ()
    return tuple(state) if isinstance(state, tuple) else (state,)


def dot(grads, directions):
    """sum(g * v) over matching arrays, and sum(|g * v|) (the scale of its rounding error)."""
    total = scale = 0.0
    for g, v in zip(grads, directions):
        product = np.asarray(g, np.float64) * v
        total += product.sum()
        scale += np.abs(product).sum()
    return total, scale
