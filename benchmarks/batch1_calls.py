"""Batch-1 layers (T=100, I=H=256) called cold and warm, against ONNX Runtime and torch.nn, interleaved in
one process: each timed call comes 0.2 s after the previous variant's (as in ``rnnkern bench``, so that
no thread pool still spins), either at once ("cold") or after ``warm`` untimed calls of its own. And the
same layers with NumPy's OpenBLAS held at one thread for the whole call against its two.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONPATH=src python benchmarks/batch1_calls.py [warm [rounds]]
"""

import statistics
import sys
import time

import numpy as np

import rnnkern
from rnnkern._backend.numba import blas
from rnnkern._bench import ort_contender
from rnnkern._bench.common import BenchConfig

H, T = 256, 100


def _variants(cell):
    import torch

    torch.set_num_threads(2)
    layer = getattr(rnnkern, cell)(H, H, seed=0)
    x = np.random.default_rng(0).uniform(-1, 1, (T, 1, H)).astype(np.float32)
    theirs = getattr(torch.nn, cell)(H, H)
    theirs.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in layer.state_dict().items()})
    tx = torch.from_numpy(x)

    def torch_fn():
        with torch.no_grad():
            return theirs(tx)

    def one_thread():
        previous = blas.openblas_threads(1)
        try:
            return layer(x)
        finally:
            blas.openblas_threads(previous)

    ort = ort_contender.make(BenchConfig(cell.lower(), T, 1, H, H), layer, x)
    return {"rnnkern": lambda: layer(x), "rnnkern-1-thread": one_thread, "ort": ort.fn, "torch": torch_fn}


def main(warm=3, rounds=13):
    for cell in ("LSTM", "GRU", "RNN"):
        fns = _variants(cell)
        for calls in (0, warm):
            names, times = list(fns), {name: [] for name in fns}
            for r in range(rounds):
                for name in names[r % len(names):] + names[:r % len(names)]:
                    time.sleep(0.2)
                    for _ in range(calls):
                        fns[name]()
                    start = time.perf_counter()
                    fns[name]()
                    times[name].append((time.perf_counter() - start) * 1e3)

            def ratio(a, b):
                return statistics.median(p / q for p, q in zip(times[a], times[b]))
            print(f"{cell} {'cold' if calls == 0 else f'warm ({calls} calls first)'}: "
                  + "  ".join(f"{n} {statistics.median(v):.3f} ms" for n, v in times.items())
                  + f"; rnnkern / ORT {ratio('rnnkern', 'ort'):.2f}, / torch {ratio('rnnkern', 'torch'):.2f}, "
                  f"one thread / two {ratio('rnnkern-1-thread', 'rnnkern'):.2f}", flush=True)


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
