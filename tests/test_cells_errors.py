"""Every bad argument to a cell gets a clear exception: it names the argument, what was expected and
what was received."""

import sys
import types

import numpy as np
import pytest

import rnnkern
from rnnkern import _backend

CELLS = [rnnkern.RNNCell, rnnkern.LSTMCell, rnnkern.GRUCell]
CELL_IDS = [c.__name__ for c in CELLS]


def zeros(*shape, dtype="float32"):
    return np.zeros(shape, dtype=dtype)


def state_of(cls, h, c=None):
    return (h, h if c is None else c) if cls is rnnkern.LSTMCell else h


# ------------------------------------------------------------------ the call
@pytest.mark.parametrize("cls", CELLS, ids=CELL_IDS)
def test_wrong_feature_size(cls):
    cell = cls(3, 4)
    pattern = rf"{cls.__name__}: input must have 3 features \(input_size\).*got shape \(2, 5\)"
    with pytest.raises(ValueError, match=pattern):
        cell(zeros(2, 5))
    with pytest.raises(ValueError, match=r"input must have 3 features.*got shape \(7,\)"):
        cell(zeros(7))


@pytest.mark.parametrize("cls", CELLS, ids=CELL_IDS)
def test_state_batch_differs_from_input(cls):
    cell = cls(3, 4)
    h = zeros(3, 4)
    name = "state\\[0\\] \\(h\\)" if cls is rnnkern.LSTMCell else "state"
    with pytest.raises(ValueError, match=rf"input batch 2\): {name} must have shape \(2, 4\), got \(3, 4\)"):
        cell(zeros(2, 3), state_of(cls, h))


@pytest.mark.parametrize("cls", CELLS, ids=CELL_IDS)
def test_state_of_wrong_hidden_size(cls):
    cell = cls(3, 4)
    with pytest.raises(ValueError, match=r"must have shape \(2, 4\), got \(2, 5\)"):
        cell(zeros(2, 3), state_of(cls, zeros(2, 5)))


@pytest.mark.parametrize("cls", CELLS, ids=CELL_IDS)
def test_state_batched_while_input_is_not_and_vice_versa(cls):
    cell = cls(3, 4)
    with pytest.raises(ValueError, match=r"\(unbatched input\): state.* must have shape \(4,\), got \(1, 4\)"):
        cell(zeros(3), state_of(cls, zeros(1, 4)))
    with pytest.raises(ValueError, match=r"\(input batch 1\): state.* must have shape \(1, 4\), got \(4,\)"):
        cell(zeros(1, 3), state_of(cls, zeros(4)))


def test_lstm_cell_state_mismatch_is_named():
    cell = rnnkern.LSTMCell(3, 4)
    with pytest.raises(ValueError, match=r"state\[1\] \(c\) must have shape \(2, 4\), got \(2, 5\)"):
        cell(zeros(2, 3), (zeros(2, 4), zeros(2, 5)))


@pytest.mark.parametrize("cls", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("ndim", [0, 3])
def test_input_of_wrong_rank(cls, ndim):
    cell = cls(3, 4)
    with pytest.raises(ValueError, match=f"Expected input to be 1D or 2D, got {ndim}D instead"):
        cell(zeros(*(2, 2, 3)[3 - ndim:]))


@pytest.mark.parametrize("cls", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("cell_dtype,other", [("float32", "float64"), ("float64", "float32")])
def test_input_dtype_differs_from_the_cells(cls, cell_dtype, other):
    cell = cls(3, 4, dtype=cell_dtype)
    pattern = rf"input must have dtype {cell_dtype} \(the dtype of the {cls.__name__}\), got floating dtype {other}"
    with pytest.raises(TypeError, match=pattern):
        cell(zeros(2, 3, dtype=other))


@pytest.mark.parametrize("cls", CELLS, ids=CELL_IDS)
def test_state_dtype_differs_from_the_cells(cls):
    cell = cls(3, 4, dtype="float32")
    h = zeros(2, 4, dtype="float64")
    with pytest.raises(TypeError, match=r"state.* must have dtype float32 .*got floating dtype float64"):
        cell(zeros(2, 3), state_of(cls, h))


@pytest.mark.parametrize("cls", CELLS, ids=CELL_IDS)
def test_integer_input(cls):
    cell = cls(3, 4)
    with pytest.raises(TypeError, match=r"input must have dtype float32 .*got non-floating dtype int64") as info:
        cell(np.zeros((2, 3), dtype=np.int64))
    assert "dtype='int64'" not in str(info.value)  # no advice to build a cell in a dtype it cannot have


@pytest.mark.parametrize("cls", CELLS, ids=CELL_IDS)
def test_input_that_is_not_an_array(cls):
    with pytest.raises(TypeError, match=rf"{cls.__name__}: input must be an array of dtype float32, got str"):
        cls(3, 4)("abc")


@pytest.mark.parametrize("state", [zeros(2, 4), (zeros(2, 4),), (zeros(2, 4),) * 3, [zeros(2, 4)]],
                         ids=["array", "1-tuple", "3-tuple", "1-list"])
def test_lstm_state_not_a_pair(state):
    cell = rnnkern.LSTMCell(3, 4)
    expected = type(state).__name__ + ("" if isinstance(state, np.ndarray) else f" of length {len(state)}")
    with pytest.raises(TypeError, match=rf"LSTMCell: state must be a tuple \(h, c\), got {expected}"):
        cell(zeros(2, 3), state)


# ------------------------------------------------------------ construction
@pytest.mark.parametrize("cls", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("device", ["tpu", "cuda:1", "CPU", None, 0])
def test_unknown_device(cls, device):
    with pytest.raises(ValueError, match=rf"device must be one of 'cpu', 'gpu', 'auto', got {device!r}"):
        cls(3, 4, device=device)


@pytest.mark.parametrize("cls", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("argument", ["input_size", "hidden_size"])
@pytest.mark.parametrize("value", [0, -3])
def test_non_positive_sizes(cls, argument, value):
    sizes = {"input_size": 3, "hidden_size": 4, argument: value}
    with pytest.raises(ValueError, match=rf"{cls.__name__}: {argument} must be a positive int, got {value}"):
        cls(**sizes)


@pytest.mark.parametrize("cls", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("argument", ["input_size", "hidden_size"])
@pytest.mark.parametrize("value,shown", [(True, "bool True"), (False, "bool False"), (3.0, "float 3.0"),
                                         ("3", "str '3'")])
def test_sizes_of_wrong_type(cls, argument, value, shown):
    sizes = {"input_size": 3, "hidden_size": 4, argument: value}
    with pytest.raises(TypeError, match=rf"{argument} must be a positive int, got {shown}"):
        cls(**sizes)


@pytest.mark.parametrize("cls", CELLS, ids=CELL_IDS)
def test_numpy_integer_sizes_are_fine(cls):
    cell = cls(np.int64(3), np.int32(4))
    assert (cell.input_size, cell.hidden_size) == (3, 4)
    assert type(cell.input_size) is int


def test_unknown_nonlinearity():
    with pytest.raises(ValueError, match=r"RNNCell: nonlinearity must be one of 'tanh', 'relu', got 'sigmoid'"):
        rnnkern.RNNCell(3, 4, nonlinearity="sigmoid")


@pytest.mark.parametrize("cls,argument", [(rnnkern.RNNCell, "bias"), (rnnkern.GRUCell, "linear_before_reset")])
def test_flags_must_be_bool(cls, argument):
    with pytest.raises(TypeError, match=rf"{argument} must be a bool, got int 1"):
        cls(3, 4, **{argument: 1})


@pytest.mark.parametrize("cls", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("dtype", ["int32", np.int64, "bool", "complex128"])
def test_non_float_dtype_for_the_cell(cls, dtype):
    with pytest.raises(TypeError, match=rf"{cls.__name__}: dtype must be one of float16, float32, float64, "
                                        rf"got {np.dtype(dtype).name}"):
        cls(3, 4, dtype=dtype)


def test_unknown_dtype_name():
    with pytest.raises(TypeError, match=r"dtype must be one of float16, float32, float64, got 'banana'"):
        rnnkern.GRUCell(3, 4, dtype="banana")


def test_float16_is_gpu_only():
    with pytest.raises(TypeError, match=r"dtype float16 is not supported on device='cpu' \(supported there: "
                                        r"float32, float64\)"):
        rnnkern.LSTMCell(3, 4, dtype="float16")


# ------------------------------------------------------------ from_state_dict
@pytest.fixture
def lstm_sd():
    return rnnkern.LSTMCell(3, 4, seed=0).state_dict()


@pytest.mark.parametrize("missing", ["weight_ih", "weight_hh", "bias_ih", "bias_hh"])
def test_state_dict_missing_a_key(lstm_sd, missing):
    del lstm_sd[missing]
    with pytest.raises(KeyError, match=rf"LSTMCell.from_state_dict: missing key.* '{missing}'"):
        rnnkern.LSTMCell.from_state_dict(lstm_sd)


def test_state_dict_with_an_unexpected_key(lstm_sd):
    lstm_sd["weight_ih_l0"] = lstm_sd["weight_ih"]
    with pytest.raises(KeyError, match=r"unexpected key\(s\) 'weight_ih_l0' \(expected keys: weight_ih, weight_hh, "
                                       r"bias_ih, bias_hh\)"):
        rnnkern.LSTMCell.from_state_dict(lstm_sd)


@pytest.mark.parametrize("name,shape,expected", [
    ("weight_ih", (15, 3), r"'weight_ih' must have shape \(16, 3\).*got \(15, 3\)"),
    ("bias_ih", (16, 1), r"'bias_ih' must have shape \(16,\).*got \(16, 1\)"),
    ("bias_hh", (12,), r"'bias_hh' must have shape \(16,\).*got \(12,\)"),
    ("weight_hh", (16, 5), r"'weight_hh' must have shape \(4\*H, H\), got \(16, 5\)"),
    ("weight_ih", (16,), r"'weight_ih' must be 2-D, got shape \(16,\)"),
])
def test_state_dict_with_a_wrongly_shaped_tensor(lstm_sd, name, shape, expected):
    lstm_sd[name] = np.zeros(shape, dtype=np.float32)
    with pytest.raises(ValueError, match=rf"LSTMCell.from_state_dict: {expected}"):
        rnnkern.LSTMCell.from_state_dict(lstm_sd)


def test_state_dict_not_a_mapping(lstm_sd):
    with pytest.raises(TypeError, match=r"state_dict must be a mapping of names to arrays, got list"):
        rnnkern.LSTMCell.from_state_dict(list(lstm_sd.values()))


def test_state_dict_of_mixed_dtypes(lstm_sd):
    lstm_sd["bias_hh"] = lstm_sd["bias_hh"].astype(np.float64)
    with pytest.raises(TypeError, match=r"tensors have different dtypes \(.*bias_hh: float64.*\); pass dtype="):
        rnnkern.LSTMCell.from_state_dict(lstm_sd)
    assert rnnkern.LSTMCell.from_state_dict(lstm_sd, dtype="float64").dtype == np.float64  # the way out


def test_state_dict_of_integers(lstm_sd):
    with pytest.raises(TypeError, match=r"expected floating-point tensors, got dtype int64; pass dtype="):
        rnnkern.LSTMCell.from_state_dict({k: v.astype(np.int64) for k, v in lstm_sd.items()})


def test_state_dict_option_of_another_cell(lstm_sd):
    with pytest.raises(TypeError, match=r"LSTMCell.from_state_dict: unexpected option\(s\) 'nonlinearity'"):
        rnnkern.LSTMCell.from_state_dict(lstm_sd, nonlinearity="relu")


# ------------------------------------------------------------------ the GPU
@pytest.fixture
def fresh_gpu_probe(monkeypatch):
    """Forget the GPU backends made so far before and after the test, so a faked CuPy is seen, and the
    real one again afterwards (this teardown runs before monkeypatch's). A failed probe is never kept."""
    _backend._cupy_backend.cache_clear()
    yield monkeypatch
    _backend._cupy_backend.cache_clear()


def fake_cupy(device_count):
    """A stand-in for CuPy installed without a usable driver: getDeviceCount raises, or returns 0."""
    def get_device_count():
        if isinstance(device_count, Exception):
            raise device_count
        return device_count

    module = types.ModuleType("cupy")
    module.__version__ = "13.9.9"
    module.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=get_device_count))
    return module


def test_device_unavailable_error_is_a_runtime_error():
    assert issubclass(rnnkern.DeviceUnavailableError, RuntimeError)


@pytest.mark.parametrize("cls", CELLS, ids=CELL_IDS)
def test_gpu_without_cupy(cls, fresh_gpu_probe):
    fresh_gpu_probe.setitem(sys.modules, "cupy", None)  # makes `import cupy` fail
    with pytest.raises(rnnkern.DeviceUnavailableError, match=r"device='gpu' needs CuPy, which is not installed.*"
                                                             r"pip install 'rnnkern\[gpu-cuda12\]' \(CUDA 12\) or "
                                                             r"'rnnkern\[gpu-cuda13\]'"):
        cls(3, 4, device="gpu")
    assert cls(3, 4, device="auto").device == "cpu"  # auto falls back quietly
    assert rnnkern.available_devices() == ["cpu"]


def test_gpu_with_cupy_but_no_driver(fresh_gpu_probe):
    error = RuntimeError("cudaErrorInsufficientDriver: CUDA driver version is insufficient")
    fresh_gpu_probe.setitem(sys.modules, "cupy", fake_cupy(error))
    pattern = (r"CuPy 13.9.9 is installed but no CUDA device is usable "
               r"\(RuntimeError: cudaErrorInsufficientDriver.*nvidia-smi")
    with pytest.raises(rnnkern.DeviceUnavailableError, match=pattern):
        rnnkern.GRUCell(3, 4, device="gpu")
    assert rnnkern.GRUCell(3, 4, device="auto").device == "cpu"
    with pytest.raises(rnnkern.DeviceUnavailableError, match="no CUDA device is usable"):
        rnnkern.asarray(np.zeros(3), device="gpu")


def test_gpu_with_cupy_and_no_device(fresh_gpu_probe):
    fresh_gpu_probe.setitem(sys.modules, "cupy", fake_cupy(0))
    with pytest.raises(rnnkern.DeviceUnavailableError, match=r"CuPy 13.9.9 found no CUDA device"):
        rnnkern.RNNCell(3, 4, device="gpu")


@pytest.mark.parametrize("cupy", [None, "no driver", 0], ids=["no-cupy", "no-driver", "no-device"])
@pytest.mark.parametrize("alias", ["cuda", "cuda:0"])
def test_torch_names_of_the_gpu_are_named_as_typed(fresh_gpu_probe, cupy, alias):
    """'cuda' and 'cuda:0' get the message of 'gpu', naming the device as the user typed it."""
    fresh_gpu_probe.setitem(sys.modules, "cupy", None if cupy is None else fake_cupy(
        RuntimeError("cudaErrorNoDevice") if cupy == "no driver" else cupy))
    with pytest.raises(rnnkern.DeviceUnavailableError) as as_gpu:
        _backend.get_backend("gpu")
    with pytest.raises(rnnkern.DeviceUnavailableError) as as_alias:
        rnnkern.LSTM(3, 4, device=alias)
    gpu_message = str(as_gpu.value)
    assert gpu_message.startswith("device='gpu'") and gpu_message.count("device='gpu'") == 1
    assert str(as_alias.value) == f"device={alias!r} (the GPU)" + gpu_message[len("device='gpu'"):]
    assert type(as_alias.value) is rnnkern.DeviceUnavailableError
    assert _backend.gpu_unavailable_reason() == gpu_message


def test_gpu_here_as_it_really_is():
    """Whichever of the cases this machine is in, asking for the GPU either works or says why not."""
    reason = _backend.gpu_unavailable_reason()
    if reason is None:
        assert rnnkern.LSTMCell(3, 4, device="gpu").device == "gpu"
        return
    try:
        import cupy  # noqa: F401
    except ImportError:
        expected = r"pip install 'rnnkern\[gpu-cuda12\]' \(CUDA 12\) or 'rnnkern\[gpu-cuda13\]'"
    else:
        expected = r"no CUDA device|found no CUDA device"
    with pytest.raises(rnnkern.DeviceUnavailableError, match=expected):
        rnnkern.LSTMCell(3, 4, device="gpu")


@pytest.mark.parametrize("bad", [None, [None, 0.0, 1.0], [["a", "b", "c"]]], ids=["None", "None-inside", "strings"])
def test_none_and_objects_are_rejected_not_turned_into_nan(bad):
    with pytest.raises(TypeError, match="GRUCell: input must be an array of dtype float32, got"):
        rnnkern.GRUCell(3, 2)(bad)
    with pytest.raises(TypeError, match="GRUCell: state must be an array of dtype float32, got list"):
        rnnkern.GRUCell(3, 2)([0.0, 1.0, 2.0], [None, 0.0])
