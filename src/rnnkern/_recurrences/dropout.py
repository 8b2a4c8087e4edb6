"""Dropout between stacked layers, as torch.nn.RNN / LSTM / GRU apply it: in training only.

Layer k's output (k < num_layers - 1) is multiplied by a mask before layer k+1 reads
it: each element is kept with probability 1 - p and then scaled by 1 / (1 - p)
(inverted dropout), or zeroed. The final output and every h_n / c_n are never
dropped. The masks are drawn on the host from a NumPy Generator, so that a seed
gives the same masks on the CPU and the GPU: for each dropped layer output in turn,
``generator.random((T, B, D * H_out)) >= p`` with T and B in the caller's order
(time-major whatever ``batch_first``, and the batch in the caller's order whatever
``lengths``), B = 1 for an unbatched input, H_out = proj_size or hidden_size.
"""

import numbers
import warnings

import numpy as np


def check_dropout(p, num_layers, owner):
    """The dropout probability as a float in [0, 1]; warns, as torch does, where it can have no effect."""
    if isinstance(p, bool) or not isinstance(p, numbers.Real):
        raise TypeError(f"{owner}: dropout must be a number in [0, 1] (the probability of zeroing an element), "
                        f"got {type(p).__name__} {p!r}")
    if not 0 <= p <= 1:
        raise ValueError(f"{owner}: dropout must be a number in [0, 1] (the probability of zeroing an element), "
                         f"got {p!r}")
    if p > 0 and num_layers == 1:
        warnings.warn(f"{owner}: dropout is applied to the output of every layer but the last, so dropout={p} "
                      f"with num_layers=1 has no effect", UserWarning, stacklevel=4)
    return float(p)


def dropout_generator(seed):
    """A layer's own generator of dropout masks: reproducible from the layer's ``seed`` (fresh
    entropy when None) and independent of the initialisation's stream, which uses ``seed`` itself."""
    if isinstance(seed, np.random.Generator):
        seed = seed.bit_generator
    if isinstance(seed, np.random.BitGenerator):
        seed = seed.seed_seq
    sequence = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    return np.random.default_rng(sequence.spawn(1)[0])


def resolve_generator(generator, default, owner):
    """``forward_train``'s ``generator``: None (the layer's own), an int seed, or a numpy Generator."""
    if generator is None:
        return default
    if isinstance(generator, np.random.Generator):
        return generator
    if isinstance(generator, numbers.Integral) and not isinstance(generator, bool) and generator >= 0:
        return np.random.default_rng(int(generator))
    raise TypeError(f"{owner}: generator must be a numpy.random.Generator, a non-negative int seed or None, "
                    f"got {type(generator).__name__} {generator!r}")


def draw_mask(generator, p, shape, dtype):
    """A host mask of ``shape`` (T, B, F): 1 / (1 - p) where an element is kept, else 0."""
    keep = generator.random(shape) >= p
    scale = 0.0 if p == 1 else 1.0 / (1.0 - p)
    return (keep * scale).astype(dtype)
