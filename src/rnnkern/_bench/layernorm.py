"""The LayerNormLSTM row of ``rnnkern bench --full`` (CPU): rnnkern's LayerNormLSTM against what a
PyTorch user has (the same cell as a torch module with LayerNorm modules and a Python loop), the
unfused NumPy steps, and rnnkern's own plain LSTM, in inference and in training (forward_train +
backward against the torch loop's forward + autograd), interleaved in one process.

Contenders, per configuration and mode: ``rnnkern`` (the CPU backend chosen as usual: numba's
kernels where there), ``numpy`` (the NumPy steps, RNNKERN_CPU_KERNELS=numpy's), ``lstm`` (rnnkern.LSTM
of the same sizes), ``torch-loop``. Ratios are medians of per-round ratios (report.py).
"""

import statistics

import numpy as np

from .common import Contender
from .report import paired_ratio
from .timing import measure

SIZES = ((100, 64, 512), (100, 8, 256), (100, 1, 256))  # (T, B, H), input size H


def _torch_loop(I, H, state_dict):
    """The cell as a torch user writes it: Linear and LayerNorm modules, a Python loop over time."""
    import torch
    from torch import nn

    class LayerNormLSTM(nn.Module):
        def __init__(self):
            super().__init__()
            self.ih, self.hh = nn.Linear(I, 4 * H, bias=False), nn.Linear(H, 4 * H, bias=False)
            self.ln_ih, self.ln_hh = nn.LayerNorm(4 * H, bias=False), nn.LayerNorm(4 * H, bias=False)
            self.ln_c, self.bias = nn.LayerNorm(H), nn.Parameter(torch.zeros(4 * H))

        def forward(self, x):
            h = c = x.new_zeros(x.shape[1], H)
            gx = self.ln_ih(self.ih(x)) + self.bias
            out = []
            for t in range(x.shape[0]):
                i, f, g, o = (gx[t] + self.ln_hh(self.hh(h))).chunk(4, 1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(self.ln_c(c))
                out.append(h)
            return torch.stack(out)

    module = LayerNormLSTM()
    names = {"ih.weight": "weight_ih_l0", "hh.weight": "weight_hh_l0", "bias": "bias_l0",
             "ln_ih.weight": "layer_norm_ih_weight_l0", "ln_hh.weight": "layer_norm_hh_weight_l0",
             "ln_c.weight": "layer_norm_c_weight_l0", "ln_c.bias": "layer_norm_c_bias_l0"}
    module.load_state_dict({k: torch.from_numpy(state_dict[v]) for k, v in names.items()})
    return module


def _contenders(T, B, H, training, seed=0):
    """{name: Contender} of one configuration and mode."""
    import rnnkern
    from .._backend import use_cpu_kernels

    rng = np.random.default_rng(seed)
    x, dy = rng.standard_normal((2, T, B, H)).astype(np.float32)
    layer = rnnkern.LayerNormLSTM(H, H, seed=seed)
    with use_cpu_kernels("numpy"):
        unfused = rnnkern.LayerNormLSTM.from_state_dict(layer.state_dict())
    plain = rnnkern.LSTM(H, H, seed=seed)

    def ours(module):
        if not training:
            return lambda: module(x)[0]

        def train():
            y, _, tape = module.forward_train(x)
            return module.backward(tape, dy)[0]
        return train

    contenders = {"rnnkern": ours(layer), "numpy": ours(unfused), "lstm": ours(plain)}
    try:
        import torch
    except ImportError:
        return contenders
    loop = _torch_loop(H, H, layer.state_dict())
    tx, tdy = torch.from_numpy(x), torch.from_numpy(dy)

    def torch_fn():
        if not training:
            with torch.no_grad():
                return loop(tx)
        xg = tx.clone().requires_grad_()
        (loop(xg) * tdy).sum().backward()
        return xg.grad
    contenders["torch-loop"] = torch_fn
    return contenders


def run(repeat=5, warmup=1, pause=0.2, progress=None, sizes=SIZES):
    """Time every configuration and mode; returns the records (one per configuration, mode, contender)."""
    from .torch_contenders import setup

    setup("cpu")
    records = []
    for T, B, H in sizes:
        for training in (False, True):
            fns = _contenders(T, B, H, training)
            times = measure([Contender(n, f, "host") for n, f in fns.items()], repeat, warmup, progress, pause)
            for name, ms in times.items():
                records.append({"cell": "layernorm-lstm", "mode": "training" if training else "inference",
                                "seq_len": T, "batch": B, "hidden_size": H, "input_size": H, "variant": name,
                                "median_ms": statistics.median(ms), "times_ms": ms,
                                "ratio_to_lstm": paired_ratio(ms, times["lstm"]),
                                "ratio_to_torch_loop": paired_ratio(ms, times["torch-loop"])
                                if "torch-loop" in times else None})
    return records


def format_table(records):
    """The LayerNormLSTM table's lines."""
    lines = ["LayerNormLSTM (Haste's cell; CPU, float32, I = H): median ms, and time / rnnkern.LSTM's and "
             "/ the torch loop's (medians of per-round ratios)",
             f"{'mode':<10} {'T':>4} {'B':>4} {'H':>5}  {'variant':<11} {'ms':>9} {'/ lstm':>8} {'/ torch':>8}"]
    for r in records:
        def num(v):
            return "-" if v is None else f"{v:.2f}"
        lines.append(f"{r['mode']:<10} {r['seq_len']:>4} {r['batch']:>4} {r['hidden_size']:>5}  {r['variant']:<11} "
                     f"{r['median_ms']:>9.2f} {num(r['ratio_to_lstm']):>8} {num(r['ratio_to_torch_loop']):>8}")
    return lines
