"""A stand-in for the GPU in the rehearsal of benchmarks/gpu_check.py (test_gpu_check_rehearsal.py).

benchmarks/gpu_check_phases.device() returns it when RNNKERN_GPU_CHECK_STANDIN holds its spec
(JSON, inherited by every phase's process):

- ``slow``: {phase: seconds}: each item of that phase sleeps this long first (the bench phases:
  their ``--pause`` before each timed call), so the phase runs into its cap part-way;
- ``fail``: [text, ...]: an item whose key contains one of them raises (e.g. "float16");
- ``suite``: the folder of stand-in tests the test phase runs instead of ``pytest -m gpu``.

The device itself is NumPy's CPU backend (float32 and float64: float16 items fail as they would
without cuda_fp16.h), timed by the wall clock, at tiny sizes. The phases' loops, records, logs and
time limits are the real ones.
"""

import time


class StandIn:
    name = "stand-in"
    bandwidth_size = {"batch": 8, "hidden_size": 16, "launches": 2, "rounds": 2}
    workers = 2

    def __init__(self, spec):
        self.slow, self.fail, self.suite = spec.get("slow", {}), spec.get("fail", []), spec.get("suite")

    def backend(self):
        from rnnkern._backend import cpu_backend
        return cpu_backend("numpy")

    @property
    def timer(self):
        from rnnkern._bench import timing
        return timing._host_time

    def item(self, phase, key):
        time.sleep(self.slow.get(phase, 0))
        failing = [text for text in self.fail if text in key]
        if failing:
            raise RuntimeError(f"stand-in: {key!r} fails (it contains {failing[0]!r})")

    def bench_args(self, phase):
        return ["--device", "cpu", "--seq-len", "2", "--batch", "2", "--input-size", "3", "--hidden-size", "4",
                "--num-layers", "1", "--repeat", "1", "--warmup", "0", "--pause", str(self.slow.get(phase, 0))]

    def test_args(self):
        return [self.suite]
