"""Issue 17: the step GEMM of the default LSTM (64x512 @ 512x2048) with each GEMM provider at 1 thread
and at the library's pool (2 threads here), as the compiled loops call it (``choice.repeat_matmul``:
OpenBLAS's sgemm on W^T, MKL's sgemm_compute on W^T packed), and what two BLAS pools fighting cost.

GFLOP/s are set against the machine's peak: cores x 2 FMA units x SIMD lanes (16 float32 with
AVX-512, else 8) x 2 flops x the clock /proc/cpuinfo reports.

Pools fighting: a forward of the default LSTM on MKL, each call preceded by one NumPy matmul (OpenBLAS
at 2 threads, whose pool then spins), with rnnkern keeping OpenBLAS at one thread while MKL runs (as
it does) and without (``exclusive`` made a no-op), alternated; and the LSTM alone.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONPATH=src python benchmarks/gemm_providers.py [rounds]
"""

import contextlib
import os
import statistics
import sys
import time

import numpy as np

from rnnkern._backend.numba import blas, choice, shard


def peak():
    flags, mhz = "", 0.0
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags") and not flags:
                flags = line
            if line.startswith("cpu MHz") and not mhz:
                mhz = float(line.split(":")[1])
    lanes = 16 if " avx512f" in flags else 8
    return shard.cores() * 2 * lanes * 2 * mhz / 1e3, lanes, mhz


def gemms(rounds):
    M, K, N = 64, 512, 2048
    rng = np.random.default_rng(0)
    a = rng.standard_normal((M, K)).astype(np.float32)
    w_t = np.asfortranarray(rng.standard_normal((N, K)).astype(np.float32)).T
    c = np.empty((M, N), np.float32)
    runs = {}
    for p in choice.installed():
        for serial in (True, False):
            b = p.step_operand(w_t, M)
            runs[f"{p.name} {'1 thread' if serial else 'pool'}"] = (p, serial, b)
    times = {k: [] for k in runs}
    for name, (p, serial, b) in runs.items():  # warm-up (MKL's pool starts slow)
        with threads(p, serial):
            choice.repeat_matmul(a, b, c, 200)
    for r in range(rounds):
        for name in (list(runs) if r % 2 == 0 else list(runs)[::-1]):
            p, serial, b = runs[name]
            with threads(p, serial):
                start = time.perf_counter()
                choice.repeat_matmul(a, b, c, 50)
                times[name].append((time.perf_counter() - start) / 50)
    top, lanes, mhz = peak()
    flops = 2 * M * N * K
    print(f"step GEMM {M}x{K} @ {K}x{N} float32; peak {top:.0f} GFLOP/s ({shard.cores()} cores x 2 FMA x {lanes} lanes"
          f" x 2 x {mhz:.0f} MHz), {top / shard.cores():.0f} per core")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"  {name:<18} min {min(ts) * 1e6:7.1f} us  median {med * 1e6:7.1f} us  {flops / med / 1e9:6.1f} GFLOP/s"
              f"  {flops / med / 1e9 / top:.2f} of peak")


def threads(p, serial):
    stack = contextlib.ExitStack()
    if serial:
        stack.enter_context(p.serial())
        stack.enter_context(p.serial_thread())
    stack.enter_context(p.exclusive())
    return stack


def fight(rounds):
    import rnnkern
    from rnnkern._backend.numba import gemm

    if choice.mkl_provider() is None:
        print("pools fighting: MKL not installed")
        return
    os.environ["RNNKERN_CPU_GEMM"], os.environ["RNNKERN_CPU_SHARDS"] = "mkl", "1"
    layer = rnnkern.LSTM(512, 512, seed=0)
    x = np.random.default_rng(0).standard_normal((100, 64, 512)).astype(np.float32)
    m = np.random.default_rng(1).standard_normal((512, 512)).astype(np.float32)
    keep = gemm.MKL.exclusive

    def free(self):
        return contextlib.nullcontext()

    variants = {"alone": (keep, False), "after numpy matmul, OpenBLAS kept at 1 thread": (keep, True),
                "after numpy matmul, both pools free": (free, True)}
    times = {k: [] for k in variants}
    for r in range(rounds):
        for name in (list(variants) if r % 2 == 0 else list(variants)[::-1]):
            exclusive, user_gemm = variants[name]
            gemm.MKL.exclusive = exclusive
            layer(x)
            if user_gemm:
                m @ m
            start = time.perf_counter()
            layer(x)
            times[name].append(time.perf_counter() - start)
    gemm.MKL.exclusive = keep
    base = times["alone"]
    print("LSTM forward, default config, MKL provider, unsharded:")
    for name, ts in times.items():
        ratio = statistics.median(t / b for t, b in zip(ts, base))
        print(f"  {name:<48} min {min(ts) * 1e3:7.1f} ms  median {statistics.median(ts) * 1e3:7.1f} ms  "
              f"{ratio:.2f}x alone")


if __name__ == "__main__":
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 9
    print(f"load average {os.getloadavg()[0]:.2f}; OpenBLAS threads {blas.openblas_threads()}")
    gemms(rounds)
    fight(rounds)
    print(f"load average {os.getloadavg()[0]:.2f}")
