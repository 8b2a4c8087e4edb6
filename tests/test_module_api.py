"""Issue 11: the module API as a PyTorch user expects it: assignable weights, load_state_dict,
named_parameters / parameters, stale tapes refused, big-endian arrays, initialisation memory."""

import copy
import pickle
import tracemalloc

import numpy as np
import pytest

import rnnkern


def _torch():
    return pytest.importorskip("torch")


# --- bug 1: assigning a weight ------------------------------------------------------------------
@pytest.mark.parametrize("make, name", [(lambda: rnnkern.LSTM(4, 8, seed=0), "weight_ih_l0"),
                                        (lambda: rnnkern.GRUCell(4, 8, seed=0), "weight_hh")])
def test_assigning_a_weight_updates_the_parameter_everywhere(make, name):
    module = make()
    array_before = getattr(module, name)
    new = np.full(array_before.shape, 0.25, "float32")
    setattr(module, name, new)
    assert getattr(module, name) is array_before  # written in place: optimisers' references stay valid
    np.testing.assert_array_equal(module.state_dict()[name], new)
    np.testing.assert_array_equal(dict(module.named_parameters())[name], new)
    fresh = type(module).from_state_dict(module.state_dict())
    x = np.random.default_rng(0).standard_normal((3, 2, 4) if hasattr(module, "num_layers") else (2, 4))
    x = x.astype("float32")
    out, ref = module(x), fresh(x)
    np.testing.assert_array_equal(out[0] if isinstance(out, tuple) else out, ref[0] if isinstance(ref, tuple) else ref)
    new[...] = 7  # the module holds its own copy, not the caller's array
    assert not (getattr(module, name) == 7).any()


def test_assigning_the_zeros_of_the_issue_changes_the_forward():
    layer = rnnkern.LSTM(4, 8, seed=0)
    x = np.ones((3, 1, 4), "float32")
    before = layer(x)[0]
    layer.weight_ih_l0 = np.zeros((32, 4), "f4")
    assert not np.allclose(layer(x)[0], before)
    assert not layer.state_dict()["weight_ih_l0"].any()


def test_augmented_assignment_through_the_attribute_is_a_write():
    cell = rnnkern.LSTMCell(3, 4, seed=0)
    before = cell.bias_ih.copy()
    cell.bias_ih += 1  # Python reads the array, adds in place, then assigns it back
    np.testing.assert_allclose(cell.state_dict()["bias_ih"], before + 1)


@pytest.mark.parametrize("value, error, match", [
    (np.zeros((3, 3), "float32"), ValueError, r"LSTM: weight_ih_l0 must have shape \(32, 4\), got \(3, 3\)"),
    (np.zeros((32, 4), "float64"), TypeError, r"LSTM: weight_ih_l0 must have dtype float32 .*float64"),
    (np.zeros((32, 4), "int32"), TypeError, r"weight_ih_l0 must have dtype float32 .*non-floating dtype int32"),
    ("zeros", TypeError, r"weight_ih_l0 must be an array of dtype float32"),
])
def test_assigning_a_wrong_weight_raises_and_changes_nothing(value, error, match):
    layer = rnnkern.LSTM(4, 8, seed=0)
    before = layer.state_dict()
    with pytest.raises(error, match=match):
        layer.weight_ih_l0 = value
    for name, array in layer.state_dict().items():
        np.testing.assert_array_equal(array, before[name])


def test_assigning_a_parameter_the_module_does_not_have_raises():
    cell = rnnkern.RNNCell(3, 4, bias=False)
    with pytest.raises(AttributeError, match=r"RNNCell has no parameter 'bias_ih' to assign \(its parameters: "
                                             r"weight_ih, weight_hh\)"):
        cell.bias_ih = np.zeros(4, "float32")
    with pytest.raises(AttributeError, match="LSTM has no parameter 'weight_ih_l1'"):
        rnnkern.LSTM(3, 4).weight_ih_l1 = np.zeros((16, 4), "float32")
    cell.note = "plain attributes still work"
    assert cell.note == "plain attributes still work"


def test_modules_made_from_a_state_dict_do_not_share_its_memory():
    sd = rnnkern.LSTM(3, 4, seed=0).state_dict()
    layer = rnnkern.LSTM.from_state_dict(sd)
    layer.weight_hh_l0 = np.zeros((16, 4), "float32")
    assert sd["weight_hh_l0"].any()
    opt = rnnkern.optim.SGD(layer, lr=1.0)
    opt.step({"weight_ih_l0": np.ones((16, 3), "float32")})
    assert not np.shares_memory(layer.weight_ih_l0, sd["weight_ih_l0"])


def test_a_torch_modules_weights_are_not_trained_through_rnnkern():
    torch = _torch()
    theirs = torch.nn.GRU(3, 4)
    before = theirs.weight_ih_l0.detach().clone()
    ours = rnnkern.GRU.from_state_dict(theirs.state_dict())
    rnnkern.optim.SGD(ours, lr=1.0).step({"weight_ih_l0": np.ones((12, 3), "float32")})
    assert torch.equal(theirs.weight_ih_l0.detach(), before)


# --- load_state_dict, named_parameters, parameters ------------------------------------------------
def test_load_state_dict_round_trips_in_place():
    src, dst = rnnkern.GRU(3, 4, num_layers=2, bidirectional=True, seed=1), rnnkern.GRU(3, 4, num_layers=2,
                                                                                         bidirectional=True, seed=2)
    arrays = dict(dst.named_parameters())
    result = dst.load_state_dict(src.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    for name, array in dst.named_parameters():
        assert array is arrays[name]
        np.testing.assert_array_equal(array, src.state_dict()[name])


def test_load_state_dict_casts_like_torch_and_accepts_torch_tensors():
    torch = _torch()
    theirs = torch.nn.LSTM(3, 4).double()
    cell = rnnkern.LSTM(3, 4)  # float32
    cell.load_state_dict(theirs.state_dict())
    np.testing.assert_allclose(cell.weight_hh_l0, theirs.weight_hh_l0.detach().numpy().astype("float32"))
    assert cell.weight_hh_l0.dtype == np.float32


def test_load_state_dict_strict_and_not():
    cell = rnnkern.LSTMCell(3, 4, seed=0)
    sd = rnnkern.LSTMCell(3, 4, seed=1).state_dict()
    partial = {"weight_ih": sd["weight_ih"], "extra": sd["bias_ih"]}
    with pytest.raises(KeyError, match=r"LSTMCell.load_state_dict: missing key\(s\) 'weight_hh', 'bias_ih', "
                                       r"'bias_hh' and unexpected key\(s\) 'extra'"):
        cell.load_state_dict(partial)
    result = cell.load_state_dict(partial, strict=False)
    assert result.missing_keys == ["weight_hh", "bias_ih", "bias_hh"] and result.unexpected_keys == ["extra"]
    np.testing.assert_array_equal(cell.weight_ih, sd["weight_ih"])
    with pytest.raises(ValueError, match=r"state_dict\['weight_hh'\] must have shape \(16, 4\), got \(16, 3\)"):
        cell.load_state_dict({"weight_hh": np.zeros((16, 3))}, strict=False)
    with pytest.raises(TypeError, match=r"state_dict\['weight_hh'\] must hold floating-point values, got dtype int64"):
        cell.load_state_dict({"weight_hh": np.zeros((16, 4), "int64")}, strict=False)


def test_load_state_dict_writes_nothing_unless_everything_checks_out():
    cell = rnnkern.GRUCell(3, 4, seed=0)
    before = cell.state_dict()
    bad = {**rnnkern.GRUCell(3, 4, seed=1).state_dict(), "bias_hh": np.zeros(5, "float32")}
    with pytest.raises(ValueError, match="bias_hh"):
        cell.load_state_dict(bad)
    for name, array in cell.state_dict().items():
        np.testing.assert_array_equal(array, before[name])


def test_named_parameters_and_parameters_iterate_like_torch():
    layer = rnnkern.LSTM(3, 4, num_layers=2, bias=False)
    names = [name for name, _ in layer.named_parameters()]
    assert names == ["weight_ih_l0", "weight_hh_l0", "weight_ih_l1", "weight_hh_l1"]
    arrays = list(layer.parameters())
    assert len(arrays) == 4 and arrays[1] is layer.weight_hh_l0
    assert [n for n, _ in layer.named_parameters("encoder.")][0] == "encoder.weight_ih_l0"
    assert not isinstance(layer.parameters(), dict)


def test_parameters_have_torchs_names_and_order():
    torch = _torch()
    theirs = torch.nn.GRU(3, 4, num_layers=2, bidirectional=True)
    ours = rnnkern.GRU(3, 4, num_layers=2, bidirectional=True)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [tuple(a.shape) for a in ours.parameters()] == [tuple(p.shape) for p in theirs.parameters()]


# --- bug 2: backward after the weights changed ---------------------------------------------------
def _changes():
    return {
        "optimiser step": lambda m, g: rnnkern.optim.SGD(m, lr=0.1).step(g),
        "assignment": lambda m, g: setattr(m, "weight_hh_l0", m.weight_hh_l0 * 0.5),
        "load_state_dict": lambda m, g: m.load_state_dict(m.state_dict()),
    }


@pytest.mark.parametrize("change", list(_changes()))
def test_backward_refuses_a_tape_recorded_with_other_weights(change):
    rng = np.random.default_rng(0)
    layer = rnnkern.LSTM(3, 4, dtype="float64", seed=0)
    x = rng.standard_normal((5, 2, 3))
    y, _, tape = layer.forward_train(x)
    _, _, grads = layer.backward(tape, np.ones_like(y))  # before any change: fine, and repeatable
    _changes()[change](layer, grads)
    with pytest.raises(RuntimeError, match=r"LSTM.backward: the layer's parameters changed after the "
                                           r"forward_train that made this tape"):
        layer.backward(tape, np.ones_like(y))
    y, _, tape = layer.forward_train(x)  # a fresh tape works again
    layer.backward(tape, np.ones_like(y))


def test_cell_backward_refuses_a_stale_tape():
    cell = rnnkern.GRUCell(3, 4, dtype="float64", seed=0)
    h, tape = cell.forward_train(np.ones((2, 3)))
    opt = rnnkern.optim.Adam(cell)
    opt.step(cell.backward(tape, np.ones_like(h))[2])
    with pytest.raises(RuntimeError, match="GRUCell.backward: the cell's parameters changed"):
        cell.backward(tape, np.ones_like(h))


def test_an_optimiser_over_one_module_does_not_invalidate_anothers_tapes():
    encoder, decoder = rnnkern.GRU(3, 4, seed=0), rnnkern.GRU(4, 4, seed=1)
    y, _, tape = decoder.forward_train(np.ones((2, 1, 4), "float32"))
    rnnkern.optim.SGD(encoder, lr=0.1).step({"weight_hh_l0": np.ones((12, 4), "float32")})
    decoder.backward(tape, np.ones_like(y))


def test_modules_still_pickle_and_copy():
    layer = rnnkern.LSTM(3, 4, seed=0)
    layer.weight_hh_l0 = np.zeros((16, 4), "float32")
    for clone in (pickle.loads(pickle.dumps(layer)), copy.deepcopy(layer)):
        assert not clone.weight_hh_l0.any() and clone._version == layer._version
        clone.weight_hh_l0 = np.ones((16, 4), "float32")
        assert not layer.weight_hh_l0.any()


# --- bug 3: big-endian arrays ---------------------------------------------------------------------
def test_big_endian_inputs_states_and_gradients_are_accepted():
    layer = rnnkern.GRU(3, 4, seed=0)
    x = np.random.default_rng(0).standard_normal((5, 2, 3)).astype("float32")
    expected_y, expected_h = layer(x)
    y, h = layer(x.astype(">f4"), np.zeros((1, 2, 4), ">f4"))
    np.testing.assert_array_equal(y, expected_y)
    np.testing.assert_array_equal(h, expected_h)
    y, _, tape = layer.forward_train(x.astype(">f4"))
    dx, _, _ = layer.backward(tape, np.ones(y.shape, ">f4"))
    assert dx.dtype == np.float32 and dx.dtype.isnative


def test_big_endian_state_dicts_and_dtypes_give_native_modules():
    sd = rnnkern.LSTM(3, 4, seed=0).state_dict()
    big = {k: v.astype(">f4") for k, v in sd.items()}
    for layer in (rnnkern.LSTM.from_state_dict(big), rnnkern.LSTM(3, 4, dtype=">f4")):
        assert layer.dtype == np.float32 and layer.dtype.isnative and layer.weight_ih_l0.dtype.isnative
    loaded = rnnkern.LSTM(3, 4)
    loaded.load_state_dict(big)
    np.testing.assert_array_equal(loaded.weight_ih_l0, sd["weight_ih_l0"])
    mixed = dict(big, bias_hh_l0=sd["bias_hh_l0"])  # one little-endian tensor among big-endian ones
    assert rnnkern.LSTM.from_state_dict(mixed).dtype == np.float32
    assert "dtype=float32" in repr(rnnkern.LSTM(3, 4, dtype=">f4"))


# --- bug 5a: initialisation memory ---------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_initialisation_peaks_near_the_parameters_size(dtype):
    rnnkern.LSTM(8, 8, dtype=dtype)  # imports and caches outside the measurement
    tracemalloc.start()
    try:
        layer = rnnkern.LSTM(512, 512, dtype=dtype, seed=0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    size = sum(a.nbytes for a in layer.state_dict().values())
    assert peak < 1.25 * size, f"peak {peak / size:.2f}x the parameters' {size} bytes"


def test_initialisation_is_reproducible_and_in_pytorchs_range():
    a, b = rnnkern.LSTM(3, 16, seed=7), rnnkern.LSTM(3, 16, seed=7)
    for (name, x), (_, y) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(x, y)
        assert x.dtype == np.float32 and np.abs(x).max() <= 0.25 and x.std() > 0.1, name
    assert not np.array_equal(a.weight_hh_l0, rnnkern.LSTM(3, 16, seed=8).weight_hh_l0)


# --- on each device --------------------------------------------------------------------------------
def test_writes_checkpoints_and_stale_tapes_on_each_device(device):
    """Assignment, load_state_dict from host arrays, an optimiser checkpoint and the version check,
    on the CPU and (where one is usable) the GPU."""
    layer = rnnkern.GRU(3, 4, dtype="float64", device=device, seed=0)
    host = rnnkern.GRU(3, 4, dtype="float64", seed=1).state_dict()
    layer.load_state_dict(host)  # NumPy arrays into device parameters
    np.testing.assert_array_equal(layer.state_dict()["weight_hh_l0"], host["weight_hh_l0"])
    with pytest.raises(TypeError, match="weight_hh_l0 is on device 'cpu' but the GRU is on 'gpu'" if device == "gpu"
                       else "weight_hh_l0 must have dtype float64"):
        layer.weight_hh_l0 = np.zeros((12, 4), "float64" if device == "gpu" else "float32")
    layer.weight_hh_l0 = rnnkern.asarray(host["weight_hh_l0"] * 2, device=device)
    np.testing.assert_array_equal(layer.state_dict()["weight_hh_l0"], 2 * host["weight_hh_l0"])

    x = rnnkern.asarray(np.random.default_rng(0).standard_normal((5, 2, 3)), device=device)
    opt = rnnkern.optim.Adam(layer, lr=0.01, clip_norm=0.5)
    y, _, tape = layer.forward_train(x)
    grads = layer.backward(tape, layer.xp.ones_like(y))[2]
    norm = opt.step(grads)
    assert isinstance(norm, float) and norm > 0
    with pytest.raises(RuntimeError, match="parameters changed"):
        layer.backward(tape, layer.xp.ones_like(y))
    saved = opt.state_dict()
    assert isinstance(saved["state"]["weight_hh_l0"]["exp_avg"], np.ndarray)
    resumed = rnnkern.optim.Adam(layer)
    resumed.load_state_dict(saved)
    assert rnnkern._backend.device_of(resumed.state["weight_hh_l0"]["exp_avg"]) == device


def test_assigning_an_overlapping_view_of_the_parameter():
    cell = rnnkern.RNNCell(2, 3, seed=0)
    before = cell.weight_hh.copy()
    cell.weight_hh = cell.weight_hh[::-1]
    np.testing.assert_array_equal(cell.weight_hh, before[::-1])
