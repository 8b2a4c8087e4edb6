"""First-call cost of the numba kernels: the seconds each cell kind's first calls take (compiling,
or loading the compiled code from numba's cache), in a fresh process.

    python benchmarks/first_call.py            # cold (an empty cache), cached, and without a cache

Without a cache is a read-only install run by another user (issue 15): no folder numba may write
to, so every process compiles in memory and pays the cold cost again.

Each kind runs: a layer at batch 4 (the compiled time loop), a layer at batch 32 (the Python loop
with the fused steps), and forward_train + backward (the training steps), float32.
"""

import json
import os
import subprocess
import sys
import tempfile

CHILD = r"""
import json, sys, time
start = time.perf_counter()
import numpy as np
import rnnkern
from rnnkern._backend import cpu_kernels_description
imported = time.perf_counter() - start
out = {"import_s": imported, "kernels": cpu_kernels_description()}
for kind, opts in [("RNN", {}), ("LSTM", {}), ("GRU", {}), ("GRU", {"linear_before_reset": False})]:
    layer = getattr(rnnkern, kind)(8, 8, seed=0, **opts)
    start = time.perf_counter()
    for batch in (4, 32):
        layer(np.ones((3, batch, 8), "float32"))
    y, _, tape = layer.forward_train(np.ones((3, 4, 8), "float32"))
    layer.backward(tape, np.ones_like(y))
    out[kind + ("" if opts else "") + ("-lbr-false" if opts else "")] = time.perf_counter() - start
print(json.dumps(out))
"""


# numba's cache locators narrowed to the one for zip archives: none serves rnnkern's files, as
# where no cache folder is writable, so rnnkern compiles in memory (_numba_math.COMPILE_CACHE).
NO_CACHE = {"NUMBA_CACHE_LOCATOR_CLASSES": "ZipCacheLocator"}


def run(cache_dir=None):
    """The child's timings with numba's cache in ``cache_dir``, or with no usable cache (None)."""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env.update({"NUMBA_CACHE_DIR": cache_dir} if cache_dir else NO_CACHE)
    done = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def main():
    with tempfile.TemporaryDirectory() as cache_dir:
        cold, cached = run(cache_dir), run(cache_dir)
    uncached = run()
    print(f"CPU steps: {cold.pop('kernels')}")
    print(f"without a cache: {uncached.pop('kernels')}")
    cached.pop("kernels")
    print(f"{'':<14}{'cold s':>8}{'cached s':>10}{'no cache s':>12}")
    for key in cold:
        print(f"{key:<14}{cold[key]:>8.2f}{cached[key]:>10.2f}{uncached[key]:>12.2f}")


if __name__ == "__main__":
    main()
