"""The README's code runs as written and gives the shapes its comments promise."""

import pathlib
import re

import numpy as np

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_readme_examples_run():
    usage, training = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)[:2]
    namespace = {}
    exec(compile(usage, str(README), "exec"), namespace)
    assert namespace["y"].shape == (5, 2, 20)
    assert namespace["same"].num_layers == 2
    assert namespace["h_n"].shape == (1, 2, 20)  # the GRU's h_n from the last line, (L*D, B, H)
    assert namespace["yp"].shape == (7, 4, 5) and namespace["hp_n"].shape == (2, 4, 5)
    assert namespace["cp_n"].shape == (2, 4, 20)
    exec(compile(training, str(README), "exec"), namespace)
    assert set(namespace["dparams"]) == set(namespace["lstm"].state_dict())
    assert namespace["dx"].shape == (7, 4, 10) and namespace["dh0"].shape == (2, 4, 20)
    assert np.isfinite(namespace["dparams"]["weight_hh_l1"]).all()
    assert namespace["dx3"].shape == (7, 4, 10) and set(namespace["dparams3"]) == set(namespace["stack"].state_dict())
