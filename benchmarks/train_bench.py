"""Training speed alone: the training rows of `rnnkern bench --full` (rnnkern's forward_train + backward
against torch autograd's forward + backward, same weights, input and dy, gradients checked first),
without its forward variants, for every cell at one configuration.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONPATH=src python benchmarks/train_bench.py [default|small|large] [repeat]
"""

import sys

from rnnkern._bench import CELLS, CONFIGS, BenchConfig
from rnnkern._bench.report import summarize
from rnnkern._bench.timing import measure
from rnnkern._bench.training import build_training


def main(config="default", repeat=7):
    print(f"training (forward_train + backward vs torch forward + backward), config {config}: {CONFIGS[config]}")
    for cell in CELLS:
        cfg = BenchConfig(cell=cell, **CONFIGS[config])
        contenders, skipped = build_training(cfg)
        if skipped:
            raise SystemExit(f"{cell}: {skipped}")
        records = {r["variant"]: r for r in summarize(cfg, measure(contenders, repeat=repeat, warmup=1, pause=0.2),
                                                      mode="training")}
        ours, theirs = records["rnnkern"], records["torch"]
        print(f"  {cell:<5} rnnkern median {ours['median_ms']:9.2f} ms (min {ours['min_ms']:9.2f})   torch median "
              f"{theirs['median_ms']:9.2f} ms (min {theirs['min_ms']:9.2f})   ratio {ours['ratio_to_torch']:.2f}x "
              f"(median of per-round ratios; min/min {ours['min_ms'] / theirs['min_ms']:.2f}x)", flush=True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "default", int(sys.argv[2]) if len(sys.argv) > 2 else 7)
