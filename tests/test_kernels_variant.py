"""The cell templates (kernels/rnn.cuh, lstm.cuh, gru.cuh) at CellMaths with ONNX's options
(activations, clip, input_forget, peepholes: kernels/activations.cuh, kernels/cellmath.cuh), checked
without a GPU as the default kernels are (test_kernels.py):

1. every op compiles with NVRTC in every dtype, for CellMaths that together use every activation in
   every slot, the clip, input_forget and peepholes;
2. compiled as host C++ (g++) and driven through CupyBackend itself (fake cupy, kernel_host.py),
   every step gives the NumPy backend's results, and so do whole layers: forward, forward_train and
   backward.
"""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import kernel_cases
import kernel_host
import rnnkern
from rnnkern._backend.cupy import kernels as _kernels, nvrtc as _nvrtc
from rnnkern._backend.numpy.steps import NumpyBackend
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


def make(kind, options, dtype="float64", seed=0):
    return getattr(rnnkern, kind)(3, 4, 2, dtype=dtype, seed=seed, **options)


def maths(layer):
    """The CellMaths of a layer's directions that are not the defaults."""
    return [m for m in layer._semantics.maths if not m.is_default]


MATHS = sorted({m for kind, options in LAYERS for m in maths(make(kind, options))}, key=repr)
# Every op of every layer's CellMaths, registered (compiled on demand by CuPy).
NAMES = sorted({_kernels.kernel_for(op, m) for m in MATHS for op in _kernels.ops(m)})


def test_the_variants_cover_every_activation_and_option():
    variants = MATHS
    assert not any(m.is_default or m.saves_activations for m in variants)
    used = {(slot, act.name) for v in variants for slot, act in enumerate(v.acts)}
    assert {name for _, name in used} == set(rnnkern._recurrences.activations.NAMES)
    assert any(v.clip for v in variants) and any(v.input_forget for v in variants)
    assert any(v.peephole for v in variants)
    assert len({_kernels.kernel_name(n, "float32") for n in NAMES}) == len(NAMES)


NVRTC_MAJORS = _nvrtc.available_majors()
CUDA_MAJORS = [pytest.param(m, id=f"cuda{m}", marks=pytest.mark.skipif(
    m not in NVRTC_MAJORS, reason=f"NVRTC of CUDA {m} not installed: pip install {_nvrtc.WHEELS[m]}"))
    for m in _nvrtc.MAJORS]


@pytest.mark.parametrize("major", CUDA_MAJORS)
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
@pytest.mark.parametrize("dtype", _kernels.DTYPES)
def test_variants_compile_with_nvrtc(dtype, arch, major):
    def compile_one(name):
        try:
            _nvrtc.compile(_kernels.translation_unit(name, dtype, "cuda"), f"{name}_{dtype}.cu", arch, major=major)
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
    return kernel_host.host_backend(lib)


# Every step of kernel_cases, as each cell's ops (an RNN step named *_train keeps the pre-activation).
STEPS = {"RNN": ["rnn_tanh", "rnn_train", "rnn_backward_tanh"], "LSTM": ["lstm", "lstm_train", "lstm_backward"],
         "GRU": kernel_cases.STEPS[3:] + [s for s in kernel_cases.TRAIN_STEPS if s.startswith("gru")]}
STEP_CASES = [(m, step) for m in MATHS for step in STEPS[m.kind]]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", range(len(STEP_CASES)), ids=lambda c: f"{STEP_CASES[c][1]}-{c}")
def test_host_steps_match_numpy(host_backend, case, dtype):
    """One step at a time, every layout: the host build of the template at this CellMath against NumPy."""
    m, step = STEP_CASES[case]
    values = kernel_cases.draw(step, 3, 5, dtype, np.random.default_rng(case))
    expected = kernel_cases.run(NumpyBackend(), np, step, values, math=m)
    tol = {"float32": 5e-6, "float64": 1e-12}[dtype]
    for layout in kernel_cases.LAYOUTS.values():
        for alias in (False, True):
            got = kernel_cases.run(host_backend, np, step, values, layout, alias, math=m)
            kernel_cases.check_close(got, expected, values, tol)




@pytest.mark.parametrize("dtype", ["float64"])  # float32: every op, layout and CellMath in test_host_steps_match_numpy
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
