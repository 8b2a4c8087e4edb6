"""Timing contenders fairly on a noisy machine: warm-up rounds first (not recorded), then rounds in
which every contender runs once, in an order rotated each round, so slow drifts and neighbours'
load hit all contenders alike. CPU: wall clock (perf_counter). GPU: CUDA events around the call
after a device synchronisation (CuPy's for rnnkern and the array contenders, PyTorch's for torch).

On the CPU a pause before each call matters: OpenBLAS's worker threads keep spinning for about
0.1 s after a GEMM (and OpenMP's after a parallel region), so a contender run right after another
one that uses a different thread pool (NumPy's OpenBLAS, then PyTorch's OpenMP) competes with
those spinning threads for the cores and can come out many times slower."""

import gc
import time


def _cupy_time(fn):
    import cupy

    cupy.cuda.Device().synchronize()
    start, end = cupy.cuda.Event(), cupy.cuda.Event()
    start.record()
    fn()
    end.record()
    end.synchronize()
    return cupy.cuda.get_elapsed_time(start, end)


def _torch_time(fn):
    import torch

    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end)


def _host_time(fn):
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1e3


TIMERS = {"host": _host_time, "cupy": _cupy_time, "torch": _torch_time}


def time_once(contender):
    """Milliseconds of one call of ``contender.fn``."""
    return TIMERS[contender.timer](contender.fn)


def measure(contenders, repeat, warmup=1, progress=None, pause=0.0):
    """{contender name: [ms per timed round]} over ``repeat`` rounds after ``warmup`` untimed ones,
    sleeping ``pause`` seconds before each call.

    ``progress(message)``, if given, is told about each round."""
    times = {c.name: [] for c in contenders}
    if not contenders:
        return times
    started = time.perf_counter()
    for r in range(warmup + repeat):
        shift = r % len(contenders)
        order = contenders[shift:] + contenders[:shift]
        gc.collect()
        for contender in order:
            if pause > 0:
                time.sleep(pause)
            ms = time_once(contender)
            if r >= warmup:
                times[contender.name].append(ms)
        if progress is not None:
            what = f"warm-up {r + 1}/{warmup}" if r < warmup else f"round {r - warmup + 1}/{repeat}"
            progress(f"{what} done ({time.perf_counter() - started:.1f} s)")
    return times
