"""LayerNormLSTM / LayerNormGRU against the PyTorch transcription of Haste's equations, run live on
random configurations where torch is installed (the golden tests cover the same without torch)."""

import importlib.util
import pathlib

import numpy as np
import pytest

from layernorm_cases import check_layer, ln_backends, parse

pytest.importorskip("torch")


def _golden_script():
    """tests/golden/make_golden_layernorm.py, loaded by its path: putting tests/golden on sys.path would
    make its keras/ folder (golden vectors) shadow the real keras for every later test."""
    path = pathlib.Path(__file__).resolve().parent / "golden" / "make_golden_layernorm.py"
    spec = importlib.util.spec_from_file_location("make_golden_layernorm", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


golden = _golden_script()


def random_case(seed):
    rng = np.random.default_rng(seed)
    kind = ("LSTM", "GRU")[seed % 2]
    L, bi, T, B = int(rng.integers(1, 4)), bool(rng.integers(2)), int(rng.integers(1, 6)), int(rng.integers(1, 4))
    lengths = [int(n) for n in rng.integers(1, T + 1, size=B)] if rng.integers(2) else None
    zoneout, rd = float(rng.choice([0.0, 0.2, 0.5])), float(rng.choice([0.0, 0.3]))
    dropout = float(rng.choice([0.0, 0.4])) if L > 1 else 0.0
    return (kind, L, bi, bool(rng.integers(2)), zoneout, rd, dropout, lengths, T, B,
            int(rng.integers(1, 4)), int(rng.integers(1, 6)))


@pytest.mark.parametrize("kernels", ln_backends())
@pytest.mark.parametrize("seed", range(8))
def test_random_configurations_match_transcription(seed, kernels):
    case = random_case(seed)
    config, haste, grads, arrays = parse(golden.compute_case(case, 7000 + seed))
    check_layer(config, haste, grads, arrays, "float64", kernels)
