"""The input projection computed ahead of a compiled loop that runs on one core, on the other core.

At batch 1 a layer's time loop runs on one thread (rnnkern's row product, or MKL's one-thread GEMMs:
``rowchoice``, ``gemm.ONE_THREAD_WORK``) and the second core idles, while the input projection
(one GEMM of every step, T x I @ I x G*H) ran before the loop and took a quarter of the call (T=100
B=1 I=H=256 LSTM on the 2-core Xeon: 0.78 of 3.10 ms). Here the steps are cut into chunks growing
twofold in the order the loop reaches them: this thread projects the first, a worker thread the others
(each GEMM on one thread, by the projection's provider) while the loop runs the chunks before them.
The loop waits only for the first chunk, and for a later one when the worker falls behind.

Each chunk is the same InputProjection arithmetic (x @ W_ih^T, then the bias or the LayerNorm of
its rows) on fewer rows and one thread, so its bits are those of that provider's GEMM at that size:
the same from call to call (the chunks depend on T alone), within the same tolerance of the float64
reference as the whole GEMM's.
"""

import concurrent.futures
import functools

from .gemm import openblas_at_one_thread

# Loops of fewer steps project as before, in one GEMM: a second chunk would not pay for its handover.
MIN_STEPS = 16
# The first chunk's share of the steps: the only part of the projection the loop always waits for.
FIRST_PART = 16


def plan(steps, reverse):
    """The chunks (start, stop) of ``steps`` steps in the order a loop in that direction reaches them:
    the first about 1/FIRST_PART of them (at least 2: a one-row product would go to GEMV), each next
    twice the one before, the last what remains."""
    size, done, sizes = max(2, -(-steps // FIRST_PART)), 0, []
    while done < steps:
        size = min(size, steps - done)
        sizes.append(size)
        done, size = done + size, 2 * size
    bounds, start = [], 0
    for size in sizes:
        bounds.append((start, start + size))
        start += size
    return [(steps - stop, steps - start) for start, stop in bounds] if reverse else bounds


def worth(gx, cores, one_thread):
    """Whether to project ``gx`` (an InputProjection nothing of which is computed yet) ahead: the loop
    runs on one thread (``one_thread``), a second core is there, and the projection is one chunk of
    at least MIN_STEPS steps (longer inputs are projected in chunks as they were)."""
    steps = gx.shape[0]
    return one_thread and cores >= 2 and steps >= MIN_STEPS and gx.chunk_steps >= steps and gx.fresh()


@functools.lru_cache(maxsize=None)
def _worker():
    return concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="rnnkern-ahead")


class AheadProjection:
    """``gx`` (an InputProjection) with its chunks (``plan``) projected ahead by ``provider`` on one
    thread: the first in this thread now, the others on the worker. ``block`` and ``starts`` as
    InputProjection's. Use it inside ``running`` (OpenBLAS's process-wide pool held at one thread)."""

    def __init__(self, gx, provider, reverse):
        self.shape, self.dtype = gx.shape, gx.dtype
        B = gx.shape[1]
        project = functools.partial(_project_one_thread, gx, provider)
        chunks = plan(gx.shape[0], reverse)
        self._starts = sorted(start for start, _ in chunks)
        self._pending = {start: _worker().submit(project, start, stop, start * B) for start, stop in chunks[1:]}
        first_start, first_stop = chunks[0]
        self._blocks = {first_start: project(first_start, first_stop, first_start * B)}

    def starts(self):
        return self._starts

    def block(self, t):
        """(first step, gx of the chunk's steps) of the chunk holding step ``t``, waiting for it if need be."""
        start = max(s for s in self._starts if s <= t)
        if start not in self._blocks:
            self._blocks[start] = self._pending.pop(start).result()
        return start, self._blocks[start]

    def wait(self):
        """Return once the worker has left every chunk (projected or failed): its buffer is then free."""
        for future in self._pending.values():
            future.exception()


def running():
    """The section in which an AheadProjection's GEMMs and the loop run side by side: OpenBLAS at one
    thread (its thread count is process-wide), so that no pool spins on the worker's core."""
    return openblas_at_one_thread()


def _project_one_thread(gx, provider, start, stop, first_row):
    with provider.serial_thread():
        return gx.project(start, stop, first_row, provider.matmul)
