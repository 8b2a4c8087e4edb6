"""Issue 17's A/B: each GEMM provider, the batch sharded across the cores or not, against torch.nn.

For each cell and configuration, the variants run in alternating order in one process (the provider
and sharding forced with RNNKERN_CPU_GEMM and RNNKERN_CPU_SHARDS, read at each call); a pause and a
warm-up call before each timing (the prototype's trap 3: idle pools spin). Prints each variant's min
and median, and the median of per-round ratios to torch.nn. Outputs are checked against the first
variant's (max difference).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONPATH=src \
        python benchmarks/gemm_shard_ab.py [rounds] [cells] [configs]
"""

import os
import statistics
import sys
import time

import numpy as np

import rnnkern

CONFIGS = {"default": (100, 64, 512, 512), "small": (100, 1, 256, 256), "b4": (100, 4, 256, 256),
           "b16": (100, 16, 512, 512)}
VARIANTS = [("openblas", "1"), ("openblas", "2"), ("mkl", "1"), ("mkl", "2")]


def main(rounds=7, cells=("lstm", "gru", "rnn"), configs=("default", "small")):
    import torch

    print(f"load average {os.getloadavg()[0]:.2f}, torch {torch.__version__} ({torch.get_num_threads()} threads)")
    for config in configs:
        T, B, I, H = CONFIGS[config]
        for cell in cells:
            run(cell, config, T, B, I, H, rounds, torch)
    print(f"load average {os.getloadavg()[0]:.2f}")


def run(cell, config, T, B, I, H, rounds, torch):
    cls = {"lstm": rnnkern.LSTM, "gru": rnnkern.GRU, "rnn": rnnkern.RNN}[cell]
    layer = cls(I, H, seed=0)
    x = np.random.default_rng(0).standard_normal((T, B, I)).astype(np.float32)
    peer = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cell](I, H)
    peer.load_state_dict({k: torch.from_numpy(v) for k, v in layer.state_dict().items()})
    xt = torch.from_numpy(x)
    variants = {f"{p} shards={s}": (p, s) for p, s in VARIANTS if s == "1" or B // 2 >= int(s)}
    variants["torch"] = None
    outputs, times = {}, {name: [] for name in variants}

    def call(name):
        spec = variants[name]
        if spec is None:
            with torch.inference_mode():
                return peer(xt)[0].numpy()
        os.environ["RNNKERN_CPU_GEMM"], os.environ["RNNKERN_CPU_SHARDS"] = spec
        return layer(x)[0]

    for name in variants:
        outputs[name] = call(name)
    names = list(variants)
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            time.sleep(0.05)
            call(name)
            start = time.perf_counter()
            call(name)
            times[name].append(time.perf_counter() - start)
    first = outputs[names[0]]
    print(f"{config} T={T} B={B} I={I} H={H} {cell}:")
    for name in names:
        ts = times[name]
        ratio = statistics.median(a / b for a, b in zip(ts, times["torch"]))
        print(f"  {name:<22} min {min(ts) * 1e3:8.2f} ms  median {statistics.median(ts) * 1e3:8.2f} ms  "
              f"vs torch {ratio:5.2f}x  max diff {float(np.abs(outputs[name] - first).max()):.1e}")
    for k in ("RNNKERN_CPU_GEMM", "RNNKERN_CPU_SHARDS"):
        os.environ.pop(k, None)


if __name__ == "__main__":
    args = sys.argv[1:]
    main(int(args[0]) if args else 7, tuple(args[1].split(",")) if len(args) > 1 else ("lstm", "gru", "rnn"),
         tuple(args[2].split(",")) if len(args) > 2 else ("default", "small"))
