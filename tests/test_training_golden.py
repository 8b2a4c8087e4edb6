"""Gradients against golden values from PyTorch's autograd (tests/golden/make_golden_grads.py)."""

import json
import pathlib

import numpy as np
import pytest

import rnnkern
from conftest import assert_close

FILES = sorted((pathlib.Path(__file__).resolve().parent / "golden" / "grads").glob("*.npz"))


def _load(path):
    data = dict(np.load(path))
    config = json.loads(str(data.pop("config")))
    sd = {k[3:]: v for k, v in data.items() if k.startswith("sd/")}
    grads = {k[5:]: v for k, v in data.items() if k.startswith("grad/")}
    return config, sd, grads, data


def test_golden_gradient_files_exist():
    assert len(FILES) >= 10


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_gradients_match_pytorch_autograd(path, device):
    config, sd, expected, data = _load(path)
    kind = config["kind"]
    lstm = kind.startswith("LSTM")
    on = lambda a: rnnkern.asarray(a, device=device)  # noqa: E731
    state = (on(data["h0"]), on(data["c0"])) if lstm else on(data["h0"])
    dstate = (on(data["dh_n"]), on(data["dc_n"])) if lstm else on(data["dh_n"])
    if kind.endswith("Cell"):
        module = getattr(rnnkern, kind).from_state_dict(sd, device=device)
        _, tape = module.forward_train(on(data["x"]), state)
        dx, dstate0, dparams = module.backward(tape, dstate)
    else:
        module = getattr(rnnkern, kind).from_state_dict(sd, device=device, batch_first=config["batch_first"])
        _, _, tape = module.forward_train(on(data["x"]), state, data.get("lengths"))
        dx, dstate0, dparams = module.backward(tape, on(data["dy"]), dstate)
    assert_close(dx, expected["x"], "float64")
    assert_close(dstate0[0] if lstm else dstate0, expected["h0"], "float64")
    if lstm:
        assert_close(dstate0[1], expected["c0"], "float64")
    for name in sd:
        assert_close(dparams[name], expected[name], "float64")
