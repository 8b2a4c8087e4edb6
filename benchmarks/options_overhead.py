"""What ONNX's options cost on the CPU's numba kernels (issue 16), two measurements:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/options_overhead.py speed
    python benchmarks/options_overhead.py first-call

``speed``: ``LSTM(512, 512, clip=1e30)`` (a clip that never bites: the same numbers, the option path)
against the default LSTM, T=100, I=H=512, float32, at batch 64 (the Python loop) and batch 4 (the
compiled time loop), forward and forward_train + backward, interleaved in one process (A B, B A, ...);
prints the medians and the median of the per-pair ratios.

``first-call``: the first forward + backward (batch 4 and 32, then training) of a default and of
non-default GRUs in a fresh process, three processes in a row on one empty numba cache folder: the
first compiles, the next ones should load everything from disk.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _device():
    """The CPU backend for the layers."""
    return "cpu"


def speed(repeat):
    import numpy as np
    import rnnkern
    from rnnkern._backend.numba import backend as _numba

    device = _device()
    for batch in (64, 4):
        x = np.random.default_rng(0).standard_normal((100, batch, 512)).astype("float32")
        layers = [rnnkern.LSTM(512, 512, seed=0, device=device, **o) for o in ({}, {"clip": 1e30})]

        def train(layer):
            y, _, tape = layer.forward_train(x)
            layer.backward(tape, np.ones_like(y))

        compiled = [layer._backend.time_loop is not None and batch <= _numba.LOOP_MAX_BATCH for layer in layers]
        for label, fn in (("forward", lambda layer: layer(x)), ("train", train)):
            for layer in layers:
                fn(layer)  # warm-up: compilation, BLAS threads
            times = [[], []]
            for round_ in range(repeat):
                for k in ((0, 1) if round_ % 2 == 0 else (1, 0)):
                    time.sleep(0.02)
                    start = time.perf_counter()
                    fn(layers[k])
                    times[k].append(time.perf_counter() - start)
            ratio = statistics.median(b / a for a, b in zip(*times))
            print(f"LSTM {label:8s} T=100 B={batch:<3d} I=H=512 float32: default {statistics.median(times[0]) * 1e3:8.2f} ms"
                  f"  clip=1e30 {statistics.median(times[1]) * 1e3:8.2f} ms  median ratio {ratio:.3f}"
                  f"{'  (compiled loop)' if all(compiled) else ''}", flush=True)


CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np
import rnnkern
from options_overhead import _device
layer = rnnkern.GRU(8, 8, seed=0, device=_device(), **json.loads(sys.argv[2]))
start = time.perf_counter()
for batch in (4, 32):
    layer(np.ones((3, batch, 8), "float32"))
y, _, tape = layer.forward_train(np.ones((3, 4, 8), "float32"))
layer.backward(tape, np.ones_like(y))
print(json.dumps(time.perf_counter() - start))
"""


def first_call():
    for options in ({}, {"activations": ["HardSigmoid", "Softsign"]}, {"clip": 1e30},
                    {"linear_before_reset": False, "clip": 2.0}):
        with tempfile.TemporaryDirectory() as cache:
            env = dict(os.environ, NUMBA_CACHE_DIR=cache)
            env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src")] + sys.path)
            seconds = [json.loads(subprocess.run([sys.executable, "-c", CHILD, str(ROOT / "benchmarks"),
                                                  json.dumps(options)], env=env, check=True, capture_output=True,
                                                 text=True).stdout) for _ in range(3)]
        print(f"GRU {json.dumps(options):45s} first forward+backward: process 1 {seconds[0]:.2f} s, "
              f"2 {seconds[1]:.2f} s, 3 {seconds[2]:.2f} s", flush=True)


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "speed"
    if what == "speed":
        speed(int(sys.argv[2]) if len(sys.argv) > 2 else 15)
    elif what == "first-call":
        first_call()
    else:
        sys.exit(__doc__)
