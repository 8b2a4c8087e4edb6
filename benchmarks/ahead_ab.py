"""The input projection ahead on the other core (``_backend/numba/ahead.py``) against before the loop,
at batch 1 (T=100, I=H=256 by default), with ONNX Runtime and torch.nn beside them, interleaved in one
process; each timed call 0.2 s after the previous variant's ("cold", as ``rnnkern bench`` runs them) or
after ``warm`` untimed calls of its own.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONPATH=src python benchmarks/ahead_ab.py [warm [rounds [T]]]
"""

import statistics
import sys
import time

import numpy as np

import rnnkern
from rnnkern._backend.numba import ahead
from rnnkern._bench import ort_contender
from rnnkern._bench.common import BenchConfig

H = 256


def _variants(cell, T):
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

    def before():
        least, ahead.MIN_STEPS = ahead.MIN_STEPS, 1 << 62
        try:
            return layer(x)
        finally:
            ahead.MIN_STEPS = least

    ort = ort_contender.make(BenchConfig(cell.lower(), T, 1, H, H), layer, x)
    np.testing.assert_allclose(layer(x)[0], before()[0], rtol=1e-5, atol=1e-6)
    return {"ahead": lambda: layer(x), "before": before, "ort": ort.fn, "torch": torch_fn}


def main(warm=3, rounds=13, T=100):
    for cell in ("LSTM", "GRU", "RNN"):
        fns = _variants(cell, T)
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
            print(f"{cell} T={T} {'cold' if calls == 0 else f'warm ({calls} calls first)'}: "
                  + "  ".join(f"{n} {statistics.median(v):.3f} ms" for n, v in times.items())
                  + f"; ahead / before {ratio('ahead', 'before'):.2f}, ahead / ORT {ratio('ahead', 'ort'):.2f}, "
                  f"/ torch {ratio('ahead', 'torch'):.2f}", flush=True)


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:4]))
