"""What the benchmark's contenders share: the cells and configurations timed, the ``Contender``
record each one is built into, the GEMM flop counts, the check that a peer computes what rnnkern
computes before it is timed, and the cell loop that rnnkern's and PyTorch's ``*-cell`` contenders
both run (kept here so that contenders.py and torch_contenders.py need not import each other).
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


def training_flops(cfg):
    """GEMM flops of forward_train + backward: the forward's, plus the same again for the input and state
    gradients (dgates @ W) and again for the weights' (dgates^T @ inputs): 3x the forward's."""
    return 3 * forward_flops(cfg)


# float32: the peers' own GEMMs and exp/tanh differ in rounding (about 1e-6 here, after 100 steps); a
# wrong weight, gate order or bias moves results by 1e-2 and more
CHECK_TOLERANCE = {"float16": 2e-2, "float32": 1e-4, "float64": 1e-9}


class ContenderMismatchError(RuntimeError):
    """A peer's result differs from rnnkern's: its times would compare different computations."""


def check_agreement(what, got, expected, dtype):
    """Raise ContenderMismatchError unless ``got`` equals ``expected`` (NumPy arrays) within the dtype's
    tolerance, scaled by the largest magnitude of ``expected`` (gradients summed over T*B terms are large)."""
    got, expected = np.asarray(got, np.float64), np.asarray(expected, np.float64)
    if got.shape != expected.shape:
        raise ContenderMismatchError(f"{what}: shape {got.shape}, rnnkern's is {expected.shape}")
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    error = np.abs(got - expected)
    worst = float(np.max(error, initial=0.0)) if np.all(np.isfinite(error)) else float("inf")
    limit = CHECK_TOLERANCE[dtype] * scale
    if not worst <= limit:
        where = np.unravel_index(int(np.argmax(np.where(np.isfinite(error), error, np.inf))), error.shape)
        raise ContenderMismatchError(
            f"{what} differs from rnnkern's: largest difference {worst:.3g} at index {tuple(map(int, where))} "
            f"({got[where]:.6g} against {expected[where]:.6g}), allowed {limit:.3g} "
            f"({CHECK_TOLERANCE[dtype]:g} x the largest magnitude, {scale:.3g}); it is not timed")


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
