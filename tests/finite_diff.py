"""Central finite differences of a scalar loss with respect to entries of an array, changed in place.

Entries are addressed by multi-index, never through ``reshape(-1)``: CPU weight matrices are stored
column-major, where a reshape is a copy and writing into it would change nothing."""

import numpy as np


def central_differences(loss, array, eps, positions=None):
    """d loss / d array[pos] for every ``pos`` in ``positions`` (default: every entry), as an array of
    ``array``'s shape (entries not asked for are NaN). ``array`` is restored afterwards."""
    numeric = np.full(array.shape, np.nan)
    for pos in (np.ndindex(array.shape) if positions is None else positions):
        saved = array[pos]
        array[pos] = saved + eps
        plus = loss()
        array[pos] = saved - eps
        numeric[pos] = (plus - loss()) / (2 * eps)
        array[pos] = saved
    return numeric


def random_positions(array, count, rng):
    """Up to ``count`` distinct random multi-indices of ``array``."""
    picked = rng.choice(array.size, size=min(count, array.size), replace=False)
    return list(zip(*np.unravel_index(picked, array.shape)))
