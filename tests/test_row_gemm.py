"""rnnkern's own one-row product for the compiled loops at batch 1 (``rowgemm``, issue 17): the kernel
against float64 on every tail of its column blocks and on strided operands, the same bits every call,
the layers at batch 1 with it and with OpenBLAS's GEMV against the float64 reference, and its choice:
RNNKERN_CPU_GEMV overrides it, a bad value is a clear error, a measured decision is kept on disk."""

import json

import numpy as np
import pytest

import reference
import rnnkern
from conftest import assert_close
from rnnkern._backend.numba import blas, choice, gemm, rowchoice, rowgemm, simd
from rnnkern._backend.numba.choice import repeat_matmul

KINDS = ["LSTM", "GRU", "RNN"]


def _product(a, b):
    c = np.full((a.shape[0], b.shape[1]), np.nan, a.dtype)
    repeat_matmul(a, blas.RowMatrix(b), c, 1)
    return c


def _block(dtype):
    return rowgemm.BLOCK * simd.BYTES // np.dtype(dtype).itemsize


@pytest.mark.parametrize("M", [1, 3])
@pytest.mark.parametrize("K", [1, 2, 17, 256])
@pytest.mark.parametrize("N_from_block", [(0, 1), (0, 15), (0, 16), (1, 0), (1, 1), (1, 17), (2, 31), (8, 0)])
def test_kernel_matches_float64(M, K, N_from_block, dtype):
    """N = blocks * block + extra columns: whole blocks, whole vectors after them, a scalar tail."""
    blocks, extra = N_from_block
    N = blocks * _block(dtype) + extra
    rng = np.random.default_rng(K * 1000 + N)
    a, b = rng.standard_normal((M, K)).astype(dtype), rng.standard_normal((K, N)).astype(dtype)
    assert_close(_product(a, b), a.astype(np.float64) @ b.astype(np.float64), dtype, scale=max(1, K / 16))


def test_kernel_takes_leading_dimensions(dtype):
    """Operands with rows apart (a column slice of W^T, as the GRU's reset-after halves are; rows of a
    wider a and c), each element read and written where its strides put it."""
    rng = np.random.default_rng(0)
    K, N = 33, _block(dtype) + 19
    a_wide, w_wide = rng.standard_normal((3, K + 5)).astype(dtype), rng.standard_normal((K, N + 7)).astype(dtype)
    c_wide = np.full((3, N + 4), -7, dtype)
    a, w, c = a_wide[:, 2:2 + K], w_wide[:, 3:3 + N], c_wide[:, 1:1 + N]
    repeat_matmul(a, blas.RowMatrix(w), c, 1)
    assert_close(c, a.astype(np.float64) @ w.astype(np.float64), dtype, scale=3)
    assert (c_wide[:, 0] == -7).all() and (c_wide[:, 1 + N:] == -7).all()  # nothing written outside


@pytest.mark.parametrize("operand", ["rnnkern", "openblas"])
def test_no_inner_dimension_gives_zeros(operand):
    """K = 0 (views of a larger buffer, which BLAS can describe): the product is zeros, on both paths,
    and nothing is read past the empty rows."""
    buf = np.arange(1, 201, dtype=np.float32).reshape(10, 20)
    for M, N in ((1, 5), (3, 20)):
        a, w = buf[0:M, 7:7], buf[3:3, 0:N]
        c = np.full((M, N), -1, np.float32)
        repeat_matmul(a, blas.RowMatrix(w) if operand == "rnnkern" else w, c, 1)
        np.testing.assert_array_equal(c, np.zeros((M, N), np.float32))


def test_kernel_gives_the_same_bits_every_call():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((1, 256)).astype(np.float32), rng.standard_normal((256, 1000)).astype(np.float32)
    first = _product(a, b)
    for _ in range(3):
        np.testing.assert_array_equal(_product(a, b), first)


def test_kernel_refuses_operands_blas_could_not_take():
    """The checks of OpenBLAS's path (blas.leading_dim): a reversed W^T raises, nothing is read."""
    b = np.ones((4, 8), np.float32)[::-1]
    with pytest.raises(ValueError, match="not a row-major matrix"):
        _product(np.ones((1, 4), np.float32), b)
    with pytest.raises(ValueError, match="shapes do not match"):
        _product(np.ones((1, 5), np.float32), np.ones((4, 8), np.float32))


@pytest.fixture(params=["rnnkern", "openblas"])
def row_kernel(request, monkeypatch):
    monkeypatch.setenv("RNNKERN_CPU_GEMV", request.param)
    monkeypatch.setenv("RNNKERN_CPU_GEMM", "openblas")  # the provider whose one-row products these are
    return request.param


def test_the_override_picks_the_operand(row_kernel):
    w_t = np.ones((16, 64), np.float32)
    operand = rowchoice.step_operand(gemm.OpenBLAS(), w_t, 1)
    assert isinstance(operand, blas.RowMatrix) == (row_kernel == "rnnkern")
    assert rowchoice.step_operand(gemm.OpenBLAS(), w_t, 2) is w_t  # more rows: OpenBLAS's GEMM whatever the kernel


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("T, I, H, strided", [(1, 1, 1, False), (4, 3, 5, True), (3, 8, 40, False), (2, 5, 129, True)])
def test_batch_one_layers_match_the_float64_reference(row_kernel, kind, T, I, H, strided, dtype):
    rng = np.random.default_rng(T * 7 + H)
    for option in {"GRU": (True, False), "RNN": ("tanh", "relu")}.get(kind, (None,)):
        extra = {"GRU": {"linear_before_reset": option}, "RNN": {"nonlinearity": option}}.get(kind, {})
        layer = getattr(rnnkern, kind)(I, H, num_layers=2, bidirectional=True, dtype=dtype, seed=5, **extra)
        x = rng.standard_normal((T, 1, 2 * I if strided else I)).astype(dtype)
        h0 = rng.standard_normal((4, 1, 2 * H if strided else H)).astype(dtype)
        if strided:
            x, h0 = x[:, :, ::2], h0[:, :, ::2]
        state = (h0, rng.standard_normal(h0.shape).astype(dtype)) if kind == "LSTM" else h0
        y, state_n = layer(x, state)
        want_y, want_state = reference.layer(kind, layer.state_dict(), x, state, num_layers=2,
                                             bidirectional=True, **extra)
        assert_close(y, want_y, dtype, scale=10)
        assert_close(state_n[0] if kind == "LSTM" else state_n, want_state[0] if kind == "LSTM" else want_state,
                     dtype, scale=10)


def test_unbatched_input_runs_the_row_kernel_too(row_kernel, monkeypatch):
    operands, step_operand = [], rowchoice.step_operand
    monkeypatch.setattr(rowchoice, "step_operand", lambda *a: operands.append(step_operand(*a)) or operands[-1])
    layer = rnnkern.LSTM(6, 70, seed=2)
    x = np.random.default_rng(2).standard_normal((5, 6)).astype(np.float32)
    y, _ = layer(x)
    want, _ = reference.layer("LSTM", layer.state_dict(), x[:, None])
    assert_close(y, want[:, 0], np.float32, scale=10)
    assert [type(o) is blas.RowMatrix for o in operands] == [row_kernel == "rnnkern"]  # the loop ran it


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """An empty cache folder, no override, nothing remembered in this process."""
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("RNNKERN_CPU_GEMV", raising=False)
    monkeypatch.setattr(choice, "_MEMORY", {})
    rowchoice.decision.cache_clear()
    yield tmp_path / "rnnkern" / choice.FILE
    rowchoice.decision.cache_clear()


def test_bad_value_is_a_clear_error(fresh, monkeypatch):
    monkeypatch.setenv("RNNKERN_CPU_GEMV", "blas")
    with pytest.raises(ValueError, match="RNNKERN_CPU_GEMV must be 'rnnkern' or 'openblas'.*'blas'"):
        rnnkern.GRU(2, 3)(np.zeros((2, 1, 2), np.float32))


def test_decision_is_measured_written_and_reused(fresh, monkeypatch):
    name, ratio = rowchoice.decision("float32", 64, 256)
    assert name == ("rnnkern" if ratio < 1 else "openblas") and ratio > 0
    saved = json.loads(fresh.read_text())
    assert saved[choice.machine_key()][choice.gemm_class("float32", "row", 1, 64, 256)]["provider"] == name
    assert rowchoice.chosen(np.float32, 64, 256) == (name == "rnnkern")
    # a later process (nothing in memory) reads the file instead of measuring again
    monkeypatch.setattr(choice, "_MEMORY", {})
    rowchoice.decision.cache_clear()
    monkeypatch.setattr(rowchoice, "measure", lambda *a: pytest.fail("measured again"))
    assert rowchoice.decision("float32", 60, 250)[0] == name  # the same class


def test_a_remembered_provider_name_is_not_a_row_decision(fresh, monkeypatch):
    """The file's classes are shared with the providers': a class holding 'mkl' is measured anew."""
    cls = choice.gemm_class("float64", "row", 1, 8, 32)
    choice.remember(cls, "mkl", 0.5)
    monkeypatch.setattr(rowchoice, "measure", lambda *a: 1.25)
    assert rowchoice.decision("float64", 8, 32) == ("openblas", 1.25)


def test_other_dtypes_keep_openblas(fresh, monkeypatch):
    monkeypatch.setattr(rowchoice, "measure", lambda *a: pytest.fail("measured"))
    assert not rowchoice.chosen(np.float16, 16, 64)


def test_the_benchmark_header_says_who_runs_the_one_row_steps(fresh, monkeypatch):
    from rnnkern._backend import cpu_gemm_description

    monkeypatch.setattr(rowchoice, "measure", lambda *a: 0.75)
    text = cpu_gemm_description("float32", 1, 256, 1024)
    assert "one-row steps 1x256 @ 256x1024: rnnkern's (rnnkern's row product measured 0.75x OpenBLAS's GEMV)" in text
    monkeypatch.setenv("RNNKERN_CPU_GEMV", "openblas")
    assert "one-row steps 1x256 @ 256x1024: OpenBLAS's (RNNKERN_CPU_GEMV)" in cpu_gemm_description("float32", 1, 256, 1024)


def test_the_benchmark_header_adds_the_small_configurations_one_row_steps(fresh, monkeypatch):
    from rnnkern._bench import machine

    monkeypatch.setattr(choice, "measure", lambda *a: 0.5)  # the default step GEMM's providers: not timed here
    monkeypatch.setattr(rowchoice, "measure", lambda *a: 0.75)
    default, _, row = machine._cpu_gemm().partition("; at batch 1 ")
    assert "for the step GEMM 64x512 @ 512x2048 float32" in default
    assert row == "one-row steps 1x256 @ 256x1024: rnnkern's (rnnkern's row product measured 0.75x OpenBLAS's GEMV)"
