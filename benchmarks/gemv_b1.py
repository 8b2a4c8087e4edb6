"""Batch-1 recurrent GEMV inside a compiled time loop: which GEMV is fastest on this machine?

At batch 1 each step of a compiled time loop multiplies the one-row state h (1, H) by W_hh^T (H, G):
a GEMV. This times 100 such steps, serial (the next h is a cheap bounded function of y, as in a time
loop), called from one numba loop per variant:

- ``openblas``      NumPy's OpenBLAS sgemv through ``blas.matmul_into`` (what the loops run today)
- ``openblas-skew16`` the same with W 16 bytes past a cache line (where glibc's malloc puts a large
                    NumPy array: 16 bytes past a page); every other variant's arrays start on a line
- ``axpy``          numba, y = sum_k h[k] * Wt[k, :] over the rows of Wt (H, G): the loops' layout
- ``axpy4``         numba, the same four rows of Wt at a time (one load and store of y per four rows)
- ``axpy8``         numba, eight rows of Wt at a time
- ``axpy-block``    numba, the same over column blocks of 64 (the block's sums stay in L1)
- ``dot4``          numba, W (G, H) row-major: four dot products at a time sharing the loads of h
- ``mkl-gemv``      MKL's cblas_sgemv (when the mkl extra is installed)
- ``mkl-packed``    MKL's packed GEMM for one row (the mkl provider's path: ``matmul_into`` on a packing)

Phase 1 times the GEMVs with every library on one thread; phase 2 puts OpenBLAS's GEMVs (its
default threads) and the fastest of phase 1 against ONNX Runtime's and rnnkern's whole small LSTM
(T=100, B=1, I=H=256; torch's too with --torch), every library on ``--threads`` threads (default 1:
a comparison that another process busy on the second core leaves standing; 2 as ``rnnkern bench``
runs them, where two thread pools that spin after their calls slow each other on 2 cores). Rounds run every variant once, in a rotating order, each after one
untimed warm-up call (W hot in cache, as in a time loop); the report is the median time and the
median of per-round ratios to ``openblas`` (phase 1) or to ONNX Runtime (phase 2).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONPATH=src python benchmarks/gemv_b1.py --rounds 200

Measured 2026-12-02 on the Intel Xeon (KVM, 2 vCPUs shared with other jobs, so +-10% run to run),
150 rounds, one thread, ratios to ``openblas`` for LSTM / GRU / RNN shapes, three runs:
openblas-skew16 1.20-1.36; numba (ymm) axpy4 0.97-1.04, axpy8 0.99-1.05, dot4 1.02-1.10, axpy
1.27-1.38, axpy-block 1.5-2.3; mkl-gemv 0.74-0.82; mkl-packed 0.72-0.84 (its packing is 10-30x the
weights, which ``choice.PACK_MAX_GROWTH`` refuses). With 512-bit vectors (below) axpy4 measured
0.72-0.74 once and 1.03-1.29 in runs before the operands were aligned. Phase 2: OpenBLAS's 100 LSTM
GEMVs are 0.69-0.83x ONNX Runtime's whole LSTM, and rnnkern's LSTM 1.41-1.62x it (one thread each).

LLVM compiles numba's loops for 256-bit vectors on AVX-512 machines (the subtarget's prefer-256-bit);
to let it use 512-bit ones, run with the host's features and that one turned off:

    NUMBA_CPU_FEATURES="$(python -c 'import llvmlite.binding as l; print(l.get_host_cpu_features().flatten())'),-prefer-256-bit"
"""

import argparse
import ctypes
import os
import statistics
import time

import llvmlite.binding as llvm
import numpy as np
from numba import njit, types

from rnnkern._backend.numba import blas, mkl
from rnnkern._backend.numba.blas import matmul_into

JIT = dict(fastmath=True, error_model="numpy", nogil=True)


@njit(inline="always", **JIT)
def _next_state(y, h):
    """A cheap, bounded next state from the GEMV's output (serialises the steps)."""
    for j in range(h.shape[0]):
        v = y[j]
        h[j] = v / (np.float32(1) + abs(v))


@njit(**JIT)
def loop_blas(w_t, h, y, steps):
    """matmul_into: OpenBLAS sgemv, or MKL's packed GEMM when w_t is a packing."""
    h2, y2 = h.reshape(1, -1), y.reshape(1, -1)
    for _ in range(steps):
        matmul_into(h2, w_t, y2)
        _next_state(y, h)


@njit(**JIT)
def gemv_axpy(h, w_t, y):
    """y = h @ w_t, w_t (K, N): row k of w_t scaled by h[k], added into y."""
    y[:] = 0
    for k in range(w_t.shape[0]):
        hk, row = h[k], w_t[k]
        for j in range(y.shape[0]):
            y[j] += hk * row[j]


@njit(**JIT)
def loop_axpy(w_t, h, y, steps):
    for _ in range(steps):
        gemv_axpy(h, w_t, y)
        _next_state(y, h)


@njit(**JIT)
def gemv_axpy4(h, w_t, y):
    """y = h @ w_t, four rows of w_t per pass over y (one load and store of y per four FMAs)."""
    K = w_t.shape[0]
    k4 = K - K % 4
    y[:] = 0
    for k in range(0, k4, 4):
        h0, h1, h2, h3 = h[k], h[k + 1], h[k + 2], h[k + 3]
        r0, r1, r2, r3 = w_t[k], w_t[k + 1], w_t[k + 2], w_t[k + 3]
        for j in range(y.shape[0]):
            y[j] += h0 * r0[j] + h1 * r1[j] + h2 * r2[j] + h3 * r3[j]
    for k in range(k4, K):
        hk, row = h[k], w_t[k]
        for j in range(y.shape[0]):
            y[j] += hk * row[j]


@njit(**JIT)
def loop_axpy4(w_t, h, y, steps):
    for _ in range(steps):
        gemv_axpy4(h, w_t, y)
        _next_state(y, h)


@njit(**JIT)
def gemv_axpy8(h, w_t, y):
    """y = h @ w_t, eight rows of w_t per pass over y."""
    K = w_t.shape[0]
    k8 = K - K % 8
    y[:] = 0
    for k in range(0, k8, 8):
        h0, h1, h2, h3, h4, h5, h6, h7 = h[k], h[k + 1], h[k + 2], h[k + 3], h[k + 4], h[k + 5], h[k + 6], h[k + 7]
        r0, r1, r2, r3, r4, r5, r6, r7 = (w_t[k], w_t[k + 1], w_t[k + 2], w_t[k + 3], w_t[k + 4], w_t[k + 5],
                                          w_t[k + 6], w_t[k + 7])
        for j in range(y.shape[0]):
            y[j] += ((h0 * r0[j] + h1 * r1[j]) + (h2 * r2[j] + h3 * r3[j])) + \
                ((h4 * r4[j] + h5 * r5[j]) + (h6 * r6[j] + h7 * r7[j]))
    for k in range(k8, K):
        hk, row = h[k], w_t[k]
        for j in range(y.shape[0]):
            y[j] += hk * row[j]


@njit(**JIT)
def loop_axpy8(w_t, h, y, steps):
    for _ in range(steps):
        gemv_axpy8(h, w_t, y)
        _next_state(y, h)


@njit(**JIT)
def gemv_axpy_block(h, w_t, y):
    """y = h @ w_t over column blocks of 64: each block's 64 sums stay in L1 (and maybe registers)."""
    K, N = w_t.shape
    for j0 in range(0, N, 64):
        j1 = min(j0 + 64, N)
        out = y[j0:j1]
        out[:] = 0
        for k in range(K):
            hk, row = h[k], w_t[k, j0:j1]
            for j in range(out.shape[0]):
                out[j] += hk * row[j]


@njit(**JIT)
def loop_axpy_block(w_t, h, y, steps):
    for _ in range(steps):
        gemv_axpy_block(h, w_t, y)
        _next_state(y, h)


@njit(**JIT)
def gemv_dot4(h, w, y):
    """y = w @ h, w (N, K) row-major: four rows at a time, one pass over h for four dot products."""
    N, K = w.shape
    n4 = N - N % 4
    for i in range(0, n4, 4):
        r0, r1, r2, r3 = w[i], w[i + 1], w[i + 2], w[i + 3]
        s0 = s1 = s2 = s3 = np.float32(0)
        for k in range(K):
            x = h[k]
            s0 += r0[k] * x
            s1 += r1[k] * x
            s2 += r2[k] * x
            s3 += r3[k] * x
        y[i], y[i + 1], y[i + 2], y[i + 3] = s0, s1, s2, s3
    for i in range(n4, N):
        s = np.float32(0)
        for k in range(K):
            s += w[i, k] * h[k]
        y[i] = s


@njit(**JIT)
def loop_dot4(w, h, y, steps):
    for _ in range(steps):
        gemv_dot4(h, w, y)
        _next_state(y, h)


def mkl_gemv_loop():
    """A loop calling MKL's cblas_sgemv (LP64), or None without MKL."""
    if mkl.LIBRARY is None:
        return None
    llvm.add_symbol("cblas_sgemv", ctypes.cast(mkl.LIBRARY.lib.cblas_sgemv, ctypes.c_void_p).value)
    i32, ptr, f32 = types.int32, types.intp, types.float32
    sgemv = types.ExternalFunction("cblas_sgemv", types.void(i32, i32, i32, i32, f32, ptr, i32, ptr, i32, f32,
                                                             ptr, i32))

    @njit(**JIT)
    def loop(w_t, h, y, steps):
        K, N = w_t.shape
        for _ in range(steps):
            sgemv(np.int32(101), np.int32(112), np.int32(K), np.int32(N), np.float32(1), w_t.ctypes.data,
                  np.int32(N), h.ctypes.data, np.int32(1), np.float32(0), y.ctypes.data, np.int32(1))
            _next_state(y, h)

    return loop


def aligned(array, skew=0):
    """A C-contiguous copy starting ``skew`` bytes past a 64-byte boundary (a cache line: unaligned
    512-bit loads straddle two, and where an allocation falls would otherwise change the times)."""
    raw = np.empty(array.nbytes + 128, np.uint8)
    offset = (-raw.ctypes.data) % 64 + skew
    out = raw[offset:offset + array.nbytes].view(array.dtype).reshape(array.shape)
    out[...] = array
    return out


def variants(H, G, steps, rng):
    """{name: (fn, check)}: fn() runs ``steps`` serial GEMVs; check() returns y after one GEMV from a
    fixed h, for the agreement check."""
    w_t = aligned((rng.standard_normal((H, G)) / np.sqrt(H)).astype(np.float32))
    w = aligned(w_t.T)
    h0 = aligned(rng.standard_normal(H).astype(np.float32))
    found = {}

    def add(name, loop, weights):
        h, y = aligned(h0), aligned(np.zeros(G, np.float32))

        def fn():
            loop(weights, h, y, steps)

        def check():
            h[:] = h0
            loop(weights, h, y, 1)
            return y.copy()
        found[name] = (fn, check)

    add("openblas", loop_blas, w_t)
    add("openblas-skew16", loop_blas, aligned(w_t, 16))
    add("axpy", loop_axpy, w_t)
    add("axpy4", loop_axpy4, w_t)
    add("axpy8", loop_axpy8, w_t)
    add("axpy-block", loop_axpy_block, w_t)
    add("dot4", loop_dot4, w)
    mkl_loop = mkl_gemv_loop()
    if mkl_loop is not None:
        add("mkl-gemv", mkl_loop, w_t)
        add("mkl-packed", loop_blas, mkl.LIBRARY.pack(w_t, 1))
    reference = h0.astype(np.float64) @ w_t.astype(np.float64)
    return found, reference


def whole_layers(rng, with_torch, threads):
    """ORT's, rnnkern's (and with_torch, torch's) whole small LSTM forward (T=100, B=1, I=H=256), as
    far as installed."""
    import rnnkern
    from rnnkern._bench.ort_contender import import_onnxruntime, session_options
    layer = rnnkern.LSTM(256, 256, seed=0)
    x = rng.standard_normal((100, 1, 256)).astype(np.float32)
    found = {"rnnkern LSTM": lambda: layer(x)}
    ort = import_onnxruntime()
    if ort is not None:
        session = ort.InferenceSession(layer.to_onnx().SerializeToString(), session_options(ort, threads),
                                       providers=["CPUExecutionProvider"])
        found["ORT LSTM"] = lambda: session.run(["output"], {"input": x})
    if not with_torch:
        return found
    try:
        import torch
    except ImportError:
        return found
    torch.set_num_threads(threads)
    module = torch.nn.LSTM(256, 256).eval()
    xt = torch.from_numpy(x)

    def run_torch():
        with torch.no_grad():
            module(xt)
    found["torch LSTM"] = run_torch
    return found


def timed_rounds(runs, rounds, pause=0.0):
    """{key: [seconds per round]} for runs [(key, fn)], each round in a rotating order, every timed
    call right after an untimed one (the weights hot in cache, as in a time loop after its first steps)."""
    times = {key: [] for key, _ in runs}
    for _, fn in runs:
        fn()
    for round_ in range(rounds):
        shift = round_ % len(runs)
        for key, fn in runs[shift:] + runs[:shift]:
            time.sleep(pause)  # a pool that spins after its call (ORT's, torch's) stops before the next
            fn()
            start = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - start)
    return times


def report(title, keys, times, base):
    print(f"--- {title}")
    for key in keys:
        t = times[key]
        line = f"{key[-1]:14s} {statistics.median(t) * 1e6:9.1f} us"
        if base in times:
            line += f"   x {base[-1]} {statistics.median(a / b for a, b in zip(t, times[base])):.3f}"
        print(line)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=200)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--threads", type=int, default=1, help="every library's threads in phase 2")
    p.add_argument("--torch", action="store_true",
                   help="time torch's LSTM in phase 2 too (its OpenMP pool spins after each call and "
                        "slows whatever runs next on 2 cores)")
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    H = args.hidden
    print(f"OpenBLAS threads {blas.openblas_threads()}, MKL: {mkl.LIBRARY.version if mkl.LIBRARY else mkl.UNAVAILABLE}")
    tables = {}
    for gates, label in ((4, "LSTM"), (3, "GRU"), (1, "RNN")):
        found, reference = variants(H, gates * H, args.steps, rng)
        for name, (fn, check) in found.items():
            error = np.abs(check() - reference).max() / np.abs(reference).max()
            assert error < 1e-5, f"{name} disagrees with the float64 GEMV ({error:.2e})"
        tables[label] = found
    # Phase 1, the GEMVs alone, every library on one thread: thread pools that spin after their calls
    # (OpenMP's, ONNX Runtime's) would otherwise take the core from whatever runs next.
    threads = blas.openblas_threads(1)
    mkl_threads = mkl.LIBRARY.set_threads_local(1) if mkl.LIBRARY else None
    runs = [((label, name), fn) for label, found in tables.items() for name, (fn, _) in found.items()]
    times = timed_rounds(runs, args.rounds)
    for label, found in tables.items():
        report(f"{label} GEMVs, one thread (H={H}, G={gates_of(label) * H}, {args.steps} steps)",
               [(label, n) for n in found], times, (label, "openblas"))
    # Phase 2, the whole small LSTMs, OpenBLAS's GEMVs and phase 1's fastest LSTM GEMV and fastest
    # numba one, every library on --threads threads.
    blas.openblas_threads(args.threads)
    if mkl.LIBRARY:
        mkl.LIBRARY.set_threads_local(args.threads)
    lstm = [(label, n) for label, n in times if label == "LSTM"]
    fastest = min(lstm, key=lambda key: statistics.median(times[key]))[1]
    numba_fastest = min((k for k in lstm if not k[1].startswith(("openblas", "mkl"))),
                        key=lambda key: statistics.median(times[key]))[1]
    # rnnkern's layer on OpenBLAS throughout (as its B=1 loop runs: MKL's 8 MB packing of these
    # weights is refused), so that no MKL pool spins into ONNX Runtime's time
    os.environ.setdefault("RNNKERN_CPU_GEMM", "openblas")
    runs = [(("whole", name), fn) for name, fn in whole_layers(rng, args.torch, args.threads).items()]
    runs.append((("whole", "openblas GEMVs"), tables["LSTM"]["openblas"][0]))
    for name in sorted({fastest, numba_fastest} - {"openblas"}):
        runs.append((("whole", name + " GEMVs"), tables["LSTM"][name][0]))
    times = timed_rounds(runs, args.rounds, pause=0.02)
    blas.openblas_threads(threads)
    if mkl.LIBRARY:
        mkl.LIBRARY.set_threads_local(mkl_threads)
    report(f"whole small LSTM (T=100, B=1, I=H=256) and the LSTM's 100 GEMVs, {args.threads} thread(s)",
           [key for key, _ in runs], times, ("whole", "ORT LSTM"))


def gates_of(label):
    return {"LSTM": 4, "GRU": 3, "RNN": 1}[label]


if __name__ == "__main__":
    main()
