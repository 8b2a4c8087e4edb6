"""The compiled time loop split by hidden units across threads (shard.run_split, units): batch 1 runs
each part's columns of every step in its own thread, with a barrier per step. Checked against the
float64 reference and the NumPy backend (every cell, ONNX's options, views, both directions, parts of
unequal size), for the same bits as one part where the columns line up, for reruns bit for bit, for
its size rule, and for what happens when a part fails or several threads split at once."""

import threading

import numpy as np
import pytest

import reference
import rnnkern
from backend_swap import on_backend
from conftest import assert_close
from rnnkern._backend import cpu_backend
from rnnkern._backend.numba import shard, units
from test_kernels_variant import LAYERS, make

pytestmark = pytest.mark.skipif(not units.AVAILABLE, reason="no sched_yield here: the loop is never split")
OPTIONS = {"RNN": ({"nonlinearity": "tanh"}, {"nonlinearity": "relu"}),
           "GRU": ({"linear_before_reset": True},), "LSTM": ({},)}


@pytest.fixture
def split(monkeypatch):
    """RNNKERN_CPU_SHARDS=parts on a machine of that many cores; returns the list of part counts each
    split loop ran with (so that a test knows the split ran), set by a spy on shard.run_split."""
    runs = []
    real = shard.run_split

    def spy(loop, provider, gx, h0, out, reverse, c, parts):
        runs.append(parts)
        return real(loop, provider, gx, h0, out, reverse, c, parts)

    monkeypatch.setattr(shard, "run_split", spy)
    monkeypatch.setenv("RNNKERN_CPU_GEMM", "openblas")
    # the parts' GEMVs are OpenBLAS's: one part (the loop unsplit) runs the same, for the bits to compare
    monkeypatch.setenv("RNNKERN_CPU_GEMV", "openblas")

    def use(parts):
        monkeypatch.setattr(shard, "cores", lambda: parts)
        monkeypatch.setenv("RNNKERN_CPU_SHARDS", str(parts))
        return runs
    return use


def _state(kind, rng, shape, dtype, strided):
    h0 = rng.standard_normal((*shape[:-1], 2 * shape[-1]) if strided else shape).astype(dtype)
    h0 = h0[..., ::2] if strided else h0  # a view BLAS cannot take as it is
    return (h0, rng.standard_normal(shape).astype(dtype)) if kind == "LSTM" else h0


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("parts, T, B, I, H, bidirectional, strided", [
    (2, 1, 1, 1, 2, False, False), (2, 4, 1, 3, 5, True, True), (3, 3, 1, 2, 7, False, False),
    (2, 5, 1, 6, 33, True, False), (3, 2, 2, 4, 16, False, True)])
def test_split_matches_the_float64_reference(split, kind, parts, T, B, I, H, bidirectional, strided, dtype):
    runs = split(parts)
    rng = np.random.default_rng(T * 100 + H)
    D = 2 if bidirectional else 1
    for options in OPTIONS[kind]:
        layer = getattr(rnnkern, kind)(I, H, bidirectional=bidirectional, dtype=dtype, seed=H, **options)
        x = rng.standard_normal((T, B, 2 * I)).astype(dtype)[:, :, ::2] if strided else \
            rng.standard_normal((T, B, I)).astype(dtype)
        state = _state(kind, rng, (D, B, H), dtype, strided)
        y, state_n = layer(x, state)
        want_y, want_state = reference.layer(kind, layer.state_dict(), x, state, bidirectional=bidirectional,
                                             **options)
        assert_close(y, want_y, dtype, scale=10)
        for got, want in zip(state_n if kind == "LSTM" else (state_n,), want_state if kind == "LSTM" else (want_state,)):
            assert_close(got, want, dtype, scale=10)
    assert runs == [min(parts, H)] * (len(OPTIONS[kind]) * D)


COVERED = [case for case, (kind, options) in enumerate(LAYERS) if options.get("linear_before_reset", True)]


@pytest.mark.parametrize("case", COVERED)
def test_split_with_onnx_options_matches_numpy(split, case):
    """Every activation, the clip, input_forget and peepholes (the peepholes cut to each part's units)."""
    runs = split(2)
    kind, options = LAYERS[case]
    net = make(kind, options, "float64", seed=case)
    from rnnkern._backend.numpy.steps import NumpyBackend
    ours, theirs = on_backend(net, cpu_backend("numba")), on_backend(net, NumpyBackend())
    x = np.random.default_rng(case).standard_normal((6, 1, 3)) * 2
    for got, want in zip(ours(x), theirs(x)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert runs and set(runs) == {2}


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_split_gives_one_parts_bits_where_the_columns_line_up(split, kind, monkeypatch):
    """Each GEMV output is the same dot product whichever part computes it: at H=64 (32 columns a gate
    block and part) the split changes no bit, and at H=33 it reruns bit for bit."""
    for H, same_as_whole in ((64, True), (33, False)):
        layer = getattr(rnnkern, kind)(H, H, seed=1)
        x = np.random.default_rng(2).standard_normal((7, 1, H)).astype(np.float32)
        results = []
        for parts in (2, 1, 2):
            split(parts)
            y, state = layer(x)
            results.append((y, state[1] if kind == "LSTM" else state))
        if same_as_whole:
            assert all(np.array_equal(a, b) for a, b in zip(results[0], results[1]))
        else:
            assert_close(results[0][0], results[1][0], "float32")
        assert all(np.array_equal(a, b) for a, b in zip(results[0], results[2]))


def _rec(kind, H, **options):
    return getattr(rnnkern, kind)(2, H, **options)._direction_recurrence("_l0")


def test_the_size_rule_splits_batch_one_of_large_layers(monkeypatch):
    """The rule as data: with SPLIT_MAX_BATCH 1, batch 1 of layers from SPLIT_MIN_HIDDEN units up; as
    measured (SPLIT_MAX_BATCH 0: the split never won on a quiet machine, shard.py), nothing unless asked."""
    monkeypatch.setattr(shard, "cores", lambda: 2)
    monkeypatch.delenv("RNNKERN_CPU_SHARDS", raising=False)
    lstm, small = _rec("LSTM", 256), _rec("LSTM", shard.SPLIT_MIN_HIDDEN - 1)
    assert shard.part_count(1, lstm, "openblas") == (2 if shard.SPLIT_MAX_BATCH >= 1 else 1)
    monkeypatch.setattr(shard, "SPLIT_MAX_BATCH", 1)
    assert shard.part_count(1, lstm, "openblas") == 2
    assert shard.part_count(shard.SPLIT_MAX_BATCH + 1, lstm, "openblas") == 1
    assert shard.part_count(1, small, "openblas") == 1
    assert shard.part_count(1, lstm, "mkl") == 1  # MKL packs W_hh^T whole
    assert shard.part_count(1, _rec("GRU", 256, linear_before_reset=False), "openblas") == 1
    assert shard.part_count(1, _rec("GRU", 256), "openblas") == 2 and shard.part_count(1, _rec("RNN", 256), "openblas") == 2
    assert shard.part_count(1, _rec("LayerNormLSTM", 256), "openblas") == 1
    monkeypatch.setattr(shard, "cores", lambda: 1)
    assert shard.part_count(1, lstm, "openblas") == 1
    monkeypatch.setattr(shard, "cores", lambda: 8)
    monkeypatch.setenv("RNNKERN_CPU_SHARDS", "1")
    assert shard.part_count(1, lstm, "openblas") == 1
    monkeypatch.setenv("RNNKERN_CPU_SHARDS", "4")
    assert shard.part_count(1, lstm, "openblas") == 4 and shard.part_count(1, small, "openblas") == 4
    assert shard.part_count(1, _rec("RNN", 3), "openblas") == 3  # never more parts than units


def test_layernorm_cells_are_never_split(split):
    runs = split(2)
    layer = rnnkern.LayerNormLSTM(4, 8, seed=0)
    y, _ = layer(np.random.default_rng(0).standard_normal((3, 1, 4)).astype(np.float32))
    assert runs == [] and np.isfinite(y).all()


def _in_thread(fn, timeout=60):
    """fn() in a thread; its result or exception, or a failure if it is still running after ``timeout``."""
    box = {}

    def target():
        try:
            box["result"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            box["error"] = exc
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), "a split loop hung: a failing part did not abort the others"
    return box


@pytest.mark.parametrize("failing", ["main", "pool"])
def test_a_failing_part_aborts_the_others(split, monkeypatch, failing):
    """A part that raises sets the abort word: the others return and the error reaches the caller."""
    split(2)
    real = units.gather_weights

    def gather(w_t, part):
        in_pool = threading.current_thread().name.startswith("rnnkern-shard")
        if in_pool == (failing == "pool"):
            raise MemoryError("injected")
        return real(w_t, part)

    monkeypatch.setattr(units, "gather_weights", gather)
    layer = rnnkern.LSTM(8, 8, seed=0)
    x = np.ones((50, 1, 8), np.float32)
    box = _in_thread(lambda: layer(x))
    assert isinstance(box.get("error"), MemoryError)
    monkeypatch.setattr(units, "gather_weights", real)
    y, _ = layer(x)  # the next call runs normally
    want, _ = reference.layer("LSTM", layer.state_dict(), x)
    assert_close(y, want, "float32", scale=10)


def test_threads_splitting_at_once(split):
    """Four threads run split loops at once (their parts queue for the one pool thread): each gets what
    it gets alone."""
    split(2)
    layers = [rnnkern.GRU(16, 16, seed=s) for s in range(4)]
    xs = [np.random.default_rng(s).standard_normal((40, 1, 16)).astype(np.float32) for s in range(4)]
    alone = [layer(x)[0] for layer, x in zip(layers, xs)]
    results = [None] * 4

    def work(i):
        for _ in range(5):
            results[i] = layers[i](xs[i])[0]
    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)
    assert all(np.array_equal(a, b) for a, b in zip(alone, results))
