"""How close a fused step kernel comes to the memory bandwidth: its bytes moved per second as a share
of a device-to-device copy's on the same device.

An elementwise step does a few flops per element, so memory sets its speed; a copy of as many bytes
is the practical ceiling. Bytes moved = every (B, H) block read or written once (bias vectors,
(H,) and cached, are not counted), at the storage dtype's size.
"""

import dataclasses

import numpy as np

from .._recurrences.semantics import default_math

# (B, H) blocks each step kernel reads and writes: inputs, outputs.
STEP_BLOCKS = {
    "rnn": (2, 1),  # gx, gh -> h
    "lstm": (9, 2),  # 4 gx + 4 gh blocks + c_prev -> h, c
    "gru": (7, 1),  # 3 gx + 3 gh blocks + h_prev (+ b_hn, an (H,) vector) -> h
}


@dataclasses.dataclass
class BandwidthResult:
    cell: str
    dtype: str
    batch: int
    hidden_size: int
    bytes_moved: int  # per kernel launch
    kernel_us: float  # best time per launch
    copy_us: float  # best time of a device-to-device copy of bytes_moved / 2 (it reads and writes them)
    kernel_gbps: float
    copy_gbps: float

    @property
    def share_of_copy(self):
        return self.kernel_gbps / self.copy_gbps

    def line(self):
        return (f"{self.cell:<5}{self.dtype:<8} B={self.batch} H={self.hidden_size}: fused step "
                f"{self.kernel_us:8.1f} us, {self.kernel_gbps:7.1f} GB/s = {100 * self.share_of_copy:5.1f}% of a "
                f"device-to-device copy ({self.copy_gbps:.1f} GB/s)")


def bytes_moved(cell, batch, hidden_size, dtype):
    reads, writes = STEP_BLOCKS[cell]
    return (reads + writes) * batch * hidden_size * np.dtype(dtype).itemsize


def step_launcher(backend, cell, batch, hidden_size, dtype, seed=0):
    """A no-argument function that runs one fused forward step of ``cell`` (its default math) on
    ``backend``'s arrays."""
    xp, H = backend.xp, hidden_size
    rng = np.random.default_rng(seed)
    gates = {"rnn": 1, "lstm": 4, "gru": 3}[cell]

    def array(cols):
        return xp.asarray(rng.uniform(-1, 1, (batch, cols)).astype(dtype))

    gx, gh, state, out, out2 = array(gates * H), array(gates * H), array(H), array(H), array(H)
    m = default_math(cell.upper())
    if cell == "rnn":
        return lambda: backend.rnn_step(m, gx, gh, out)
    if cell == "lstm":
        return lambda: backend.lstm_step(m, gx, gh, state, None, out, out2)
    b_hn = xp.asarray(rng.uniform(-1, 1, H).astype(dtype))
    return lambda: backend.gru_step(m, gx, gh, b_hn, state, out)


def copy_launcher(backend, nbytes, dtype):
    """A no-argument function copying ``nbytes`` between two device buffers (read nbytes, write nbytes)."""
    xp = backend.xp
    count = max(1, nbytes // np.dtype(dtype).itemsize)
    src, dst = xp.ones(count, dtype=dtype), xp.empty(count, dtype=dtype)
    return lambda: xp.copyto(dst, src)


def best_us(fn, timer, launches, rounds):
    """The best of ``rounds`` timings (``timer(f)`` -> ms of one f() call) of ``launches`` calls, per call."""
    def burst():
        for _ in range(launches):
            fn()
    burst()  # warm-up: compiles the kernel on first use
    return min(timer(burst) for _ in range(rounds)) * 1e3 / launches


def measure(backend, cell, batch, hidden_size, dtype, timer, launches=20, rounds=5):
    """BandwidthResult of ``cell``'s fused step against a copy moving the same bytes."""
    moved = bytes_moved(cell, batch, hidden_size, dtype)
    kernel_us = best_us(step_launcher(backend, cell, batch, hidden_size, dtype), timer, launches, rounds)
    copy_us = best_us(copy_launcher(backend, moved // 2, dtype), timer, launches, rounds)
    return BandwidthResult(cell, np.dtype(dtype).name, batch, hidden_size, moved, kernel_us, copy_us,
                           kernel_gbps=moved / kernel_us / 1e3, copy_gbps=moved / copy_us / 1e3)
