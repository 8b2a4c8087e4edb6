"""Trial of MKL's packed GEMM for the recurrent product (issue 9): the default LSTM's step GEMM,
gh (64, 2048) = h (64, 512) @ W_hh^T (512, 2048), float32, timed three ways in alternation:
NumPy's matmul (its OpenBLAS; W_hh^T C-contiguous, as rnnkern stores it), MKL's cblas_sgemm, and
MKL's cblas_sgemm_compute on W_hh^T packed once by cblas_sgemm_pack (what oneDNN's RNN does).

Not part of rnnkern: MKL was installed into a throwaway venv only for this measurement,
    python -m venv /tmp/mklvenv && /tmp/mklvenv/bin/pip install --no-deps mkl intel-openmp
    MKL_LIB=/tmp/mklvenv/lib python benchmarks/packed_gemm_trial.py
"""

import ctypes
import os
import statistics
import time

import numpy as np

LIB = os.environ.get("MKL_LIB", "/tmp/mklvenv/lib")
ROW_MAJOR, NO_TRANS, PACKED, B_MATRIX = 101, 111, 151, 162


def load_mkl(threads):
    ctypes.CDLL(os.path.join(LIB, "libiomp5.so"), mode=ctypes.RTLD_GLOBAL)
    mkl = ctypes.CDLL(os.path.join(LIB, "libmkl_rt.so.3"), mode=ctypes.RTLD_GLOBAL)
    mkl.MKL_Set_Num_Threads(threads)
    mkl.cblas_sgemm_pack_get_size.restype = ctypes.c_size_t
    return mkl


def main(threads, B=64, H=512, G=4, calls=20, rounds=15, pause=0.2):
    """Time the three at ``threads`` threads each (NumPy's OpenBLAS limited by threadpoolctl)."""
    import threadpoolctl

    mkl = load_mkl(threads)
    with threadpoolctl.threadpool_limits(threads, user_api="blas"):
        run(mkl, threads, B, H, G, calls, rounds, pause)


def run(mkl, threads, B, H, G, calls, rounds, pause):
    rng = np.random.default_rng(0)
    w_t = (rng.standard_normal((H, G * H)) / np.sqrt(H)).astype(np.float32)
    h = rng.standard_normal((B, H), dtype=np.float32)
    out = {k: np.empty((B, G * H), np.float32) for k in ("numpy", "mkl", "mkl-packed")}
    p = lambda a: a.ctypes.data_as(ctypes.c_void_p)  # noqa: E731
    f1, f0 = ctypes.c_float(1.0), ctypes.c_float(0.0)
    M, N, K = B, G * H, H
    buffer = np.empty(mkl.cblas_sgemm_pack_get_size(B_MATRIX, M, N, K) + 64, np.uint8)
    packed = buffer.ctypes.data + (-buffer.ctypes.data) % 64  # 64-byte aligned
    mkl.cblas_sgemm_pack(ROW_MAJOR, B_MATRIX, NO_TRANS, M, N, K, f1, p(w_t), N, ctypes.c_void_p(packed))

    variants = {
        "numpy": lambda: np.matmul(h, w_t, out=out["numpy"]),
        "mkl": lambda: mkl.cblas_sgemm(ROW_MAJOR, NO_TRANS, NO_TRANS, M, N, K, f1, p(h), K, p(w_t), N, f0,
                                       p(out["mkl"]), N),
        "mkl-packed": lambda: mkl.cblas_sgemm_compute(ROW_MAJOR, NO_TRANS, PACKED, M, N, K, p(h), K,
                                                      ctypes.c_void_p(packed), N, f0, p(out["mkl-packed"]), N),
    }
    for fn in variants.values():
        fn()
    expected = h.astype(np.float64) @ w_t
    for name, array in out.items():
        assert np.allclose(array, expected, rtol=1e-4, atol=1e-4), name
    times = {name: [] for name in variants}
    for r in range(rounds):
        for name in list(variants)[r % 3:] + list(variants)[:r % 3]:
            time.sleep(pause)
            start = time.perf_counter()
            for _ in range(calls):
                variants[name]()
            times[name].append((time.perf_counter() - start) / calls * 1e6)
    flops = 2 * M * N * K
    print(f"step GEMM {M}x{K} @ {K}x{N} float32, {threads} threads, load average {os.getloadavg()[0]:.2f}")
    base = statistics.median(times["numpy"])
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"  {name:<11} min {min(ts):8.1f} us  median {med:8.1f} us  {flops / med / 1e3:6.1f} GFLOP/s  "
              f"{med / base:.2f}x numpy")


if __name__ == "__main__":
    for n in sorted({1, len(os.sched_getaffinity(0))}):
        main(n)
