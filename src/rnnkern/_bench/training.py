"""The training comparison of ``rnnkern bench --full``: rnnkern's ``forward_train`` + ``backward``
against torch.nn's layer under autograd (forward + ``backward``), from the same weights, input and
output gradient dy (a random array: the gradient of the loss sum(output * dy)). Before anything is
timed, the output, dx and every parameter's gradient of the two are checked to agree; the rounds are
then timed by timing.measure, like the forward contenders."""

import numpy as np

from . import torch_contenders
from .common import NAMES, Contender, check_agreement, to_host
from .contenders import make_input

# The contenders of a training comparison: the same names as the forward's, the records say "training".
TRAINING_CONTENDERS = ("rnnkern", "torch")


def make_output_gradient(cfg, seed=0):
    """dy (T, B, H): uniform in [-1, 1), drawn apart from the input."""
    rng = np.random.default_rng(seed + 1)
    return rng.uniform(-1, 1, (cfg.seq_len, cfg.batch, cfg.hidden_size)).astype(cfg.dtype)


def build_training(cfg, names=TRAINING_CONTENDERS, seed=0):
    """(list of Contender in the order of ``names``, {name: why it was left out}). Raises
    ContenderMismatchError when torch autograd's gradients differ from rnnkern's."""
    import rnnkern

    unknown = [n for n in names if n not in TRAINING_CONTENDERS]
    if unknown:
        raise ValueError(f"unknown training contender(s) {unknown} (choose from {', '.join(TRAINING_CONTENDERS)})")
    layer = getattr(rnnkern, NAMES[cfg.cell])(cfg.input_size, cfg.hidden_size, cfg.num_layers,
                                                device=cfg.device, dtype=cfg.dtype, seed=seed)
    x_host, dy_host = make_input(cfg, seed), make_output_gradient(cfg, seed)
    x, dy = rnnkern.asarray(x_host, device=cfg.device), rnnkern.asarray(dy_host, device=cfg.device)

    def ours():
        y, _, tape = layer.forward_train(x)
        dx, _, dparams = layer.backward(tape, dy)
        return y, dx, dparams

    contenders, skipped = [], {}
    for name in names:
        if name == "rnnkern":
            contenders.append(Contender(name, ours, "host" if cfg.device == "cpu" else "cupy"))
            continue
        made = torch_contenders.make_training(cfg, layer.state_dict(), x_host, dy_host)
        if isinstance(made, str):
            skipped[name] = made
            continue
        contender, gradients = made
        check_gradients(cfg, gradients(), ours())
        contenders.append(contender)
    return contenders, skipped


def check_gradients(cfg, theirs, ours):
    """theirs: {"output", "dx", parameter name: gradient} (NumPy); ours: what rnnkern's ``ours()`` returns."""
    y, dx, dparams = ours
    expected = {"output": to_host(y), "dx": to_host(dx)}
    expected.update({k: to_host(v) for k, v in dparams.items()})
    missing = sorted(set(expected) ^ set(theirs))
    if missing:
        raise ValueError(f"torch autograd and rnnkern name different gradients: {missing}")
    for key, value in expected.items():
        check_agreement(f"torch autograd's {key}", theirs[key], value, cfg.dtype)
