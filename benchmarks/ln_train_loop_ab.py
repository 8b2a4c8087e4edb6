"""The LayerNorm cells' compiled training loops (lntrain) against bptt.py's Python loops, and against
rnnkern.LSTM's training, interleaved in one process: forward_train + backward of one layer.

The Python loop is what runs when the numba backend's ``train_loop`` and ``backward_loop`` decline
(they are swapped for ones that return False). Median ms and medians of per-round ratios.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONPATH=src python benchmarks/ln_train_loop_ab.py \\
        [T B H [LayerNormLSTM|LayerNormGRU [rounds]]]
"""

import statistics
import sys
import time

import numpy as np

import rnnkern
from rnnkern._backend.numba.backend import NumbaBackend


def main(T=100, B=8, H=256, cell="LayerNormLSTM", rounds=9):
    layer, plain = getattr(rnnkern, cell)(H, H, seed=0), rnnkern.LSTM(H, H, seed=0)
    x = np.random.default_rng(0).standard_normal((T, B, H)).astype(np.float32)
    dy = np.random.default_rng(1).standard_normal((T, B, H)).astype(np.float32)
    compiled = NumbaBackend.train_loop, NumbaBackend.backward_loop

    def train(module, loops):
        NumbaBackend.train_loop, NumbaBackend.backward_loop = loops
        y, _, tape = module.forward_train(x)
        module.backward(tape, dy)

    declined = (lambda self, *a: False,) * 2
    variants = {"compiled": lambda: train(layer, compiled), "python": lambda: train(layer, declined),
                "lstm": lambda: train(plain, compiled)}
    for run in variants.values():
        run()
    times = {name: [] for name in variants}
    names = list(variants)
    for r in range(rounds):
        for name in names[r % 3:] + names[:r % 3]:
            time.sleep(0.1)  # the previous variant's thread pool stops spinning
            start = time.perf_counter()
            variants[name]()
            times[name].append((time.perf_counter() - start) * 1e3)
    NumbaBackend.train_loop, NumbaBackend.backward_loop = compiled

    def ratio(a, b):
        return statistics.median(p / q for p, q in zip(times[a], times[b]))
    print(f"T={T} B={B} H={H} {cell}: " + " ".join(f"{k} {statistics.median(v):.1f} ms" for k, v in times.items())
          + f"  compiled/python {ratio('compiled', 'python'):.2f}  compiled/lstm {ratio('compiled', 'lstm'):.2f}")


if __name__ == "__main__":
    args = sys.argv[1:]
    main(*(int(a) for a in args[:3]), *args[3:4], *(int(a) for a in args[4:5]))
