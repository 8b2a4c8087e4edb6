"""`make gpu-check OUT=dir`: everything a GPU machine should tell us, in one command, in under 8 minutes.

    PYTHONPATH=src python3 benchmarks/gpu_check.py --out DIR

Phases, each a subprocess with its own time limit inside one overall deadline (so a hang or a
crash costs one phase, never the session), in this order:

1. versions: GPU, driver, CUDA runtime, NVRTC, CuPy, NumPy, PyTorch (+ CUDA, cuDNN), TF32 off;
2. warm-up: one small run of every fused kernel x dtype x memory layout, and of each layer's
   forward and backward, so NVRTC's on-disk cache is filled before the suite;
3. the GPU test suite (``pytest -m gpu``), JUnit XML and log;
4. bandwidth: each cell's fused step as a share of a device-to-device copy;
5. ``rnnkern bench --device gpu`` at the default and small configurations, every cell: rnnkern
   (fused) against unfused CuPy code, torch.nn on cuDNN (TF32 off) and the bare cuBLAS GEMMs.

Everything printed also goes to DIR/gpu-check.log; DIR/summary.json lists each phase's exit
status and duration, and the phases write their JSON records next to it. Without a usable GPU it
stops at once with one line and exit status 1. Works with the system python3 (no venv, no network).
"""

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEADLINE_S = 450  # 7.5 minutes for all phases: `make gpu-check` must end within 8
# (phase, its time limit in seconds), in order; each also ends where the overall deadline does
PHASES = [("versions", 60), ("warm-up", 150), ("gpu-tests", 240), ("bandwidth", 60),
          ("bench-default", 90), ("bench-small", 90)]


# --- phases run in child processes ------------------------------------------------------------
def _try(query):
    """``query()``, or what went wrong as a string: a version that cannot be read must not stop the check."""
    try:
        return query()
    except Exception as exc:
        return f"unknown ({type(exc).__name__}: {exc})"


def versions(out_dir):
    """Print and save the versions; configure torch as the benchmark does (TF32 off) and say so."""
    import cupy
    import numpy

    from rnnkern import _cli_info
    from rnnkern._bench import machine, torch_variants

    runtime = cupy.cuda.runtime
    props = _try(lambda: runtime.getDeviceProperties(cupy.cuda.Device().id))
    props = props if isinstance(props, dict) else {}
    name = props.get("name", "?")
    info = {"gpu": name.decode() if isinstance(name, bytes) else str(name),
            "compute_capability": f"{props.get('major', '?')}.{props.get('minor', '?')}",
            "memory_gib": round(props.get("totalGlobalMem", 0) / 2**30, 1),
            "cuda_driver": _try(lambda: _cli_info._cuda_version(runtime.driverGetVersion())),
            "cuda_runtime": _try(lambda: _cli_info._cuda_version(runtime.runtimeGetVersion())),
            "nvrtc": _try(lambda: ".".join(map(str, cupy.cuda.nvrtc.getVersion()))),
            "cupy": cupy.__version__, "numpy": numpy.__version__, "python": platform.python_version(),
            "nvidia_smi": _try(lambda: subprocess.run(
                ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                capture_output=True, text=True, timeout=20).stdout.strip())}
    if torch_variants.setup("gpu"):
        import torch

        info["torch"] = {"version": torch.__version__, "cuda": torch.version.cuda,
                         "cuda_available": torch.cuda.is_available(),
                         "cudnn": _try(torch.backends.cudnn.version), "tf32": machine.tf32_text(machine.torch_info())}
    else:
        info["torch"] = "not importable: the torch baselines will be left out"
    for key, value in info.items():
        print(f"{key + ':':<20}{value}")
    (Path(out_dir) / "versions.json").write_text(json.dumps(info, indent=1, default=str) + "\n")


def warm_up(out_dir):
    """Compile (or load from NVRTC's disk cache) every kernel x dtype in each memory layout the tests
    use, and the CuPy kernels of each layer's forward and backward."""
    import cupy

    from rnnkern._backend import get_backend

    warm(get_backend("gpu"), cupy, ("float16", "float32", "float64"))


def warm(backend, xp, dtypes, log=print):
    """One small run of every step kernel (each layout) and of each layer kind, per dtype, on ``backend``."""
    import numpy as np

    sys.path.insert(0, str(ROOT / "tests"))
    import kernel_cases

    import rnnkern

    started = time.perf_counter()
    for dtype in dtypes:
        for step in kernel_cases.ALL_STEPS:
            values = kernel_cases.draw(step, 3, 5, dtype, np.random.default_rng(0))
            for layout in kernel_cases.LAYOUTS.values():
                kernel_cases.run(backend, xp, step, values, layout)
        for cls, options in ((rnnkern.RNN, {}), (rnnkern.LSTM, {}), (rnnkern.GRU, {}),
                             (rnnkern.GRU, {"linear_before_reset": False})):
            layer = cls(4, 5, num_layers=2, bidirectional=True, device=backend, dtype=dtype, seed=0, **options)
            x = xp.asarray(np.random.default_rng(1).standard_normal((3, 2, 4)).astype(dtype))
            layer(x, lengths=np.array([3, 1]))
            y, _, tape = layer.forward_train(x)
            layer.backward(tape, xp.ones_like(y))
        backend.synchronize()
        log(f"warm-up: {dtype} done ({time.perf_counter() - started:.1f} s)")


def bandwidth(out_dir):
    from rnnkern._backend import get_backend
    from rnnkern._bench import bandwidth as bw
    from rnnkern._bench import timing

    gpu, records = get_backend("gpu"), []
    for dtype in ("float32", "float16"):
        for cell in ("rnn", "lstm", "gru"):
            result = bw.measure(gpu, cell, batch=4096, hidden_size=2048, dtype=dtype, timer=timing._cupy_time)
            print(result.line(), flush=True)
            records.append(dict(vars(result), share_of_copy=result.share_of_copy))
    (Path(out_dir) / "bandwidth.json").write_text(json.dumps(records, indent=1) + "\n")


CHILDREN = {"versions": versions, "warm-up": warm_up, "bandwidth": bandwidth}


def command(phase, out_dir):
    """The command line of ``phase``."""
    if phase in CHILDREN:
        return [sys.executable, str(Path(__file__).resolve()), "--phase", phase, "--out", str(out_dir)]
    if phase == "gpu-tests":
        return [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider", "--durations=15",
                f"--junitxml={Path(out_dir) / 'gpu-tests.xml'}"]
    config = phase.split("-", 1)[1]
    return [sys.executable, "-m", "rnnkern.cli", "bench", "--device", "gpu", "--config", config, "--cell", "all",
            "--variants", "rnnkern,rnnkern-cell,unfused,torch,blas-bound", "--repeat", "10",
            "--json", str(Path(out_dir) / f"bench-{config}.json")]


# --- the orchestrator -------------------------------------------------------------------------
class Log:
    def __init__(self, path):
        self.file = open(path, "a", buffering=1)

    def __call__(self, line=""):
        print(line, flush=True)
        self.file.write(line + "\n")


def run_phase(phase, limit, out_dir, log):
    """Run ``phase`` for at most ``limit`` seconds, its output streamed to the log; (status, seconds)."""
    cmd = command(phase, out_dir)
    log(f"\n=== {phase} (limit {limit:.0f} s): {' '.join(cmd)}")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])),
               PYTHONUNBUFFERED="1")
    started = time.perf_counter()
    child = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             errors="replace", start_new_session=True)
    timed_out = threading.Event()

    def kill():
        timed_out.set()
        try:
            os.killpg(child.pid, signal.SIGKILL)  # the phase's own process group, nothing else
        except ProcessLookupError:
            pass
    timer = threading.Timer(limit, kill)
    timer.start()
    try:
        for line in child.stdout:
            log(line.rstrip("\n"))
        status = child.wait()
    finally:
        timer.cancel()
    seconds = time.perf_counter() - started
    status = "timeout" if timed_out.is_set() else status
    log(f"=== {phase}: {'TIMED OUT' if status == 'timeout' else 'ok' if status == 0 else f'FAILED (exit {status})'}"
        f" in {seconds:.1f} s")
    return status, seconds


def orchestrate(out_dir, deadline_s=DEADLINE_S):
    sys.path.insert(0, str(ROOT / "tests"))
    import gpu_preflight

    if gpu_preflight.main() != 0:  # prints the one line saying why
        return 1
    out_dir.mkdir(parents=True, exist_ok=True)
    log = Log(out_dir / "gpu-check.log")
    start = time.perf_counter()
    log(f"gpu-check: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, repository {ROOT}, output in {out_dir}")
    summary = {}
    for phase, limit in PHASES:
        left = deadline_s - (time.perf_counter() - start)
        if left < 15:
            log(f"\n=== {phase}: SKIPPED, the {deadline_s} s deadline is reached")
            summary[phase] = {"status": "skipped (deadline)", "seconds": 0}
            continue
        status, seconds = run_phase(phase, min(limit, left), out_dir, log)
        summary[phase] = {"status": status, "seconds": round(seconds, 1)}
    total = time.perf_counter() - start
    (out_dir / "summary.json").write_text(json.dumps({"phases": summary, "seconds": round(total, 1)}, indent=1) + "\n")
    failed = [p for p, r in summary.items() if r["status"] != 0]
    log(f"\ngpu-check: {'all phases passed' if not failed else 'problems in: ' + ', '.join(failed)} "
        f"({total:.0f} s); results in {out_dir}")
    return 1 if failed else 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="gpu-check-results", help="folder for the log and JSON records")
    parser.add_argument("--phase", choices=tuple(CHILDREN), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    out_dir = Path(args.out).resolve()
    if args.phase:
        CHILDREN[args.phase](out_dir)
        return 0
    return orchestrate(out_dir)


if __name__ == "__main__":
    sys.exit(main())
