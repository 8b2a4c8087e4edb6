"""Training speed: rnnkern's forward_train + backward against PyTorch autograd's forward + backward
(same weights, input and output gradient), timed in alternation with rnnkern bench's timer.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONPATH=src python benchmarks/train_bench.py [default|small|large] [repeat]
"""

import statistics
import sys

import numpy as np

import rnnkern
from rnnkern._bench import CONFIGS
from rnnkern._bench.timing import measure
from rnnkern._bench.torch_contenders import setup
from rnnkern._bench import Contender

NAMES = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}


def contenders(cell, cfg):
    import torch

    setup("cpu")
    T, B, I, H = cfg["seq_len"], cfg["batch"], cfg["input_size"], cfg["hidden_size"]
    layer = getattr(rnnkern, NAMES[cell])(I, H, seed=0)
    rng = np.random.default_rng(0)
    x, dy = rng.uniform(-1, 1, (T, B, I)).astype("float32"), rng.uniform(-1, 1, (T, B, H)).astype("float32")
    module = getattr(torch.nn, NAMES[cell])(I, H)
    module.load_state_dict({k: torch.from_numpy(v) for k, v in layer.state_dict().items()})
    xt, dyt = torch.from_numpy(x).requires_grad_(), torch.from_numpy(dy)

    def ours():
        y, _, tape = layer.forward_train(x)
        return layer.backward(tape, dy)

    def theirs():
        module.zero_grad(set_to_none=True)
        xt.grad = None
        module(xt)[0].backward(dyt)

    return [Contender("rnnkern", ours, "host"), Contender("torch", theirs, "host")]


def main(config="default", repeat=7):
    cfg = CONFIGS[config]
    print(f"training (forward_train + backward vs torch forward + backward), config {config}: {cfg}")
    for cell in ("lstm", "gru", "rnn"):
        times = measure(contenders(cell, cfg), repeat=repeat, warmup=1, pause=0.2)
        med = {k: statistics.median(v) for k, v in times.items()}
        mins = {k: min(v) for k, v in times.items()}
        print(f"  {cell:<5} rnnkern median {med['rnnkern']:9.2f} ms (min {mins['rnnkern']:9.2f})   torch median "
              f"{med['torch']:9.2f} ms (min {mins['torch']:9.2f})   ratio {med['rnnkern'] / med['torch']:.2f}x "
              f"(min/min {mins['rnnkern'] / mins['torch']:.2f}x)", flush=True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "default", int(sys.argv[2]) if len(sys.argv) > 2 else 7)
