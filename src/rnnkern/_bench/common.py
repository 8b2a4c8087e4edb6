"""What the benchmark's contenders share: the cells and configurations timed, the ``Contender``
record each one is built into, the GEMM flop count, and the cell loop that rnnkern's and PyTorch's
``*-cell`` contenders both run (kept here so that contenders.py and torch_contenders.py need not
import each other).
"""

import dataclasses

import numpy as np

CELLS = ("lstm", "gru", "rnn")
GATES = {"lstm": 4, "gru": 3, "rnn": 1}
CONFIGS = {  # default: PyTorch's fastrnns benchmark; small: latency (batch 1); large: throughput
    "default": {"seq_len": 100, "batch": 64, "input_size": 512, "hidden_size": 512, "num_layers": 1},
    "small": {"seq_len": 100, "batch": 1, "input_size": 256, "hidden_size": 256, "num_layers": 1},
    "large": {"seq_len": 50, "batch": 256, "input_size": 1024, "hidden_size": 1024, "num_layers": 1},
}
NAMES = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    cell: str
    seq_len: int
    batch: int
    input_size: int
    hidden_size: int
    num_layers: int = 1
    device: str = "cpu"  # resolved: "cpu" or "gpu"
    dtype: str = "float32"

    def describe(self):
        return (f"{self.cell} on {self.device}, {self.dtype}, T={self.seq_len} B={self.batch} "
                f"I={self.input_size} H={self.hidden_size} layers={self.num_layers}")


@dataclasses.dataclass
class Contender:
    """One implementation timed: ``rnnkern bench --variants`` names them (the CLI's word)."""
    name: str
    fn: object  # () -> output (T, B, H) on the contender's device, or None (blas-bound)
    timer: str  # "host" (perf_counter), "cupy" or "torch" (CUDA events)


def forward_flops(cfg):
    """GEMM flops of one forward: 2*T*B*G*H*(I_layer + H) per layer (elementwise work not counted)."""
    G, H = GATES[cfg.cell], cfg.hidden_size
    return sum(2 * cfg.seq_len * cfg.batch * G * H * ((cfg.input_size if k == 0 else H) + H)
               for k in range(cfg.num_layers))


def to_host(y):
    """A NumPy copy of a NumPy, CuPy or torch array."""
    if hasattr(y, "detach"):
        return y.detach().cpu().numpy()
    return y.get() if type(y).__module__.split(".")[0] == "cupy" else np.asarray(y)


def step_cells(cells, x, zeros, stack, lstm):
    """The loop user code writes: each layer's cell over every step of x, from zero states."""
    y = x
    for cell in cells:
        h, c, hs = zeros(), zeros(), []
        for xt in y:
            if lstm:
                h, c = cell(xt, (h, c))
            else:
                h = cell(xt, h)
            hs.append(h)
        y = stack(hs)
    return y
