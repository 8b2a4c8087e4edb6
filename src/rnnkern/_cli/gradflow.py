"""``rnnkern gradflow``: the seed article's argument made visible.

For a vanilla RNN, an LSTM and a GRU of the same sizes, the norm of d(loss at the last step)/d(h_t)
for every step t, back through time: the RNN's shrinks geometrically (the vanishing gradient),
the gated cells' much less. The loss is a fixed random projection of h_T.
"""

import math
import os

import numpy as np

from .. import cells
from .._backend import get_backend

KINDS = {"RNN": cells.RNNCell, "LSTM": cells.LSTMCell, "GRU": cells.GRUCell}


def add_arguments(parser):
    parser.add_argument("--steps", type=int, default=100, help="sequence length T (default 100)")
    parser.add_argument("--input-size", type=int, default=32)
    parser.add_argument("--hidden-size", type=int, default=32)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--forget-bias", type=float, default=3.0,
                        help="added to the LSTM's forget-gate biases (default 3.0; 0 keeps PyTorch's init)")
    parser.add_argument("--every", type=int, default=10, help="print every k-th step (default 10)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "gpu", "auto"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", metavar="PATH", help="also write a PNG plot (needs matplotlib)")


def log10_gradient_norms(kind, steps, input_size, hidden_size, batch, forget_bias=3.0, device="cpu", seed=0):
    """log10 of ||d(v . h_T)/d(h_t)|| averaged over the batch, for t = 1..T (index t-1).

    Backpropagation is linear in the incoming gradient, so it is rescaled to a largest entry of 1
    at every step and the scales are summed as logarithms: the plain float64 norms underflow to
    zero after a few hundred RNN steps (10^-308), while these stay exact for any T."""
    rng = np.random.default_rng(seed)
    cell = KINDS[kind](input_size, hidden_size, device=device, dtype="float64", seed=seed)
    bk = get_backend(device)
    if kind == "LSTM" and forget_bias:  # gate blocks i, f, g, o: the second is the forget gate's
        forget = np.arange(4 * hidden_size) // hidden_size == 1
        cell.bias_ih = cell.bias_ih + bk.asarray(np.where(forget, forget_bias, 0.0))
    xs = bk.asarray(rng.standard_normal((steps, batch, input_size)))
    state, tapes = None, []
    for t in range(steps):
        state, tape = cell.forward_train(xs[t], state)
        tapes.append(tape)
    v = rng.standard_normal(hidden_size)
    v /= np.linalg.norm(v)
    dh = bk.asarray(np.tile(v, (batch, 1)))
    parts = [dh, bk.zeros(dh.shape, "float64")] if kind == "LSTM" else [dh]
    log_norms, log_scale = np.full(steps, -math.inf), 0.0
    for t in range(steps - 1, -1, -1):
        norm = float(bk.to_numpy(((parts[0] ** 2).sum(axis=1) ** 0.5).mean()))
        largest = max(float(bk.to_numpy(abs(p).max())) for p in parts)
        if largest == 0:  # an exactly zero gradient stays zero further back
            break
        log_norms[t] = math.log10(norm) + log_scale if norm > 0 else -math.inf
        parts = [p / largest for p in parts]
        log_scale += math.log10(largest)
        _, dstate, _ = cell.backward(tapes[t], tuple(parts) if kind == "LSTM" else parts[0])
        parts = list(dstate) if kind == "LSTM" else [dstate]
    return log_norms


def gradient_norms(*args, **kwargs):
    """The norms themselves (those below 1e-308 are 0): 10 ** :func:`log10_gradient_norms`."""
    return 10.0 ** log10_gradient_norms(*args, **kwargs)


def _scientific(log10_value):
    """A number given by its log10 in scientific notation, at any exponent (1.234e-1300)."""
    if log10_value == -math.inf:
        return "0"
    exponent = math.floor(log10_value)
    mantissa = round(10 ** (log10_value - exponent), 3)
    if mantissa >= 10:
        mantissa, exponent = mantissa / 10, exponent + 1
    return f"{mantissa:.3f}e{exponent:+03d}"


def _check_plot_path(path):
    """Fail before the computation, not after it: matplotlib present, the directory writable."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise SystemExit("rnnkern gradflow: --plot needs matplotlib: pip install 'rnnkern[plot]'") from None
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise SystemExit(f"rnnkern gradflow: --plot {path}: the directory {os.path.dirname(path) or '.'} does not "
                         f"exist; create it first")
    if not os.access(directory, os.W_OK):
        raise SystemExit(f"rnnkern gradflow: --plot {path}: the directory {os.path.dirname(path) or '.'} is not "
                         f"writable")


def run(args):
    for name in ("steps", "input_size", "hidden_size", "batch", "every"):
        if getattr(args, name) < 1:
            raise SystemExit(f"rnnkern gradflow: --{name.replace('_', '-')} must be at least 1, "
                             f"got {getattr(args, name)}")
    if args.plot:
        _check_plot_path(args.plot)
    norms = {kind: log10_gradient_norms(kind, args.steps, args.input_size, args.hidden_size, args.batch,
                                  args.forget_bias, args.device, args.seed) for kind in KINDS}
    print(f"||d loss(T) / d h_t||, T={args.steps}, input_size={args.input_size}, hidden_size={args.hidden_size}, "
          f"batch={args.batch}, {_init_description(args.forget_bias)}, float64")
    print(f"{'t':>6} " + " ".join(f"{k:>12}" for k in KINDS))
    rows = sorted(set(range(args.steps, 0, -args.every)) | {1})
    for t in sorted(rows, reverse=True):
        print(f"{t:>6} " + " ".join(f"{_scientific(norms[k][t - 1]):>12}" for k in KINDS))
    for kind, values in norms.items():
        print(f"{kind}: from t=T to t=1 the gradient changes by 10^{values[0] - values[-1]:.1f}")
    print("The LSTM's memory path scales the gradient by its forget gate f at each step; the forget bias\n"
          f"(+{args.forget_bias:g}) keeps f near 1. With --forget-bias 0 (PyTorch's plain init, f near 0.5) its\n"
          "gradient vanishes too, though far more slowly than the RNN's.")
    if args.plot:
        _plot(norms, args)
    return 0


def _init_description(forget_bias):
    """The weights' init in words: PyTorch's, then the forget bias this command adds on top of it."""
    if not forget_bias:
        return "PyTorch's init"
    return f"PyTorch's init, then {forget_bias:+g} on the LSTM's forget-gate biases"


def _plot(norms, args):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    steps = np.arange(1, args.steps + 1)
    for kind, values in norms.items():  # log10 on a linear axis: no floor at float64's 1e-308
        ax.plot(steps, values, label=kind)
    ax.set_xlabel("time step t")
    ax.set_ylabel("log10 ||d loss(T) / d h_t||")
    ax.set_title(f"Gradient flow back through time (hidden_size={args.hidden_size})")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.plot, dpi=100)
    print(f"plot written to {args.plot}")
