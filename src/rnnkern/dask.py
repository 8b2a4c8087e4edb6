"""Sequence layers on Dask arrays: ``rnnkern.dask.forward`` runs a layer on each batch chunk.

    import dask.array as da
    import rnnkern
    import rnnkern.dask

    lstm = rnnkern.LSTM(10, 20, num_layers=2)
    x = da.from_array(big, chunks={1: 4096})          # (T, B, 10), chunked along the batch only
    y, (h_n, c_n) = rnnkern.dask.forward(lstm, x, lengths=lengths)
    y, h_n = dask.compute(y, h_n)                      # one pass: each chunk runs the layer once

Each batch chunk is one task, ``layer(x_chunk, state_chunk, lengths_chunk)``, on whichever
scheduler is active (threads, processes, or a ``distributed`` cluster); sequences are independent,
so the chunks' results are the layer's on the whole batch (up to the GEMMs' rounding, which depends
on the batch size). The layer is copied once when ``forward`` is called and enters the graph as one
``dask.delayed`` node that every chunk's task depends on: a cluster ships it to each worker once.
Chunks of CuPy arrays run a GPU layer (``device="gpu"``): the layer's device decides, and a chunk on
the other device is the layer's own clear error. Needs ``pip install 'rnnkern[dask]'`` (dask[array]
and distributed); ``import rnnkern`` does not import dask.
"""

import copy
import operator
import uuid

import numpy as np

try:
    import dask
    import dask.array as da
except ImportError as exc:  # pragma: no cover (the test environment has dask)
    raise ImportError(f"rnnkern.dask needs Dask, which is not installed ({exc}); install it with "
                      "pip install 'rnnkern[dask]' (dask[array] and distributed)") from exc

from ._backend import to_host

__all__ = ["forward"]

_WHERE = "rnnkern.dask.forward"


def forward(layer, x, state=None, lengths=None):
    """``y, state_n = rnnkern.dask.forward(layer, x, state=None, lengths=None)``: ``layer(x, state,
    lengths)`` on a Dask array, one task per batch chunk; results are lazy Dask arrays.

    Args:
        layer: an rnnkern sequence layer (RNN, LSTM, GRU, with any of their options), or any layer
            with their call signature ``layer(x, state, lengths)`` and a ``batch_first`` attribute.
        x: a Dask array, (T, B, input_size), or (B, T, input_size) with ``batch_first``, chunked
            along the batch axis only: whole sequences and all features in each chunk (a ValueError
            says how to rechunk otherwise). Chunks are NumPy arrays for a CPU layer, CuPy arrays
            for a GPU one. A 2-D x is one unbatched sequence (T, input_size): one task, and it must
            be one chunk.
        state: None (the layer's ``initial_state``, else zeros), h_0, or (h_0, c_0) for the LSTM,
            each (num_layers * D, B, features) as for the layer: Dask arrays are rechunked along
            their batch axis 1 to x's batch chunks, NumPy (or CuPy) arrays are split to them.
        lengths: None, or B integers in 1..T (a Dask or NumPy array), split to x's batch chunks.

    Returns:
        Dask arrays shaped as the layer's outputs, ``y, h_n`` or ``y, (h_n, c_n)``: y in x's layout,
        the final states (num_layers * D, B, features); their batch chunks are x's. Compute them
        together (``dask.compute(y, h_n)``, or ``persist``): computed one at a time, each runs the
        layer again.

    The layer's own checks (dtype, device, features, state shapes) run once on the driver, on a
    one-step, one-sequence input, before any task is made; lengths' values are checked by each
    task. The graph holds a copy of the layer made by this call: later changes to the layer's
    weights do not reach results already built.
    """
    _check_layer(layer)
    x = _check_input(x)
    batched = x.ndim == 3
    batch_axis = (0 if layer.batch_first else 1) if batched else None
    _check_chunks(x, batch_axis)
    if x.shape[1 if batch_axis == 0 else 0] == 0:
        raise ValueError(f"{_WHERE}: x must have at least one time step, got shape {x.shape}")
    source = "state"
    if state is None and getattr(layer, "initial_state", None) is not None:
        state, source = layer.initial_state, "layer.initial_state"
    pair = isinstance(state, (tuple, list))
    labels = [f"{source}[{i}]" for i in range(len(state))] if pair else [source]
    parts = [_state_part(part, label, x, batch_axis) for part, label in zip(state if pair else [state], labels)]
    if lengths is not None:
        lengths = _lengths(lengths, x, batch_axis)
    probe = _probe(layer, x, parts, pair, lengths, batched)
    if not batched:  # one sequence: the batched path on a batch of one, as the layer itself does
        x = x[None] if layer.batch_first else x[:, None]
        parts = [None if p is None else p[:, None] for p in parts]
        batch_axis = 0 if layer.batch_first else 1
    outputs = _graph(copy.deepcopy(layer), x, batch_axis, parts, pair, lengths, probe)
    if not batched:
        outputs = [outputs[0][0] if layer.batch_first else outputs[0][:, 0]] + [s[:, 0] for s in outputs[1:]]
    y, states = outputs[0], outputs[1:]
    return y, (tuple(states) if len(states) > 1 else states[0])


# --- checks ------------------------------------------------------------------------------------
def _check_layer(layer):
    name = type(layer).__name__
    if name.endswith("Cell"):
        raise TypeError(f"{_WHERE}: layer must be a sequence layer (rnnkern.RNN, LSTM, GRU), got the cell {name}, "
                        f"which runs one step; use the layer of the same kind")
    if not callable(layer) or not hasattr(layer, "batch_first"):
        raise TypeError(f"{_WHERE}: layer must be a sequence layer (rnnkern.RNN, LSTM, GRU, or one called as "
                        f"layer(x, state, lengths) with a batch_first attribute), got {name}")


def _check_input(x):
    if not isinstance(x, da.Array):
        raise TypeError(f"{_WHERE}: x must be a dask.array.Array, got {type(x).__name__}; wrap an in-memory "
                        f"array with dask.array.from_array(x, chunks={{1: n}}) (n sequences per chunk), "
                        f"or call the layer on it directly")
    if x.ndim not in (2, 3):
        raise ValueError(f"{_WHERE}: x must be 3-D, (T, B, input_size) or (B, T, input_size) with batch_first, "
                         f"or 2-D (T, input_size) unbatched, got {x.ndim}-D with shape {x.shape}")
    if any(np.isnan(size) for size in x.shape):
        raise ValueError(f"{_WHERE}: x has unknown chunk sizes (shape {x.shape}); call x.compute_chunk_sizes() "
                         f"first")
    return x


def _check_chunks(x, batch_axis):
    split = [axis for axis in range(x.ndim) if axis != batch_axis and x.numblocks[axis] > 1]
    if not split:
        return
    if batch_axis is None:
        raise ValueError(f"{_WHERE}: an unbatched x (T, input_size) is one sequence and must be one chunk, got "
                         f"chunks {x.chunks}; rechunk it with x.rechunk(-1)")
    names = {batch_axis: "batch", 2: "features"}
    names[1 - batch_axis] = "time"
    what = ", ".join(f"axis {a} ({names[a]}) in {x.numblocks[a]} chunks" for a in split)
    fix = "{" + ", ".join(f"{a}: -1" for a in range(x.ndim) if a != batch_axis) + "}"
    raise ValueError(f"{_WHERE}: x must be chunked along its batch axis {batch_axis} only, with whole sequences "
                     f"and all features in each chunk; got {what} (chunks {x.chunks}); rechunk it with "
                     f"x.rechunk({fix})")


def _state_part(part, label, x, batch_axis):
    """One part of the initial state as a Dask array in x's batch chunks (None stays None)."""
    if part is None:
        return None
    if not isinstance(part, da.Array):
        part = da.from_array(part if hasattr(part, "shape") else np.asarray(part), chunks=-1)
    if batch_axis is None:
        if part.ndim != 2:
            raise ValueError(f"{_WHERE}: {label} must be 2-D (num_layers * D, features) for an unbatched x, "
                             f"got shape {part.shape}")
        return part.rechunk(-1)
    batch = x.shape[batch_axis]
    if part.ndim != 3 or part.shape[1] != batch:
        raise ValueError(f"{_WHERE}: {label} must have shape (num_layers * D, {batch}, features), its batch axis 1 "
                         f"matching x's batch of {batch}, got shape {part.shape}")
    return part.rechunk({0: -1, 1: x.chunks[batch_axis], 2: -1})


def _lengths(lengths, x, batch_axis):
    if batch_axis is None:
        return lengths  # the layer's own check (in the probe) says that unbatched input takes none
    if not isinstance(lengths, da.Array):
        lengths = da.from_array(np.asarray(to_host(lengths)), chunks=-1)
    batch = x.shape[batch_axis]
    if lengths.shape != (batch,):
        raise ValueError(f"{_WHERE}: lengths must have shape ({batch},) (one per sequence in x's batch), "
                         f"got {lengths.shape}")
    return lengths.rechunk((x.chunks[batch_axis],))


def _probe(layer, x, parts, pair, lengths, batched):
    """The layer on one step of one sequence, zeros of x's (and the states') dtype and array type:
    the layer's own checks run here, on the driver, and its outputs give the results' structure,
    features, dtypes and array type (meta)."""
    probe_x = np.zeros_like(x._meta, shape=(1, 1, x.shape[-1]) if batched else (1, x.shape[-1]))
    probe_parts = [None if p is None else np.zeros_like(p._meta, shape=(p.shape[0],) + (1,) * batched + p.shape[-1:])
                   for p in parts]
    probe_state = tuple(probe_parts) if pair else probe_parts[0]
    probe_lengths = None if lengths is None else np.ones(1, dtype=getattr(lengths, "dtype", np.int64))
    y, state_n = layer(probe_x, probe_state, probe_lengths)
    return [y] + (list(state_n) if isinstance(state_n, tuple) else [state_n])


# --- the graph ---------------------------------------------------------------------------------
def _run_chunk(layer, pair, lengths, x, *parts):
    """On a worker: the layer on one batch chunk; its outputs as a flat tuple (y, h_n[, c_n])."""
    parts = [_one_block(p) for p in parts]
    y, state_n = layer(_one_block(x), tuple(parts) if pair else parts[0], lengths)
    return (y,) + (tuple(state_n) if isinstance(state_n, tuple) else (state_n,))


def _one_block(block):
    """blockwise hands the blocks of axes it contracts as nested lists; here each holds one block."""
    while isinstance(block, list):
        (block,) = block
    return block


def _graph(layer, x, batch_axis, parts, pair, lengths, probe):
    """The lazy outputs: one task per batch chunk runs the layer, one per output and chunk picks."""
    token = uuid.uuid4().hex
    layer_node = dask.delayed(layer, name=f"rnnkern-{type(layer).__name__.lower()}-{token}", traverse=False)
    x_index = ("b", "t", "i") if batch_axis == 0 else ("t", "b", "i")
    args = [x, x_index]
    for n, part in enumerate(parts):
        args += [part, None if part is None else (f"k{n}", "b", f"f{n}")]
    args += [lengths, None if lengths is None else ("b",)]
    runs = da.blockwise(_run_chunk, ("b",), layer_node, None, pair, None, *args[-2:], *args[:-2],
                        concatenate=False, meta=np.empty((0,), dtype=object), name=f"rnnkern-forward-{token}")
    outputs = []
    for k, like in enumerate(probe):
        if k == 0:
            index, new_axes = tuple("f" if a == "i" else a for a in x_index), {"t": x.shape[1 - batch_axis]}
        else:
            index, new_axes = ("k", "b", "f"), {"k": like.shape[0]}
        new_axes["f"] = like.shape[-1]
        meta = np.zeros_like(like, shape=(0, 0, 0))  # NumPy or CuPy, as the layer's outputs
        outputs.append(da.blockwise(operator.getitem, index, runs, ("b",), k, None, new_axes=new_axes, meta=meta,
                                    name=f"rnnkern-output{k}-{token}"))
    return outputs
