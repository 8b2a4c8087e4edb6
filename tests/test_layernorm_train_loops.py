"""The LayerNorm cells' compiled training loops (lntrain, run by the numba backend's train_loop and
backward_loop): they run for forward_train and backward, and give the NumPy steps' results (float64,
to rounding; float32 within its tolerance) with lengths, zoneout, both directions and two layers, on
each GEMM provider, and the Python loop's bits in the forward."""

import numpy as np
import pytest

import rnnkern
from backend_swap import on_backend, run_everything
from layernorm_cases import counting, perturbed_layer
from rnnkern._backend import cpu_backend, numba_unavailable_reason

pytestmark = pytest.mark.skipif(numba_unavailable_reason() is not None, reason="numba is not usable")


def _providers():
    from rnnkern._backend.numba import choice

    return ["openblas"] + (["mkl"] if choice.mkl_unavailable_reason() is None else [])


def _counting(monkeypatch):
    from rnnkern._backend.numba import lntrain

    return counting(monkeypatch, lntrain, ("lnlstm_forward", "lnlstm_backward", "lngru_forward", "lngru_backward"))


def _float32_as_good(got, numpy32, truth):
    """Each float32 result is as close to the float64 truth as the NumPy steps' float32 one (within 4x:
    the two sum in different orders), or within float32's tolerance of it."""
    for a, b, t in zip(got, numpy32, truth):
        err, err_numpy = np.abs(a - t).max(), np.abs(b - t).max()
        assert err <= 4 * err_numpy + 1e-5 * max(1.0, float(np.abs(t).max())), (err, err_numpy)


def _everything(layer, x, lengths, dy_seed=3):
    """forward_train and backward (from random dy and dstate_n) with zoneout drawn from one seed."""
    y, state, tape = layer.forward_train(x, lengths=lengths, generator=np.random.default_rng(11))
    rng = np.random.default_rng(dy_seed)
    dy = rng.standard_normal(y.shape).astype(np.float32).astype(y.dtype)  # the same values in both dtypes
    dstate = tuple(rng.standard_normal(s.shape).astype(np.float32).astype(s.dtype) for s in (state if isinstance(state, tuple) else (state,)))
    dx, dstate0, dparams = layer.backward(tape, dy, dstate if len(dstate) == 2 else dstate[0])
    flat = lambda s: s if isinstance(s, tuple) else (s,)  # noqa: E731
    return (y, *flat(state), dx, *flat(dstate0), *dparams.values())


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("zoneout", [0.0, 0.3])
@pytest.mark.parametrize("lengths", [None, [6, 2, 6, 1, 4]])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("provider", _providers())
def test_training_loops_match_numpy_steps(kind, zoneout, lengths, dtype, provider, monkeypatch):
    monkeypatch.setenv("RNNKERN_CPU_GEMM", provider)
    layer = perturbed_layer(kind, zoneout, dtype, num_layers=2, bidirectional=True)
    x = np.random.default_rng(0).standard_normal((6, 5, 3)).astype(np.float32).astype(dtype)
    lengths = None if lengths is None else np.array(lengths)
    calls = _counting(monkeypatch)
    got = _everything(on_backend(layer, cpu_backend("numba")), x, lengths)
    assert sorted(calls) == sorted([f"ln{kind}_forward", f"ln{kind}_backward"] * 4)  # two layers, two directions
    expected = _everything(on_backend(layer, cpu_backend("numpy")), x, lengths)
    if dtype == "float64":
        for a, b in zip(got, expected):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)
        return
    exact = perturbed_layer(kind, zoneout, "float64", num_layers=2, bidirectional=True)
    exact.load_state_dict({k: v.astype(np.float64) for k, v in layer.state_dict().items()})
    truth = _everything(on_backend(exact, cpu_backend("numpy")), x.astype(np.float64), lengths)
    _float32_as_good(got, expected, truth)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (1, 3, 2, 4), (7, 1, 4, 6), (5, 4, 1, 1)])
def test_size_one_in_every_dimension(kind, shape, monkeypatch):
    """(T, B, input_size, hidden_size) with ones, against the NumPy steps."""
    T, B, I, H = shape
    layer = perturbed_layer(kind, 0.25, "float64", input_size=I, hidden_size=H)
    x = np.random.default_rng(5).standard_normal((T, B, I))
    calls = _counting(monkeypatch)
    got = run_everything(on_backend(layer, cpu_backend("numba")), x, None)
    assert len(calls) == 2
    for a, b in zip(got, run_everything(on_backend(layer, cpu_backend("numpy")), x, None)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_forward_is_the_python_loops_bits_and_reruns_bit_for_bit(kind, monkeypatch):
    """The compiled forward runs the Python loop's kernels and GEMMs: the same bits; a rerun of both
    passes gives the same bits again."""
    from rnnkern._backend.numba.backend import NumbaBackend

    layer = on_backend(perturbed_layer(kind, 0.2, "float32", num_layers=2), cpu_backend("numba"))
    x = np.random.default_rng(2).standard_normal((8, 3, 3)).astype(np.float32)
    lengths = np.array([8, 5, 8])
    first, again = _everything(layer, x, lengths), _everything(layer, x, lengths)
    for a, b in zip(first, again):
        assert np.array_equal(a, b)
    monkeypatch.setattr(NumbaBackend, "train_loop", lambda self, *a: False)
    monkeypatch.setattr(NumbaBackend, "backward_loop", lambda self, *a: False)
    python = _everything(layer, x, lengths)
    for a, b in zip(first[:3 if kind == "lstm" else 2], python):  # y and the final state
        assert np.array_equal(a, b)
    for a, b in zip(first, python):  # the backward's GEMM reads W_hh row-major, the Python loop's its transpose
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(b).max())))


def test_strided_gradients_and_a_broadcast_initial_state(monkeypatch):
    """dy a strided view and h0 a broadcast one: the loops read them as they are."""
    layer = on_backend(perturbed_layer("lstm", 0.0, "float64", batch_first=True), cpu_backend("numba"))
    numpy_layer = on_backend(layer, cpu_backend("numpy"))
    x = np.random.default_rng(4).standard_normal((3, 6, 3))
    h0 = np.broadcast_to(np.linspace(-1, 1, 5), (1, 3, 5))
    state = (h0, np.zeros((1, 3, 5)))
    dy = np.random.default_rng(6).standard_normal((3, 12, 10))[:, ::2, ::2]
    calls = _counting(monkeypatch)
    results = []
    for net in (layer, numpy_layer):
        y, _, tape = net.forward_train(x, state)
        results.append((y, *net.backward(tape, dy)[2].values()))
    assert calls == ["lnlstm_forward", "lnlstm_backward"]
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_dropconnect_and_the_cells_run_the_loops(kind, monkeypatch):
    """recurrent_dropout (W_hh masked) in a layer with lengths, and the one-step cells (a broadcast h,
    a transposed c), against the NumPy steps, through the compiled loops."""
    layer = perturbed_layer(kind, 0.3, "float64", hidden_size=6, bidirectional=True)
    x = np.random.default_rng(8).standard_normal((5, 4, 3))
    calls = _counting(monkeypatch)
    results = []
    for net in (on_backend(layer, cpu_backend("numba")), on_backend(layer, cpu_backend("numpy"))):
        y, state, tape = net.forward_train(x, lengths=np.array([5, 2, 4, 1]), generator=3, recurrent_dropout=0.3)
        results.append((y, *net.backward(tape, np.cos(y))[2].values()))
    assert len(calls) == 4
    cls = rnnkern.LayerNormLSTMCell if kind == "lstm" else rnnkern.LayerNormGRUCell
    cell = cls(3, 6, zoneout=0.3, dtype="float64", seed=3)
    rng = np.random.default_rng(9)
    h = np.broadcast_to(rng.standard_normal(6), (4, 6))
    state = (h, rng.standard_normal((6, 4)).T) if kind == "lstm" else h
    for net in (on_backend(cell, cpu_backend("numba")), on_backend(cell, cpu_backend("numpy"))):
        state_1, tape = net.forward_train(x[0], state, generator=4, recurrent_dropout=0.2)
        results.append((*(state_1 if kind == "lstm" else (state_1,)), *net.backward(tape, state_1)[2].values()))
    assert len(calls) == 6
    for got, want in ((results[0], results[1]), (results[2], results[3])):
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.skipif("mkl" not in _providers(), reason="MKL is not installed")
def test_full_steps_take_the_packing_and_partial_ones_mkls_unpacked_gemm(monkeypatch):
    from rnnkern._backend.numba import blas, trainloop

    monkeypatch.setenv("RNNKERN_CPU_GEMM", "mkl")
    seen = []
    monkeypatch.setattr(trainloop, "_operands", lambda *a, f=trainloop._operands: seen.append(f(*a)) or seen[-1])
    layer = on_backend(perturbed_layer("gru", 0.0, "float32", hidden_size=8), cpu_backend("numba"))
    y, _, tape = layer.forward_train(np.ones((4, 3, 3), np.float32), lengths=np.array([4, 2, 3]))
    layer.backward(tape, y)
    assert len(seen) == 2  # forward and backward
    for provider, full, part in seen:
        assert provider.name == "mkl" and full.dtype == np.uint8 and isinstance(part, blas.MklMatrix)


def test_threads_train_apart():
    """Layers training on four threads at once (each its own packed block: thread-local) give the bits
    they give one after another."""
    import concurrent.futures

    nets = [on_backend(perturbed_layer(k, 0.3, "float64", hidden_size=h, bidirectional=True), cpu_backend("numba"))
            for k, h in (("lstm", 32), ("gru", 24), ("lstm", 24), ("gru", 32))]
    xs = [np.random.default_rng(b).standard_normal((5, b, 3)) for b in (16, 8, 12, 16)]

    def job(i):
        y, state, tape = nets[i].forward_train(xs[i], generator=i)
        return (y, *nets[i].backward(tape, np.ones_like(y))[2].values())
    serial = [job(i) for i in range(4)]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(job, [0, 1, 2, 3] * 3))
    for i, results in enumerate(threaded):
        for a, b in zip(results, serial[i % 4]):
            assert np.array_equal(a, b)
