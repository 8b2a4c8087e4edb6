"""Reading the golden .npz files written by tests/golden/make_golden_*.py: a JSON ``config``, the
state_dict under ``sd/``, the gradients under ``grad/`` and every other array by its name."""

import json

import numpy as np


def load_golden(path):
    """(config, state_dict, gradients, the remaining arrays) of one golden file."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    config = json.loads(str(arrays.pop("config")))
    sd = {k[3:]: v for k, v in arrays.items() if k.startswith("sd/")}
    grads = {k[5:]: v for k, v in arrays.items() if k.startswith("grad/")}
    return config, sd, grads, arrays
