"""The elementwise kernels' 512-bit loops (``simd.widest_vectors``): each kernel is marked for them, they
are what runs on an AVX-512 CPU, and they give the same bits as the 256-bit loops the CPU would
otherwise get, on every remainder length (H below, at and past a vector's width)."""

import contextlib
import re

import numpy as np
import pytest

numba = pytest.importorskip("numba")

from numba import njit, types  # noqa: E402

from rnnkern._backend.numba import simd, steps  # noqa: E402
from rnnkern._backend.numba.scalar import FASTMATH  # noqa: E402

KERNELS = ("rnn_step", "lstm_step", "lstm_step_train", "gru_step", "gru_update", "rnn_backward",
           "lstm_backward", "gru_backward", "gru_backward_update")


def _compiled(name, wide):
    """A fresh (uncached, so inspectable) compilation of steps.``name``, with or without the mark."""
    with contextlib.nullcontext() if wide else simd.unmarked():
        kernel = njit(fastmath=FASTMATH, error_model="numpy")(getattr(steps, name).py_func)
        kernel.compile(_signature(name, np.float32))
        kernel.compile(_signature(name, np.float64))
    return kernel


def _shapes(name, B, H):
    """The kernel's arguments' shapes, in order (as backend.py calls it)."""
    return {"rnn_step": [(B, H)] * 3, "rnn_backward": [(B, H)] * 3,
            "lstm_step": [(B, 4 * H), (B, 4 * H), (B, H), (1,), (B, H), (B, H)],
            "lstm_step_train": [(B, 4 * H), (B, 4 * H), (B, H), (1,), (B, H), (B, H)],
            "lstm_backward": [(B, 4 * H), (B, H), (B, H), (B, H), (B, H), (1,), (B, 4 * H), (B, H)],
            "gru_step": [(B, 3 * H), (B, 3 * H), (H,), (B, H), (B, H)],
            "gru_update": [(B, 3 * H), (B, 2 * H), (B, H), (B, H), (B, H)],
            "gru_backward": [(B, 3 * H), (B, H), (B, H), (B, H), (B, 3 * H), (B, 3 * H), (B, H)],
            "gru_backward_update": [(B, H)] * 4 + [(B, 3 * H), (B, H)]}[name]


def _signature(name, dtype):
    real = numba.from_dtype(dtype)
    return tuple(types.Array(real, len(shape), "C") for shape in _shapes(name, 1, 1))


@pytest.fixture(scope="module")
def pairs():
    return {name: (_compiled(name, True), _compiled(name, False)) for name in KERNELS}


@pytest.mark.parametrize("name", KERNELS)
def test_every_elementwise_kernel_is_marked(pairs, name):
    wide, narrow = pairs[name]
    assert all(simd.PREFER_WIDEST in ir for ir in wide.inspect_llvm().values())
    assert not any(simd.PREFER_WIDEST in ir for ir in narrow.inspect_llvm().values())


def test_an_avx512_cpu_runs_512_bit_loops(pairs):
    import llvmlite.binding as llvm

    if "+avx512f" not in llvm.get_host_cpu_features().flatten():
        pytest.skip("this CPU has no 512-bit registers: the mark changes nothing here")
    wide, narrow = pairs["lstm_step"]
    code = "".join(wide.inspect_asm().values())
    assert re.search(r"vdivps\s+%zmm", code)  # the activations' divisions, 16 float32 lanes at a time
    assert "zmm" not in "".join(narrow.inspect_asm().values())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", KERNELS)
def test_same_bits_at_either_width(pairs, name, dtype):
    wide, narrow = pairs[name]
    rng = np.random.default_rng(7)
    for B, H in ((1, 1), (1, 7), (3, 8), (2, 15), (1, 16), (2, 17), (3, 33), (1, 100), (2, 256)):
        args = [(rng.standard_normal(shape) * 4).astype(dtype) for shape in _shapes(name, B, H)]
        args[0].flat[::5] = np.inf  # saturated gates, and NaN where inf meets inf or zero
        args[0].flat[1::7] = -np.inf
        got = [a.copy() for a in args]
        want = [a.copy() for a in args]
        wide(*got)
        narrow(*want)
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g.view(f"u{g.itemsize}"), w.view(f"u{w.itemsize}"))
