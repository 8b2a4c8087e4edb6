"""`make gpu-check OUT=dir`: everything a GPU machine should tell us, in one command, within 7.5 minutes.

    PYTHONPATH=src python3 benchmarks/gpu_check.py --out DIR

A GPU lease is about 15 minutes of device time, so the whole check must fit twice. Phases, each a
subprocess with its own cap inside one overall deadline (a hang or a crash costs one phase, never
the session), the most valuable first:

1. versions: GPU, driver, CUDA runtime, NVRTC, CuPy, NumPy, PyTorch (+ CUDA, cuDNN), TF32 off;
2. smoke: each cell (and one with ONNX options) in float32, float64 and float16, forward and
   backward, against the NumPy CPU path;
3. ``rnnkern bench --device gpu`` at the default, then the small configuration, every cell:
   rnnkern (fused) against unfused CuPy code, torch.nn on cuDNN (TF32 off) and the bare GEMMs;
4. bandwidth: each cell's fused step as a share of a device-to-device copy;
5. warm-up: NVRTC compiles, in parallel processes, every kernel the suite uses (gpu_check_warm.py);
6. the GPU test suite (``pytest -m gpu``) with the time left, stopped cleanly at its budget.

Every record is written to DIR the moment it is measured and summary.json is rewritten after
each phase, so a phase stopped at its cap (SIGINT first: pytest then still writes its summary and
JUnit XML; SIGKILL at the cap) keeps what it measured. Everything printed also goes to
DIR/gpu-check.log. The phases use NumPy's CPU path (RNNKERN_CPU_KERNELS=numpy): numba's cache
does not travel, and compiling it would eat the budget. Without a usable GPU it stops at once
with one line and exit status 1. Works with the system python3 (no venv, no network).
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import gpu_check_phases as phases

ROOT = Path(__file__).resolve().parents[1]
DEADLINE_S = 450  # 7.5 minutes: a rerun still fits in a 15-minute lease
GRACE_S = 5  # a phase gets SIGINT this long before its cap (time to write its summary), SIGKILL at it
MIN_GRACE_S = 1  # a scaled-down run's grace: Python's own exit does not get faster with the deadline
MIN_PHASE_S = 10  # a phase with less time than this left is skipped
# (phase, cap in seconds), in order; None: whatever is left of the deadline. The caps add up to it.
PHASES = [("versions", 30), ("smoke", 45), ("bench-default", 75), ("bench-small", 45), ("bandwidth", 40),
          ("warm-up", 75), ("gpu-tests", None)]
# what each phase writes into OUT, next to gpu-check.log and summary.json
WRITES = {"versions": ["versions.json"], "smoke": ["smoke.jsonl"], "bench-default": ["bench-default.json"],
          "bench-small": ["bench-small.json"], "bandwidth": ["bandwidth.jsonl"], "warm-up": ["warm-up.jsonl"],
          "gpu-tests": ["gpu-tests.xml"]}


def _children():
    import gpu_check_warm
    return {"versions": phases.versions, "smoke": phases.smoke, "bandwidth": phases.bandwidth,
            "warm-up": gpu_check_warm.warm_up}


def command(phase, out_dir, dev):
    """The command line of ``phase`` on ``dev`` (the GPU or the rehearsal's stand-in)."""
    if phase == "gpu-tests":  # -v --tb=short: each test's name and a failure's traceback as it happens
        return [sys.executable, "-m", "pytest", *dev.test_args(), "-v", "--tb=short", "-p", "no:cacheprovider",
                "--durations=15", f"--junitxml={Path(out_dir) / 'gpu-tests.xml'}"]
    if phase.startswith("bench-"):
        config = phase.split("-", 1)[1]
        return [sys.executable, "-m", "rnnkern.cli", "bench", *dev.bench_args(phase), "--config", config,
                "--cell", "all", "--variants", "rnnkern,rnnkern-cell,unfused,torch,blas-bound",
                "--json", str(Path(out_dir) / f"bench-{config}.json")]
    return [sys.executable, str(Path(__file__).resolve()), "--phase", phase, "--out", str(out_dir)]


class Log:
    def __init__(self, path):
        self.file = open(path, "a", buffering=1)

    def __call__(self, line=""):
        print(line, flush=True)
        self.file.write(line + "\n")


def _signal_group(child, sig, fired=None):
    if fired is not None:
        fired.set()
    try:
        os.killpg(child.pid, sig)  # the phase's own process group (its worker processes too), nothing else
    except ProcessLookupError:
        pass


def run_phase(cmd, limit, grace, log, env):
    """Run ``cmd`` for at most ``limit`` seconds, its output streamed to the log; (status, seconds)."""
    started = time.perf_counter()
    child = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             errors="replace", start_new_session=True)
    timed_out = threading.Event()
    timers = [threading.Timer(max(limit - grace, 0), _signal_group, (child, signal.SIGINT, timed_out)),
              threading.Timer(limit, _signal_group, (child, signal.SIGKILL))]
    for timer in timers:
        timer.start()
    try:
        for line in child.stdout:
            log(line.rstrip("\n"))
        status = child.wait()
    finally:
        for timer in timers:
            timer.cancel()
    return ("timeout" if timed_out.is_set() else status), time.perf_counter() - started


def phase_env(phase, limit, grace):
    src = os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, PYTHONPATH=src, PYTHONUNBUFFERED="1", RNNKERN_CPU_KERNELS="numpy")
    if phase == "gpu-tests":  # pytest stops itself after the test running then, well before SIGINT
        env["RNNKERN_TEST_DEADLINE"] = f"{time.time() + max(limit - 2 * grace, 0):.3f}"
    return env


def write_summary(out_dir, summary, started, deadline_s):
    data = {"deadline_s": deadline_s, "seconds": round(time.perf_counter() - started, 1), "phases": summary}
    tmp = out_dir / "summary.json.tmp"
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, out_dir / "summary.json")  # whole or not at all, even if the check is killed


def _status_text(status):
    return {"timeout": "TIMED OUT (results so far kept)", 0: "ok"}.get(status, f"FAILED (exit {status})")


def orchestrate(out_dir, deadline_s=DEADLINE_S):
    """Every phase within ``deadline_s`` (the caps scale with it); 0 when all passed."""
    dev = phases.device()
    if dev.name == "gpu":
        sys.path.insert(0, str(ROOT / "tests"))
        import gpu_preflight
        if gpu_preflight.main() != 0:  # prints the one line saying why
            return 1
    out_dir.mkdir(parents=True, exist_ok=True)
    log, scale, start = Log(out_dir / "gpu-check.log"), deadline_s / DEADLINE_S, time.perf_counter()
    log(f"gpu-check: {time.strftime('%Y-%m-%d %H:%M:%S %Z')} on {dev.name}, repository {ROOT}, output in {out_dir}, "
        f"deadline {deadline_s:g} s")
    summary = {phase: {"status": "not run yet", "writes": WRITES[phase]} for phase, _ in PHASES}
    for phase, cap in PHASES:
        left = deadline_s - (time.perf_counter() - start)
        limit = left if cap is None else min(cap * scale, left)
        if limit < MIN_PHASE_S * scale:
            log(f"\n=== {phase}: SKIPPED, the {deadline_s:g} s deadline is (nearly) reached")
            summary[phase].update(status="skipped (deadline)", seconds=0)
        else:
            cmd = command(phase, out_dir, dev)
            log(f"\n=== {phase} (limit {limit:.0f} s): {' '.join(cmd)}")
            grace = min(max(GRACE_S * scale, MIN_GRACE_S), limit / 4)
            status, seconds = run_phase(cmd, limit, grace, log, phase_env(phase, limit, grace))
            log(f"=== {phase}: {_status_text(status)} in {seconds:.1f} s")
            summary[phase].update(status=status, seconds=round(seconds, 1))
        write_summary(out_dir, summary, start, deadline_s)
    failed = [p for p, r in summary.items() if r["status"] != 0]
    log(f"\ngpu-check: {'all phases passed' if not failed else 'problems in: ' + ', '.join(failed)} "
        f"({time.perf_counter() - start:.0f} s); results in {out_dir}")
    return 1 if failed else 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="gpu-check-results", help="folder for the log and the records")
    parser.add_argument("--deadline", type=float, default=DEADLINE_S, metavar="SECONDS",
                        help=f"the whole run's limit; each phase's cap scales with it (default {DEADLINE_S})")
    parser.add_argument("--phase", help=argparse.SUPPRESS)  # run one child phase (the orchestrator's call)
    args = parser.parse_args(argv)
    out_dir = Path(args.out).resolve()
    if args.phase:
        try:
            return _children()[args.phase](out_dir, phases.device())
        except KeyboardInterrupt:  # the orchestrator's SIGINT at the cap: one line, not a traceback
            print(f"{args.phase}: stopped at its cap; the records written so far are kept", flush=True)
            return 130
    return orchestrate(out_dir, args.deadline)


if __name__ == "__main__":
    sys.exit(main())
