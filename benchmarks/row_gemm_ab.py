"""rnnkern's own one-row product (``rowgemm``) against OpenBLAS's GEMV (issue 17, batch 1), interleaved in
one process, on one thread (OpenBLAS's pool held at one thread for both).

Phase 1, ``gemv``: the product alone, 300 calls in a row from a compiled loop (``choice.repeat_matmul``),
W^T on a cache line in the parameters' layout, at the small configuration's step shapes (forward
1xHx(G*H); the backward's 1x(G*H)xH), one larger than L2 and a small one. Phase 2, ``layers``: the small
layers (T=100, B=1, I=H=256) with RNNKERN_CPU_GEMV toggled per call, warm (each call right after a call
of its own). Medians of per-round ratios, rounds in alternating order.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONPATH=src python benchmarks/row_gemm_ab.py [rounds]
"""

import os
import statistics
import sys
import time

import numpy as np

import rnnkern
from rnnkern._backend.host import aligned_empty
from rnnkern._backend.numba import blas, gemm
from rnnkern._backend.numba.choice import repeat_matmul

SHAPES = [(256, 1024), (256, 768), (256, 256), (1024, 256), (768, 256), (128, 512), (512, 2048)]


def _rounds(fns, rounds):
    times = {name: [] for name in fns}
    for r in range(rounds):
        for name in (list(fns) if r % 2 == 0 else list(fns)[::-1]):
            times[name].append(fns[name]())
    return times


def _ratio(times, a, b):
    return statistics.median(p / q for p, q in zip(times[a], times[b]))


def gemv(rounds):
    rng = np.random.default_rng(0)
    for K, N in SHAPES:
        w_t = aligned_empty((N, K), np.float32, order="F").T
        w_t[...] = rng.standard_normal((K, N))
        a, c = rng.standard_normal((1, K)).astype(np.float32), aligned_empty((1, N), np.float32)

        def timed(b, n=300):
            repeat_matmul(a, b, c, 3)
            start = time.perf_counter()
            repeat_matmul(a, b, c, n)
            return (time.perf_counter() - start) / n * 1e6

        times = _rounds({"openblas": lambda: timed(w_t), "rnnkern": lambda: timed(blas.RowMatrix(w_t))}, rounds)
        print(f"1x{K}x{N}: OpenBLAS {statistics.median(times['openblas']):.2f} us, rnnkern "
              f"{statistics.median(times['rnnkern']):.2f} us; rnnkern / OpenBLAS {_ratio(times, 'rnnkern', 'openblas'):.2f}",
              flush=True)


def layers(rounds, H=256, T=100):
    for cell in ("LSTM", "GRU", "RNN"):
        layer = getattr(rnnkern, cell)(H, H, seed=0)
        x = np.random.default_rng(0).uniform(-1, 1, (T, 1, H)).astype(np.float32)

        def timed(kernel):
            os.environ["RNNKERN_CPU_GEMV"] = kernel
            try:
                layer(x)
                start = time.perf_counter()
                layer(x)
                return (time.perf_counter() - start) * 1e3
            finally:
                del os.environ["RNNKERN_CPU_GEMV"]

        times = _rounds({"openblas": lambda: timed("openblas"), "rnnkern": lambda: timed("rnnkern")}, rounds)
        print(f"{cell} T={T} B=1 H={H}: OpenBLAS's GEMV {statistics.median(times['openblas']):.3f} ms, rnnkern's "
              f"{statistics.median(times['rnnkern']):.3f} ms; rnnkern / OpenBLAS {_ratio(times, 'rnnkern', 'openblas'):.2f}",
              flush=True)


if __name__ == "__main__":
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    with gemm.openblas_at_one_thread():
        gemv(rounds)
    layers(rounds)
