"""The host weight matrices start on a cache line (``host.aligned_empty``): on an Intel Xeon OpenBLAS's
batch-1 GEMV took 1.3x its time with W^T 16 bytes off one, where NumPy's large arrays start
(benchmarks/gemv_b1.py). Layout only: the values are the same arrays' values."""

import numpy as np
import pytest

import rnnkern
from rnnkern._backend.host import CACHE_LINE, aligned_empty


def _on_line(array):
    return np.asarray(array).ctypes.data % CACHE_LINE == 0


@pytest.mark.parametrize("shape", [(0,), (1,), (3, 5), (0, 4), (7, 1, 3), 5])
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_aligned_empty_shape_order_dtype(shape, order, dtype):
    a = aligned_empty(shape, dtype, order=order)
    expected = np.empty(shape, dtype, order=order)
    assert a.shape == expected.shape and a.dtype == np.dtype(dtype) and a.flags.writeable
    assert a.flags.c_contiguous == expected.flags.c_contiguous
    assert a.flags.f_contiguous == expected.flags.f_contiguous
    assert a.size == 0 or _on_line(a)  # an empty array has no memory to place
    a[...] = 1  # the whole view is writable memory of its own
    assert np.all(a == 1)


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_weight_matrices_start_on_a_cache_line(kind):
    """From the constructor, from_state_dict, and after load_state_dict (written in place). copy.deepcopy
    and pickle restore the arrays as NumPy allocates them (still F-contiguous, maybe off a line)."""
    cls = getattr(rnnkern, kind)
    layer = cls(33, 17, num_layers=2, seed=0)  # sizes whose rows are no whole number of cache lines
    loaded = cls(33, 17, num_layers=2, seed=1)
    loaded.load_state_dict(layer.state_dict())
    made = {"init": layer, "from_state_dict": cls.from_state_dict(layer.state_dict()), "load_state_dict": loaded}
    reference = dict(layer.named_parameters())
    for how, m in made.items():
        for name, p in m.named_parameters():
            if p.ndim == 2:  # W^T row-major on a line, as the GEMMs take it
                assert p.flags.f_contiguous and _on_line(p), f"{how}: {name}"
            np.testing.assert_array_equal(p, reference[name], err_msg=f"{how}: {name}")

