"""The benchmark behind ``rnnkern bench`` and ``benchmarks/``: configurations, variants, timing, report.

Every variant of a cell computes the same forward pass from the same weights and input,
so their times compare like for like; ``blas-bound`` times only the GEMMs that forward needs.
"""

from .variants import CELLS, CONFIGS, VARIANTS, BenchConfig, build_variants, forward_flops

__all__ = ["CELLS", "CONFIGS", "VARIANTS", "BenchConfig", "build_variants", "forward_flops"]
