"""Running independent recurrences side by side on the CPU's cores.

Sequences in a batch (and the two directions of a layer) never interact, so a
layer can run them as independent recurrences, one per core, each with a
single-threaded BLAS: the elementwise step math, which NumPy runs on one core,
then uses every core too, and no thread waits for another until the end of the
sequence. This needs control of the BLAS's thread count, found here for
OpenBLAS (NumPy's wheels ship it); with another BLAS everything runs serially.
"""

import concurrent.futures
import contextlib
import ctypes
import functools
import glob
import os
import threading

import numpy as np

_SETTERS = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads", "openblas_set_num_threads64_",
            "openblas_set_num_threads")
_LOCK = threading.Lock()


def _loaded_libraries():
    """Paths of the shared libraries mapped into this process that look like OpenBLAS."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower() and ".so" in line}
    except OSError:
        paths = set()
    numpy_libs = os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs", "*openblas*")
    return sorted(paths) + sorted(glob.glob(numpy_libs))


@functools.lru_cache(maxsize=None)
def _openblas():
    """(set_num_threads, get_num_threads) of the OpenBLAS NumPy uses, or None."""
    for path in _loaded_libraries():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for setter in _SETTERS:
            getter = setter.replace("set_", "get_")
            if hasattr(lib, setter) and hasattr(lib, getter):
                set_fn, get_fn = getattr(lib, setter), getattr(lib, getter)
                set_fn.argtypes, set_fn.restype, get_fn.restype = [ctypes.c_int], None, ctypes.c_int
                return set_fn, get_fn
    return None


def cpu_threads():
    """How many recurrences to run at once: RNNKERN_NUM_THREADS, else the BLAS's own thread count
    (which honours OPENBLAS_NUM_THREADS and the CPU affinity); 1 when the BLAS cannot be steered."""
    blas = _openblas()
    if blas is None:
        return 1
    configured = os.environ.get("RNNKERN_NUM_THREADS")
    if configured is not None:
        try:
            return max(1, int(configured))
        except ValueError:
            raise ValueError(f"RNNKERN_NUM_THREADS must be a positive integer, got {configured!r}") from None
    return max(1, blas[1]())


@functools.lru_cache(maxsize=1)
def _pool(workers):
    return concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rnnkern")


@contextlib.contextmanager
def parallel_section():
    """Within it the BLAS is single-threaded and ``run_all`` spreads tasks over the cores.

    The whole forward runs in one section: a multi-threaded GEMM leaves OpenBLAS's workers
    spinning for a while, which would steal the cores from our own threads."""
    if cpu_threads() == 1:
        yield
        return
    set_threads, get_threads = _openblas()
    with _LOCK:  # one section at a time: the BLAS thread count is process-wide
        before = get_threads()
        set_threads(1)
        try:
            yield
        finally:
            set_threads(before)


def run_all(tasks):
    """Run the zero-argument callables ``tasks``, side by side when there are several (inside a
    ``parallel_section``), else in this thread. Exceptions propagate."""
    if len(tasks) == 1:
        tasks[0]()
        return
    futures = [_pool(cpu_threads()).submit(task) for task in tasks[1:]]
    tasks[0]()
    for future in futures:
        future.result()
