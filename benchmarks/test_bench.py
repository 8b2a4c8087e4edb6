"""pytest-benchmark suite: every configuration x cell x contender of ``rnnkern bench``, one test each.

Run with ``make bench-suite`` (``pytest benchmarks --benchmark-only``); see conftest.py for the
environment variables that select configurations, device, dtype and rounds. Results are grouped per
configuration and cell, and each carries its GEMM GFLOP/s in extra_info.
"""

import pytest

from rnnkern._bench import CELLS, CONFIGS, CONTENDERS, forward_flops

CASES = [pytest.param(config, cell, contender, id=f"{config}-{cell}-{contender}")
         for config in CONFIGS for cell in CELLS for contender in CONTENDERS]


def _synchronised(contender):
    """The contender's call, waiting for the GPU to finish when it runs there."""
    if contender.timer == "cupy":
        import cupy

        def fn():
            contender.fn()
            cupy.cuda.Device().synchronize()
        return fn
    if contender.timer == "torch":
        import torch

        def fn():
            contender.fn()
            torch.cuda.synchronize()
        return fn
    return contender.fn


@pytest.mark.parametrize("config, cell, contender", CASES)
def test_forward(benchmark, built_contenders, bench_rounds, config, cell, contender):
    cfg, contenders, skipped = built_contenders(config, cell)
    if contender in skipped:
        pytest.skip(f"{contender}: {skipped[contender]}")
    flops = forward_flops(cfg)
    benchmark.group = f"{config} {cfg.describe()}"
    benchmark.extra_info.update({"gflop": flops / 1e9, "device": cfg.device, "dtype": cfg.dtype})
    benchmark.pedantic(_synchronised(contenders[contender]), rounds=bench_rounds, iterations=1, warmup_rounds=1)
    stats = getattr(benchmark, "stats", None)
    if stats is not None and stats.stats.median > 0:
        benchmark.extra_info["gflops"] = flops / stats.stats.median / 1e9
