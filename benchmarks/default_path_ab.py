"""A/B of the default path between two source trees, in one process, interleaved.

Loads ``rnnkern`` from each tree's ``src/`` under its own package name (the package uses relative
imports only), builds the same layer in both (same seed, same weights) and times forward
(``layer(x)``) and training (``forward_train`` + ``backward``) in alternation, A B B A A B ..., so that
machine load affects both alike. Prints the median time of each and the ratio B/A.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/default_path_ab.py /work/main . \
        --cell lstm --repeat 15

Used for issue 12: the ONNX options must leave the default path exactly as fast as before.
"""

import argparse
import importlib.util
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

# numba's disk cache records the module name it compiled under (rnnkern_a / rnnkern_b here): keep it
# out of the trees' __pycache__, where a later plain ``import rnnkern`` would trip over it.
os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="rnnkern_ab_numba_")

import numpy as np


def load(tree, alias):
    init = Path(tree) / "src" / "rnnkern" / "__init__.py"
    spec = importlib.util.spec_from_file_location(alias, init, submodule_search_locations=[str(init.parent)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[alias] = module
    spec.loader.exec_module(module)
    return module


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("tree_a")
    p.add_argument("tree_b")
    p.add_argument("--cell", default="lstm", choices=["lstm", "gru", "rnn"])
    p.add_argument("--seq-len", type=int, default=100)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--input-size", type=int, default=512)
    p.add_argument("--hidden-size", type=int, default=512)
    p.add_argument("--repeat", type=int, default=10)
    p.add_argument("--dtype", default="float32")
    args = p.parse_args(argv)
    mods = [load(args.tree_a, "rnnkern_a"), load(args.tree_b, "rnnkern_b")]
    name = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}[args.cell]
    layers = [getattr(m, name)(args.input_size, args.hidden_size, seed=0, dtype=args.dtype) for m in mods]
    x = np.random.default_rng(0).standard_normal((args.seq_len, args.batch, args.input_size)).astype(args.dtype)
    ya, yb = layers[0](x)[0], layers[1](x)[0]
    assert np.array_equal(ya, yb), "the two trees disagree on the default path's output"

    def forward(layer):
        layer(x)

    def train(layer):
        y, _, tape = layer.forward_train(x)
        layer.backward(tape, np.ones_like(y))

    for label, fn in (("forward", forward), ("train", train)):
        times = [[], []]
        for layer in layers:  # warm-up (numba compilation, BLAS threads)
            fn(layer)
        for round_ in range(args.repeat):
            for k in ((0, 1) if round_ % 2 == 0 else (1, 0)):  # A B, then B A: no order advantage
                layer = layers[k]
                time.sleep(0.05)
                start = time.perf_counter()
                fn(layer)
                times[k].append(time.perf_counter() - start)
        a, b = (statistics.median(t) for t in times)
        print(f"{name} {label:8s} T={args.seq_len} B={args.batch} I={args.input_size} H={args.hidden_size} "
              f"{args.dtype}: A {a * 1e3:8.2f} ms  B {b * 1e3:8.2f} ms  B/A {b / a:.3f}")


if __name__ == "__main__":
    main()
