"""Issue 11, bug 4: error messages as a user reads them, in the user's terms (never an internal
name, shape or a raw NumPy/torch error), naming the argument, what was expected and what came."""

import re

import numpy as np
import pytest

import rnnkern


def _torch():
    return pytest.importorskip("torch")


def test_backward_dtype_message_names_the_module_not_the_method():
    gru = rnnkern.GRU(4, 8)
    y, _, tape = gru.forward_train(np.zeros((3, 2, 4), "float32"))
    with pytest.raises(TypeError) as info:
        gru.backward(tape, np.zeros(y.shape))
    assert str(info.value) == ("GRU.backward: dy must have dtype float32 (the dtype of the GRU), got floating dtype "
                               "float64; convert it with .astype('float32') or build the GRU with dtype='float64'")


@pytest.mark.parametrize("batch_first", [False, True])
def test_unbatched_input_without_time_steps_reports_the_callers_shape(batch_first):
    with pytest.raises(ValueError, match=r"^GRU: input must have at least one time step, got shape \(0, 4\)$"):
        rnnkern.GRU(4, 8, batch_first=batch_first)(np.zeros((0, 4), "float32"))


@pytest.mark.parametrize("call, public", [
    (lambda: rnnkern.LSTM(4, 8, no_such_option=2), "LSTM.__init__()"),
    (lambda: rnnkern.GRUCell(4, 8, no_such_option=2), "GRUCell.__init__()"),
    (lambda: rnnkern.LSTMCell(4, 8)(np.zeros(4, "float32"), lengths=[1]), "LSTMCell.__call__()"),
    (lambda: rnnkern.RNN(4, 8)(np.zeros((2, 4), "float32"), lenghts=[1]), "RNN.__call__()"),
    (lambda: rnnkern.GRU(4, 8).forward_train(np.zeros((2, 4), "float32"), hx=None), "GRU.forward_train()"),
])
def test_unknown_keywords_name_the_public_class(call, public):
    with pytest.raises(TypeError) as info:
        call()
    message = str(info.value)
    assert message.startswith(public) and "unexpected keyword argument" in message
    assert "_Layer" not in message and "_Cell" not in message and "Trainable" not in message


def test_help_shows_the_methods_docstrings_under_the_public_class():
    for cls in (rnnkern.LSTM, rnnkern.GRUCell):
        for method in ("__call__", "forward_train", "backward"):
            doc = getattr(cls, method).__doc__
            assert doc and len(doc) > 80, (cls, method)
        assert cls.__call__.__qualname__ == f"{cls.__name__}.__call__"


@pytest.mark.parametrize("seed, error, shown", [("a", TypeError, "got str 'a'"), (-1, ValueError, "got -1"),
                                                (1.5, TypeError, "got float 1.5"), (True, TypeError, "got bool")])
def test_bad_seeds_are_named(seed, error, shown):
    with pytest.raises(error, match=rf"^LSTM: seed must be None, a non-negative int or a numpy.random.Generator, "
                                    rf"{re.escape(shown)}"):
        rnnkern.LSTM(4, 8, seed=seed)
    with pytest.raises(error, match=r"^GRUCell: seed must be"):
        rnnkern.GRUCell(4, 8, seed=seed)


def test_seeds_may_be_generators():
    a = rnnkern.GRUCell(3, 4, seed=np.random.default_rng(5))
    b = rnnkern.GRUCell(3, 4, seed=np.random.default_rng(5))
    np.testing.assert_array_equal(a.weight_hh, b.weight_hh)


def test_bfloat16_torch_state_dict_names_the_key():
    torch = _torch()
    sd = torch.nn.LSTM(4, 8).to(torch.bfloat16).state_dict()
    expected = (r"state_dict\['weight_ih_l0'\] is a torch tensor of dtype torch.bfloat16, which NumPy cannot hold; "
                r"convert the state_dict first: \{k: v.float\(\) for k, v in state_dict.items\(\)\}")
    with pytest.raises(TypeError, match="^LSTM.from_state_dict: " + expected):
        rnnkern.LSTM.from_state_dict(sd)
    with pytest.raises(TypeError, match="^LSTM.load_state_dict: " + expected):
        rnnkern.LSTM(4, 8).load_state_dict(sd)
    with pytest.raises(TypeError, match=r"^LSTM: input is a torch tensor of dtype torch.bfloat16, which NumPy cannot "
                                        r"hold; convert it with .to\(torch.float32\)"):
        rnnkern.LSTM(4, 8)(torch.zeros(3, 2, 4, dtype=torch.bfloat16))


@pytest.mark.parametrize("prefix, extra", [("module.", {}), ("lstm.", {"fc.weight": np.zeros((2, 8), "float32")})])
def test_prefixed_keys_are_listed_with_the_prefix_to_strip(prefix, extra):
    sd = {prefix + k: v for k, v in rnnkern.LSTM(4, 8).state_dict().items()}
    sd.update(extra)
    strip = re.escape(f"strip it: {{k[len({prefix!r}):]: v for k, v in state_dict.items() if k.startswith({prefix!r})}}")
    with pytest.raises(KeyError, match=rf"LSTM.from_state_dict: missing key 'weight_ih_l0'; keys received: "
                                       rf"'{prefix}weight_ih_l0', .*They carry the prefix '{prefix}'; {strip}"):
        rnnkern.LSTM.from_state_dict(sd)
    with pytest.raises(KeyError, match=rf"LSTM.load_state_dict: missing key\(s\) 'weight_ih_l0'.*unexpected key\(s\) "
                                       rf"'{prefix}weight_ih_l0'.*carry the prefix '{prefix}'; {strip}"):
        rnnkern.LSTM(4, 8).load_state_dict(sd)
    stripped = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}  # the advice works
    assert rnnkern.LSTM.from_state_dict(stripped).hidden_size == 8


def test_keys_are_listed_even_without_a_prefix():
    with pytest.raises(KeyError, match=r"missing key 'weight_ih'; keys received: 'w', 'b'\"$"):
        rnnkern.GRUCell.from_state_dict({"w": np.zeros((3, 3)), "b": np.zeros(3)})


def test_float64_torch_tensor_input_is_told_how_to_convert_a_tensor():
    torch = _torch()
    with pytest.raises(TypeError) as info:
        rnnkern.LSTM(4, 8)(torch.zeros(3, 2, 4, dtype=torch.float64))
    assert str(info.value) == ("LSTM: input must have dtype float32 (the dtype of the LSTM), got floating dtype "
                               "float64; convert it with .to(torch.float32) or build the LSTM with dtype='float64'")
    assert ".astype" not in str(info.value)


@pytest.mark.parametrize("option", ["bidirectional", "num_layers", "hidden_size", "bias"])
def test_structural_options_of_from_state_dict_are_explained(option):
    sd = rnnkern.LSTM(4, 8).state_dict()
    with pytest.raises(TypeError, match=rf"^LSTM.from_state_dict: {option} cannot be passed: the sizes, bias, depth "
                                        r"and directions are read off the state_dict's keys and shapes$"):
        rnnkern.LSTM.from_state_dict(sd, **{option: 1})


def test_unknown_options_of_from_state_dict_list_the_accepted_ones():
    with pytest.raises(TypeError, match=r"LSTM.from_state_dict: unexpected option\(s\) 'foo' "
                                        r"\(LSTM.from_state_dict accepts: device, dtype, batch_first, dropout, direction, activations, "
                                        r"activation_alpha, activation_beta, clip, input_forget\)"):
        rnnkern.LSTM.from_state_dict(rnnkern.LSTM(2, 3).state_dict(), foo=1)
    with pytest.raises(TypeError, match=r"\(GRUCell.from_state_dict accepts: device, dtype, linear_before_reset, "
                                        r"activations, activation_alpha, activation_beta, clip\)"):
        rnnkern.GRUCell.from_state_dict(rnnkern.GRUCell(2, 3).state_dict(), foo=1)
