"""The README's "Bring your model" examples run as written, each where the framework it names is installed."""

import os
import pathlib
import re

import numpy as np
import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def bring_your_model_blocks():
    text = README.read_text()
    start = text.index("## Bring your model")
    section = text[start:text.index("\n## ", start + 1)]  # up to the next section
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_three_examples():
    blocks = bring_your_model_blocks()
    assert [b.splitlines()[1] for b in blocks] == ["import torch", "import numpy as np", "import keras"]


def test_torch_example():
    pytest.importorskip("torch")
    namespace = {}
    exec(compile(bring_your_model_blocks()[0], str(README), "exec"), namespace)
    assert namespace["lstm"].num_layers == 2 and namespace["lstm"].batch_first


def test_onnx_example(tmp_path, monkeypatch):
    pytest.importorskip("onnx")
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(bring_your_model_blocks()[1], str(README), "exec"), namespace)
    assert namespace["y"].shape == (5, 3, 20) and namespace["h_n"].shape == (2, 3, 20)
    assert namespace["first"].num_layers == 1 and (tmp_path / "gru.onnx").exists()
    for key, value in namespace["gru"].state_dict().items():
        np.testing.assert_array_equal(namespace["both"].state_dict()[key], value)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Keras's torch backend's __array__ under NumPy 2
def test_keras_example():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    pytest.importorskip("keras")
    namespace = {}
    exec(compile(bring_your_model_blocks()[2], str(README), "exec"), namespace)
    lstm, same = namespace["lstm"], namespace["same"]
    assert lstm.bidirectional and lstm.batch_first and lstm.hidden_size == 20
    for key, value in lstm.state_dict().items():
        np.testing.assert_array_equal(same.state_dict()[key], value)
