"""Scalar activations for the numba kernels, written so that LLVM vectorises the loops that call them.

``math.exp``/``math.tanh`` are calls into libm, which LLVM cannot vectorise (without Intel's
SVML); a float32 tanh built from a Cephes-style exp (range reduction, a polynomial, 2**n made by
bit-casting) and selects instead of branches runs 8 lanes at a time on AVX2. It stays within a
few float32 ulps of the float64 result (about 1.5e-7 relative, as close as NumPy's own float32
tanh). float64 keeps libm's ``math.tanh``: full accuracy matters more there than speed.

Saturation is exact (tanh(+-inf) = +-1, sigmoid(-inf) = 0) and NaN propagates. That rules out the
fastmath flags ``reassoc`` (it folds exp's two-part range reduction back into one product) and
``nnan``/``ninf`` (they let LLVM assume NaN and inf never occur); ``math.floor`` would return an
int and silently move the math to float64, hence ``np.floor``; constants are typed float32, since
a float64 literal would promote the whole expression (float32 constants in float64 math are exact).

Every function here is module-level, never a closure: numba's cache keys a closure on its pickled
free variables, which differ between processes, so cached closures are recompiled every time.
The kernels that inline these functions recompile when this file changes: every cache of this folder
is keyed on the whole folder (``cachekey``, imported first here).
"""

import math

import numpy as np
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from . import cachekey  # noqa: F401  (first: every cached kernel of this folder depends on the whole folder)


def _cache_probe():
    """A function of this file, for numba to find a cache folder for (see ``_compile_cache_writable``)."""


def _compile_cache_writable():
    """Whether numba can keep the compiled kernels on disk: in NUMBA_CACHE_DIR, in a writable
    __pycache__ beside the source, or in its user-wide cache folder (~/.cache/numba).

    In a read-only install run by another user (installed by root, HOME unwritable) none of them is,
    and ``cache=True`` would raise at decoration time, so ``import rnnkern`` would fail; the kernels
    are then compiled in memory, once per process. Asked once, of numba's own locators: every kernel
    module lives in this folder, and the locators' answer depends on the folder only.
    """
    try:
        njit(cache=True)(_cache_probe)
    except RuntimeError:  # numba: "cannot cache function ...: no locator available for file ..."
        return False
    return True


FASTMATH = {"nsz", "arcp", "contract", "afn"}
COMPILE_CACHE = _compile_cache_writable()
JIT = dict(cache=COMPILE_CACHE, fastmath=FASTMATH, error_model="numpy")

f32 = np.float32
ONE, ZERO = f32(1), f32(0)  # float32: exact, and they keep float32 math in float32
_LOG2E, _LN2_HI, _LN2_LO = f32(1.44269504088896341), f32(0.693359375), f32(-2.12194440e-4)
# Cephes expf: exp(r) = 1 + r + r^2 * P(r) on |r| <= ln(2)/2
_P0, _P1, _P2, _P3, _P4, _P5 = (f32(1.9875691500e-4), f32(1.3981999507e-3), f32(8.3334519073e-3),
                                f32(4.1665795894e-2), f32(1.6666665459e-1), f32(5.0000001201e-1))
# Cephes tanhf on |x| < 0.625: x + x^3 * Q(x^2)
_Q0, _Q1, _Q2, _Q3, _Q4 = (f32(-5.70498872745e-3), f32(2.06390887954e-2), f32(-5.37397155531e-2),
                           f32(1.33314422036e-1), f32(-3.33332819422e-1))
_HALF, _ONE, _TWO, _ZERO = f32(0.5), f32(1.0), f32(2.0), f32(0.0)
_EXP_HI = f32(88.0)          # exp(88) = 1.65e38 < FLT_MAX, and 2**n stays a normal number
_EXP_LO = f32(-87.0)         # exp(-87) = 1.6e-38 > FLT_MIN
_N_MIN = f32(-126.0)
_TANH_SMALL = f32(0.625)
_TANH_ONE = f32(9.0)         # tanh(9) = 1 - 3e-8 rounds to 1 in float32


@intrinsic
def _int32_bits_as_float32(typingctx, bits):
    """The float32 whose bit pattern is the int32 ``bits`` (a bit cast, no conversion)."""
    sig = types.float32(types.int32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], cgutils.ir.FloatType())

    return sig, codegen


@njit(**JIT)
def exp32(x):
    """exp for float32 on [-87, 88] (relative error ~1e-7); +inf above, 0 below, NaN stays NaN."""
    xc = _EXP_HI if x > _EXP_HI else x        # comparisons with NaN are false: NaN passes through
    xc = _EXP_LO if xc < _EXP_LO else xc
    n = np.floor(xc * _LOG2E + _HALF)
    r = xc - n * _LN2_HI - n * _LN2_LO
    p = ((((_P0 * r + _P1) * r + _P2) * r + _P3) * r + _P4) * r + _P5
    p = p * r * r + r + _ONE
    n = n if n >= _N_MIN else _N_MIN          # NaN -> a harmless exponent (p is NaN anyway)
    y = p * _int32_bits_as_float32((np.int32(n) + np.int32(127)) << np.int32(23))
    y = np.float32(np.inf) if x > _EXP_HI else y
    return _ZERO if x < _EXP_LO else y


@njit(**JIT)
def tanh32(x):
    """tanh for float32: a polynomial near 0, 1 - 2/(exp(2|x|) + 1) beyond, exactly +-1 past |x| = 9."""
    a = abs(x)
    small = ((((_Q0 * a * a + _Q1) * a * a + _Q2) * a * a + _Q3) * a * a + _Q4) * a * a * a + a
    large = _ONE - _TWO / (exp32(_TWO * (_TANH_ONE if a > _TANH_ONE else a)) + _ONE)
    t = small if a < _TANH_SMALL else large
    t = _ONE if a > _TANH_ONE else t
    return -t if x < _ZERO else t             # NaN: neither branch changes it


@njit(**JIT)
def sigmoid32(x):
    """sigmoid(x) = tanh(x/2)/2 + 1/2, as in kernels/common.cuh: exact 0 and 1 at -+inf."""
    return tanh32(x * _HALF) * _HALF + _HALF


def tanh(x):
    """tanh of a float32 (tanh32) or float64 (libm), in compiled code."""
    return math.tanh(x)


def sigmoid(x):
    """sigmoid(x) = tanh(x/2)/2 + 1/2 of a float32 or float64, in compiled code."""
    return math.tanh(x * 0.5) * 0.5 + 0.5


_INLINE = dict(fastmath=FASTMATH, error_model="numpy")


@overload(tanh, jit_options=_INLINE)
def _tanh(x):
    if x == types.float32:
        return lambda x: tanh32(x)
    return lambda x: math.tanh(x)


@overload(sigmoid, jit_options=_INLINE)
def _sigmoid(x):
    if x == types.float32:
        return lambda x: sigmoid32(x)
    return lambda x: math.tanh(x * 0.5) * 0.5 + 0.5


def like(x, value):
    """``value`` as a number of x's type (float32 or float64), in compiled code: an option's constant
    (a clip, an activation's alpha) then keeps float32 math in float32, rounded as NumPy rounds it."""
    return value


@overload(like, jit_options=_INLINE)
def _like(x, value):
    if x == types.float32:
        return lambda x, value: np.float32(value)
    return lambda x, value: np.float64(value)


def apart(source, dest):
    """``source``, copied if it overlaps ``dest``. The kernels allow an output to be its input
    (c_out = c_prev), but LLVM's vectorised loop checks at run time that no output overlaps an
    input and otherwise runs the scalar loop, about 10x slower; a copy of B*H values costs far less."""
    return source.copy() if np.may_share_memory(source, dest) else source
