"""The LayerNorm cells' CUDA kernels (issue 20) without a GPU:

1. every op, in every dtype, compiles with CUDA 12's and 13's NVRTC for sm_80 and sm_90 (each unit holds
   all zoneout variants and both row groups: test_kernels.py's test_kernel_compiles_with_nvrtc), and
   ``rnnkern info --compile-kernels`` builds them;
2. their host build (g++; every thread of a launch a std::thread, ln_kernel_host.py), launched by
   CupyBackend's own methods over a stand-in cupy, matches the float64 transcription of the spec
   (ln_reference.py), forward and backward, every zoneout variant, each row group and launch shape.
"""

import numpy as np
import pytest

import kernel_host
import ln_reference as ref
from conftest import requires_gpu
from rnnkern._backend.cupy import lnkernels as _ln, nvrtc as _nvrtc
from rnnkern.cli import main

NVRTC_MAJORS = _nvrtc.available_majors()
# float16: stored in half (the saved arrays too), computed in float32
TOL = {"float16": 2e-2, "float32": 3e-5, "float64": 1e-11}


@pytest.mark.skipif(not NVRTC_MAJORS, reason=f"NVRTC unavailable: {_nvrtc.unavailable_reason()}")
def test_ln_compile_errors_point_at_kernels_dir():
    source = _ln.translation_unit("lngru_step", "float32", "cuda").replace("ho[j] = h;", "ho[j] = oops;")
    with pytest.raises(_nvrtc.NvrtcCompileError, match=r"kernels/lngru\.cuh\(\d+\).*oops"):
        _nvrtc.compile(source, "broken.cu", "sm_90")


def test_ln_table():
    for op, s in _ln.LN_OPS.items():
        text = (_ln._kernels.kernel_dir() / s.header).read_text()
        assert f"void {s.func}(" in text, op
        source = _ln.translation_unit(op, "float32", "cuda")
        for zoneout in _ln.ZONEOUTS:
            for group in _ln.GROUPS:
                assert f"void {_ln.symbol(op, zoneout, group, 'float32')}(" in source
    with pytest.raises(KeyError, match="op must be one of lnlstm_step, .*got 'lstm_step'"):
        _ln.spec("lstm_step")
    with pytest.raises(ValueError, match="zoneout must be one of none, blend, mask"):
        _ln.symbol("lngru_step", "dropout", "warp", "float32")
    assert _ln.launch_shape(5, 8) == (2, 128, "warp") and _ln.launch_shape(3, 512) == (3, 128, "block")
    assert _ln.launch_shape(1, 8192)[1] == 1024


# --- the host build through CupyBackend --------------------------------------------------------------------
@pytest.fixture(scope="module")
def ln_host(tmp_path_factory):
    import ln_kernel_host

    if kernel_host.GXX is None:
        pytest.skip("g++ not found: the kernels' math cannot be compiled for the host")
    lib, dtypes = ln_kernel_host.build(tmp_path_factory.mktemp("rnnkern_ln_host"))
    backend = ln_kernel_host.ln_host_backend(lib)
    backend.name = "cpu"  # the stand-in holds NumPy arrays
    return backend, dtypes


# How a step is launched: the default shape (a warp per row at these sizes), a block per row (2 and 3
# warps: the reductions through shared memory), and one group looping over every row.
LAUNCHES = {"default": None, "block64": lambda B, H: (B, 64, "block"), "block96_loop": lambda B, H: (1, 96, "block"),
            "warp_loop": lambda B, H: (1, 32, "warp")}


@pytest.mark.parametrize("layout", list(ref.LAYOUTS))
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("kind", ref.ZONEOUTS)
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_host_ln_kernels_match_reference(ln_host, cell, kind, dtype, layout):
    backend, dtypes = ln_host
    if dtype not in dtypes:
        pytest.skip("this g++ has no _Float16: float16 storage is checked by NVRTC only")
    ref.check_backend(backend, np, cell, kind, dtype, ref.LAYOUTS[layout], TOL[dtype])


@pytest.mark.parametrize("launch", [k for k in LAUNCHES if k != "default"])
@pytest.mark.parametrize("kind", ref.ZONEOUTS)
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_host_ln_launch_shapes(ln_host, monkeypatch, cell, kind, launch):
    """Other launch shapes than the default, in float64 on row-prefix views (the math in every dtype is
    checked by the default launch above)."""
    backend, _ = ln_host
    monkeypatch.setattr(_ln, "launch_shape", LAUNCHES[launch])
    ref.check_backend(backend, np, cell, kind, "float64", ref.prefix_rows, TOL["float64"])


def test_host_ln_rejects_bad_arrays(ln_host):
    backend, _ = ln_host
    v = ref.draw("gru", 2, 3, np.random.default_rng(0))
    norms = ref.LNGRUNorms(v["gamma_hh"], v["b_hh"])
    h = np.zeros((2, 3))
    with pytest.raises(TypeError, match=r"lngru_step: gh must be a CuPy array of dtype float64 .*got numpy.ndarray "
                                        r"of dtype float32"):
        backend.lngru_step(v["gx"], v["gh"].astype("float32"), v["h_prev"], norms, None, h)
    with pytest.raises(ValueError, match=r"lngru_step: gx must have shape \(2, 9\) .*got \(2, 8\)"):
        backend.lngru_step(v["gx"][:, :8], v["gh"], v["h_prev"], norms, None, h)
    with pytest.raises(ValueError, match="lngru_step: h_prev must have contiguous columns"):
        backend.lngru_step(v["gx"], v["gh"], np.zeros((2, 6))[:, ::2], norms, None, h)
    with pytest.raises(ValueError, match=r"lngru_step_train with zoneout 'none' needs rstd, got None"):
        saved = {"gates": np.zeros((2, 9)), "hh_hat": np.zeros((2, 9))}  # training, rstd forgotten
        backend.lngru_step(v["gx"], v["gh"], v["h_prev"], norms, None, h, saved)
    with pytest.raises(ValueError, match="dh_direct_out must be a .B, H. array with zoneout.*got None"):
        s = ref.lnlstm_forward(ref.draw("lstm", 2, 3, np.random.default_rng(1)), "mask")
        backend.lnlstm_backward(s, h, h, h, ref.LNLSTMNorms(np.ones(12), np.ones(3), np.zeros(3)),
                                ref.Zoneout(0.5, h), np.empty((2, 12)), np.empty((2, 12)), h, None, h)


def test_host_ln_module_built_once_per_op_and_dtype(ln_host):
    backend, _ = ln_host
    v = ref.draw("gru", 2, 3, np.random.default_rng(0))
    for _ in range(3):
        ref.run_forward(backend, np, "gru", v, "none", "float64")
    assert backend.xp.built.count(("lngru_step", "float64")) == 1


# --- rnnkern info --compile-kernels ---------------------------------------------------------------------
@pytest.mark.skipif(not NVRTC_MAJORS, reason=f"NVRTC unavailable: {_nvrtc.unavailable_reason()}")
def test_cli_compile_kernels_includes_layernorm(monkeypatch, capsys):
    from rnnkern._backend.cupy import kernels as _kernels

    monkeypatch.setattr(_kernels, "KERNELS", {})  # the cell kernels are test_kernels.py's
    assert main(["info", "--compile-kernels", "--arch", "sm_80"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("rnnkern_ln")]
    assert len(lines) == len(_ln.LN_OPS) * 3 * len(NVRTC_MAJORS) and all(line.endswith(": ok") for line in lines)


# --- on a GPU (``pytest -m gpu``; skipped, with the reason, where none is usable) --------------------------
@pytest.mark.gpu
@requires_gpu
@pytest.mark.parametrize("launch", list(LAUNCHES))
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("kind", ref.ZONEOUTS)
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_gpu_ln_kernels_match_reference(monkeypatch, cell, kind, dtype, launch):
    """The same checks as the host build's, with CuPy's RawModule on the device: the real shuffles,
    shared memory and float16 conversions."""
    import cupy
    from rnnkern._backend import get_backend

    if LAUNCHES[launch] is not None:
        monkeypatch.setattr(_ln, "launch_shape", LAUNCHES[launch])
    for layout in ref.LAYOUTS.values():
        ref.check_backend(get_backend("gpu"), cupy, cell, kind, dtype, layout, TOL[dtype],
                          ref.SHAPES + [(70, 300), (5, 1100)])
