"""The compiled time loop of one layer and direction, its batch split into shards run on both cores.

Each shard (a run of batch rows) runs its own whole time loop (``steps.*_loop``: GEMM, fused kernel,
next step) in its own thread with the GIL released and every GEMM on one thread, so that one core's
elementwise work overlaps the other's GEMM and no step waits for the other shard (rows of a
recurrence never meet). The only barrier is at the end of each chunk of the input projection.

Results: every row's arithmetic is the same in any shard as in the whole batch for both providers
as long as no shard has a single row (a one-row product goes to GEMV, which sums in another order;
tests/test_gemm_shard.py checks it), so shards have at least 2 rows and sharding changes no bit.

Whether to shard is a size rule (``SHARD_MIN_BATCH``), overridden by ``RNNKERN_CPU_SHARDS`` (1 turns it
off, 2 asks for two shards). The rule is empty: nothing is sharded unless asked. On the quiet 2-core
Intel Xeon (AVX-512) on 2026-12-02, T=100 B=64 I=H=512 float32, median of 7 interleaved rounds
(/tmp-free command in benchmarks/RESULTS.md, "Sharding"), two shards were slower than one loop for
every cell and provider: LSTM MKL 315 ms against 176 unsharded, OpenBLAS 448 against 253; GRU MKL 223
against 122; RNN MKL 115 against 43. Each shard's GEMMs on one core run at about half the 2-thread
GEMM's rate and the elementwise work it overlaps is a small part of the step. (The helper's earlier
runs, on the same machine under a load average of 5-8, favoured shards: a loaded machine favours
one-thread work over a 2-thread pool that must wait for both cores.)
"""

import concurrent.futures
import functools
import os

import numpy as np

from ..._recurrences.cells import GRURecurrence, LSTMRecurrence, RNNRecurrence
from ..host import aligned_empty
from . import lnsteps

# Batches from this size up are split across the cores, per (provider, cell) (absent: never).
SHARD_MIN_BATCH = {}


def cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def shard_count(batch, provider_name, cell):
    """How many shards a batch of ``batch`` rows runs in: RNNKERN_CPU_SHARDS, else the size rule; never
    more than the cores, nor so many that a shard would have fewer than 2 rows."""
    value = os.environ.get("RNNKERN_CPU_SHARDS", "")
    if value:
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"RNNKERN_CPU_SHARDS must be a whole number >= 1 (1: no sharding), got {value!r}")
        wanted = int(value)
    else:
        least = SHARD_MIN_BATCH.get((provider_name, cell))
        wanted = cores() if least is not None and batch >= least else 1
    return max(1, min(wanted, cores(), batch // 2))


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

    def buffers(self, rows):
        H, rec = self.rec.hidden_size, self.rec
        if isinstance(rec, GRURecurrence) and not rec.linear_before_reset:
            return (aligned_empty((rows, 2 * H), self.dtype), aligned_empty((rows, H), self.dtype),
                    aligned_empty((rows, H), self.dtype))
        return (aligned_empty((rows, rec.gates * H), self.dtype),)  # GEMV outputs on a cache line

    def operands(self, provider, rows):
        """The B operands of the step GEMMs for ``rows`` rows (W_hh^T, or its halves for the GRU with
        linear_before_reset=False), as ``provider`` takes them."""
        w_t, rec, H = self.w_hh.T, self.rec, self.rec.hidden_size
        if isinstance(rec, GRURecurrence) and not rec.linear_before_reset:
            return provider.step_operand(w_t[:, :2 * H], rows), provider.step_operand(w_t[:, 2 * H:], rows)
        return (provider.step_operand(w_t, rows),)

    def run(self, block, operands, h_prev, c, c_spare, chunk, reverse, bufs):
        k, rec = self.k, self.rec
        norms = getattr(rec, "norms", None)  # the LayerNorm cells (issue 20), at inference: zoneout blends
        if norms is not None and rec.has_cell_state:
            lnsteps.lnlstm_loop(block, operands[0], h_prev, c, c_spare, *norms, rec.zoneout.prob, chunk, reverse, *bufs)
        elif norms is not None:
            lnsteps.lngru_loop(block, operands[0], h_prev, *norms, rec.zoneout.prob, chunk, reverse, *bufs)
        elif isinstance(rec, LSTMRecurrence):
            k.lstm_loop(block, operands[0], h_prev, c, c_spare, self.p, chunk, reverse, *bufs)
        elif isinstance(rec, RNNRecurrence):
            k.rnn_loop(block, operands[0], h_prev, chunk, reverse, *bufs)
        elif rec.linear_before_reset:
            k.gru_loop(block, operands[0], self.b_hn, h_prev, chunk, reverse, *bufs)
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
