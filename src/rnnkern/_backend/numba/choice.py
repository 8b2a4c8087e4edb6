"""Which GEMM provider (``gemm``) runs: measured on this machine at first use, remembered on disk.

Which library multiplies faster depends on the machine (MKL's packed GEMM ran the default LSTM's step
GEMM in 0.69x OpenBLAS's time on an Intel Xeon, 1.46x on an AMD EPYC; benchmarks/RESULTS.md), so it is
timed where it runs. For each GEMM *class* (the dtype; a step GEMM in the compiled loop, with MKL's
weights packed, or a plain one; and its rows, inner size and columns rounded up to powers of two), the
first layer that needs it times the candidates on its own shapes (capped, so that it takes tens of
milliseconds): a warm-up first, then rounds in alternating order, and the median of the per-round
ratios decides. Both are timed on one thread first: two thread pools timed in alternation fight (each
spins for a while after its call; ratios of 0.01 and 117 came out of such timings on 2 cores). One
thread's ratio does not always rank them as their pools do, which is how the layers run them: on the
Intel Xeon MKL's packed GEMM took 0.56x OpenBLAS's time on one thread and 0.63x on two, but on the AMD
EPYC 0.95x on one thread and 1.17-1.39x on two, and the default LSTM ran 1.17-1.23x slower on MKL
(RESULTS.md, 2026-12-04). So where MKL is faster on one thread, the two are timed again on their pools,
each block of calls after ``SETTLE_S`` of quiet (longer than either pool spins after a call), and that
ratio decides (about 2 s, once per class and machine). MKL must win by ``MKL_MARGIN`` both times:
within it these shared machines rank the two by chance, and a tie goes to NumPy's own library, whose
pool the rest of the process uses anyway. The answer is kept in ``gemm-choice.json`` in rnnkern's
cache folder (``specialise.cache_folder``), keyed by the machine (CPU model and flags), the libraries'
versions, how it was measured and the class; where that folder is not writable it is kept for the
process only.

``RNNKERN_CPU_GEMM=openblas|mkl`` (read at each call) overrides the measurement.
"""

import contextlib
import functools
import hashlib
import json
import os
import statistics
import tempfile
import threading
import time

import numpy as np
from numba import njit

from . import blas
from .gemm import MKL, OpenBLAS
from .scalar import COMPILE_CACHE
from .specialise import cache_folder

PROVIDERS = ("openblas", "mkl")
FILE = "gemm-choice.json"
ROUNDS = 5
WARM_UP_S = 0.03
ROUND_S = 0.002
# The pools' timing (where MKL wins on one thread): rounds, the quiet before each block of calls (MKL's
# OpenMP threads spin 200 ms after a call, KMP_BLOCKTIME's default; OpenBLAS's about 0.1 s), and a
# block's timed length (a pool's call varies more than one thread's: 2 ms of calls ranked them by chance).
POOL_ROUNDS = 3
SETTLE_S = 0.25
POOL_ROUND_S = 0.02
# MKL runs a class only where it took at most this fraction of OpenBLAS's time. On the AMD EPYC the
# default LSTM's step GEMM measured 0.95-1.20x on one thread and 0.91-1.23x on the pools within one hour,
# and the whole default LSTM ran 1.17-1.23x slower on MKL; on the Intel Xeon MKL's packed GEMM measured
# 0.56-0.72x.
MKL_MARGIN = 0.9
# How decisions are measured, part of the key they are kept under: decisions measured another way
# (before 2026-12-04, on one thread only) are measured again.
METHOD = "one thread, then the pools"
CAPS = (64, 1024, 4096)  # rows, inner size, columns of a timed GEMM at most
# Plain GEMMs of at most this many multiply-adds are NumPy's without timing: MKL's, called through ctypes,
# measured 4-12x OpenBLAS's time on every class up to it (1x256x1024: 4.0x, 16x16x16: 11.6x) on 2 cores;
# the limit is inclusive so that the small config's step GEMV (1x256x1024 = 2^18) stays OpenBLAS's (on
# MKL's pool it took 170 us a step in training, against OpenBLAS's 27).
PLAIN_MIN_WORK = 1 << 18
# MKL's packing takes at least 7.9 MB whatever the weights' size (MKL 2026.2): packed weights are used
# only where that is at most PACK_MAX_GROWTH times the weights themselves, or at most
# PACK_MAX_GROWTH_IN_ROOM times them where it also fits in what the call holds anyway (``room``: its
# output), so that a small layer's memory stays its own (a 10,000-step sequence's forward is bounded by
# its output: tests/test_layers.py, tests/test_numba_kernels.py). Without the second clause the default
# RNN (W_hh 1 MiB, packed 8.8 MiB) ran its steps on OpenBLAS beside an input projection on MKL: 61.5 ms
# against 48.1 all on MKL, 1.00x and 0.85x torch's time (T=100 B=64 H=512, 9 interleaved rounds).
# The room is offered to products of two rows or more: a one-row step is OpenBLAS's GEMV, 20 us at
# 1x256x1024 against MKL's packed GEMM's 49 (benchmarks/RESULTS.md, issue 20's training loops).
PACK_MAX_GROWTH = 4
PACK_MAX_GROWTH_IN_ROOM = 16


@njit(nogil=True, cache=COMPILE_CACHE)
def repeat_matmul(a, b, c, n):
    """n step GEMMs as the compiled loops run them (``blas.matmul_into``), for timing."""
    for _ in range(n):
        blas.matmul_into(a, b, c)


@functools.lru_cache(maxsize=None)
def openblas():
    return OpenBLAS()


@functools.lru_cache(maxsize=None)
def mkl_provider():
    """The MKL provider, or None where MKL is not installed (``mkl.UNAVAILABLE`` says why)."""
    from . import mkl

    return None if mkl.LIBRARY is None else MKL(mkl.LIBRARY)


def mkl_unavailable_reason():
    from . import mkl

    return mkl.UNAVAILABLE


def installed():
    """The providers that can run here."""
    return [p for p in (openblas(), mkl_provider()) if p is not None]


def overridden(variable, names):
    """The value of the environment variable ``variable`` (read now), one of ``names``, or None when it is
    unset or empty; any other value raises ValueError naming the variable and what it takes."""
    value = os.environ.get(variable, "")
    if not value:
        return None
    if value not in names:
        raise ValueError(f"{variable} must be {' or '.join(repr(n) for n in names)} (or unset: chosen by "
                         f"measurement), got {value!r}")
    return value


def forced():
    """The provider RNNKERN_CPU_GEMM names, or None when it is unset; a bad value raises ValueError,
    'mkl' without MKL installed RuntimeError naming the extra."""
    value = overridden("RNNKERN_CPU_GEMM", PROVIDERS)
    if value is None:
        return None
    if value == "mkl" and mkl_provider() is None:
        from .mkl import EXTRA

        raise RuntimeError(f"RNNKERN_CPU_GEMM=mkl, but {mkl_unavailable_reason()}; install it with: {EXTRA}")
    return openblas() if value == "openblas" else mkl_provider()


def _bucket(n):
    return 1 << max(0, int(n) - 1).bit_length()


def gemm_class(dtype, kind, M, K, N):
    """The class a GEMM's decision is kept for (see the module's docstring)."""
    return f"{np.dtype(dtype).name} {kind} {_bucket(M)}x{_bucket(K)}x{_bucket(N)}"


@functools.lru_cache(maxsize=None)
def machine_key():
    """The CPU model and flags, the providers' versions and how decisions are measured (``METHOD``): a
    decision holds while these do."""
    model, flags = "", ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and not model:
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and not flags:
                    flags = line.split(":", 1)[1].strip()
    except OSError:
        import platform

        model = platform.processor() or platform.machine()
    versions = [f"{p.name} {p.version()}" for p in installed()]
    digest = hashlib.sha256(repr((model, flags, os.cpu_count(), versions, METHOD)).encode()).hexdigest()[:16]
    return f"{model} [{digest}]"


class Decision:
    """The provider of one GEMM class and why: 'RNNKERN_CPU_GEMM', 'only one installed', 'measured 0.83x'
    (MKL's time over OpenBLAS's, median of per-round ratios)."""

    def __init__(self, provider, reason):
        self.provider, self.reason = provider, reason

    def __repr__(self):
        return f"{self.provider.name} ({self.reason})"


LOCK = threading.Lock()
# dtype -> this process's first measured Decision: every later GEMM big enough to
# measure follows it, step or plain, so that one thread pool spins at a time (see _decide)
_PROCESS_PROVIDER = {}
_MEMORY = {}  # (machine key, class) -> (name, ratio), and ("shape", ...) -> Decision: this process's


def decide(dtype, kind, M, K, N, room=0):
    """The Decision for a GEMM (M, K) @ (K, N) of ``kind`` 'step' (the compiled loops') or 'plain'
    (remembered per exact shape too: every step's GEMM asks). ``room`` (step GEMMs): bytes the call
    holds anyway (its output, say), which MKL's packing may take even beyond PACK_MAX_GROWTH times
    the weights."""
    dtype = np.dtype(dtype)  # np.float32 and dtype('float32') are equal but hash apart: one key
    mkl = mkl_provider()
    # Kept per fit (whether the packing fits in ``room``), not per sequence length
    fits = bool(room) and kind == "step" and M > 1 and mkl is not None and room >= mkl.lib.pack_size(dtype, M, K, N)
    shape_key = ("shape", os.environ.get("RNNKERN_CPU_GEMM", ""), dtype, kind, M, K, N, fits)
    known = _MEMORY.get(shape_key)
    if known is None:
        known = _MEMORY[shape_key] = _decide(dtype, kind, M, K, N, fits)
    return known


def _decide(dtype, kind, M, K, N, fits_in_room=False):
    provider = forced()
    if provider is not None:
        return Decision(provider, "RNNKERN_CPU_GEMM")
    if mkl_provider() is None:
        return Decision(openblas(), f"only one installed: {mkl_unavailable_reason() or 'no MKL'}")
    if kind == "plain" and M * K * N <= PLAIN_MIN_WORK:
        return Decision(openblas(), "small: MKL's ctypes call costs more than it could gain")
    if kind == "step":
        size, weights = mkl_provider().lib.pack_size(dtype, M, K, N), K * N * np.dtype(dtype).itemsize
        if size > PACK_MAX_GROWTH * weights and not (fits_in_room and size <= PACK_MAX_GROWTH_IN_ROOM * weights):
            return Decision(openblas(), f"MKL would pack {weights / 2**20:.2g} MiB of weights into "
                                        f"{size / 2**20:.3g} MiB")
    if dtype in _PROCESS_PROVIDER:
        # One pool at a time: a layer whose step GEMMs ran on one library and its input projection on the
        # other ran 2x slower, and training whose forward steps ran MKL and backward steps OpenBLAS
        # (each shape measured alone) ran its OpenBLAS GEMMs at half speed: the pools fought for 2 cores
        # (each spins for a while after its call; benchmarks/RESULTS.md)
        first = _PROCESS_PROVIDER[dtype]
        return Decision(first.provider, f"one thread pool at a time: as this process's first GEMM ({first.reason})")
    cls = gemm_class(dtype, kind, M, K, N)
    with LOCK:
        name, ratio = remembered(cls)
        if name is None:
            ratio = measure(dtype, kind, M, K, N)
            name = "mkl" if ratio < MKL_MARGIN else "openblas"
            remember(cls, name, ratio)
    decision = Decision(mkl_provider() if name == "mkl" else openblas(), f"measured {ratio:.2f}x")
    _PROCESS_PROVIDER.setdefault(dtype, decision)  # the first measured choice sets the process's pool
    return decision


def describe(dtype=np.float32, M=64, K=512, N=2048):
    """Which provider runs a step GEMM (M, K) @ (K, N) and why, and what is installed: for ``rnnkern
    info`` (the default LSTM's step GEMM) and the benchmark header (its own shapes)."""
    versions = ", ".join(f"{p.name} ({p.version()})" for p in installed())
    try:
        decision = decide(dtype, "step", M, K, N)
    except (ValueError, RuntimeError) as exc:
        return f"{exc}; installed: {versions}"
    return (f"{decision.provider.name} ({decision.reason}) for the step GEMM {M}x{K} @ {K}x{N} "
            f"{np.dtype(dtype).name}; installed: {versions}")


def _path():
    return cache_folder() / FILE


def _read():
    try:
        with open(_path()) as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def remembered(cls, names=PROVIDERS):
    """(name, ratio) remembered for the class ``cls`` (in this process, else in the file), or (None, None);
    a name not among ``names`` counts as none."""
    key = (machine_key(), cls)
    if key not in _MEMORY:
        entry = _read().get(machine_key(), {}).get(cls)
        if isinstance(entry, dict) and entry.get("provider") in names:
            _MEMORY[key] = (entry["provider"], float(entry.get("ratio", 1.0)))
    return _MEMORY.get(key, (None, None))


def remember(cls, name, ratio):
    """Keep the decision in memory and, where the cache folder is writable, on disk (a whole new file
    replaces the old one, so a reader never sees half of it)."""
    _MEMORY[(machine_key(), cls)] = (name, ratio)
    try:
        data = _read()
        data.setdefault(machine_key(), {})[cls] = {"provider": name, "ratio": round(ratio, 4)}
        folder = _path().parent
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(data, f, indent=1, sort_keys=True)
            os.replace(tmp, _path())
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except OSError:
        pass  # a read-only cache folder: this process remembers it


def measure(dtype, kind, M, K, N):
    """MKL's time over OpenBLAS's for this GEMM (shapes capped by CAPS), median of per-round ratios: on
    one thread, and where MKL wins there (``MKL_MARGIN``), on each library's pool (``time_pools``)."""
    M, K, N = (min(v, cap) for v, cap in zip((M, K, N), CAPS))
    rng = np.random.default_rng(0)
    a = rng.standard_normal((M, K)).astype(dtype)
    w_t = np.asfortranarray(rng.standard_normal((N, K)).astype(dtype)).T  # the parameters' layout
    runs = {}
    for provider in (openblas(), mkl_provider()):
        c = np.empty((M, N), dtype)
        if kind == "step":
            operand = provider.step_operand(w_t, M)
            runs[provider.name] = (provider, lambda n, b=operand, c=c: repeat_matmul(a, b, c, n))
        else:
            runs[provider.name] = (provider, lambda n, p=provider, c=c: [p.matmul(a, w_t, out=c) for _ in range(n)])
    ratio = _ratio(time_rounds(runs))
    return ratio if ratio >= MKL_MARGIN else _ratio(time_pools(runs))


def _ratio(times):
    return statistics.median(m / o for m, o in zip(times["mkl"], times["openblas"]))


def time_rounds(runs):
    """Seconds a call of each of ``runs`` (name -> (provider, run(n): n calls)), each on one thread of its
    provider: warmed up, then ROUNDS rounds in alternating order; name -> the rounds' times."""
    calls = {}
    for name, (provider, run) in runs.items():
        with _serial(provider):
            calls[name] = _calls_for(run)
    times = {name: [] for name in runs}
    for name in _alternating(runs, ROUNDS):
        provider, run = runs[name]
        with _serial(provider):
            times[name].append(_per_call(run, calls[name]))
    return times


def time_pools(runs):
    """Seconds a call of each of ``runs`` (as ``time_rounds``) on its provider's pool, as the layers run
    them (``exclusive``: OpenBLAS held at one thread while MKL runs): POOL_ROUNDS rounds in alternating
    order, each block after SETTLE_S of quiet, then a warm-up that wakes the pool, then the timed calls."""
    times = {name: [] for name in runs}
    for name in _alternating(runs, POOL_ROUNDS):
        provider, run = runs[name]
        time.sleep(SETTLE_S)  # the other library's pool stops spinning
        with provider.exclusive():
            times[name].append(_per_call(run, _calls_for(run, POOL_ROUND_S)))
    return times


def _alternating(runs, rounds):
    """The names of ``runs``, ``rounds`` times over, every other round in reverse order."""
    names = list(runs)
    for r in range(rounds):
        yield from (names if r % 2 == 0 else names[::-1])


def _per_call(run, calls):
    """Seconds a call of ``run`` takes, timing ``calls`` of them at once."""
    start = time.perf_counter()
    run(calls)
    return (time.perf_counter() - start) / calls


def _serial(provider):
    stack = contextlib.ExitStack()
    stack.enter_context(provider.serial())
    stack.enter_context(provider.serial_thread())
    return stack


def _calls_for(run, round_s=ROUND_S):
    """Warm up for WARM_UP_S, then the number of calls that take about ``round_s``."""
    run(1)
    start, n = time.perf_counter(), 0
    while time.perf_counter() - start < WARM_UP_S:
        run(1)
        n += 1
    per_call = (time.perf_counter() - start) / max(n, 1)
    return max(1, int(round_s / max(per_call, 1e-7)))
