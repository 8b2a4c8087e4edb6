"""What stands in the way of a faster forward on this CPU (issue 17): the GEMMs' own rate.

Prints the machine's float32 FMA peak (cores x 2 FMA units x SIMD lanes x 2 flops x the clock read
from /proc/cpuinfo; the lanes from the CPU flags: 16 with AVX-512, 8 with AVX2), then, timed in
alternation with rnnkern bench's timer (median of per-round ratios):

- a large square SGEMM (2048^3), the rate a BLAS sustains at its best here, through NumPy's OpenBLAS
  and through PyTorch's BLAS (MKL) at the bench's thread count;
- each cell's step GEMM at the bench's default and small configurations, h (B, H) @ W_hh^T (H, G*H)
  into a preallocated output, as rnnkern's forward calls it (W_hh^T C-contiguous), through both.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONPATH=src python benchmarks/gemm_rate.py [rounds]
"""

import statistics
import sys

import numpy as np

from rnnkern._bench import CONFIGS, Contender
from rnnkern._bench.common import GATES
from rnnkern._bench.machine import bench_threads
from rnnkern._bench.report import paired_ratio
from rnnkern._bench.timing import measure


def clock_ghz():
    """The clock /proc/cpuinfo reports for CPU 0 (a VM reports its nominal clock, not turbo), or None."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("cpu MHz"):
                    return float(line.split(":")[1]) / 1e3
    except OSError:
        pass
    return None


def simd_lanes():
    with open("/proc/cpuinfo") as f:
        flags = next((line for line in f if line.startswith("flags")), "").split()
    return 16 if "avx512f" in flags else 8 if "avx2" in flags else 4


def pair(a_shape, b_shape, calls):
    """NumPy and torch contenders computing a @ b ``calls`` times into a preallocated output."""
    import torch

    rng = np.random.default_rng(0)
    a = rng.uniform(-1, 1, a_shape).astype(np.float32)
    b = rng.uniform(-1, 1, b_shape).astype(np.float32)
    out = np.empty((a_shape[0], b_shape[1]), np.float32)
    ta, tb, tout = torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(out.copy())

    def numpy_fn():
        for _ in range(calls):
            np.matmul(a, b, out=out)

    def torch_fn():
        for _ in range(calls):
            torch.matmul(ta, tb, out=tout)

    return [Contender("numpy", numpy_fn, "host"), Contender("torch", torch_fn, "host")]


def row(label, a_shape, b_shape, calls, rounds, peak):
    flops = 2 * a_shape[0] * a_shape[1] * b_shape[1] * calls
    times = measure(pair(a_shape, b_shape, calls), repeat=rounds, warmup=2, pause=0.2)
    rate = {k: flops / (statistics.median(v) * 1e-3) / 1e9 for k, v in times.items()}
    per_call = {k: statistics.median(v) * 1e3 / calls for k, v in times.items()}
    print(f"  {label:<28} {a_shape} @ {b_shape}: NumPy (OpenBLAS) {per_call['numpy']:8.1f} us {rate['numpy']:6.1f} "
          f"GFLOP/s ({rate['numpy'] / peak:.2f} of peak); torch (MKL) {per_call['torch']:8.1f} us "
          f"{rate['torch']:6.1f} GFLOP/s ({rate['torch'] / peak:.2f}); NumPy/torch "
          f"{paired_ratio(times['numpy'], times['torch']):.2f}", flush=True)


def main(rounds=9):
    import torch

    threads = bench_threads()
    torch.set_num_threads(threads)
    ghz, lanes = clock_ghz(), simd_lanes()
    peak = threads * 2 * lanes * 2 * ghz
    print(f"float32 peak: {threads} cores x 2 FMA units x {lanes} lanes x 2 flops x {ghz:.2f} GHz "
          f"(/proc/cpuinfo) = {peak:.0f} GFLOP/s")
    row("large SGEMM", (2048, 2048), (2048, 2048), 1, rounds, peak)
    for config in ("default", "small"):
        c = CONFIGS[config]
        B, H = c["batch"], c["hidden_size"]
        for cell, G in GATES.items():
            row(f"{config} {cell} step GEMM", (B, H), (H, G * H), 100 if B > 1 else 1000, rounds, peak)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 9)
