"""The LayerNorm cells' compiled inference loops (lnsteps.lnlstm_loop / lngru_loop, run by the numba
backend's time_loop like the plain cells', sharded by the same size rule): they run, and give the
NumPy steps' results (float64, to rounding) and the same bits whether the batch is sharded or not."""

import numpy as np
import pytest

from backend_swap import on_backend
from layernorm_cases import counting, perturbed_layer
from rnnkern._backend import cpu_backend, numba_unavailable_reason

pytestmark = pytest.mark.skipif(numba_unavailable_reason() is not None, reason="numba is not usable")


def _layer(kind, zoneout, bidirectional, dtype="float64"):
    return perturbed_layer(kind, zoneout, dtype, num_layers=2, bidirectional=bidirectional)


def _counting(monkeypatch):
    from rnnkern._backend.numba import lnsteps

    return counting(monkeypatch, lnsteps, ("lnlstm_loop", "lngru_loop"))


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("zoneout", [0.0, 0.3])
@pytest.mark.parametrize("batch", [1, 3, 5])
def test_compiled_loop_matches_numpy_steps(kind, zoneout, batch, monkeypatch):
    layer = on_backend(_layer(kind, zoneout, bidirectional=True), cpu_backend("numba"))
    x = np.random.default_rng(batch).standard_normal((6, batch, 3))
    h0 = np.random.default_rng(2).standard_normal((4, batch, 5))
    state = (h0, 0.5 * h0) if kind == "lstm" else h0
    calls = _counting(monkeypatch)
    y, h_n = layer(x, state)
    assert calls == [f"ln{kind}_loop"] * 4  # two layers, two directions, one chunk each
    y_ref, h_ref = on_backend(layer, cpu_backend("numpy"))(x, state)
    np.testing.assert_allclose(y, y_ref, rtol=1e-12, atol=1e-12)
    for a, b in zip(h_n if kind == "lstm" else (h_n,), h_ref if kind == "lstm" else (h_ref,)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("batch", [5, 7])
def test_sharded_loop_is_bit_identical(kind, batch, monkeypatch):
    layer = on_backend(_layer(kind, 0.2, bidirectional=False, dtype="float32"), cpu_backend("numba"))
    x = np.random.default_rng(0).standard_normal((9, batch, 3)).astype(np.float32)
    monkeypatch.setenv("RNNKERN_CPU_SHARDS", "1")
    whole = layer(x)
    monkeypatch.setenv("RNNKERN_CPU_SHARDS", "2")
    sharded = layer(x)
    assert np.array_equal(whole[0], sharded[0])


def test_training_zoneout_mask_keeps_the_step_path(monkeypatch):
    """forward_train's zoneout masks differ per step: the compiled inference loop must not run."""
    layer = on_backend(_layer("lstm", 0.3, bidirectional=False), cpu_backend("numba"))
    calls = _counting(monkeypatch)
    layer.forward_train(np.ones((4, 2, 3)), generator=0)
    assert calls == []
