"""Checkpoints resume exactly: state_dict, the optimiser's state_dict and the layer's dropout
generator state (generator_state / set_generator_state) continue training bit-for-bit (issue 18)."""

import pathlib
import pickle
import re

import numpy as np
import pytest

import rnnkern

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
T, B, I, H = 5, 4, 3, 6


def _batches(count, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((T, B, I)).astype("float32"), rng.standard_normal((T, B, 2 * H)).astype("float32"),
             rng.integers(1, T + 1, B)) for _ in range(count)]


def _train(layer, opt, batches):
    """Steps of forward_train (dropout from the layer's own generator) / backward / step; the outputs."""
    outputs = []
    for x, dy, lengths in batches:
        y, _, tape = layer.forward_train(x, lengths=lengths)
        _, _, grads = layer.backward(tape, dy)
        opt.step(grads)
        outputs.append(y)
    return outputs


def _make(kind, seed):
    return getattr(rnnkern, kind)(I, H, num_layers=3, bidirectional=True, dropout=0.4, seed=seed)


def _optimiser(name, layer):
    return rnnkern.optim.Adam(layer, lr=1e-2) if name == "Adam" else rnnkern.optim.SGD(layer, 0.1, momentum=0.9)


@pytest.mark.parametrize("optimizer", ["SGD", "Adam"])
@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_resume_with_dropout_is_bit_for_bit(kind, optimizer):
    first, rest = _batches(2, seed=1), _batches(3, seed=2)
    layer = _make(kind, seed=0)
    opt = _optimiser(optimizer, layer)
    _train(layer, opt, first)
    saved = pickle.dumps({"model": layer.state_dict(), "optimizer": opt.state_dict(),
                          "rng": layer.generator_state()})
    expected = _train(layer, opt, rest)

    checkpoint = pickle.loads(saved)
    resumed = _make(kind, seed=99)  # other weights and another generator until the checkpoint loads
    resumed_opt = _optimiser(optimizer, resumed)
    resumed.load_state_dict(checkpoint["model"])
    resumed_opt.load_state_dict(checkpoint["optimizer"])
    resumed.set_generator_state(checkpoint["rng"])
    actual = _train(resumed, resumed_opt, rest)
    for got, want in zip(actual, expected):
        np.testing.assert_array_equal(got, want)
    for key, value in layer.state_dict().items():
        np.testing.assert_array_equal(resumed.state_dict()[key], value, err_msg=key)


def test_without_the_generator_state_resuming_diverges():
    """The control: state_dicts alone do not resume dropout's masks (what issue 18's trial found)."""
    first, rest = _batches(1, seed=1), _batches(1, seed=2)
    layer = _make("GRU", seed=0)
    opt = _optimiser("SGD", layer)
    _train(layer, opt, first)
    model, optim_state = layer.state_dict(), opt.state_dict()
    expected = _train(layer, opt, rest)
    resumed = _make("GRU", seed=99)
    resumed_opt = _optimiser("SGD", resumed)
    resumed.load_state_dict(model)
    resumed_opt.load_state_dict(optim_state)
    assert not np.array_equal(_train(resumed, resumed_opt, rest)[0], expected[0])


def test_generator_state_round_trip_draws_the_same_masks():
    layer = _make("LSTM", seed=3)
    x = np.random.default_rng(0).standard_normal((T, B, I)).astype("float32")
    state = layer.generator_state()
    first, _, _ = layer.forward_train(x)
    second, _, _ = layer.forward_train(x)
    assert not np.array_equal(first, second)  # the generator moved on: other masks
    layer.set_generator_state(state)
    again, _, _ = layer.forward_train(x)
    np.testing.assert_array_equal(again, first)
    assert layer.generator_state() != state and pickle.loads(pickle.dumps(state)) == state


def test_readme_checkpoint_example_resumes_bit_for_bit():
    """The README's training block checkpoints a dropout LSTM; its own restore lines, run on a fresh
    layer and optimiser from the pickled checkpoint, continue training exactly as the original."""
    usage, training = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)[:2]
    until_checkpoint = training[:training.index("\n", training.index("checkpoint = {"))]
    namespace = {}  # the block up to its checkpoint: the run that goes on uninterrupted
    exec(compile(usage + until_checkpoint, str(README), "exec"), namespace)
    restore = "\n".join(line for line in training.splitlines() if "(checkpoint[" in line)
    assert restore.count("\n") == 2 and "set_generator_state" in restore
    lstm, opt, checkpoint = namespace["lstm"], namespace["opt"], pickle.dumps(namespace["checkpoint"])
    assert lstm.dropout > 0
    x = namespace["xs"].astype("float64").transpose(1, 0, 2)

    def steps(layer, optimiser):
        ys = []
        for _ in range(3):
            y, _, tape = layer.forward_train(x, lengths=[7, 3, 5, 1])
            optimiser.step(layer.backward(tape, dy=np.cos(y))[2])
            ys.append(y)
        return ys

    expected = steps(lstm, opt)
    fresh = rnnkern.LSTM(10, 20, num_layers=2, dropout=0.1, seed=7, dtype="float64")
    fresh_opt = rnnkern.optim.Adam(fresh, lr=1e-3, clip_norm=1.0)
    exec(restore, {"lstm": fresh, "opt": fresh_opt, "checkpoint": pickle.loads(checkpoint)})
    for got, want in zip(steps(fresh, fresh_opt), expected):
        np.testing.assert_array_equal(got, want)


def test_cells_resume_from_state_dicts_alone():
    """Cells draw nothing at random in training, so their state_dict (and the optimiser's) is all a
    checkpoint needs; they have no generator_state."""
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((4, B, I))
    cell = rnnkern.LSTMCell(I, H, dtype="float64", seed=0)
    opt = rnnkern.optim.Adam(cell, lr=1e-2)

    def steps(c, o, inputs):
        for x in inputs:
            (h, _), tape = c.forward_train(x)
            o.step(c.backward(tape, (np.sin(h), None))[2])
        return c.state_dict()

    steps(cell, opt, xs[:2])
    saved = pickle.dumps((cell.state_dict(), opt.state_dict()))
    expected = steps(cell, opt, xs[2:])
    fresh = rnnkern.LSTMCell(I, H, dtype="float64", seed=5)
    fresh_opt = rnnkern.optim.Adam(fresh, lr=1e-2)
    model, optim_state = pickle.loads(saved)
    fresh.load_state_dict(model)
    fresh_opt.load_state_dict(optim_state)
    for key, value in steps(fresh, fresh_opt, xs[2:]).items():
        np.testing.assert_array_equal(value, expected[key], err_msg=key)
    assert not hasattr(cell, "generator_state")


@pytest.mark.parametrize("bad, error, words", [
    (None, TypeError, "got NoneType"),
    ({"bit_generator": "MT19937", "state": {}}, TypeError, "bit_generator='MT19937'"),
    ({"bit_generator": "PCG64", "state": {"state": 1}}, ValueError, "not a valid PCG64 state"),
])
def test_set_generator_state_rejects_what_generator_state_did_not_return(bad, error, words):
    layer = _make("RNN", seed=0)
    before = layer.generator_state()
    with pytest.raises(error, match=re.escape(words)) as info:
        layer.set_generator_state(bad)
    assert "RNN.set_generator_state" in str(info.value)
    assert layer.generator_state() == before  # nothing half-written
