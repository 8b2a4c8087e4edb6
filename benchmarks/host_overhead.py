"""Host (Python) time per time step of the GPU backend, measured on the CPU.

CupyBackend runs on a stand-in for CuPy (tests/kernel_host.fake_cupy: NumPy arrays) whose
ElementwiseKernel launches do nothing, so what is timed is rnnkern's own work per step
(argument preparation, views, checks, the kernel lookup) plus NumPy's tiny GEMM, i.e. the
host time that, at batch 1, sets the GPU's speed. Sizes are tiny (B=1, H=8) so no arithmetic
counts. Reports the minimum over rounds of (time of a T-step call) / T, in microseconds.

    PYTHONPATH=src python benchmarks/host_overhead.py [--steps 256] [--rounds 30]
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import kernel_host  # noqa: E402

import rnnkern  # noqa: E402
from rnnkern._backend.cupy.backend import CupyBackend  # noqa: E402


class NoopKernel:
    def __init__(self, **kwargs):
        self.launches = 0

    def __call__(self, *arrays):
        self.launches += 1


def backend():
    fake = kernel_host.fake_cupy(lib=None)
    fake.ElementwiseKernel = NoopKernel
    for name in ("ndarray", "matmul", "empty", "zeros"):  # plain attributes, as on the cupy module
        setattr(fake, name, getattr(np, name))
    bk = CupyBackend(fake)
    bk.name = "cpu"  # the stand-in holds NumPy arrays (as in tests/test_kernels.py)
    return bk


CASES = {
    "RNN": (rnnkern.RNN, {}), "LSTM": (rnnkern.LSTM, {}), "GRU": (rnnkern.GRU, {}),
    "GRU lbr=False": (rnnkern.GRU, {"linear_before_reset": False}),
}


def per_step_us(fn, steps, rounds):
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best / steps * 1e6


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=100)
    args = parser.parse_args(argv)
    bk, T = backend(), args.steps
    x = np.random.default_rng(0).standard_normal((T, 1, 8)).astype("float32")
    print(f"host us per step, B=1 H=8 T={T}, min of {args.rounds} rounds (kernel launches stubbed out)")
    print(f"{'cell':<15}{'forward':>9}{'train fwd':>11}{'backward':>10}{'cell call':>11}")
    for label, (cls, options) in CASES.items():
        layer = cls(8, 8, device=bk, seed=0, **options)
        cell = getattr(rnnkern, cls.__name__ + "Cell")(8, 8, device=bk, seed=0, **options)
        y, _, tape = layer.forward_train(x)
        dy = np.ones_like(y)
        state = (np.zeros((1, 8), "float32"),) * 2 if cls is rnnkern.LSTM else np.zeros((1, 8), "float32")
        results = [per_step_us(lambda: layer(x), T, args.rounds),
                   per_step_us(lambda: layer.forward_train(x), T, args.rounds),
                   per_step_us(lambda: layer.backward(tape, dy), T, args.rounds),
                   per_step_us(lambda: [cell(x[0], state) for _ in range(T)], T, args.rounds)]
        print(f"{label:<15}" + "".join(f"{v:>{w}.1f}" for v, w in zip(results, (9, 11, 10, 11))))


if __name__ == "__main__":
    main()
