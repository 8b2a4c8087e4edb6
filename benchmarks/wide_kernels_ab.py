"""The fused step kernels compiled twice in one process: as shipped (``simd.widest_vectors``: LLVM may
use 512-bit registers) and with that call made a no-op (the subtarget's preference: 256 bits on AVX-512
Intel CPUs), timed in 9 alternating rounds; median of per-round ratios, and the zmm registers each
compiled kernel names.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONPATH=src python benchmarks/wide_kernels_ab.py
"""

import re
import statistics
import time

import numpy as np
from numba import njit

from rnnkern._backend.numba import simd, steps
from rnnkern._backend.numba.scalar import FASTMATH

SIZES = ((64, 512), (1, 256))  # the default configuration's B, H and the small one's


def _arguments(kind, B, H, rng):
    shapes = {"lstm_step": [(B, 4 * H), (B, 4 * H), (B, H), (1,), (B, H), (B, H)],
              "gru_step": [(B, 3 * H), (B, 3 * H), (H,), (B, H), (B, H)],
              "rnn_step": [(B, H)] * 3,
              "lstm_backward": [(B, 4 * H), (B, H), (B, H), (B, H), (B, H), (1,), (B, 4 * H), (B, H)]}[kind]
    return [rng.standard_normal(shape).astype(np.float32) for shape in shapes]


def _pair(kind, rng):
    """(shipped, unmarked) compilations of steps.``kind``, fresh (uncached: their code can be inspected)."""
    source = getattr(steps, kind).py_func
    wide, narrow = (njit(fastmath=FASTMATH, error_model="numpy")(source) for _ in range(2))
    wide(*_arguments(kind, 1, 1, rng))
    with simd.unmarked():
        narrow(*_arguments(kind, 1, 1, rng))
    return wide, narrow


def _repeat(kernel):
    @njit
    def run(n, *args):
        for _ in range(n):
            kernel(*args)
    return run


def _zmm(kernel):
    return len(re.findall("zmm", kernel.inspect_asm(kernel.signatures[0])))


def main(rounds=9):
    rng = np.random.default_rng(0)
    for kind in ("lstm_step", "gru_step", "rnn_step", "lstm_backward"):
        wide, narrow = _pair(kind, rng)
        for B, H in SIZES:
            args, n = _arguments(kind, B, H, rng), max(1, 3_000_000 // (B * H))
            runs = {"512": _repeat(wide), "256": _repeat(narrow)}
            times = {name: [] for name in runs}
            for r in range(rounds + 1):
                for name in (("512", "256") if r % 2 else ("256", "512")):
                    start = time.perf_counter()
                    runs[name](n, *args)
                    if r:  # round 0 compiles the repeat loops
                        times[name].append((time.perf_counter() - start) / n * 1e6)
            ratio = statistics.median(w / v for w, v in zip(times["512"], times["256"]))
            print(f"{kind} B={B} H={H}: 256-bit {statistics.median(times['256']):.2f} us, 512-bit "
                  f"{statistics.median(times['512']):.2f} us, ratio {ratio:.2f} (zmm named in the code: "
                  f"{_zmm(wide)} / {_zmm(narrow)})", flush=True)


if __name__ == "__main__":
    main()
