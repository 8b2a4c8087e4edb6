"""Batch 1 split by hidden units (shard.run_split) against one loop, ONNX Runtime and torch.nn, per cell,
interleaved in one process: RNNKERN_CPU_SHARDS is read at every call, so the two rnnkern variants are
the same layer with the variable set to 2 (two parts) and to 1 (one loop). Median ms and, in brackets,
the medians of per-round ratios to the one-part loop, to ONNX Runtime and to torch.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONPATH=src python benchmarks/unit_split_ab.py \\
        [cells [hidden [rounds [batch [peers [steps]]]]]]   # e.g. LSTM,GRU,RNN 256 21 1 1 100

peers 0 leaves torch and ONNX Runtime out (run it with RNNKERN_CPU_GEMM=openblas for a process with one
thread pool). ``pair`` as the first argument times what a split's parts run side by side: one thread's
GEMV on half of an LSTM's W_hh^T (H=256), alone and with a second thread running the other half at once.
"""

import os
import statistics
import sys
import time

import numpy as np

import rnnkern
from rnnkern._bench import ort_contender
from rnnkern._bench.common import BenchConfig


def contenders(cell, hidden, batch, peers=1, steps=100):
    layer = getattr(rnnkern, cell)(hidden, hidden, seed=0)
    x = np.random.default_rng(0).uniform(-1, 1, (steps, batch, hidden)).astype(np.float32)

    def rnnkern_with(shards):
        def fn():
            os.environ["RNNKERN_CPU_SHARDS"] = shards
            try:
                return layer(x)[0]
            finally:
                os.environ.pop("RNNKERN_CPU_SHARDS", None)
        return fn

    fns = {"split": rnnkern_with("2"), "one": rnnkern_with("1")}
    if peers:
        import torch

        torch.set_num_threads(2)
        theirs = getattr(torch.nn, cell)(hidden, hidden)
        theirs.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in layer.state_dict().items()})
        tx = torch.from_numpy(x)

        def torch_fn():
            with torch.no_grad():
                return theirs(tx)[0].numpy()
        fns["torch"] = torch_fn
        ort = ort_contender.make(BenchConfig(cell.lower(), steps, batch, hidden, hidden), layer, x)
        if not isinstance(ort, str):
            fns["ort"] = ort.fn
    return fns


def pair(calls=2000):
    """us per GEMV (1x256 @ 256x512, one thread) alone and with another thread running one at once."""
    import threading

    from numba import njit

    from rnnkern._backend.numba import blas

    @njit(nogil=True)
    def repeat(x, w, y, n):
        for _ in range(n):
            blas.matmul_into(x, w, y)

    rng = np.random.default_rng(0)
    ws = [rng.standard_normal((256, 512)).astype(np.float32) for _ in range(2)]
    x, ys = rng.standard_normal((1, 256)).astype(np.float32), [np.empty((1, 512), np.float32) for _ in range(2)]
    previous = blas.openblas_threads(1)
    try:
        for q in range(2):
            repeat(x, ws[q], ys[q], 10)
        alone, together = [], []
        for _ in range(9):
            start = time.perf_counter()
            repeat(x, ws[0], ys[0], calls)
            alone.append((time.perf_counter() - start) / calls * 1e6)
            other = threading.Thread(target=repeat, args=(x, ws[1], ys[1], calls))
            start = time.perf_counter()
            other.start()
            repeat(x, ws[0], ys[0], calls)
            other.join()
            together.append((time.perf_counter() - start) / calls * 1e6)
    finally:
        blas.openblas_threads(previous)
    print(f"GEMV 1x256x512 on one thread: alone {statistics.median(alone):.2f} us, two at once "
          f"{statistics.median(together):.2f} us ({statistics.median(together) / statistics.median(alone):.2f}x)")
    print(f"the barrier alone, two threads: {barrier():.2f} us a step")


def barrier(steps=20000):
    """us per step of two threads doing nothing but units' barrier (median of 9 runs)."""
    import threading

    from numba import njit

    from rnnkern._backend.numba import units

    @njit(nogil=True)
    def run(flags, me, n):
        for s in range(n):
            units.store_release(flags, units.LINE * (me + 1), s + 1)
            units.wait_all(flags, 2, s + 1)

    times = []
    for _ in range(9):
        flags = np.zeros(units.LINE * 3, np.int64)
        other = threading.Thread(target=run, args=(flags, 1, steps))
        start = time.perf_counter()
        other.start()
        run(flags, 0, steps)
        other.join()
        times.append((time.perf_counter() - start) / steps * 1e6)
    return statistics.median(times)


def main(cells="LSTM,GRU,RNN", hidden=256, rounds=21, batch=1, peers=1, steps=100):
    if cells == "pair":
        return pair()
    for cell in cells.split(","):
        fns = contenders(cell, hidden, batch, peers, steps)
        assert np.allclose(fns["split"](), fns["one"](), atol=1e-5)
        names, times = list(fns), {name: [] for name in fns}
        for r in range(rounds):
            for name in names[r % len(names):] + names[:r % len(names)]:
                time.sleep(0.2)  # the previous variant's thread pool stops spinning (timing.py)
                start = time.perf_counter()
                fns[name]()
                times[name].append((time.perf_counter() - start) * 1e3)

        def ratio(name, to):
            return statistics.median(a / b for a, b in zip(times[name], times[to])) if to in times else float("nan")
        print(f"{cell} T={steps} B={batch} H={hidden}, {rounds} rounds: " + "  ".join(
            f"{n} {statistics.median(v):.3f} ms (/one {ratio(n, 'one'):.2f}, /ort {ratio(n, 'ort'):.2f}, "
            f"/torch {ratio(n, 'torch'):.2f})" for n, v in times.items()), flush=True)


if __name__ == "__main__":
    args = sys.argv[1:]
    main(*args[:1], *(int(a) for a in args[1:6]))
