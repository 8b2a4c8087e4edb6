"""The benchmark behind ``rnnkern bench`` and ``benchmarks/``: configurations, contenders, timing, report.

A contender is one implementation timed. The CLI calls them variants (``--variants``, the table's
column, the JSON records' key), and keeps that word since users type it; inside the package a
"variant" is an ONNX option set. Every contender of a cell computes the same forward pass from the
same weights and input, so their times compare like for like; ``blas-bound`` times only the GEMMs
that forward needs.
"""

from .common import CELLS, CONFIGS, BenchConfig, Contender, forward_flops
from .contenders import CONTENDERS, DEFAULT_CONTENDERS, build_contenders

__all__ = ["CELLS", "CONFIGS", "CONTENDERS", "DEFAULT_CONTENDERS", "BenchConfig", "Contender", "build_contenders",
           "forward_flops"]
