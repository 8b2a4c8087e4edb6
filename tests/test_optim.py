"""Issue 11 (and issue 10's defect 7): optimisers over several modules, checkpoints that resume
exactly, a repr, and one host synchronisation per step."""

import pickle

import numpy as np
import pytest

import rnnkern
from rnnkern import optim


def _batch(rng):
    return rng.standard_normal((6, 3, 2)), rng.standard_normal((6, 3, 4))


def _train(layer, opt, rng, steps):
    for _ in range(steps):
        x, target = _batch(rng)
        y, _, tape = layer.forward_train(x)
        opt.step(layer.backward(tape, 2 * (y - target) / y.size)[2])


# --- several modules ------------------------------------------------------------------------------
def test_encoder_and_decoder_share_an_optimiser_without_key_collisions():
    encoder, decoder = rnnkern.GRU(2, 4, seed=0), rnnkern.GRU(4, 4, seed=1)
    opt = optim.SGD({"encoder": encoder, "decoder": decoder}, lr=1.0)
    assert list(opt.params)[:2] == ["encoder.weight_ih_l0", "encoder.weight_hh_l0"]
    assert len(opt.params) == 8 and "decoder.bias_hh_l0" in opt.params
    before_enc, before_dec = encoder.state_dict(), decoder.state_dict()
    g = np.ones((12, 4), "float32")
    opt.step({"encoder": {"weight_hh_l0": g}, "decoder.weight_hh_l0": 2 * g})  # nested or dotted
    np.testing.assert_allclose(encoder.weight_hh_l0, before_enc["weight_hh_l0"] - 1)
    np.testing.assert_allclose(decoder.weight_hh_l0, before_dec["weight_hh_l0"] - 2)
    np.testing.assert_array_equal(encoder.weight_ih_l0, before_enc["weight_ih_l0"])


def test_other_ways_of_naming_several_modules():
    encoder, decoder = rnnkern.LSTMCell(2, 3), rnnkern.LSTMCell(3, 3)
    head = {"w": np.zeros(3), "b": np.zeros(1)}
    pairs = optim.Adam([("encoder", encoder), ("decoder", decoder), ("head", head)])
    assert "encoder.weight_ih" in pairs.params and "head.w" in pairs.params
    assert list(optim.Adam(encoder.named_parameters()).params) == list(encoder.state_dict())
    with pytest.raises(TypeError, match=r"params given as a sequence must hold \(name, module or array\) pairs"):
        optim.Adam([encoder, decoder])
    with pytest.raises(ValueError, match=r"the same array is given as 'a.weight_ih' and 'b.weight_ih'"):
        optim.Adam({"a": encoder, "b": encoder})
    with pytest.raises(TypeError, match=r"params must hold at least one parameter"):
        optim.Adam({})


def test_a_step_marks_only_the_updated_modules():
    encoder, decoder = rnnkern.GRU(2, 4), rnnkern.GRU(4, 4)
    opt = optim.SGD({"encoder": encoder, "decoder": decoder}, lr=0.1)
    versions = encoder._version, decoder._version
    opt.step({"decoder.weight_hh_l0": np.ones((12, 4), "float32")})
    assert encoder._version == versions[0] and decoder._version == versions[1] + 1


# --- checkpoints ----------------------------------------------------------------------------------
@pytest.mark.parametrize("make_opt", [lambda p: optim.Adam(p, lr=0.02, clip_norm=0.5, weight_decay=1e-3),
                                      lambda p: optim.SGD(p, lr=0.1, momentum=0.9)])
def test_resuming_from_a_checkpoint_equals_uninterrupted_training(make_opt):
    whole = rnnkern.LSTM(2, 4, dtype="float64", seed=3)
    _train(whole, make_opt(whole), np.random.default_rng(9), 10)

    first = rnnkern.LSTM(2, 4, dtype="float64", seed=3)
    opt, rng = make_opt(first), np.random.default_rng(9)
    _train(first, opt, rng, 6)
    checkpoint = pickle.loads(pickle.dumps({"model": first.state_dict(), "optimizer": opt.state_dict()}))

    resumed = rnnkern.LSTM(2, 4, dtype="float64", seed=99)  # other weights, fresh optimiser
    resumed.load_state_dict(checkpoint["model"])
    opt = make_opt(resumed)
    opt.load_state_dict(checkpoint["optimizer"])
    assert opt.steps == 6
    _train(resumed, opt, rng, 4)
    for name, array in whole.state_dict().items():
        np.testing.assert_array_equal(resumed.state_dict()[name], array)


def test_state_dict_restores_hyperparameters_and_holds_host_copies():
    layer = rnnkern.GRUCell(2, 3, dtype="float64")
    opt = optim.Adam(layer, lr=0.5, betas=(0.8, 0.9))
    h, tape = layer.forward_train(np.ones((1, 2)))
    opt.step(layer.backward(tape, np.ones_like(h))[2])
    sd = opt.state_dict()
    assert sd["hyperparameters"] == {"lr": 0.5, "clip_norm": None, "weight_decay": 0.0, "betas": (0.8, 0.9),
                                     "eps": 1e-8}
    assert sd["state"]["weight_hh"]["step"] == 1
    assert not np.shares_memory(sd["state"]["weight_hh"]["exp_avg"], opt.state["weight_hh"]["exp_avg"])
    other = optim.Adam(layer)
    other.load_state_dict(sd)
    assert other.lr == 0.5 and other.betas == (0.8, 0.9)


def test_load_state_dict_errors_change_nothing():
    layer = rnnkern.RNN(2, 3)
    adam, sgd = optim.Adam(layer, lr=0.1), optim.SGD(layer, lr=0.1, momentum=0.5)
    with pytest.raises(ValueError, match=r"Adam.load_state_dict: this state_dict is 'SGD''s, not Adam's"):
        adam.load_state_dict(sgd.state_dict())
    with pytest.raises(TypeError, match=r"expected the mapping that Adam.state_dict\(\) returns"):
        adam.load_state_dict({"lr": 0.1})
    bad = adam.state_dict()
    bad["state"] = {"weight_xx": {"step": 1, "exp_avg": np.zeros(3), "exp_avg_sq": np.zeros(3)}}
    with pytest.raises(KeyError, match=r"state for 'weight_xx', which is not a parameter"):
        adam.load_state_dict(bad)
    bad["state"] = {"weight_hh_l0": {"step": 1, "exp_avg": np.zeros(3), "exp_avg_sq": np.zeros(3)}}
    with pytest.raises(ValueError, match=r"state\['weight_hh_l0'\]\['exp_avg'\] must have shape \(3, 3\)"):
        adam.load_state_dict(bad)
    bad = dict(adam.state_dict(), hyperparameters={"lr": 0.1, "momentum": 0.9})
    with pytest.raises(ValueError, match=r"hyperparameters must have the keys lr, clip_norm, weight_decay, betas, "
                                         r"eps, got a mapping with keys lr, momentum"):
        adam.load_state_dict(bad)
    bad = dict(adam.state_dict(), hyperparameters={**adam.hyperparameters(), "lr": -1})
    with pytest.raises(ValueError, match="lr must be a positive number"):
        adam.load_state_dict(bad)
    assert adam.lr == 0.1 and adam.state == {}


def test_repr_says_what_the_optimiser_is():
    opt = optim.Adam(rnnkern.LSTMCell(2, 3), lr=0.01, clip_norm=1.0)
    assert repr(opt) == ("Adam(4 parameters, lr=0.01, clip_norm=1.0, weight_decay=0.0, betas=(0.9, 0.999), "
                         "eps=1e-08, steps=0)")
    assert repr(optim.SGD({"w": np.zeros(2)}, lr=1)).startswith("SGD(1 parameters, lr=1.0")


# --- issue 10, defect 7: one host synchronisation per step ---------------------------------------
class CountingArray:
    """A stand-in device array: arithmetic stays "on the device"; every read back to the host
    (float(), bool(), item(), __array__) is counted."""

    syncs = 0

    def __init__(self, data):
        self.data = np.asarray(data)

    shape = property(lambda self: self.data.shape)
    dtype = property(lambda self: self.data.dtype)

    def _sync(self):
        CountingArray.syncs += 1
        return self.data

    def __float__(self):
        return float(self._sync())

    def __bool__(self):
        return bool(self._sync())

    def item(self):
        return self._sync().item()

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self._sync(), dtype)

    def astype(self, dtype, copy=True):
        return CountingArray(self.data.astype(dtype, copy=copy))

    def ravel(self):
        return CountingArray(self.data.ravel())

    def copy(self):
        return CountingArray(self.data.copy())

    def dot(self, other):
        return CountingArray(self.data.dot(other.data))

    def sum(self, axis=None):
        return CountingArray(self.data.sum(axis))

    def _op(name):
        def op(self, other):
            other = other.data if isinstance(other, CountingArray) else other
            return CountingArray(getattr(self.data, name)(other))
        return op

    for _name in ("__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__", "__truediv__",
                  "__rtruediv__", "__pow__"):
        locals()[_name] = _op(_name)

    def __isub__(self, other):
        self.data -= other.data if isinstance(other, CountingArray) else other
        return self

    def __gt__(self, other):
        return CountingArray(self.data > (other.data if isinstance(other, CountingArray) else other))


@pytest.mark.parametrize("make_opt", [lambda p: optim.Adam(p, clip_norm=0.1, weight_decay=0.01),
                                      lambda p: optim.SGD(p, lr=0.1, momentum=0.9, clip_norm=0.1)])
def test_a_step_synchronises_with_the_host_once(make_opt):
    rng = np.random.default_rng(0)
    params = {f"p{i}": CountingArray(rng.standard_normal((3, 2))) for i in range(6)}
    opt = make_opt(params)
    grads = {name: CountingArray(rng.standard_normal((3, 2))) for name in params}
    expected = np.sqrt(sum((g.data ** 2).sum() for g in grads.values()))
    for _ in range(2):
        CountingArray.syncs = 0
        assert opt.step(grads) == pytest.approx(expected)
        assert CountingArray.syncs == 1
