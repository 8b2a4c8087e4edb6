"""The GEMM provider's choice (issue 17): RNNKERN_CPU_GEMM overrides it, a bad value is a clear error,
the measured decision is written to the cache folder and read back, a read-only cache still works."""

import json

import numpy as np
import pytest

import rnnkern
from rnnkern._backend.numba import choice

MKL_REASON = choice.mkl_unavailable_reason()
needs_mkl = pytest.mark.skipif(MKL_REASON is not None, reason=f"MKL: {MKL_REASON}")


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """An empty cache folder and no decision remembered in this process."""
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("RNNKERN_CPU_GEMM", raising=False)
    monkeypatch.setattr(choice, "_MEMORY", {})
    monkeypatch.setattr(choice, "_PROCESS_PROVIDER", {})
    return tmp_path / "rnnkern" / choice.FILE


def test_bad_value_is_a_clear_error(fresh, monkeypatch):
    monkeypatch.setenv("RNNKERN_CPU_GEMM", "blis")
    with pytest.raises(ValueError, match="RNNKERN_CPU_GEMM must be 'openblas' or 'mkl'.*'blis'"):
        rnnkern.LSTM(2, 3)(np.zeros((2, 1, 2), np.float32))


def test_mkl_requested_without_mkl_names_the_extra(fresh, monkeypatch):
    monkeypatch.setenv("RNNKERN_CPU_GEMM", "mkl")
    monkeypatch.setattr(choice, "mkl_provider", lambda: None)
    monkeypatch.setattr(choice, "mkl_unavailable_reason", lambda: "MKL is not installed")
    with pytest.raises(RuntimeError, match=r"RNNKERN_CPU_GEMM=mkl, but MKL is not installed.*rnnkern\[mkl\]"):
        rnnkern.GRU(2, 3)(np.zeros((2, 1, 2), np.float32))


def test_the_override_wins_and_says_so(fresh, monkeypatch):
    monkeypatch.setenv("RNNKERN_CPU_GEMM", "openblas")
    decision = choice.decide(np.float32, "step", 64, 512, 2048)
    assert decision.provider.name == "openblas" and decision.reason == "RNNKERN_CPU_GEMM"


def test_only_one_installed(fresh, monkeypatch):
    monkeypatch.setattr(choice, "mkl_provider", lambda: None)
    decision = choice.decide(np.float32, "step", 8, 16, 64)
    assert decision.provider.name == "openblas" and decision.reason.startswith("only one installed")
    assert not fresh.exists()  # nothing measured, nothing to remember


@needs_mkl
def test_decision_is_measured_written_and_reused(fresh, monkeypatch):
    decision = choice.decide(np.float32, "step", 64, 512, 2048)
    assert decision.reason.startswith("measured ")
    ratio = float(decision.reason.split()[1].rstrip("x"))
    assert ratio > 0 and decision.provider.name == ("mkl" if ratio < choice.MKL_MARGIN else "openblas")
    saved = json.loads(fresh.read_text())
    entry = saved[choice.machine_key()][choice.gemm_class(np.float32, "step", 64, 512, 2048)]
    assert entry["provider"] == decision.provider.name
    # a later process (nothing in memory) reads the file instead of measuring again
    monkeypatch.setattr(choice, "_MEMORY", {})
    monkeypatch.setattr(choice, "_PROCESS_PROVIDER", {})
    monkeypatch.setattr(choice, "measure", lambda *a: pytest.fail("measured again"))
    again = choice.decide(np.float32, "step", 60, 500, 2000)  # the same class
    assert again.provider is decision.provider


@needs_mkl
def test_unwritable_cache_folder_still_decides(monkeypatch, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(blocker))  # rnnkern's folder would be inside a file
    monkeypatch.delenv("RNNKERN_CPU_GEMM", raising=False)
    monkeypatch.setattr(choice, "_MEMORY", {})
    monkeypatch.setattr(choice, "_PROCESS_PROVIDER", {})
    monkeypatch.setattr(choice, "measure", lambda *a: 0.5)
    decision = choice.decide(np.float64, "step", 64, 512, 2048)
    assert decision.provider.name == "mkl" and decision.reason == "measured 0.50x"
    monkeypatch.setattr(choice, "measure", lambda *a: pytest.fail("measured again"))
    assert choice.decide(np.float64, "step", 64, 512, 2048).provider.name == "mkl"  # kept in memory


@needs_mkl
def test_a_corrupt_cache_file_is_measured_over(fresh, monkeypatch):
    fresh.parent.mkdir(parents=True)
    fresh.write_text("{not json")
    monkeypatch.setattr(choice, "measure", lambda *a: 2.0)
    assert choice.decide(np.float32, "plain", 64, 64, 128).provider.name == "openblas"
    assert json.loads(fresh.read_text())  # replaced by a whole, valid file


@needs_mkl
def test_small_plain_gemms_are_numpys_untimed(fresh, monkeypatch):
    monkeypatch.setattr(choice, "measure", lambda *a: pytest.fail("measured"))
    decision = choice.decide(np.float32, "plain", 1, 256, 512)
    assert decision.provider.name == "openblas" and decision.reason.startswith("small")


@needs_mkl
def test_small_weights_are_not_packed(fresh, monkeypatch):
    """MKL packs into 7.9 MB or more whatever the weights' size: a small layer keeps OpenBLAS."""
    monkeypatch.setattr(choice, "measure", lambda *a: pytest.fail("measured"))
    decision = choice.decide(np.float32, "step", 2, 8, 32)
    assert decision.provider.name == "openblas" and decision.reason.startswith("MKL would pack")


@needs_mkl
@pytest.mark.parametrize("first", ["plain", "step"])
def test_one_provider_per_process_and_dtype(fresh, monkeypatch, first):
    """The first measured GEMM sets the process's provider: a later GEMM of another class (training's
    backward step GEMM after its forward's, say) follows it without measuring, so that one thread pool
    spins at a time; another dtype is measured on its own."""
    monkeypatch.setattr(choice, "measure", lambda *a: 0.5)
    assert choice.decide(np.float32, first, 64, 512, 2048).provider.name == "mkl"
    monkeypatch.setattr(choice, "measure", lambda *a: pytest.fail("measured again"))
    for kind, shape in (("plain", (64, 2048, 512)), ("step", (32, 1024, 4096)), ("plain", (6400, 512, 2048))):
        later = choice.decide(np.float32, kind, *shape)
        assert later.provider.name == "mkl"
        assert later.reason == "one thread pool at a time: as this process's first GEMM (measured 0.50x)"
    monkeypatch.setattr(choice, "measure", lambda *a: 2.0)
    assert choice.decide(np.float64, "plain", 64, 2048, 512).provider.name == "openblas"


@needs_mkl
def test_a_dtype_is_one_key_however_it_is_named(fresh, monkeypatch):
    """The bench header asks with np.float32, the layers with dtype('float32'): one decision, one pool."""
    monkeypatch.setattr(choice, "measure", lambda *a: 0.5)
    assert choice.decide(np.float32, "step", 64, 512, 2048).provider.name == "mkl"
    monkeypatch.setattr(choice, "measure", lambda *a: pytest.fail("measured again"))
    later = choice.decide(np.dtype("float32"), "plain", 64, 2048, 512)
    assert later.reason.startswith("one thread pool at a time")


@needs_mkl
def test_room_lets_a_small_layer_pack_without_a_key_per_length(fresh, monkeypatch):
    """A step GEMM whose packing fits in what the call holds anyway (and is at most 16x the weights) packs
    (MKL), one that does not keeps OpenBLAS; the decision is kept per fit, not per sequence length."""
    monkeypatch.setattr(choice, "measure", lambda *a: 0.5)
    need = choice.mkl_provider().lib.pack_size(np.float32, 64, 512, 512)
    assert choice.decide(np.float32, "step", 64, 512, 512).reason.startswith("MKL would pack")
    assert choice.decide(np.float32, "step", 64, 512, 512, room=need - 1).reason.startswith("MKL would pack")
    assert choice.decide(np.float32, "step", 64, 512, 512, room=need).provider.name == "mkl"
    before = len(choice._MEMORY)
    for room in (need + 1, 10 * need, 100 * need):
        assert choice.decide(np.float32, "step", 64, 512, 512, room=room).provider.name == "mkl"
    assert len(choice._MEMORY) == before
    # tiny weights never pack, whatever the room: 7.9 MB for 4 KiB of weights (choice.PACK_MAX_GROWTH_IN_ROOM)
    assert choice.decide(np.float32, "step", 8, 16, 64, room=10**9).reason.startswith("MKL would pack")
    # nor does a one-row step, whatever the room: OpenBLAS's GEMV is 2.5x faster than MKL's packed GEMM
    assert choice.decide(np.float32, "step", 1, 512, 512, room=10**9).reason.startswith("MKL would pack")


def test_info_and_bench_header_name_the_provider(monkeypatch):
    from rnnkern._backend import cpu_gemm_description

    monkeypatch.setenv("RNNKERN_CPU_GEMM", "openblas")
    text = cpu_gemm_description()
    assert "openblas" in text and "RNNKERN_CPU_GEMM" in text


@needs_mkl
@pytest.mark.parametrize("one_thread, pools, expected", [
    (0.85, 1.39, 1.39),  # faster on one thread, slower on the pools (as the AMD EPYC's was) -> OpenBLAS
    (0.56, 0.63, 0.63),  # the Intel Xeon's: faster both ways -> MKL, at the pools' ratio
    (0.95, None, 0.95),  # within the margin (the AMD EPYC's): a tie, OpenBLAS's; the pools are not timed
    (1.20, None, 1.20),  # slower on one thread: the pools are not timed
])
def test_where_mkl_wins_on_one_thread_the_pools_decide(fresh, monkeypatch, one_thread, pools, expected):
    """``measure`` times both libraries on one thread, and again on their pools only where MKL won there
    by the margin; the pools' ratio (what the layers run) is then the answer, and MKL needs the margin."""
    def rounds(ratio):
        return lambda runs: {"openblas": [1.0, 2.0, 4.0], "mkl": [ratio, 2 * ratio, 4 * ratio]}

    monkeypatch.setattr(choice, "time_rounds", rounds(one_thread))
    unused = lambda runs: pytest.fail("the pools were timed")  # noqa: E731
    monkeypatch.setattr(choice, "time_pools", rounds(pools) if pools else unused)
    assert choice.measure(np.float32, "step", 64, 512, 2048) == pytest.approx(expected)
    decision = choice.decide(np.float32, "step", 64, 512, 2048)
    assert decision.provider.name == ("mkl" if expected < choice.MKL_MARGIN else "openblas")
    assert decision.reason == f"measured {expected:.2f}x"


@needs_mkl
def test_the_pools_are_timed_apart_and_each_as_the_layers_run_it(monkeypatch):
    """time_pools: each block after SETTLE_S of quiet, OpenBLAS held at one thread while MKL runs and at
    its own pool otherwise; every call counted."""
    from rnnkern._backend.numba import blas

    monkeypatch.setattr(choice, "SETTLE_S", 0.01)
    default = blas.openblas_threads()
    seen, pauses = {"openblas": set(), "mkl": set()}, []
    real_sleep = choice.time.sleep
    monkeypatch.setattr(choice.time, "sleep", lambda s: (pauses.append(s), real_sleep(s)))

    def run(name):
        def fn(n):
            seen[name].add(blas.openblas_threads())
            real_sleep(1e-4 * n)
        return fn

    runs = {p.name: (p, run(p.name)) for p in choice.installed()}
    times = choice.time_pools(runs)
    assert [len(t) for t in times.values()] == [choice.POOL_ROUNDS] * 2
    assert all(1e-4 <= t < 0.05 for ts in times.values() for t in ts)
    assert pauses == [0.01] * (2 * choice.POOL_ROUNDS)
    if default is not None:  # NumPy's BLAS is scipy-openblas, whose threads rnnkern sets
        assert seen == {"openblas": {default}, "mkl": {1}}
