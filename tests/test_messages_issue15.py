"""Messages and documentation (issue 15, defects 4 and 5): a tuple where the GRU takes one array, the
GPU extras the README names, a CPU-runnable dtype suggestion, gradflow's header, and what the README
says about Keras's masking."""

import pathlib
import re
import sys

import numpy as np
import pytest

import rnnkern
from rnnkern.cli import main

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


# --- one array, not a tuple ---------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["GRU", "RNN"])
def test_a_layer_without_cell_state_given_a_tuple_says_it_takes_one_array(kind):
    layer = getattr(rnnkern, kind)(4, 20)
    h = np.zeros((1, 3, 20), "float32")
    with pytest.raises(TypeError) as info:
        layer(np.zeros((5, 3, 4), "float32"), (h, h))
    assert str(info.value) == (f"{kind}: state must be one array, h_0 (the {kind} has no cell state; only the "
                               "LSTM takes a tuple (h_0, c_0)), got a tuple of 2 arrays")


@pytest.mark.parametrize("kind", ["GRUCell", "RNNCell"])
def test_a_cell_without_cell_state_given_a_tuple_says_it_takes_one_array(kind):
    cell = getattr(rnnkern, kind)(4, 20)
    with pytest.raises(TypeError, match=rf"^{kind}: state must be one array, h \(the {kind} has no cell state; "
                                        r"only the LSTMCell takes a tuple \(h, c\)\), got a list of 1 array$"):
        cell(np.zeros((3, 4), "float32"), [np.zeros((3, 20), "float32")])


def test_the_gradient_of_the_final_state_is_checked_the_same_way():
    gru = rnnkern.GRU(4, 20)
    y, h_n, tape = gru.forward_train(np.zeros((5, 3, 4), "float32"))
    with pytest.raises(TypeError, match=r"^GRU: dstate_n must be one array, h_0 .* got a tuple of 2 arrays$"):
        gru.backward(tape, np.ones_like(y), (h_n, h_n))


def test_a_nested_list_of_numbers_is_still_one_state():
    h = rnnkern.GRU(4, 2, seed=0)(np.zeros((5, 1, 4), "float32"), [[[0.0, 1.0]]])[1]
    assert h.shape == (1, 1, 2)


# --- the GPU extras -------------------------------------------------------------------------------
def test_no_message_suggests_an_extra_the_readme_does_not_recommend():
    sources = [p for p in (ROOT / "src").rglob("*.py") if "rnnkern[gpu]" in p.read_text()]
    assert sources == []
    assert "rnnkern[gpu-cuda12]" in README and "rnnkern[gpu-cuda13]" in README


def test_info_and_the_gpu_backend_name_the_cuda_extras_without_cupy(monkeypatch):
    from rnnkern import _backend
    from rnnkern._cli import info as _cli_info

    monkeypatch.setitem(sys.modules, "cupy", None)  # import cupy raises ImportError
    [line] = _cli_info._cupy_lines()
    assert "pip install 'rnnkern[gpu-cuda12]' (CUDA 12) or 'rnnkern[gpu-cuda13]' (CUDA 13)" in line
    with pytest.raises(rnnkern.DeviceUnavailableError, match=re.escape("'rnnkern[gpu-cuda12]' (CUDA 12) or")):
        _backend._gpu_backend()


# --- dtypes -------------------------------------------------------------------------------------
def test_float16_input_to_a_cpu_layer_suggests_what_the_cpu_runs():
    with pytest.raises(TypeError) as info:
        rnnkern.GRU(4, 8)(np.zeros((3, 2, 4), "float16"))
    assert str(info.value) == (
        "GRU: input must have dtype float32 (the dtype of the GRU), got floating dtype float16; convert it with "
        ".astype('float32') (float16 is not available on device='cpu', which runs float32, float64; a GRU with "
        "dtype='float16' needs device='gpu')")


def test_float64_input_still_suggests_a_float64_layer():
    with pytest.raises(TypeError, match=r"or build the LSTMCell with dtype='float64'$"):
        rnnkern.LSTMCell(4, 8)(np.zeros((2, 4)))


# --- gradflow -----------------------------------------------------------------------------------
@pytest.mark.parametrize("forget_bias, init", [("3", "PyTorch's init, then +3 on the LSTM's forget-gate biases"),
                                               ("0", "PyTorch's init, float64")])
def test_gradflow_header_says_what_the_init_is(capsys, forget_bias, init):
    assert main(["gradflow", "--steps", "4", "--hidden-size", "3", "--input-size", "2",
                 "--forget-bias", forget_bias]) == 0
    header = capsys.readouterr().out.splitlines()[0]
    assert init in header and "forget bias +" not in header


# --- documentation ------------------------------------------------------------------------------
def test_readme_keras_section_says_masked_steps_are_padded_differently():
    keras = " ".join(README[README.index("- **Keras 3**"):].split("\n- ")[0].split())
    assert "Keras repeats the last valid output into the masked steps" in keras
    assert "writes zeros there" in keras
