"""Explicit vectors for numba: a 64-byte vector type (16 float32 or 8 float64 lanes) and its load,
store, broadcast and multiply-add, as numba intrinsics that emit LLVM's vector instructions.

Why not LLVM's loop vectoriser: on AVX-512 Intel CPUs LLVM's subtarget prefers 256-bit vectors, so
numba's loops never use the 512-bit registers (``benchmarks/gemv_b1.py``), and a loop whose sums
should stay in registers across the inner loop (``rowgemm``) spilled them to memory when written with
an array of accumulators. A value of an LLVM vector type is kept in registers like any scalar, and is
lowered to zmm registers where the CPU has them, to pairs of ymm where it has AVX2 only, and to
whatever the CPU has elsewhere.

``fma`` is a multiply and an add that LLVM may fuse (the ``contract`` flag): one rounding where the
CPU has FMA, two where it has not; either way the same bits from run to run on a machine.
Addresses are the array's data pointer plus an element offset, unchecked: the callers check bounds.
"""

import contextlib

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, models, register_model

BYTES = 64  # one cache line, one AVX-512 register


class Vector(types.Type):
    """``lanes`` values of ``dtype`` (a numba float type) in one vector register."""

    def __init__(self, dtype):
        self.dtype, self.lanes = dtype, BYTES // (dtype.bitwidth // 8)
        super().__init__(name=f"Vector({dtype} x {self.lanes})")


@register_model(Vector)
class _VectorModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, ir.VectorType(dmm.lookup(fe_type.dtype).get_value_type(), fe_type.lanes))


def _address(context, builder, array_type, array, offset, vector_type=None):
    data = context.make_array(array_type)(context, builder, array).data
    pointer = builder.gep(data, [offset])
    return pointer if vector_type is None else builder.bitcast(pointer, vector_type.as_pointer())


@intrinsic
def load(typingctx, array, offset):
    """The Vector of ``array``'s elements [offset, offset + lanes) counted from its first element in
    memory order (any alignment)."""
    vector = Vector(array.dtype)

    def codegen(context, builder, signature, args):
        llvm_type = context.get_value_type(vector)
        pointer = _address(context, builder, signature.args[0], args[0], args[1], llvm_type)
        return builder.load(pointer, align=array.dtype.bitwidth // 8)

    return vector(array, offset), codegen


@intrinsic
def store(typingctx, array, offset, value):
    """Write ``value`` to ``array``'s elements [offset, offset + lanes) (as ``load`` counts them)."""

    def codegen(context, builder, signature, args):
        pointer = _address(context, builder, signature.args[0], args[0], args[1], args[2].type)
        builder.store(args[2], pointer, align=array.dtype.bitwidth // 8)
        return context.get_dummy_value()

    return types.void(array, offset, value), codegen


@intrinsic
def element(typingctx, array, offset):
    """``array``'s element at ``offset`` from its first element in memory order (strides aside)."""

    def codegen(context, builder, signature, args):
        return builder.load(_address(context, builder, signature.args[0], args[0], args[1]))

    return array.dtype(array, offset), codegen


@intrinsic
def put(typingctx, array, offset, value):
    """Write the scalar ``value`` to ``array``'s element at ``offset`` (as ``element`` counts)."""

    def codegen(context, builder, signature, args):
        value = context.cast(builder, args[2], signature.args[2], array.dtype)
        builder.store(value, _address(context, builder, signature.args[0], args[0], args[1]))
        return context.get_dummy_value()

    return types.void(array, offset, value), codegen


@intrinsic
def zero(typingctx, array):
    """A Vector of zeros of ``array``'s dtype."""
    vector = Vector(array.dtype)

    def codegen(context, builder, signature, args):
        return ir.Constant(context.get_value_type(vector), None)

    return vector(array), codegen


@intrinsic
def splat(typingctx, x):
    """A Vector with ``x`` in every lane."""
    vector = Vector(x)

    def codegen(context, builder, signature, args):
        llvm_type = context.get_value_type(vector)
        first = builder.insert_element(ir.Constant(llvm_type, ir.Undefined), args[0], cgutils.int32_t(0))
        mask = ir.Constant(ir.VectorType(ir.IntType(32), vector.lanes), [0] * vector.lanes)
        return builder.shuffle_vector(first, ir.Constant(llvm_type, ir.Undefined), mask)

    return vector(x), codegen


@intrinsic
def fma(typingctx, a, b, c):
    """a * b + c, lane by lane (fused where the CPU can: see the module's docstring)."""

    def codegen(context, builder, signature, args):
        product = builder.fmul(args[0], args[1], flags=("contract",))
        return builder.fadd(product, args[2], flags=("contract",))

    return c(a, b, c), codegen


# LLVM's string attribute for the vector width its loop vectoriser aims at in one function (it overrides
# the subtarget's preference, 256 bits on AVX-512 Intel CPUs; a CPU without 512-bit registers keeps its
# own widest).
PREFER_WIDEST = '"prefer-vector-width"="512"'


@intrinsic
def widest_vectors(typingctx):
    """Lets LLVM vectorise the loops of the function being compiled with 512-bit registers where the CPU
    has them (a call emits no code: it marks the function). The elementwise kernels call it: on the
    AVX-512 Xeon their steps took 0.74-0.79x the time (benchmarks/wide_kernels_ab.py, RESULTS.md). Each
    lane does the same arithmetic at either width (the kernels' loops have no reductions to reorder),
    so results keep their bits."""

    def codegen(context, builder, signature, args):
        try:  # llvmlite's FunctionAttributes is a set of the names it knows; LLVM also takes "key"="value"
            set.add(builder.function.attributes, PREFER_WIDEST)
        except TypeError:  # a later llvmlite that stores them otherwise: the subtarget's width, as before
            pass
        return context.get_dummy_value()

    return types.void(), codegen


@intrinsic
def _no_mark(typingctx):
    return types.void(), lambda context, builder, signature, args: context.get_dummy_value()


@contextlib.contextmanager
def unmarked():
    """Inside the block, kernels compiled anew get no ``widest_vectors`` mark (the subtarget's width):
    the other side of the A/Bs that measure and test it. Kernels compiled before keep their code."""
    kept, globals()["widest_vectors"] = widest_vectors, _no_mark
    try:
        yield
    finally:
        globals()["widest_vectors"] = kept
