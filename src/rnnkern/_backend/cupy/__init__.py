"""The GPU backend on CuPy: ``backend`` (``CupyBackend``: cuBLAS GEMMs and one fused kernel per step),
``kernels`` (the one table of fused kernels, built for CuPy, NVRTC and g++ from ``kernels/*.cuh``),
``lnkernels`` (the LayerNorm cells' raw kernels: a row group per batch row, kernels/ln*.cuh) and
``nvrtc`` (a ctypes binding of NVRTC, so every kernel compiles without a GPU, with CUDA 12 and 13)."""
