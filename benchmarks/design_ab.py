"""A/B timings behind issue 9's design choices, each pair run in alternation in one process:

  kernels  numba fused steps vs the NumPy ufunc steps (Python time loop for both)
  loop     the compiled time loop vs the Python loop (numba steps in both), by batch size
  layout   weights column-major (W^T C-contiguous, as stored now) vs row-major (PyTorch's own)
  chunks   the input projection in chunks of CHUNK_ROWS rows vs one GEMM over all T (T = 100)

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONPATH=src python benchmarks/design_ab.py [what ...]
"""

import statistics
import sys

import numpy as np

import rnnkern
from rnnkern._recurrences import sequence as _sequence
from rnnkern._backend.numba import backend as _numba
from rnnkern._backend import cpu_backend
from rnnkern._bench.timing import measure
from rnnkern._bench import Contender

NAMES = ("LSTM", "GRU", "RNN")


def _with(module, attr, value, fn):
    def run():
        old = getattr(module, attr)
        setattr(module, attr, value)
        try:
            return fn()
        finally:
            setattr(module, attr, old)
    return run


def _layer(kind, B, H, T=100, **kw):
    layer = getattr(rnnkern, kind)(H, H, seed=0, **kw)
    x = np.random.default_rng(0).uniform(-1, 1, (T, B, H)).astype("float32")
    return layer, x


def pairs(what):
    """(label, contender a, contender b) to compare."""
    for kind in NAMES:
        if what == "kernels":
            for B, H in ((64, 512), (1, 256)):
                a, x = _layer(kind, B, H, device=cpu_backend("numba"))
                b = getattr(rnnkern, kind).from_state_dict(a.state_dict(), device=cpu_backend("numpy"))
                yield (f"{kind} B={B} H={H}",
                       Contender("numba", _with(_numba, "LOOP_MAX_BATCH", 0, lambda: a(x)), "host"),
                       Contender("numpy", lambda: b(x), "host"))
        elif what == "loop":
            for B, H in ((1, 256), (8, 256), (16, 512), (64, 512)):
                a, x = _layer(kind, B, H)
                yield (f"{kind} B={B} H={H}",
                       Contender("compiled", _with(_numba, "LOOP_MAX_BATCH", 10**9, lambda: a(x)), "host"),
                       Contender("python", _with(_numba, "LOOP_MAX_BATCH", 0, lambda: a(x)), "host"))
        elif what == "layout":
            for B, H in ((64, 512), (1, 256)):
                a, x = _layer(kind, B, H)
                b, _ = _layer(kind, B, H)
                b._params = {k: np.ascontiguousarray(v) for k, v in b._params.items()}  # PyTorch's row-major
                yield (f"{kind} B={B} H={H}", Contender("col-major", lambda: a(x), "host"),
                       Contender("row-major", lambda: b(x), "host"))
        elif what == "chunks":
            for B, H in ((64, 512), (1, 256)):
                a, x = _layer(kind, B, H)
                yield (f"{kind} B={B} H={H}", Contender("chunked", lambda: a(x), "host"),
                       Contender("one GEMM", _with(_sequence, "CHUNK_ROWS", 10**12, lambda: a(x)), "host"))


def main(whats, repeat=9):
    for what in whats:
        print(f"== {what}")
        for label, a, b in pairs(what):
            times = measure([a, b], repeat=repeat, warmup=1, pause=0.1)
            ma, mb = statistics.median(times[a.name]), statistics.median(times[b.name])
            print(f"  {label:<18} {a.name} {ma:9.2f} ms (min {min(times[a.name]):9.2f})  {b.name} {mb:9.2f} ms "
                  f"(min {min(times[b.name]):9.2f})  {a.name}/{b.name} {ma / mb:.2f}x "
                  f"(min/min {min(times[a.name]) / min(times[b.name]):.2f}x)", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or ["kernels", "loop", "layout", "chunks"])
