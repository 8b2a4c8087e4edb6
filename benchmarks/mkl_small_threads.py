"""Training's small step GEMMs on MKL: its thread pool against one thread, and against NumPy's OpenBLAS.

Training runs one GEMM per step in Python (forward: h (B, H) @ W_hh^T (H, G*H); backward: dgh (B, G*H)
@ W_hh (G*H, H)); at small batches each is a few million multiply-adds, where waking a pool may cost
more than it gives (the compiled loops already run MKL on one thread below
``gemm.ONE_THREAD_WORK``). Times 100 such GEMMs in a row, as a time loop calls them, with MKL's
pool, MKL on one thread (MKL_Set_Num_Threads_Local) and np.matmul, in alternation (median of per-round
ratios, rnnkern bench's timer).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONPATH=src python benchmarks/mkl_small_threads.py [rounds]
"""

import statistics
import sys

import numpy as np

from rnnkern._backend.numba import choice
from rnnkern._bench import Contender
from rnnkern._bench.report import paired_ratio
from rnnkern._bench.timing import measure

SHAPES = [(1, 256, 1024), (8, 256, 1024), (8, 1024, 256), (16, 256, 1024), (8, 512, 2048), (8, 2048, 512),
          (32, 512, 2048), (64, 256, 1024), (64, 512, 2048), (64, 2048, 512)]


def contenders(M, K, N, mkl):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((M, K), np.float32), rng.standard_normal((K, N), np.float32)
    out = np.empty((M, N), np.float32)

    def loop(fn):
        def run():
            for _ in range(100):
                fn(a, b, out)
        return run

    def one_thread(a, b, out):
        previous = mkl.lib.set_threads_local(1)
        try:
            mkl.matmul(a, b, out=out)
        finally:
            mkl.lib.set_threads_local(previous)

    return [Contender("openblas", loop(lambda a, b, out: np.matmul(a, b, out=out)), "host"),
            Contender("mkl-pool", loop(lambda a, b, out: mkl.matmul(a, b, out=out)), "host"),
            Contender("mkl-1", loop(one_thread), "host")]


def main(rounds=9):
    mkl = choice.mkl_provider()
    if mkl is None:
        sys.exit(f"needs MKL: {choice.mkl_unavailable_reason()}")
    print(f"{'M x K x N':>16} {'work':>6}  {'openblas us':>11} {'mkl pool':>9} {'mkl 1 thr':>9}  "
          f"{'1thr/pool':>9} {'1thr/openblas':>13}")
    for M, K, N in SHAPES:
        t = measure(contenders(M, K, N, mkl), rounds, 1, None, 0.2)
        us = {k: statistics.median(v) * 10 for k, v in t.items()}  # ms per 100 calls -> us per call
        print(f"{f'{M}x{K}x{N}':>16} {M * K * N / 2**20:>5.1f}M  {us['openblas']:>11.1f} {us['mkl-pool']:>9.1f} "
              f"{us['mkl-1']:>9.1f}  {paired_ratio(t['mkl-1'], t['mkl-pool']):>9.2f} "
              f"{paired_ratio(t['mkl-1'], t['openblas']):>13.2f}")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
