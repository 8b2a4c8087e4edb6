"""The phases of benchmarks/gpu_check.py that run in Python child processes: versions, the
correctness smoke test and the bandwidth (the warm-up is in gpu_check_warm.py).

Each phase measures items one at a time and writes each record to OUT the moment it has it
(``Records``: a JSON line appended and flushed), so a phase stopped at its cap keeps everything
it measured. An item that fails is recorded with its error and the phase goes on to the next:
a float16 problem must not cost the float32 and float64 results. The exit status is 1 when any
item failed.

``device()`` is the GPU, or the rehearsal's stand-in (tests/gpu_standin.py) when
RNNKERN_GPU_CHECK_STANDIN is set: the same loops and records, on the NumPy backend, with chosen
phases slow and chosen items failing.
"""

import json
import os
import platform
import subprocess
import sys
import time
import traceback
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
STANDIN_ENV = "RNNKERN_GPU_CHECK_STANDIN"
DTYPES = ("float32", "float64", "float16")  # the most used first: float16 is the likeliest to fail


class Gpu:
    """The real device: CuPy's backend, CUDA-event timing, full-size measurements."""
    name = "gpu"
    bandwidth_size = {"batch": 4096, "hidden_size": 2048}
    workers = max(1, min(12, (os.cpu_count() or 2) - 2))  # NVRTC compiles in parallel; leave the driver room

    def backend(self):
        from rnnkern._backend import get_backend
        return get_backend("gpu")

    @property
    def timer(self):
        from rnnkern._bench import timing
        return timing._cupy_time

    def item(self, phase, key):
        """Called before each item: nothing to add on the real device."""

    def bench_args(self, phase):
        return ["--device", "gpu", "--repeat", "10"]

    def test_args(self):
        return ["-m", "gpu"]


def device():
    spec = os.environ.get(STANDIN_ENV)
    if not spec:
        return Gpu()
    sys.path.insert(0, str(ROOT / "tests"))
    import gpu_standin
    return gpu_standin.StandIn(json.loads(spec))


class Records:
    """JSON lines in ``path``, each written and flushed as soon as it is measured."""

    def __init__(self, path):
        self.path, self.failed = Path(path), 0

    def add(self, record):
        with open(self.path, "a") as f:
            f.write(json.dumps(record, default=str) + "\n")
        self.failed += "error" in record

    def measure(self, key, fields, fn):
        """``fields`` plus fn()'s dict and the seconds, or the error fn raised (printed with its traceback)."""
        started = time.perf_counter()
        try:
            record = dict(fields, **fn())
        except Exception as exc:  # one item's failure is a result, not the end of the phase
            traceback.print_exc(file=sys.stdout)
            record = dict(fields, error=f"{type(exc).__name__}: {exc}")
        record["seconds"] = round(time.perf_counter() - started, 3)
        print(f"{key}: {'ERROR ' + record['error'] if 'error' in record else 'ok'} ({record['seconds']:.1f} s)",
              flush=True)
        self.add(record)
        return record


# --- versions ------------------------------------------------------------------------------------
def _try(query):
    """``query()``, or what went wrong as a string: a version that cannot be read must not stop the check."""
    try:
        return query()
    except Exception as exc:
        return f"unknown ({type(exc).__name__}: {exc})"


def _gpu_properties():
    import cupy
    props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    name = props["name"]
    return {"gpu": name.decode() if isinstance(name, bytes) else str(name),
            "compute_capability": f"{props['major']}.{props['minor']}",
            "memory_gib": round(props["totalGlobalMem"] / 2**30, 1)}


def _torch():
    from rnnkern._bench import machine, torch_contenders
    if not torch_contenders.setup("gpu"):  # configures torch as the benchmark does: TF32 off
        return "not importable: the torch baselines will be left out"
    import torch
    return {"version": torch.__version__, "cuda": torch.version.cuda, "cuda_available": torch.cuda.is_available(),
            "cudnn": _try(torch.backends.cudnn.version), "tf32": machine.tf32_text(machine.torch_info())}


def _cupy_runtime(query):
    import cupy
    from rnnkern._cli import info as _cli_info
    return _cli_info._cuda_version(query(cupy.cuda.runtime))


VERSION_QUERIES = {
    "device": _gpu_properties,
    "cuda_driver": lambda: _cupy_runtime(lambda rt: rt.driverGetVersion()),
    "cuda_runtime": lambda: _cupy_runtime(lambda rt: rt.runtimeGetVersion()),
    "nvrtc": lambda: ".".join(map(str, __import__("cupy").cuda.nvrtc.getVersion())),
    "cupy": lambda: __import__("cupy").__version__,
    "numpy": lambda: np.__version__,
    "python": platform.python_version,
    "nvidia_smi": lambda: subprocess.run(
        ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
        capture_output=True, text=True, timeout=20).stdout.strip(),
    "torch": _torch,
}


def versions(out_dir, dev):
    """Each version printed and versions.json rewritten as it is read (one that hangs costs the rest only)."""
    info, path = {}, Path(out_dir) / "versions.json"
    for key, query in VERSION_QUERIES.items():
        info[key] = _try(lambda: (dev.item("versions", key), query())[1])
        print(f"{key + ':':<20}{info[key]}", flush=True)
        path.write_text(json.dumps(info, indent=1, default=str) + "\n")
    return 0


# --- smoke: each cell and dtype, the device against the NumPy CPU path -----------------------------
SMOKE_CELLS = {"rnn_tanh": ("RNN", {}), "rnn_relu": ("RNN", {"nonlinearity": "relu"}), "lstm": ("LSTM", {}),
               "gru": ("GRU", {}), "gru_no_lbr": ("GRU", {"linear_before_reset": False}),
               "lstm_options": ("LSTM", {"peephole": True, "clip": 2.0, "activations": ["HardSigmoid", "Tanh", "Elu"]})}
# max |device - cpu| / (1 + max |cpu|) allowed; float16 is compared with float32 on the CPU
SMOKE_TOL = {"float16": 5e-2, "float32": 1e-4, "float64": 1e-10}


def _forward_backward(layer, x, lengths):
    """(y, h_n, dx, every parameter's gradient) as float64 host arrays."""
    from rnnkern._backend import to_host

    y, state_n = layer(x, lengths=lengths)
    y_t, _, tape = layer.forward_train(x, lengths=lengths)
    dx, _, dparams = layer.backward(tape, layer.xp.ones_like(y_t))
    h_n = state_n[0] if isinstance(state_n, tuple) else state_n
    return [np.asarray(to_host(a), dtype="float64") for a in (y, h_n, dx, *(dparams[k] for k in sorted(dparams)))]


def smoke_item(backend, cell, dtype):
    import rnnkern
    from rnnkern._backend import cpu_backend

    kind, options = SMOKE_CELLS[cell]
    cpu_dtype = "float32" if dtype == "float16" else dtype
    ref = getattr(rnnkern, kind)(4, 8, num_layers=2, bidirectional=True, device=cpu_backend("numpy"),
                                 dtype=cpu_dtype, seed=0, **options)
    ours = getattr(rnnkern, kind).from_state_dict(ref.state_dict(), device=backend, dtype=dtype, **{
        k: v for k, v in options.items() if k != "peephole"})  # peepholes come with the state_dict
    x = np.random.default_rng(1).standard_normal((5, 3, 4)).astype(dtype)
    lengths = np.array([5, 2, 4])
    expected = _forward_backward(ref, x.astype(cpu_dtype), lengths)
    got = _forward_backward(ours, backend.xp.asarray(x), lengths)
    error = max(float(np.max(np.abs(g - e))) / (1 + float(np.max(np.abs(e)))) for g, e in zip(got, expected))
    if not error <= SMOKE_TOL[dtype]:
        raise AssertionError(f"{cell} {dtype}: scaled error {error:.3g} > {SMOKE_TOL[dtype]:g}")
    return {"max_scaled_error": error, "tolerance": SMOKE_TOL[dtype]}


def smoke(out_dir, dev):
    records = Records(Path(out_dir) / "smoke.jsonl")
    backend = dev.backend()
    for dtype in DTYPES:
        for cell in SMOKE_CELLS:
            records.measure(f"smoke {cell} {dtype}", {"cell": cell, "dtype": dtype},
                            lambda: (dev.item("smoke", f"{cell} {dtype}"), smoke_item(backend, cell, dtype))[1])
    return 1 if records.failed else 0


# --- bandwidth -------------------------------------------------------------------------------------
def bandwidth(out_dir, dev):
    from rnnkern._bench import bandwidth as bw

    records = Records(Path(out_dir) / "bandwidth.jsonl")
    backend = dev.backend()

    def one(cell, dtype):
        dev.item("bandwidth", f"{cell} {dtype}")
        result = bw.measure(backend, cell, dtype=dtype, timer=dev.timer, **dev.bandwidth_size)
        print(result.line(), flush=True)
        return dict(vars(result), share_of_copy=result.share_of_copy)
    for dtype in ("float32", "float16"):
        for cell in ("rnn", "lstm", "gru"):
            records.measure(f"bandwidth {cell} {dtype}", {"cell": cell, "dtype": dtype}, lambda: one(cell, dtype))
    return 1 if records.failed else 0
