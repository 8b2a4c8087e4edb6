"""pytest-benchmark suite: every configuration x cell x variant of ``rnnkern bench``, one test each.

Run with ``make bench-suite`` (``pytest benchmarks --benchmark-only``); see conftest.py for the
environment variables that select configurations, device, dtype and rounds. Results are grouped per
configuration and cell, and each carries its GEMM GFLOP/s in extra_info.
"""

import pytest

from rnnkern._bench import CELLS, CONFIGS, VARIANTS, forward_flops

CASES = [pytest.param(config, cell, variant, id=f"{config}-{cell}-{variant}")
         for config in CONFIGS for cell in CELLS for variant in VARIANTS]


def _synchronised(variant):
    """The variant's call, waiting for the GPU to finish when it runs there."""
    if variant.timer == "cupy":
        import cupy

        def fn():
            variant.fn()
            cupy.cuda.Device().synchronize()
        return fn
    if variant.timer == "torch":
        import torch

        def fn():
            variant.fn()
            torch.cuda.synchronize()
        return fn
    return variant.fn


@pytest.mark.parametrize("config, cell, variant", CASES)
def test_forward(benchmark, built_variants, bench_rounds, config, cell, variant):
    cfg, variants, skipped = built_variants(config, cell)
    if variant in skipped:
        pytest.skip(f"{variant}: {skipped[variant]}")
    flops = forward_flops(cfg)
    benchmark.group = f"{config} {cfg.describe()}"
    benchmark.extra_info.update({"gflop": flops / 1e9, "device": cfg.device, "dtype": cfg.dtype})
    benchmark.pedantic(_synchronised(variants[variant]), rounds=bench_rounds, iterations=1, warmup_rounds=1)
    stats = getattr(benchmark, "stats", None)
    if stats is not None and stats.stats.median > 0:
        benchmark.extra_info["gflops"] = flops / stats.stats.median / 1e9
