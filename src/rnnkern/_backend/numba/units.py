"""A direction's compiled time loop split by hidden units across threads, for batches too small to
split by rows (``shard``; only when asked, as measured there): the parts' side of ``steps``' loops, and
the barrier between their steps.

At batch 1 a step is one GEMV, h_prev (1, H) @ W_hh^T (H, G*H), and the fused kernel on G*H gate
values. Split in parts, each part owns the units [lo, hi) and n = hi - lo of them:
- its G gate blocks' columns of W_hh^T, gathered once per call into ``Part.w`` (H, G*n), which then
  stays in that core's cache from step to step;
- those columns of each step's input projection, gathered into ``Part.gx`` (B, G*n) so that the
  fused kernel runs unchanged on a row-major block;
- its columns of the cell state (the caller hands each part a copy of its own).
A step is the part's GEMV on one thread, the fused kernel on its n units, its h copied into the shared
output row, and a barrier: each part's GEMV of step t+1 reads every part's h of step t. Every product
and kernel computes each unit's values as the whole loop does: each GEMV output is one dot product over
the same H values, in the same order where each part's columns line up with the BLAS's blocks (then
the split changes no bit; tests/test_unit_split.py), else within float32's rounding (on the AMD EPYC
a 12-column part's GEMV summed in another order than the 24-column whole).

The barrier is a spin on step counters, one cache line per part, written and read with release and
acquire atomics (numba has none: llvmlite's load_atomic and store_atomic through ``intrinsic``). A part
that has waited SPINS pauses yields its core (sched_yield) at every further check, so that on a machine
whose cores are busy with other work it does not hold the core its peer needs. ``flags[0]`` is the
abort word: when a part fails, its Python side sets it and every waiting part returns.

With ``part`` None (``steps``' loops unsplit) every function here is the identity or a no-op, and
numba compiles it away.
"""

import ctypes
import platform
from typing import Any, NamedTuple

import llvmlite.binding as llvm
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from .scalar import JIT

LINE = 8  # int64 counters a cache line apart: flags[LINE * (q + 1)] is part q's, flags[0] the abort word
SPINS = 2000  # pauses before a waiting part starts yielding its core (a step takes 5-20 us at batch 1)


def _sched_yield():
    """Register libc's sched_yield with LLVM; False where there is none (Windows: no split there)."""
    try:
        fn = ctypes.CDLL(None).sched_yield
    except (OSError, AttributeError, TypeError):
        return False
    llvm.add_symbol("sched_yield", ctypes.cast(fn, ctypes.c_void_p).value)
    return True


AVAILABLE = _sched_yield()
_X86 = platform.machine().lower() in ("x86_64", "amd64", "i686", "x86")
_yield = types.ExternalFunction("sched_yield", types.int32())


class Part(NamedTuple):
    """One part of a split loop: units [lo, hi) of ``gates`` gate blocks, its step counter
    ``flags[LINE * (me + 1)]`` among ``count`` parts' (me counts from 0), and its own buffers (``w`` (H, G*n), ``gx`` (B, G*n), ``h`` and
    ``h_prev`` (B, n))."""
    lo: int
    hi: int
    gates: int
    flags: Any
    me: int
    count: int
    w: Any
    gx: Any
    h: Any
    h_prev: Any


# --- atomics -------------------------------------------------------------------------------------
def _pointer(context, builder, sig, args):
    ary = context.make_array(sig.args[0])(context, builder, args[0])
    return cgutils.get_item_pointer(context, builder, sig.args[0], ary, [args[1]])


@intrinsic
def load_acquire(typingctx, flags, index):
    """flags[index], an int64 read with acquire ordering (never hoisted out of a loop)."""
    def codegen(context, builder, sig, args):
        return builder.load_atomic(_pointer(context, builder, sig, args), "acquire", 8)
    return types.int64(flags, index), codegen


@intrinsic
def store_release(typingctx, flags, index, value):
    """flags[index] = value, with release ordering: every earlier write is seen before it."""
    def codegen(context, builder, sig, args):
        builder.store_atomic(args[2], _pointer(context, builder, sig, args), "release", 8)
        return context.get_dummy_value()
    return types.void(flags, index, value), codegen


@intrinsic
def pause(typingctx):
    """x86's spin-wait hint (PAUSE); nothing elsewhere."""
    def codegen(context, builder, sig, args):
        if _X86:
            fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), []),
                                                "llvm.x86.sse2.pause")
            builder.call(fn, [])
        return context.get_dummy_value()
    return types.void(), codegen


@njit(nogil=True, **JIT)
def wait_all(flags, count, step):
    """Until every part's counter reaches ``step``: True, or False once the abort word is set."""
    spins = 0
    for q in range(count):
        while load_acquire(flags, LINE * (q + 1)) < step:
            if load_acquire(flags, 0) != 0:
                return False
            if spins < SPINS:
                spins += 1
                pause()
            else:
                _yield()
    return True


@njit(nogil=True, **JIT)
def gather_weights(w_t, part):
    """part.w = the part's columns of W_hh^T, gate block by gate block."""
    H, n = w_t.shape[1] // part.gates, part.hi - part.lo
    for k in range(w_t.shape[0]):
        row, mine = w_t[k], part.w[k]
        for g in range(part.gates):
            for j in range(n):
                mine[g * n + j] = row[g * H + part.lo + j]


# --- what steps' loops call: the identity without a part ---------------------------------------------
def weights(w_t, part):
    """The step GEMM's B operand: W_hh^T, or the part's columns of it."""


def gates(gx_t, part):
    """A step's input projection (B, G*H), or the part's columns of it, gathered."""


def hidden(h_out, part):
    """Where the fused kernel writes h: the output row, or the part's own buffer."""


def previous(h_prev, part):
    """h_prev (B, H) as the fused kernel reads it: all of it, or the part's columns, gathered."""


def publish(h_out, part, step):
    """After a step: copy the part's h into the output row and wait for every part's ``step``; False
    when the split was aborted (the loop then returns). True and nothing done without a part."""


def _unsplit(part):
    return part is None or isinstance(part, (types.NoneType, types.Omitted))


@overload(weights, inline="always", jit_options=JIT)
def _weights(w_t, part):
    if _unsplit(part):
        return lambda w_t, part: w_t
    return lambda w_t, part: part.w


@overload(gates, inline="always", jit_options=JIT)
def _gates(gx_t, part):
    if _unsplit(part):
        return lambda gx_t, part: gx_t

    def impl(gx_t, part):
        H, n, out = gx_t.shape[1] // part.gates, part.hi - part.lo, part.gx
        for b in range(gx_t.shape[0]):
            row, mine = gx_t[b], out[b]
            for g in range(part.gates):
                for j in range(n):
                    mine[g * n + j] = row[g * H + part.lo + j]
        return out
    return impl


@overload(hidden, inline="always", jit_options=JIT)
def _hidden(h_out, part):
    if _unsplit(part):
        return lambda h_out, part: h_out
    return lambda h_out, part: part.h


@overload(previous, inline="always", jit_options=JIT)
def _previous(h_prev, part):
    if _unsplit(part):
        return lambda h_prev, part: h_prev

    def impl(h_prev, part):
        out = part.h_prev
        for b in range(h_prev.shape[0]):
            row, mine = h_prev[b], out[b]
            for j in range(part.hi - part.lo):
                mine[j] = row[part.lo + j]
        return out
    return impl


@overload(publish, inline="always", jit_options=JIT)
def _publish(h_out, part, step):
    if _unsplit(part):
        return lambda h_out, part, step: True

    def impl(h_out, part, step):
        for b in range(h_out.shape[0]):
            row, mine = h_out[b], part.h[b]
            for j in range(part.hi - part.lo):
                row[part.lo + j] = mine[j]
        store_release(part.flags, LINE * (part.me + 1), step)
        return wait_all(part.flags, part.count, step)
    return impl
