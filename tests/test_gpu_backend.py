"""The CuPy backend: device selection everywhere; on a usable GPU, agreement with the CPU.

Tests in TestOnGpu are marked ``gpu`` (``make test-gpu`` runs them) and are skipped, with
the reason printed, where no CUDA device is usable. The rest run on any machine.
"""

import inspect

import numpy as np
import pytest

import kernel_cases
import kernel_host
import rnnkern
from conftest import DEVICES, GPU_REASON, requires_gpu
from rnnkern import DeviceUnavailableError, GRUCell, LSTMCell, RNNCell
from rnnkern._backend import get_backend
from rnnkern._backend.cupy.backend import CupyBackend
from rnnkern._backend.numpy.steps import NumpyBackend
from rnnkern._recurrences.semantics import default_math

try:
    import cupy
except ImportError:
    cupy = None

# GPU vs the same computation on the CPU, per storage dtype. float16: weights, inputs and the
# GEMM outputs gx, gh are each rounded to float16 (unit roundoff 2**-11 = 4.9e-4) before the
# gates, which are bounded by 1; four such roundings plus the output's give ~2.5e-3, so 1e-2
# leaves headroom for cuBLAS's float16 GEMM (float32 accumulation) without hiding real bugs.
GPU_TOL = {"float16": 1e-2, "float32": 1e-5, "float64": 1e-12}
FUSED_TOL = kernel_cases.FUSED_TOL
LAYERS = [(rnnkern.RNN, {"nonlinearity": "tanh"}), (rnnkern.RNN, {"nonlinearity": "relu"}), (rnnkern.LSTM, {}),
          (rnnkern.GRU, {"linear_before_reset": True}), (rnnkern.GRU, {"linear_before_reset": False})]
CELLS = [(RNNCell, {"nonlinearity": "tanh"}), (RNNCell, {"nonlinearity": "relu"}), (LSTMCell, {}),
         (GRUCell, {"linear_before_reset": True}), (GRUCell, {"linear_before_reset": False})]


# --- everywhere -----------------------------------------------------------------------------
# The contract's step API (ISSUE16_SPEC.md section 2): every backend's steps, m a CellMath.
STEP_API = {
    "rnn_step": "m, gx, gh, h_out, train=False",
    "rnn_backward": "m, saved, dh, da_out",
    "lstm_step": "m, gx, gh, c_prev, p, h_out, c_out, train=False",
    "lstm_backward": "m, gates, c_prev, c, dh, dc, p, da_out, dc_prev_out",
    "gru_step": "m, gx, gh, b_hn, h_prev, h_out, ghn_out=None",
    "gru_backward": "m, gates, ghn, h_prev, dh, dgx_out, dgh_out, dh_direct_out",
    "gru_reset": "m, gx, gh_rz, h_prev, rh_out",
    "gru_update": "m, gx, gh_rz, gh_n, h_prev, h_out, train=False",
    "gru_backward_update": "m, z, n, h_prev, dh, dgx_out, dh_direct_out",
    "gru_backward_reset": "m, r, h_prev, d_rh, dgx_out, dh_direct_out",
    # the LayerNorm cells' steps (issue 20): no CellMath, their norms and zoneout instead
    "lnlstm_step": "gx, gh, c_prev, h_prev, norms, zoneout, h_out, c_out, saved=None",
    "lnlstm_backward": "saved, c_prev, dh, dc, norms, zoneout, dgx_out, dgh_out, dc_prev_out, dh_direct_out, dcn_out",
    "lngru_step": "gx, gh, h_prev, norms, zoneout, h_out, saved=None",
    "lngru_backward": "saved, h_prev, dh, norms, zoneout, dgx_out, dghn_out, dgh_out, dh_direct_out",
}


def test_same_interface_as_numpy_backend():
    for name, params in STEP_API.items():
        assert str(inspect.signature(getattr(CupyBackend, name))) == f"(self, {params})", name
    steps = {n for n in dir(CupyBackend) if n.endswith(tuple(STEP_API)) or n in STEP_API}
    assert steps == set(STEP_API), steps - set(STEP_API)  # nothing beside the contract's steps
    public = {n for n in dir(NumpyBackend) if not n.startswith("_")}
    assert public <= set(dir(CupyBackend)) | {"xp"}, public - set(dir(CupyBackend))
    for name in public - {"xp", "is_backend", "name", "dtypes"}:
        assert inspect.signature(getattr(CupyBackend, name)) == inspect.signature(getattr(NumpyBackend, name)), name
    assert CupyBackend.is_backend and CupyBackend.name == "gpu"
    assert CupyBackend.dtypes == ("float16", "float32", "float64")


def test_gpu_unavailable_is_explained():
    with pytest.raises(DeviceUnavailableError) as info:
        get_backend("gpu")
    if cupy is None:
        assert "needs CuPy, which is not installed" in str(info.value) and "rnnkern[gpu-cuda12]" in str(info.value)
    else:
        assert f"CuPy {cupy.__version__} is installed but no CUDA device is usable" in str(info.value)
        assert "device='cpu'" in str(info.value)
    with pytest.raises(DeviceUnavailableError, match="device='gpu'"):
        LSTMCell(3, 4, device="gpu")
    with pytest.raises(DeviceUnavailableError, match="device='gpu'"):
        rnnkern.asarray(np.zeros(3), device="gpu")
    assert get_backend("auto") is get_backend("cpu")
    assert GRUCell(3, 4, device="auto").device == "cpu"
    assert rnnkern.available_devices() == ["cpu"]


@pytest.mark.parametrize("alias", ["cuda", "cuda:0"])
def test_torch_device_names_mean_the_gpu(alias):
    if GPU_REASON is None:
        assert get_backend(alias) is get_backend("gpu")
        assert LSTMCell(3, 4, device=alias).device == "gpu"
    else:
        with pytest.raises(DeviceUnavailableError, match=rf"device='{alias}' \(the GPU\)"):
            get_backend(alias)
        with pytest.raises(DeviceUnavailableError, match=rf"device='{alias}' \(the GPU\)"):
            rnnkern.GRU(3, 4, device=alias)
    with pytest.raises(ValueError, match=r"got 'cuda:1' \(torch's 'cuda' and 'cuda:0' also name the GPU\).*"
                                         r"cupy.cuda.Device\(n\).use\(\)"):
        get_backend("cuda:1")


@pytest.mark.parametrize("device", DEVICES)
def test_asarray_round_trip(device):
    host = np.arange(6, dtype="float64").reshape(2, 3)
    on_device = rnnkern.asarray(host, device=device, dtype="float32")
    assert on_device.dtype == np.float32 and get_backend(device).is_native(on_device)
    assert rnnkern.asarray(on_device, device=device) is on_device  # already there: no copy
    back = rnnkern.asarray(on_device, device="cpu")
    assert isinstance(back, np.ndarray)
    np.testing.assert_array_equal(back, host)


# --- on a GPU -------------------------------------------------------------------------------
def _flat(result):
    """Every array (as NumPy) in a nested tuple / list / dict result, in a fixed order."""
    if isinstance(result, dict):
        return [a for k in sorted(result) for a in _flat(result[k])]
    if isinstance(result, (tuple, list)):
        return [a for item in result for a in _flat(item)]
    return [] if result is None else [cupy.asnumpy(result)]


def _outputs(cls, result):
    return list(result) if cls is LSTMCell else [result]


@pytest.mark.gpu
@requires_gpu
class TestOnGpu:
    @pytest.fixture
    def gpu(self):
        return get_backend("gpu")

    def test_auto_picks_gpu(self, gpu):
        assert get_backend("auto") is gpu and rnnkern.available_devices() == ["cpu", "gpu"]
        assert LSTMCell(3, 4, device="auto").device == "gpu"

    def test_asarray_gpu(self, gpu):
        x = gpu.asarray(np.ones((2, 3), "float64"), np.dtype("float16"))
        assert isinstance(x, cupy.ndarray) and x.dtype == np.float16
        assert gpu.asarray(x) is x and gpu.asarray(x, np.dtype("float32")).dtype == np.float32
        assert isinstance(gpu.to_numpy(x), np.ndarray)

    def test_kernel_cached_per_device_and_dtype(self, gpu):
        first = gpu.kernel("lstm_step", "float32")
        assert gpu.kernel("lstm_step", "float32") is first
        assert gpu.kernel("lstm_step", "float64") is not first

    def test_wrong_arguments_named_after_the_kernel_is_warm(self, gpu):
        # Launches skip rnnkern's checks once a kernel ran; CuPy's own TypeError must bring them back.
        h, gates = cupy.zeros((2, 4), "float32"), cupy.zeros((2, 16), "float32")
        m = default_math("LSTM")
        gpu.lstm_step(m, gates, gates.copy(), h, None, h.copy(), h.copy())
        with pytest.raises(TypeError, match=r"lstm_step: gh_i must be a CuPy array of dtype float32 .*got numpy"):
            gpu.lstm_step(m, gates, np.zeros((2, 16), "float32"), h, None, h.copy(), h.copy())
        with pytest.raises(TypeError, match=r"lstm_step: c_prev must be a CuPy array of dtype float32 .*got cupy"
                                            r".*ndarray of dtype float64"):
            gpu.lstm_step(m, gates, gates.copy(), h.astype("float64"), None, h.copy(), h.copy())

    @pytest.mark.parametrize("alias", [False, True])
    @pytest.mark.parametrize("layout", list(kernel_cases.LAYOUTS))
    @pytest.mark.parametrize("shape", [(4, 8), (1, 1), (3, 33), (2, 100)])
    @pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
    @pytest.mark.parametrize("step", kernel_cases.STEPS)
    def test_fused_matches_unfused(self, gpu, step, dtype, shape, layout, alias):
        kernel_cases.check_fused_matches_unfused(gpu, cupy, step, dtype, shape, layout, alias, FUSED_TOL[dtype])

    @pytest.mark.parametrize("dtype", ["float32", "float64"])
    @pytest.mark.parametrize("step", kernel_cases.ALL_STEPS)
    def test_steps_match_numpy_backend(self, gpu, step, dtype):
        # Forward steps also with +-1e4 and +-1e30 inputs: finite outputs, the same as the CPU's.
        for extreme in (False, True) if step in kernel_cases.STEPS else (False,):
            values = kernel_cases.draw(step, 5, 37, dtype, np.random.default_rng(1), extreme)
            expected = kernel_cases.run(NumpyBackend(), np, step, values)
            for alias in (False, True):
                got = kernel_cases.run(gpu, cupy, step, values, kernel_cases.strided, alias)
                kernel_cases.check_close(got, expected, values, GPU_TOL[dtype])

    @pytest.mark.parametrize("extreme", [False, True])
    @pytest.mark.parametrize("step", kernel_cases.ALL_STEPS)
    def test_float16_steps(self, gpu, step, extreme):
        if extreme and step in kernel_cases.TRAIN_STEPS:
            pytest.skip("gradients of huge inputs may overflow float16 (no safety claimed)")
        values = kernel_cases.draw(step, 3, 17, "float16", np.random.default_rng(2), extreme)
        # float32 on the CPU from the same float16 values: the kernels compute in float32 too.
        expected = kernel_cases.run(NumpyBackend(), np, step, {k: v.astype("float32") for k, v in values.items()})
        got = kernel_cases.run(gpu, cupy, step, values, kernel_cases.transposed)
        assert all(v.dtype == np.float16 for v in got.values())
        kernel_cases.check_close(got, expected, values, FUSED_TOL["float16"])

    @pytest.mark.parametrize("dtype", ["float32", "float64"])
    @pytest.mark.parametrize("cls,options", LAYERS)
    def test_layers_train_match_cpu(self, cls, options, dtype):
        kw = dict(options, num_layers=2, bidirectional=True, dtype=dtype, seed=6)
        cpu = cls(4, 33, **kw)
        on_gpu = cpu.to("gpu")
        x = np.random.default_rng(7).standard_normal((6, 3, 4)).astype(dtype)
        lengths = np.array([6, 4, 1])
        results = []
        for layer, xp in ((cpu, np), (on_gpu, cupy)):
            y, state, tape = layer.forward_train(xp.asarray(x), lengths=lengths)
            dy = xp.asarray(np.random.default_rng(8).standard_normal(y.shape).astype(dtype))
            results.append(_flat([layer(xp.asarray(x), lengths=lengths), y, state, layer.backward(tape, dy)]))
        # Gradients of weights sum over time and batch (GEMMs of other summation orders): 10x the step tolerance.
        assert len(results[0]) == len(results[1])
        for got, want in zip(results[1], results[0]):
            np.testing.assert_allclose(got, want, rtol=GPU_TOL[dtype] * 10, atol=GPU_TOL[dtype] * 10)

    @pytest.mark.parametrize("sizes", [(1, 3, 1), (4, 5, 33), (3, 16, 64)])
    @pytest.mark.parametrize("dtype", ["float32", "float64"])
    @pytest.mark.parametrize("cls,options", CELLS)
    def test_cells_match_cpu(self, cls, options, dtype, sizes):
        B, I, H = sizes
        cpu = cls(I, H, dtype=dtype, seed=0, **options)
        gpu_cell = cpu.to("gpu")
        x = np.random.default_rng(1).standard_normal((B, I)).astype(dtype)
        h = np.random.default_rng(2).standard_normal((B, H)).astype(dtype)
        state = (h, -h) if cls is LSTMCell else h
        gpu_state = tuple(cupy.asarray(s) for s in state) if cls is LSTMCell else cupy.asarray(h)
        want, got = cpu(x, state), gpu_cell(cupy.asarray(x), gpu_state)
        for g, w in zip(_outputs(cls, got), _outputs(cls, want)):
            np.testing.assert_allclose(cupy.asnumpy(g), w, rtol=GPU_TOL[dtype], atol=GPU_TOL[dtype])

    @pytest.mark.parametrize("cls,options", CELLS)
    def test_cells_float16(self, cls, options):
        half = cls(6, 33, dtype="float16", device="gpu", seed=0, **options)
        # The reference: float64 on the CPU with the same (float16-rounded) weights and inputs.
        ref = cls.from_state_dict(half.state_dict(), dtype="float64", **options)
        x = np.random.default_rng(3).standard_normal((4, 6)).astype("float16")
        got, want = half(cupy.asarray(x)), ref(x.astype("float64"))
        for g, w in zip(_outputs(cls, got), _outputs(cls, want)):
            assert g.dtype == np.float16
            np.testing.assert_allclose(cupy.asnumpy(g).astype("float64"), w, rtol=GPU_TOL["float16"],
                                       atol=GPU_TOL["float16"])

    @pytest.mark.parametrize("cls", [rnnkern.LSTM, rnnkern.GRU])
    def test_torch_cuda_tensors(self, gpu, cls):
        torch = pytest.importorskip("torch", reason="PyTorch is not installed")
        if not torch.cuda.is_available():
            pytest.skip("this PyTorch has no CUDA")
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False  # full float32, as ours
        model = getattr(torch.nn, cls.__name__)(3, 4).cuda()
        for state_dict in (model.state_dict(), dict(model.named_parameters())):  # the latter requires grad
            for device in ("cpu", "gpu"):
                layer = cls.from_state_dict(state_dict, device=device)
                for key, value in state_dict.items():
                    np.testing.assert_array_equal(rnnkern.asarray(layer.state_dict()[key], device="cpu"),
                                                  value.detach().cpu().numpy())
        x = torch.randn(5, 2, 3, device="cuda", requires_grad=True)
        layer = cls.from_state_dict(model.state_dict(), device="gpu")
        y, _ = layer(gpu.asarray(x), lengths=torch.tensor([5, 2], device="cuda"))
        want = model(x[:, :1])[0].detach().cpu().numpy()  # the full-length sequence, alone
        np.testing.assert_allclose(cupy.asnumpy(y[:, :1]), want, rtol=1e-4, atol=1e-5)
