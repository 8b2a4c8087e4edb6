"""Training's step GEMMs run on the weights training packed where MKL runs them (issue 17): every step of
forward_train and of backward, for each cell's default math. The RNN's forward steps once gave MKL no
output array and so ran MKL's unpacked GEMM on its pool: as fast on a quiet machine, 2.8x slower beside
a test run (benchmarks/RESULTS.md)."""

import numpy as np
import pytest

import rnnkern
from rnnkern._backend.numba import choice, gemm

MKL_REASON = choice.mkl_unavailable_reason()
pytestmark = pytest.mark.skipif(MKL_REASON is not None, reason=f"MKL: {MKL_REASON}")


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_every_step_gemm_of_training_runs_packed(kind, monkeypatch):
    monkeypatch.setenv("RNNKERN_CPU_GEMM", "mkl")
    packed, plain = [], []
    real_packed, real_plain = gemm.MKL.matmul_packed, gemm.MKL.matmul
    monkeypatch.setattr(gemm.MKL, "matmul_packed", lambda self, a, *rest: packed.append(a.shape) or
                        real_packed(self, a, *rest))
    monkeypatch.setattr(gemm.MKL, "matmul", lambda self, a, b, out=None: plain.append(a.shape) or
                        real_plain(self, a, b, out=out))
    # large enough that MKL's packing (at least 7.9 MB) fits in what training holds (choice.decide's room)
    T, B, H = 40, 64, 512
    layer = getattr(rnnkern, kind)(H, H, seed=0)
    x = np.random.default_rng(0).uniform(-1, 1, (T, B, H)).astype(np.float32)
    y, _, tape = layer.forward_train(x)
    assert packed.count((B, H)) == T and (B, H) not in plain  # the forward's steps: h_prev @ W_hh^T
    packed.clear()
    layer.backward(tape, np.ones_like(y))
    G = {"RNN": 1, "LSTM": 4, "GRU": 3}[kind]
    assert packed.count((B, G * H)) == T and (B, G * H) not in plain  # the backward's: dgh @ W_hh
