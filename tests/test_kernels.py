"""The fused CUDA kernels, checked without a GPU.

1. Every kernel compiles with NVRTC for sm_80 and sm_90 in every dtype, with CUDA 12's and CUDA 13's
   NVRTC (NVRTC needs no GPU; `make test` installs both through the `nvrtc` extra).
2. The kernels' device functions, compiled as host C++ with g++, match the NumPy backend,
   driven through CupyBackend itself (with a NumPy stand-in for cupy, see kernel_host.py).
"""

import re
import subprocess
import sys
import types

import numpy as np
import pytest

import kernel_cases
import kernel_host
import rnnkern
from rnnkern import GRUCell, LSTMCell, RNNCell
from rnnkern._backend.cupy import kernels as _kernels, lnkernels as _lnkernels, nvrtc as _nvrtc
from rnnkern._backend.numpy.steps import NumpyBackend
from rnnkern._recurrences.semantics import default_math
from rnnkern.cli import main

# The NumPy backend: the reference the host builds of the kernels are compared with.
REFERENCE = NumpyBackend()

ARCHS = ["sm_80", "sm_90"]
# Host build vs NumPy, same storage dtype: only tanh's last bits differ (glibc vs NumPy's SIMD tanh).
HOST_TOL = {"float32": 2e-6, "float64": 1e-12}


requires_nvrtc = pytest.mark.skipif(_nvrtc.unavailable_reason() is not None,
                                    reason=f"NVRTC unavailable: {_nvrtc.unavailable_reason()}")
NVRTC_MAJORS = _nvrtc.available_majors()
# Each CUDA major's NVRTC (`make test` installs both: the nvrtc extra), skipped with the reason where missing.
CUDA_MAJORS = [pytest.param(m, id=f"cuda{m}", marks=pytest.mark.skipif(
    m not in NVRTC_MAJORS, reason=f"NVRTC of CUDA {m} not installed: pip install {_nvrtc.WHEELS[m]}"))
    for m in _nvrtc.MAJORS]


# --- NVRTC --------------------------------------------------------------------------------
@pytest.mark.parametrize("major", CUDA_MAJORS)
@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("dtype", _kernels.DTYPES)
@pytest.mark.parametrize("name", list(_kernels.KERNELS) + list(_lnkernels.LN_OPS))
def test_kernel_compiles_with_nvrtc(name, dtype, arch, major):
    # a LayerNorm op's unit holds its every zoneout variant and row group (cupy/lnkernels.py)
    units = _lnkernels if name in _lnkernels.LN_OPS else _kernels
    _nvrtc.compile(units.translation_unit(name, dtype, "cuda"), f"{name}_{dtype}.cu", arch, major=major)
    assert _nvrtc.version(major)[0] == major


def test_nvrtc_found_in_each_wheel_layout():
    """CUDA 12's wheel: nvidia/cuda_nvrtc/lib/libnvrtc.so.12; CUDA 13's: nvidia/cu13/lib/libnvrtc.so.13."""
    for major in NVRTC_MAJORS:
        path = _nvrtc.library_path(major)
        assert path.endswith(f"libnvrtc.so.{major}") or f"nvrtc64_{major}" in path, path
    with pytest.raises(ValueError, match="major must be one of 13, 12 .*got 11"):
        _nvrtc.load(11)


@requires_nvrtc
def test_compile_errors_point_at_kernels_dir():
    source = _kernels.translation_unit("lstm_step", "float32", "cuda").replace("h = V::act_h(cn) * o;", "h = oops;")
    with pytest.raises(_nvrtc.NvrtcCompileError, match=r"kernels/lstm\.cuh\(\d+\).*oops") as info:
        _nvrtc.compile(source, "broken.cu", "sm_90")
    assert "oops" in info.value.log


@requires_nvrtc
def test_inline_ptx_is_assembled():
    # sm_XX targets produce a cubin, so ptxas checks the float16 conversions' inline PTX.
    source = _kernels.translation_unit("rnn_tanh", "float16", "cuda").replace("cvt.f32.f16", "cvt.f32.f99")
    with pytest.raises(_nvrtc.NvrtcCompileError, match="ptxas"):
        _nvrtc.compile(source, "bad_ptx.cu", "sm_80")


def test_nvrtc_bad_arguments():
    with pytest.raises(ValueError, match=r"arch must look like 'sm_90'.*got 'volta'"):
        _nvrtc.compile("", "x.cu", "volta")
    with pytest.raises(TypeError, match="source and name must be str"):
        _nvrtc.compile(b"", "x.cu")


def test_nvrtc_missing_says_how_to_install(monkeypatch):
    monkeypatch.setattr(_nvrtc, "_candidates", lambda major: [f"/nonexistent/libnvrtc.so.{major}"])
    _nvrtc.load.cache_clear()
    try:
        with pytest.raises(_nvrtc.NvrtcUnavailableError,
                           match=r"pip install nvidia-cuda-nvrtc-cu12 \(CUDA 12\) or 'nvidia-cuda-nvrtc>=13,<14'"):
            _nvrtc.load()
        with pytest.raises(_nvrtc.NvrtcUnavailableError, match=r"CUDA 13's libnvrtc.*'nvidia-cuda-nvrtc>=13,<14'"):
            _nvrtc.load(13)
        assert _nvrtc.available_majors() == [] and "libnvrtc.so.12" in _nvrtc.unavailable_reason()
    finally:
        _nvrtc.load.cache_clear()


def test_cli_arch_implies_compile_kernels(monkeypatch, capsys):
    from rnnkern._cli import info as _cli_info

    calls = []
    monkeypatch.setattr(_cli_info, "compile_kernels", lambda archs: calls.append(archs) or 0)
    assert main(["info", "--arch", "sm_80", "--arch", "sm_90"]) == 0
    assert calls == [["sm_80", "sm_90"]] and "all kernels compiled" in capsys.readouterr().out
    assert main(["info"]) == 0 and len(calls) == 1


@requires_nvrtc
def test_cli_compile_kernels(capsys):
    assert main(["info", "--compile-kernels", "--arch", "sm_90"]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("rnnkern_")]
    kernels = len(_kernels.KERNELS) + len(_lnkernels.LN_OPS)  # the cells' and the LayerNorm cells'
    assert len(lines) == kernels * len(_kernels.DTYPES) * len(NVRTC_MAJORS)
    assert all(line.endswith(": ok") for line in lines), lines
    for major in NVRTC_MAJORS:  # every kernel x dtype with each NVRTC found
        assert sum(f" NVRTC {major}." in line for line in lines) == kernels * len(_kernels.DTYPES)
    assert "all kernels compiled" in out


def test_cli_info_reports_versions_and_gpu(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert re.search(rf"NumPy:\s+{re.escape(np.__version__)}", out) and re.search(r"rnnkern:\s+0\.1\.0", out)
    assert re.search(r"GPU( 0)?:\s+", out) and "NVRTC:" in out


def test_cli_rejects_bad_arch(capsys):
    with pytest.raises(SystemExit):
        main(["info", "--arch", "volta"])
    assert "--arch must look like sm_90" in capsys.readouterr().err


# --- the kernel table and sources ---------------------------------------------------------
def test_table_and_sources():
    for name, spec in _kernels.KERNELS.items():
        assert f"void {spec.func}(" in (_kernels.kernel_dir() / spec.header).read_text(), name
        args = _kernels.elementwise_args(name, "float16")
        assert args["preamble"].startswith('#line 1 "kernels/common.cuh"')
        assert f'#line 1 "kernels/{spec.header}"' in args["preamble"]
        assert args["operation"].count(";") == 2 + len(spec.outputs)  # declare, call, one store each
    with pytest.raises(KeyError, match="kernel must be one of .*got 'gru'"):
        _kernels.spec("gru")
    with pytest.raises(TypeError, match="float16, float32 or float64, got int32"):
        _kernels.kernel_name("rnn_tanh", "int32")


def test_sources_found_in_wheel_layout(tmp_path):
    # An installed wheel holds rnnkern/kernels (pyproject's force-include), not ../../kernels.
    import rnnkern
    import shutil
    from pathlib import Path

    package = tmp_path / "site" / "rnnkern"
    shutil.copytree(Path(rnnkern.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(_kernels.kernel_dir(), package / "kernels")
    code = "from rnnkern._backend.cupy import kernels; print(kernels.kernel_dir())"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         env={"PYTHONPATH": str(tmp_path / "site")}, check=True).stdout.strip()
    assert out == str(package / "kernels")


# --- the device functions on the host -----------------------------------------------------
# The `host` fixture (conftest.py): (CupyBackend on fake_cupy with the g++ builds, the fake, its dtypes).
@pytest.mark.parametrize("layout", list(kernel_cases.LAYOUTS))
@pytest.mark.parametrize("shape", [(4, 8), (1, 1), (3, 33)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("step", kernel_cases.ALL_STEPS)
def test_host_kernels_match_numpy_backend(host, step, dtype, shape, layout):
    backend, _, _ = host
    values = kernel_cases.draw(step, *shape, dtype, np.random.default_rng(0))
    expected = kernel_cases.run(REFERENCE, np, step, values)
    for alias in (False, True):  # h_out may be h_prev, c_out may be c_prev
        got = kernel_cases.run(backend, np, step, values, kernel_cases.LAYOUTS[layout], alias)
        kernel_cases.check_close(got, expected, values, HOST_TOL[dtype])


@pytest.mark.parametrize("alias", [False, True])
@pytest.mark.parametrize("layout", list(kernel_cases.LAYOUTS))
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("step", kernel_cases.STEPS)
def test_host_fused_matches_unfused(host, step, dtype, layout, alias):
    """test_gpu_backend's test_fused_matches_unfused, run here with the host builds: the same
    helper, the same reference, so a mismatch in it (keys, shapes) shows without a GPU."""
    backend, fake, dtypes = host
    if dtype not in dtypes:
        pytest.skip("this g++ has no _Float16: float16 storage is checked by NVRTC only")
    for shape in [(4, 8), (1, 1), (3, 33)]:
        kernel_cases.check_fused_matches_unfused(backend, fake, step, dtype, shape, layout, alias,
                                                 kernel_cases.FUSED_TOL[dtype])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("step", kernel_cases.STEPS)
def test_host_kernels_extreme_inputs_stay_finite(host, step, dtype):
    backend, _, _ = host
    values = kernel_cases.draw(step, 5, 16, dtype, np.random.default_rng(1), extreme=True)
    expected = kernel_cases.run(REFERENCE, np, step, values)
    got = kernel_cases.run(backend, np, step, values, kernel_cases.strided)
    kernel_cases.check_close(got, expected, values, HOST_TOL[dtype])  # asserts finite outputs too


@pytest.mark.parametrize("extreme", [False, True])
@pytest.mark.parametrize("step", kernel_cases.ALL_STEPS)
def test_host_kernels_float16(host, step, extreme):
    backend, _, dtypes = host
    if extreme and step in kernel_cases.TRAIN_STEPS:
        pytest.skip("gradients of huge inputs may overflow float16, as they would in float32 (no safety claimed)")
    if "float16" not in dtypes:
        pytest.skip("this g++ has no _Float16: float16 storage is checked by NVRTC only")
    values = kernel_cases.draw(step, 3, 9, "float16", np.random.default_rng(2), extreme)
    # Reference: the NumPy backend in float32 on the same (float16) values. The kernel also
    # computes in float32, so they differ by the final rounding to float16 (2**-11 relative).
    expected = kernel_cases.run(REFERENCE, np, step, {k: v.astype("float32") for k, v in values.items()})
    got = kernel_cases.run(backend, np, step, values, kernel_cases.strided)
    assert all(v.dtype == np.float16 for v in got.values())
    kernel_cases.check_close(got, expected, values, 2 ** -10)


CELLS = [(RNNCell, {"nonlinearity": "tanh"}), (RNNCell, {"nonlinearity": "relu"}), (LSTMCell, {}),
         (GRUCell, {"linear_before_reset": True}), (GRUCell, {"linear_before_reset": False})]


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("cls,options", CELLS)
def test_cells_through_cupy_backend_on_host(host, cls, options, bias):
    """The whole cell path (bias folding, workspaces, GEMMs, fused steps) with CupyBackend's logic."""
    backend, _, _ = host
    backend.name = "cpu"  # the stand-in holds NumPy arrays
    try:
        kw = dict(options, bias=bias, dtype="float64", seed=3)
        cpu, fused = cls(5, 7, **kw), cls(5, 7, device=backend, **kw)
        x = np.random.default_rng(4).standard_normal((2, 5))
        state = np.random.default_rng(5).standard_normal((2, 7))
        state = (state, -state) if cls is LSTMCell else state
        for got, want in zip(np.atleast_1d(fused(x, state)), np.atleast_1d(cpu(x, state))):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    finally:
        backend.name = "gpu"


def _flat(result):
    """Every array in a nested tuple / list / dict result, in a fixed order."""
    if isinstance(result, dict):
        return [a for k in sorted(result) for a in _flat(result[k])]
    if isinstance(result, (tuple, list)):
        return [a for item in result for a in _flat(item)]
    return [] if result is None else [np.asarray(result)]


LAYERS = [(rnnkern.RNN, {"nonlinearity": "tanh"}), (rnnkern.RNN, {"nonlinearity": "relu"}), (rnnkern.LSTM, {}),
          (rnnkern.GRU, {"linear_before_reset": True}), (rnnkern.GRU, {"linear_before_reset": False})]


@pytest.mark.parametrize("cls,options", LAYERS)
def test_layers_train_through_cupy_backend_on_host(host, cls, options):
    """Layers (strided y[t] outputs), forward_train and backward (the training kernels) with
    CupyBackend's logic match the CPU backend."""
    backend, _, _ = host
    backend.name = "cpu"  # the stand-in holds NumPy arrays
    try:
        kw = dict(options, num_layers=2, bidirectional=True, dtype="float64", seed=6)
        cpu, fused = cls(4, 5, **kw), cls(4, 5, device=backend, **kw)
        x = np.random.default_rng(7).standard_normal((6, 3, 4))
        lengths = np.array([6, 4, 1])
        results = []
        for layer in (cpu, fused):
            y, state, tape = layer.forward_train(x, lengths=lengths)
            dy = np.random.default_rng(8).standard_normal(np.shape(y))
            results.append(_flat([layer(x, lengths=lengths), y, state, layer.backward(tape, dy)]))
        assert len(results[0]) == len(results[1])
        for got, want in zip(results[1], results[0]):
            np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-11)
    finally:
        backend.name = "gpu"


def test_kernel_built_once_per_dtype(host):
    backend, fake, _ = host
    first = backend.kernel("lstm_step", "float32")
    assert backend.kernel("lstm_step", "float32") is first
    assert backend.kernel("lstm_step", "float64") is not first
    assert fake.built.count(("lstm_step", "float32")) == 1


def test_cupy_backend_rejects_bad_arrays(host):
    backend, _, _ = host
    lstm, tanh = default_math("LSTM"), default_math("RNN", "tanh")
    h = np.zeros((2, 3), "float32")
    with pytest.raises(ValueError, match=r"gx must have 4\*hidden_size = 12 columns .*got shape \(2, 9\)"):
        backend.lstm_step(lstm, np.zeros((2, 9), "float32"), np.zeros((2, 12), "float32"), h, None, h, h)
    with pytest.raises(TypeError, match="gh must be a CuPy array of dtype float32 .*got numpy.ndarray of dtype float64"
                       ):
        backend.rnn_step(tanh, h, np.zeros((2, 3)), h)
    with pytest.raises(KeyError, match="op must be one of lstm_step, .* for a LSTM CellMath, got 'rnn_step'"):
        backend.rnn_step(lstm, h, h, h)
    with pytest.raises(TypeError, match=r"lstm_step takes inputs gx_i, .*, c_prev and outputs h_out, c_out, got 12 "
                                        r"inputs and 2 outputs \(peepholes p must come with a CellMath with peephole"):
        backend.lstm_step(lstm, np.zeros((2, 12), "float32"), np.zeros((2, 12), "float32"), h, np.zeros(9, "float32"),
                          h, h)


def test_steps_check_arguments_once_not_per_step(host, monkeypatch):
    """Defect 6 of issue 10: a sequence's steps launch from the remembered kernel without re-checking
    their arguments (the layer checked its inputs; CuPy rejects wrong ones itself), and a wrong
    argument after that still gets the message naming it."""
    backend, fake, _ = host
    backend.name = "cpu"  # the stand-in holds NumPy arrays
    checks = []
    real_check = backend._check
    monkeypatch.setattr(backend, "_check", lambda *args: checks.append(args[0]) or real_check(*args))
    try:
        layer = rnnkern.LSTM(3, 4, device=backend, dtype="float64", seed=0)
        x = np.random.default_rng(0).standard_normal((20, 2, 3))
        layer(x)
        first = len(checks)
        assert first <= 1  # at most the first launch of lstm_step in float64 in this session
        layer(x)
        assert len(checks) == first  # 20 more steps, no checks
    finally:
        backend.name = "gpu"
    h, lstm = np.zeros((2, 4)), default_math("LSTM")
    with pytest.raises(TypeError, match=r"lstm_step: gh_i must be a CuPy array of dtype float64 .*got numpy.ndarray "
                                        r"of dtype float32"):
        backend.lstm_step(lstm, np.zeros((2, 16)), np.zeros((2, 16), "float32"), h, None, h, h)
    not_an_array = types.SimpleNamespace(shape=(2, 4), dtype=np.dtype("float64"))
    with pytest.raises(TypeError, match=r"lstm_step: c_prev must be a CuPy array of dtype float64 .*got "
                                        r"types.SimpleNamespace"):
        backend.lstm_step(lstm, np.zeros((2, 16)), np.zeros((2, 16)), not_an_array, None, h, h)
