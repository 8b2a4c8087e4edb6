"""The compiled time loop of one layer and direction, its batch split into shards run on both cores.

Each shard (a run of batch rows) runs its own whole time loop (``steps.*_loop``: GEMM, fused kernel,
next step) in its own thread with the GIL released and every GEMM on one thread, so that one core's
elementwise work overlaps the other's GEMM and no step waits for the other shard (rows of a
recurrence never meet). The only barrier is at the end of each chunk of the input projection.

Results: a shard never has a single row (a one-row product goes to GEMV, which sums in another
order). Then on the Intel Xeon (OpenBLAS's SkylakeX kernels, MKL) every row came out the same bits in
any shard as in the whole batch; on the AMD EPYC (OpenBLAS's Haswell kernels, MKL) a block of 3 or 2
rows was summed in another order than one of 5, so results agree within float32's rounding there
(tests/test_gemm_providers.py checks that, and that every run repeats its bits).

A batch too small to give every shard two rows (batch 1) is split by hidden units instead
(``run_split``, ``units``): each part runs its units' columns of every step, with a barrier per step.

Whether to shard is a size rule (``SHARD_MIN_BATCH`` for rows, ``SPLIT_MAX_BATCH`` and
``SPLIT_MIN_HIDDEN`` for units), overridden by ``RNNKERN_CPU_SHARDS`` (1 turns both off, 2 asks for two
shards: by rows where each has two rows, else by units). The rule is empty: nothing is sharded unless asked. On the quiet 2-core
Intel Xeon (AVX-512) on 2026-12-02, T=100 B=64 I=H=512 float32, median of 7 interleaved rounds
(/tmp-free command in benchmarks/RESULTS.md, "Sharding"), two shards were slower than one loop for
every cell and provider: LSTM MKL 315 ms against 176 unsharded, OpenBLAS 448 against 253; GRU MKL 223
against 122; RNN MKL 115 against 43. Each shard's GEMMs on one core run at about half the 2-thread
GEMM's rate and the elementwise work it overlaps is a small part of the step. (The helper's earlier
runs, on the same machine under a load average of 5-8, favoured shards: a loaded machine favours
one-thread work over a 2-thread pool that must wait for both cores.) On the 2-core AMD EPYC (AVX2) on
2026-12-04 too (RESULTS.md, "Issue 17 on the AMD EPYC"), two shards took 1.79x (OpenBLAS) and 1.32x
(MKL) one loop's time on the same library for the LSTM, 1.80x and 1.30x for the GRU, 1.95x and 1.38x for
the RNN: two one-thread GEMMs at once ran at 0.70-0.75x the speed of one alone, while the 2-thread pool
ran 1.2-2.0x one thread's.
"""

import concurrent.futures
import functools
import os

import numpy as np

from ..._recurrences.cells import GRURecurrence, LSTMRecurrence, RNNRecurrence
from ..host import aligned_empty
from . import lnsteps, rowchoice, units

# Batches from this size up are split across the cores, per (provider, cell) (absent: never).
SHARD_MIN_BATCH = {}
# Batches up to SPLIT_MAX_BATCH rows, of layers with at least SPLIT_MIN_HIDDEN units, run split by
# units in SPLIT_PARTS parts (never more than the cores). SPLIT_MAX_BATCH is 0: nothing is split unless
# asked. On the 2-vCPU Intel Xeon (2026-12-03, RESULTS.md "Batch 1 split by units"), T=1000 B=1 H=256:
# two parts' GEMVs run at once take 1.55x their time alone (the vCPUs share a core's bandwidth), and
# split layers took 1.02x (LSTM), 0.97x (GRU) and 1.14x (RNN) one loop's time in a process with OpenBLAS
# alone; beside MKL's pool (the input projection's, still spinning during the loop), 2.5-3.9x. On the
# AMD EPYC (2026-12-04), whose two GEMVs at once took 1.13x one alone: 0.98x (LSTM), 1.05x (GRU) and
# 2.11x (RNN).
SPLIT_MAX_BATCH, SPLIT_MIN_HIDDEN, SPLIT_PARTS = 0, 128, 2


def cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _asked():
    """RNNKERN_CPU_SHARDS as a number, or None when it is not set."""
    value = os.environ.get("RNNKERN_CPU_SHARDS", "")
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"RNNKERN_CPU_SHARDS must be a whole number >= 1 (1: no sharding), got {value!r}")
    return int(value)


def shard_count(batch, provider_name, cell):
    """How many shards a batch of ``batch`` rows runs in: RNNKERN_CPU_SHARDS, else the size rule; never
    more than the cores, nor so many that a shard would have fewer than 2 rows."""
    wanted = _asked()
    if wanted is None:
        least = SHARD_MIN_BATCH.get((provider_name, cell))
        wanted = cores() if least is not None and batch >= least else 1
    return max(1, min(wanted, cores(), batch // 2))


def part_count(batch, rec, provider_name):
    """How many parts a loop that is not sharded by rows runs in, split by units: RNNKERN_CPU_SHARDS,
    else the size rule; never more than the cores or the units. 1 for what the split does not cover:
    a GEMM provider other than OpenBLAS (MKL packs W_hh^T whole), the GRU with linear_before_reset=False
    (two GEMMs a step), the LayerNorm cells (a step's norm spans every unit)."""
    covered = (type(rec) in (RNNRecurrence, LSTMRecurrence) or type(rec) is GRURecurrence and rec.linear_before_reset)
    if not (covered and units.AVAILABLE and provider_name == "openblas"):
        return 1
    H, wanted = rec.hidden_size, _asked()
    if wanted is None:
        wanted = SPLIT_PARTS if batch <= SPLIT_MAX_BATCH and H >= SPLIT_MIN_HIDDEN else 1
    return max(1, min(wanted, cores(), H))


def bounds(batch, shards):
    """(start, stop) of each shard: as even as possible, the larger first."""
    size, extra = divmod(batch, shards)
    starts = [i * size + min(i, extra) for i in range(shards + 1)]
    return list(zip(starts[:-1], starts[1:]))


@functools.lru_cache(maxsize=None)
def _pool(workers):
    return concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rnnkern-shard")


class Loop:
    """One direction's compiled loop: the kernels ``k``, the recurrence, its weights and state."""

    def __init__(self, k, rec, w_hh, b_hn, c_p, dtype):
        self.k, self.rec, self.w_hh, self.b_hn, self.p, self.dtype = k, rec, w_hh, b_hn, c_p, dtype

    def buffers(self, rows, width=None):
        """The step GEMMs' outputs for ``rows`` rows and ``width`` of the hidden units (None: all of them)."""
        H, rec = width or self.rec.hidden_size, self.rec
        if isinstance(rec, GRURecurrence) and not rec.linear_before_reset:
            return (aligned_empty((rows, 2 * H), self.dtype), aligned_empty((rows, H), self.dtype),
                    aligned_empty((rows, H), self.dtype))
        return (aligned_empty((rows, rec.gates * H), self.dtype),)  # GEMV outputs on a cache line

    def units(self, lo, hi):
        """This loop for the units [lo, hi) of a split: the bias b_hn and the peepholes p cut to them."""
        H = self.rec.hidden_size
        p = self.p
        if p is not None and p.shape[0] == 3 * H:  # else a stand-in (no peepholes)
            p = np.ascontiguousarray(p.reshape(3, H)[:, lo:hi]).reshape(-1)
        return Loop(self.k, self.rec, self.w_hh, np.ascontiguousarray(self.b_hn[lo:hi]), p, self.dtype)

    def operands(self, provider, rows):
        """The B operands of the step GEMMs for ``rows`` rows (W_hh^T, or its halves for the GRU with
        linear_before_reset=False), as ``provider`` takes them, or rnnkern's row product's (``rowchoice``)."""
        w_t, rec, H = self.w_hh.T, self.rec, self.rec.hidden_size
        if isinstance(rec, GRURecurrence) and not rec.linear_before_reset:
            return (rowchoice.step_operand(provider, w_t[:, :2 * H], rows),
                    rowchoice.step_operand(provider, w_t[:, 2 * H:], rows))
        return (rowchoice.step_operand(provider, w_t, rows),)

    def run(self, block, operands, h_prev, c, c_spare, chunk, reverse, bufs, part=None):
        k, rec = self.k, self.rec
        norms = getattr(rec, "norms", None)  # the LayerNorm cells (issue 20), at inference: zoneout blends
        if norms is not None and rec.has_cell_state:
            lnsteps.lnlstm_loop(block, operands[0], h_prev, c, c_spare, *norms, rec.zoneout.prob, chunk, reverse, *bufs)
        elif norms is not None:
            lnsteps.lngru_loop(block, operands[0], h_prev, *norms, rec.zoneout.prob, chunk, reverse, *bufs)
        elif isinstance(rec, LSTMRecurrence):
            k.lstm_loop(block, operands[0], h_prev, c, c_spare, self.p, chunk, reverse, *bufs, part)
        elif isinstance(rec, RNNRecurrence):
            k.rnn_loop(block, operands[0], h_prev, chunk, reverse, *bufs, part)
        elif rec.linear_before_reset:
            k.gru_loop(block, operands[0], self.b_hn, h_prev, chunk, reverse, *bufs, part)
        else:
            k.gru_reset_after_loop(block, operands[0], operands[1], h_prev, chunk, reverse, *bufs)


def run_sharded(loop, provider, gx, h0, out, reverse, c, shards, one_thread=False):
    """Run ``loop`` over every chunk of ``gx`` with the batch in ``shards`` (start, stop) runs. Each
    chunk's input projection runs first, on every thread and by its own provider; then the shards,
    with ``provider.exclusive`` (OpenBLAS held at one thread while MKL runs) and, sharded, every GEMM
    on one thread (``serial``, ``serial_thread``); unsharded too with ``one_thread``."""
    T = out.shape[0]
    parts = [_Shard(loop, provider, start, stop, h0, c) for start, stop in shards]
    steps = range(0, T, gx.chunk_steps)
    for begin in (reversed(steps) if reverse else steps):
        begin, block = gx.block(begin)
        chunk = out[begin:begin + block.shape[0]]
        with provider.exclusive():
            if len(parts) == 1:
                (parts[0].run_serial if one_thread else parts[0].run)(block, chunk, reverse)
                continue
            with provider.serial():
                futures = [_pool(len(parts) - 1).submit(p.run_serial, block, chunk, reverse) for p in parts[1:]]
                parts[0].run_serial(block, chunk, reverse)
                for f in futures:
                    f.result()


class _Shard:
    def __init__(self, loop, provider, start, stop, h0, c):
        self.loop, self.provider, self.rows = loop, provider, slice(start, stop)
        self.h_prev = h0[start:stop]
        self.c = None if c is None else c[start:stop]
        self.c_spare = None if c is None else np.empty_like(self.c)  # the LSTM loop alternates c and c_spare
        self.bufs = loop.buffers(stop - start)
        self.operands = loop.operands(provider, stop - start)

    def run(self, block, chunk, reverse):
        rows = self.rows
        part = chunk[:, rows]
        self.loop.run(block[:, rows], self.operands, self.h_prev, self.c, self.c_spare, part, reverse, self.bufs)
        self.h_prev = part[0 if reverse else -1]

    def run_serial(self, block, chunk, reverse):
        with self.provider.serial_thread():
            self.run(block, chunk, reverse)


def run_split(loop, provider, gx, h0, out, reverse, c, parts):
    """Run ``loop`` over every chunk of ``gx`` split by hidden units in ``parts`` parts (``units``): the
    first in this thread, the others in the pool's, each GEMM on one thread (``provider.serial``: the
    parts' GEMVs run side by side). A part that fails aborts the others before its error is raised."""
    T, B, H = out.shape
    flags = np.zeros(units.LINE * (parts + 1), np.int64)
    members = [_Units(loop, q, lo, hi, parts, flags, c, B) for q, (lo, hi) in enumerate(bounds(H, parts))]
    h_prev, steps = h0, range(0, T, gx.chunk_steps)
    with provider.serial():
        for begin in (reversed(steps) if reverse else steps):
            begin, block = gx.block(begin)
            chunk = out[begin:begin + block.shape[0]]
            flags[:] = 0
            futures = [_pool(parts - 1).submit(m.run, block, h_prev, chunk, reverse) for m in members[1:]]
            try:
                members[0].run(block, h_prev, chunk, reverse)
            finally:
                for f in futures:
                    f.exception()  # every part has returned before the chunk's buffers are reused
            for f in futures:
                f.result()
            h_prev = chunk[0 if reverse else -1]
    if c is not None:
        for m in members:
            c[:, m.part.lo:m.part.hi] = m.c


class _Units:
    """One part of a split loop: ``loop`` cut to its units, its ``units.Part``, its cell state."""

    def __init__(self, loop, me, lo, hi, count, flags, c, rows):
        n, G, H, dtype = hi - lo, loop.rec.gates, loop.rec.hidden_size, loop.dtype
        self.loop, self.w_t = loop.units(lo, hi), loop.w_hh.T  # OpenBLAS's operand (part_count): W_hh^T itself
        self.part = units.Part(lo, hi, G, flags, me, count, aligned_empty((H, G * n), dtype),
                               aligned_empty((rows, G * n), dtype), aligned_empty((rows, n), dtype),
                               aligned_empty((rows, n), dtype))
        self.c = None if c is None else np.ascontiguousarray(c[:, lo:hi])
        self.c_spare = None if c is None else np.empty_like(self.c)
        self.bufs = loop.buffers(rows, n)
        self.gathered = False

    def run(self, block, h_prev, chunk, reverse):
        try:
            if not self.gathered:  # in the part's own thread: its weights land in its core's cache
                units.gather_weights(self.w_t, self.part)
                self.gathered = True
            self.loop.run(block, (self.w_t,), h_prev, self.c, self.c_spare, chunk, reverse, self.bufs, self.part)
        except BaseException:
            self.part.flags[0] = 1  # the abort word: the other parts stop waiting for this one
            raise
