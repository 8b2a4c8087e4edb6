"""One layer's forward with the GEMM provider as chosen (auto), and with RNNKERN_CPU_GEMM=mkl and
=openblas, against torch.nn, interleaved in one process (the variable is read at every GEMM's decision,
so it can change call by call). Median ms and, in brackets, the median of per-round ratios to torch.

Written for issue 17's batch-1 question: with the default choice the input projection runs on MKL's
pool and the steps' GEMVs on OpenBLAS; is one library for both faster?

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONPATH=src python benchmarks/gemm_provider_ab.py \\
        [LSTM|GRU|RNN [batch [hidden [rounds]]]]
"""

import os
import statistics
import sys
import time

import numpy as np

import rnnkern


def main(cell="LSTM", batch=1, hidden=256, rounds=15):
    import torch

    torch.set_num_threads(2)
    x = np.random.default_rng(0).standard_normal((100, batch, hidden)).astype(np.float32)
    layer, theirs, tx = getattr(rnnkern, cell)(hidden, hidden, seed=0), getattr(torch.nn, cell)(hidden, hidden), \
        torch.from_numpy(x)
    providers = {"auto": None, "mkl": "mkl", "openblas": "openblas"}

    def run(name):
        if name == "torch":
            with torch.no_grad():
                theirs(tx)
            return
        if providers[name]:
            os.environ["RNNKERN_CPU_GEMM"] = providers[name]
        try:
            layer(x)
        finally:
            os.environ.pop("RNNKERN_CPU_GEMM", None)

    names = list(providers) + ["torch"]
    times = {name: [] for name in names}
    for name in names:
        run(name)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            time.sleep(0.2)  # the previous variant's thread pool stops spinning
            start = time.perf_counter()
            run(name)
            times[name].append((time.perf_counter() - start) * 1e3)
    print(f"{cell} B={batch} H={hidden}: " + "  ".join(
        f"{k} {statistics.median(v):.2f} ms ({statistics.median(a / b for a, b in zip(v, times['torch'])):.2f})"
        for k, v in times.items()))


if __name__ == "__main__":
    args = sys.argv[1:]
    main(*args[:1], *(int(a) for a in args[1:4]))
