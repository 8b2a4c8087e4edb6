"""The CPU GEMM providers (issue 17): every installed one against the float64 reference, forward and
training, on the compiled loop (sharded or not) and the Python loop; results bit for bit the same
across runs, and within float32's rounding with or without sharding. The mkl provider's tests skip
where MKL is not installed."""

import numpy as np
import pytest

import reference
import rnnkern
from conftest import assert_close
from finite_diff import central_differences, random_positions
from rnnkern._backend.numba import choice, shard

MKL_REASON = choice.mkl_unavailable_reason()
PROVIDERS = ["openblas", pytest.param("mkl", marks=pytest.mark.skipif(MKL_REASON is not None,
                                                                      reason=f"MKL: {MKL_REASON}"))]
KINDS = ["LSTM", "GRU", "RNN"]


@pytest.fixture(params=PROVIDERS)
def provider(request, monkeypatch):
    monkeypatch.setenv("RNNKERN_CPU_GEMM", request.param)
    monkeypatch.setattr(shard, "cores", lambda: 2)  # sharding runs even where one core is available
    return request.param


def _layer(kind, I, H, dtype, option=None, **kw):
    extra = {"GRU": {"linear_before_reset": option}, "RNN": {"nonlinearity": option}}.get(kind, {})
    extra = {k: v for k, v in extra.items() if v is not None}
    return getattr(rnnkern, kind)(I, H, dtype=dtype, seed=3, **extra, **kw), extra


def _inputs(rng, T, B, I, H, dtype, strided):
    x = rng.standard_normal((T, B, 2 * I if strided else I)).astype(dtype)
    h0 = rng.standard_normal((1, B, 2 * H if strided else H)).astype(dtype)
    if strided:  # every other column: views BLAS cannot take as they are
        x, h0 = x[:, :, ::2], h0[:, :, ::2]
    return x, h0


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("T, B, I, H, strided", [(1, 1, 1, 1, False), (3, 1, 4, 5, True), (4, 5, 3, 6, False),
                                                 (2, 7, 2, 3, True), (3, 20, 4, 5, False)])
@pytest.mark.parametrize("shards", ["1", "2"])
def test_forward_matches_the_float64_reference(provider, kind, T, B, I, H, strided, shards, dtype, monkeypatch):
    monkeypatch.setenv("RNNKERN_CPU_SHARDS", shards)
    rng = np.random.default_rng(T * 100 + B)
    for option in {"GRU": (True, False), "RNN": ("tanh", "relu")}.get(kind, (None,)):
        layer, extra = _layer(kind, I, H, dtype, option)
        x, h0 = _inputs(rng, T, B, I, H, dtype, strided)
        c0 = rng.standard_normal(h0.shape).astype(dtype)
        state = (h0, c0) if kind == "LSTM" else h0
        y, state_n = layer(x, state)
        want_y, want_state = reference.layer(kind, layer.state_dict(), x, state, **extra)
        assert_close(y, want_y, dtype, scale=10)
        if kind == "LSTM":
            assert_close(state_n[1], want_state[1], dtype, scale=10)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("B", [1, 4])
def test_training_matches_finite_differences(provider, kind, B):
    rng = np.random.default_rng(B)
    T, I, H = 3, 2, 3
    layer, _ = _layer(kind, I, H, "float64")
    x, h0 = _inputs(rng, T, B, I, H, "float64", strided=False)
    state = (h0, rng.standard_normal(h0.shape)) if kind == "LSTM" else h0
    y, _, tape = layer.forward_train(x, state)
    want_y, _ = reference.layer(kind, layer.state_dict(), x, state)
    assert_close(y, want_y, "float64")
    w_y = rng.standard_normal(y.shape)
    dx, _, dparams = layer.backward(tape, w_y)

    def loss():
        return float((layer(x, state)[0] * w_y).sum())

    for got, array in [(dx, x)] + [(dparams[name], p) for name, p in layer.named_parameters()]:
        positions = random_positions(array, 6, rng)
        numeric = central_differences(loss, array, 1e-6, positions)
        for pos in positions:
            np.testing.assert_allclose(got[pos], numeric[pos], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("B", [1, 3, 5, 7])
def test_two_shards_agree_with_one_and_rerun_bit_for_bit(provider, kind, B, monkeypatch):
    """Two shards (or, at batch 1, two parts) give one loop's results within float32's rounding, and each
    reruns bit for bit. Not bit for bit across shard counts: a BLAS may sum a block of 3 rows (or a
    12-column GEMV) in another order than one of 5 rows (24 columns): on the Intel Xeon (OpenBLAS's
    SkylakeX kernels, MKL) it did not, on the AMD EPYC (OpenBLAS's Haswell kernels, MKL) it did."""
    rng = np.random.default_rng(B)
    outputs = {}
    for option in {"GRU": (True, False)}.get(kind, (None,)):
        layer, _ = _layer(kind, 16, 24, "float32", option)
        x = rng.standard_normal((6, B, 16)).astype(np.float32)
        for shards in ("1", "2", "1"):
            monkeypatch.setenv("RNNKERN_CPU_SHARDS", shards)
            y, state = layer(x)
            outputs.setdefault(option, []).append((y, state[0] if kind == "LSTM" else state))
    for (y1, h1), (y2, h2), (y1_again, h1_again) in outputs.values():
        assert np.array_equal(y1, y1_again) and np.array_equal(h1, h1_again)
        assert_close(y2, y1, "float32")
        assert_close(h2, h1, "float32")


@pytest.mark.parametrize("B, shards, want", [(1, 2, [(0, 1)]), (3, 2, [(0, 3)]), (4, 2, [(0, 2), (2, 4)]),
                                             (5, 2, [(0, 3), (3, 5)]), (7, 2, [(0, 4), (4, 7)])])
def test_shards_have_two_rows_or_more(B, shards, want, monkeypatch):
    monkeypatch.setattr(shard, "cores", lambda: 2)
    monkeypatch.setenv("RNNKERN_CPU_SHARDS", str(shards))
    assert shard.bounds(B, shard.shard_count(B, "openblas", "LSTM")) == want


def test_the_size_rule_shards_large_batches_only(monkeypatch):
    """The rule as data: a (provider, cell) entry shards from its batch size up, and the measured rule
    (empty: sharding lost everywhere on a quiet machine, shard.py) shards nothing unless asked."""
    monkeypatch.setattr(shard, "cores", lambda: 2)
    monkeypatch.delenv("RNNKERN_CPU_SHARDS", raising=False)
    assert all(shard.shard_count(64, p, c) == 1 for p in ("mkl", "openblas") for c in ("LSTM", "GRU", "RNN"))
    monkeypatch.setattr(shard, "SHARD_MIN_BATCH", {("mkl", "LSTM"): 16})
    assert shard.shard_count(64, "mkl", "LSTM") == 2 and shard.shard_count(8, "mkl", "LSTM") == 1
    assert shard.shard_count(64, "openblas", "LSTM") == 1


def test_bad_shard_count_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("RNNKERN_CPU_SHARDS", "two")
    with pytest.raises(ValueError, match="RNNKERN_CPU_SHARDS must be a whole number >= 1.*'two'"):
        rnnkern.RNN(2, 3)(np.zeros((2, 4, 2), np.float32))


@pytest.mark.parametrize("kind", KINDS)
def test_hidden_size_one_with_arbitrary_strides(provider, kind, dtype):
    """from_state_dict leaves (G, 1) weights with strides BLAS never reads; MKL packs them from a copy."""
    base, _ = _layer(kind, 4, 1, dtype)
    layer = getattr(rnnkern, kind).from_state_dict(base.state_dict(), dtype=dtype)
    x = np.random.default_rng(0).standard_normal((5, 4, 4)).astype(dtype)
    y, _ = layer(x)
    assert_close(y, reference.layer(kind, layer.state_dict(), x)[0], dtype, scale=10)


@pytest.mark.parametrize("kind", KINDS)
def test_bit_for_bit_across_runs_and_input_alignments(provider, kind):
    """The same provider and thread count give the same bits, whatever the input's address (MKL may take
    other code paths for unaligned data)."""
    layer, _ = _layer(kind, 24, 40, "float32")
    x0 = np.random.default_rng(1).standard_normal((5, 8, 24)).astype(np.float32)
    outputs = []
    for offset in (0, 0, 1, 3):
        buffer = np.empty(x0.size + 16, np.float32)
        x = buffer[offset:offset + x0.size].reshape(x0.shape)
        x[...] = x0
        y, _, tape = layer.forward_train(x)
        dx, _, dparams = layer.backward(tape, np.ones_like(y))
        outputs.append((layer(x)[0], y, dx, dparams["weight_hh_l0"]))
    for run in outputs[1:]:
        assert all(np.array_equal(a, b) for a, b in zip(run, outputs[0]))


@pytest.mark.skipif(MKL_REASON is not None, reason=f"MKL: {MKL_REASON}")
@pytest.mark.parametrize("kind", ["LSTM", "GRU", "LayerNormLSTM", "LayerNormGRU"])
@pytest.mark.parametrize("lengths, bidirectional", [(None, False), ([4, 4, 2, 1, 1], True)])
def test_training_on_packed_weights(kind, lengths, bidirectional, monkeypatch):
    """Training's step GEMMs on MKL with W_hh packed once per direction (backend.packed: weights big
    enough for MKL to pack): forward_train's output and every gradient against the same layer in float64
    on the NumPy kernels; with lengths, the steps whose batch has shrunk multiply unpacked."""
    from rnnkern._backend import use_cpu_kernels
    from rnnkern._backend.numba import gemm, trainloop

    monkeypatch.setenv("RNNKERN_CPU_GEMM", "mkl")
    packed = []
    monkeypatch.setattr(gemm.MKL, "matmul_packed", lambda self, *a, f=gemm.MKL.matmul_packed: packed.append(1)
                        or f(self, *a))

    def operands(*args, f=trainloop._operands):  # the LayerNorm cells' compiled loops take the packing whole
        provider, full, part = f(*args)
        if isinstance(full, np.ndarray) and full.dtype == np.uint8:
            packed.append(1)
        return provider, full, part
    monkeypatch.setattr(trainloop, "_operands", operands)
    T, B, I, H = 4, 5, 6, 512  # W_hh of 3-4 MiB: MKL packs it (choice.PACK_MAX_GROWTH)
    rng = np.random.default_rng(7)
    layer = getattr(rnnkern, kind)(I, H, bidirectional=bidirectional, seed=2)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    dy = rng.standard_normal((T, B, 2 * H if bidirectional else H)).astype(np.float32)
    with use_cpu_kernels("numpy"):
        exact = getattr(rnnkern, kind)(I, H, bidirectional=bidirectional, dtype="float64", seed=2)
    exact.load_state_dict({k: v.astype(np.float64) for k, v in layer.state_dict().items()})
    y, _, tape = layer.forward_train(x, lengths=lengths)
    dx, _, grads = layer.backward(tape, dy)
    assert packed  # the step GEMMs ran on the packing
    with use_cpu_kernels("numpy"):
        want_y, _, want_tape = exact.forward_train(x.astype(np.float64), lengths=lengths)
        want_dx, _, want_grads = exact.backward(want_tape, dy.astype(np.float64))
    assert_close(y, want_y, "float32", scale=10)
    assert_close(dx, want_dx, "float32", scale=10)
    for name, grad in want_grads.items():
        assert_close(grads[name], grad, "float32", scale=10 * max(1.0, float(np.abs(grad).max())))
    y2, _, tape2 = layer.forward_train(x, lengths=lengths)  # and again, bit for bit
    dx2, _, grads2 = layer.backward(tape2, dy)
    np.testing.assert_array_equal(y2, y)
    np.testing.assert_array_equal(dx2, dx)
    for name, grad in grads.items():
        np.testing.assert_array_equal(grads2[name], grad)


@pytest.mark.skipif(MKL_REASON is not None, reason=f"MKL: {MKL_REASON}")
def test_a_packed_block_multiplies_only_its_own_matrix(monkeypatch):
    """Inside backend.packed(b, rows), only GEMMs by b itself (any view of the same memory, shape and
    strides) with ``rows`` rows and a matching output use the packing; a product by part of b, or of
    another shape, is an ordinary GEMM (or numpy's error), never a product by the packed b."""
    from rnnkern._backend import cpu_backend

    monkeypatch.setenv("RNNKERN_CPU_GEMM", "mkl")
    bk, rng = cpu_backend("numba"), np.random.default_rng(0)
    w = np.asfortranarray(rng.standard_normal((2048, 512)).astype(np.float32))  # W_hh: 4 MiB, packed
    a = rng.standard_normal((8, 512)).astype(np.float32)
    with bk.packed(w.T, 8):
        np.testing.assert_allclose(bk.matmul(a, w.T, out=np.empty((8, 2048), np.float32)), a @ w.T, rtol=1e-4, atol=1e-3)
        part = bk.matmul(a[:, :256], w.T[:256], out=np.empty((8, 2048), np.float32))
        np.testing.assert_allclose(part, a[:, :256] @ w.T[:256], rtol=1e-4, atol=1e-3)
        with pytest.raises(ValueError):
            bk.matmul(a[:, :256], w.T, out=np.empty((8, 2048), np.float32))
        np.testing.assert_allclose(bk.matmul(a[:4], w.T, out=np.empty((4, 2048), np.float32)), a[:4] @ w.T,
                                   rtol=1e-4, atol=1e-3)
