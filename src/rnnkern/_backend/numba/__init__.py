"""The CPU backend with numba (``rnnkern[fast]``): NumPy's arrays and GEMMs, each step one compiled kernel.

- ``backend``: ``NumbaBackend``, the step API over the kernels, and the compiled time loop's entry;
- ``steps``: the one source of every cell's kernels and time loops, options as compile-time constants;
- ``lnsteps``: the LayerNorm LSTM's and GRU's fused steps (issue 20), zoneout as a compile-time variant;
- ``options``: the default options compiled into ``steps`` (generated);
- ``specialise``: ``steps`` for any other CellMath, generated and cached on disk;
- ``scalar``: vectorisable float32 exp/tanh/sigmoid and the compile-cache decision;
- ``cachekey``: every on-disk kernel cache of this folder keyed on the whole folder's contents;
- ``blas``: NumPy's own OpenBLAS (or MKL's packed GEMM) called from compiled code, leading dimensions checked;
- ``gemm``: the GEMM providers (openblas, mkl) and their thread settings; ``mkl``: MKL loaded with ctypes;
- ``choice``: which provider runs each kind of GEMM, measured at first use and kept on disk;
- ``shard``: the compiled loop with the batch split across the cores.
"""
