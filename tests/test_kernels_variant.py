"""The variant kernels (kernels/variant.cuh, kernels/activations.cuh: ONNX's activations, clip,
input_forget, peepholes), checked without a GPU as the default kernels are (test_kernels.py):

1. every variant op compiles with NVRTC in every dtype, for variants that together use every
   activation in every slot, the clip, input_forget and peepholes;
2. compiled as host C++ (g++) and driven through CupyBackend itself (fake cupy, kernel_host.py),
   whole layers give the NumPy backend's results: forward, forward_train and backward.
"""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import kernel_host
import rnnkern
from rnnkern import _kernels, _nvrtc
from rnnkern._backend._cupy import CupyBackend
from backend_swap import on_backend, run_everything

# Layers whose variants cover every activation (in f, g and h), the clip, input_forget and peepholes.
LAYERS = [
    ("LSTM", dict(activations=["HardSigmoid", "LeakyRelu", "ThresholdedRelu"], activation_alpha=[0.3, 0.05, 0.2],
                  activation_beta=[0.45], clip=1.5, peephole=True, bidirectional=True)),
    ("LSTM", dict(activations=["ScaledTanh", "Elu", "Softsign"], activation_alpha=[0.8, 0.9], activation_beta=[1.2],
                  input_forget=True, direction="reverse")),
    ("LSTM", dict(activations=["Sigmoid", "Softplus", "Relu"], input_forget=True, peephole=True, clip=0.9)),
    ("GRU", dict(activations=["Softplus", "Affine", "Sigmoid", "Elu"], activation_alpha=[0.5], activation_beta=[0.1],
                 clip=2.0, bidirectional=True)),
    ("GRU", dict(activations=["HardSigmoid", "Softsign"], linear_before_reset=False, clip=0.7)),
    ("GRU", dict(activations=["Sigmoid", "ScaledTanh"], linear_before_reset=False, bias=False, direction="reverse")),
    ("RNN", dict(activations=["Sigmoid", "ThresholdedRelu"], activation_alpha=[0.1], bidirectional=True)),
    ("RNN", dict(activations=["Tanh"], clip=0.8)),
    ("RNN", dict(activations=["LeakyRelu"], activation_alpha=[0.2])),
]
OPS = {"RNN": [op for op in _kernels.VARIANT_OPS if op.startswith("rnn")],
       "LSTM": [op for op in _kernels.VARIANT_OPS if op.startswith("lstm")],
       "GRU": [op for op in _kernels.VARIANT_OPS if op.startswith("gru")]}


def make(kind, options, dtype="float64", seed=0):
    return getattr(rnnkern, kind)(3, 4, 2, dtype=dtype, seed=seed, **options)


def variant_names():
    """Every variant op of every layer's variants, registered (compiled on demand by CuPy)."""
    names = []
    for kind, options in LAYERS:
        for variant in {v for v in make(kind, options)._semantics.variants if v is not None}:
            names += [_kernels.variant_kernel(op, variant) for op in OPS[kind]]
    return sorted(set(names))


NAMES = variant_names()


def test_the_variants_cover_every_activation_and_option():
    variants = [v for kind, o in LAYERS for v in make(kind, o)._semantics.variants if v]
    used = {(slot, act.name) for v in variants for slot, act in enumerate(v.acts)}
    assert {name for _, name in used} == set(rnnkern._activations.NAMES)
    assert any(v.clip for v in variants) and any(v.input_forget for v in variants)
    assert any(v.peephole for v in variants)
    assert len({_kernels.kernel_name(n, "float32") for n in NAMES}) == len(NAMES)


@pytest.mark.skipif(_nvrtc.unavailable_reason() is not None, reason=f"NVRTC unavailable: {_nvrtc.unavailable_reason()}")
@pytest.mark.parametrize("dtype", _kernels.DTYPES)
def test_variants_compile_with_nvrtc(dtype):
    def compile_one(name):
        try:
            _nvrtc.compile(_kernels.translation_unit(name, dtype, "cuda"), f"{name}_{dtype}.cu", "sm_80")
        except _nvrtc.NvrtcCompileError as exc:
            return f"{name}: {exc.log}"
        return None
    with ThreadPoolExecutor(max_workers=4) as pool:  # NVRTC runs outside the GIL
        failures = [f for f in pool.map(compile_one, NAMES) if f]
    assert not failures, "\n".join(failures)


@pytest.fixture(scope="module")
def host_backend(tmp_path_factory):
    if kernel_host.GXX is None:
        pytest.skip("g++ not found: the kernels' math cannot be compiled for the host")
    lib, _ = kernel_host.build(tmp_path_factory.mktemp("rnnkern_host_variants"), NAMES, ["float32", "float64"])
    return CupyBackend(kernel_host.fake_cupy(lib))




@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", range(len(LAYERS)))
def test_host_kernels_match_numpy(host_backend, case, dtype):
    kind, options = LAYERS[case]
    net = make(kind, options, dtype, seed=case)
    other = on_backend(net, host_backend)
    rng = np.random.default_rng(case)
    x, lengths = (rng.standard_normal((5, 4, 3)) * 2).astype(dtype), [5, 2, 4, 1]
    tol = {"float32": 5e-6, "float64": 1e-12}[dtype]
    results = [run_everything(layer, x, lengths) for layer in (net, other)]
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(theirs, ours, rtol=tol, atol=tol)
