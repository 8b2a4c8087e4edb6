"""The warm-up phase of benchmarks/gpu_check.py: compile every kernel the GPU suite will use before
it starts, so the suite's own time goes to testing.

Items, float32's first, then float64's, then float16's (the likeliest to fail, e.g. without
cuda_fp16.h): each fused step in every memory layout (tests/kernel_cases.py), each layer kind's
forward and backward, and the GPU tests with ONNX options (tests/gpu_variants.py), which compile
one kernel per combination of options. They run in parallel processes: NVRTC compiles on the CPU,
and CuPy's on-disk kernel cache, which the suite then reads, is shared between processes. Each
item's record goes to warm-up.jsonl as it finishes; a failing item is logged and the rest go on.
"""

import multiprocessing
import os
import signal
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

import gpu_check_phases as phases

LOST_WAIT_S = 2  # how long a lost worker is given to turn out to be the cap's SIGINT before it counts as an error

# Each layer kind, in the shapes the warm-up runs: forward with lengths, forward_train, backward.
LAYERS = {"rnn": ("RNN", {}), "rnn_relu": ("RNN", {"nonlinearity": "relu"}), "lstm": ("LSTM", {}),
          "gru": ("GRU", {}), "gru_no_lbr": ("GRU", {"linear_before_reset": False})}


def items(with_variants=True):
    """(dtype, label, what) in the order they should compile: float32, float64, float16."""
    sys.path.insert(0, str(phases.ROOT / "tests"))
    import kernel_cases

    variants = []
    if with_variants:
        import gpu_variants
        variants = gpu_variants.items()
    rows = []
    for dtype in phases.DTYPES:
        rows += [(dtype, f"step {step}", ("step", step)) for step in kernel_cases.ALL_STEPS]
        rows += [(dtype, f"layer {name}", ("layer", name)) for name in LAYERS]
        rows += [(dtype, f"{function}{kwargs}", ("test", module, function, kwargs))
                 for d, module, function, kwargs in variants if d == dtype]
    return rows


def warm_item(backend, dtype, what):
    """Run one item on ``backend`` (it compiles, or loads from CuPy's disk cache, what it launches)."""
    import kernel_cases
    import rnnkern

    if what[0] == "step":
        values = kernel_cases.draw(what[1], 3, 5, dtype, np.random.default_rng(0))
        for layout in kernel_cases.LAYOUTS.values():
            kernel_cases.run(backend, backend.xp, what[1], values, layout)
    elif what[0] == "layer":
        kind, options = LAYERS[what[1]]
        layer = getattr(rnnkern, kind)(4, 5, num_layers=2, bidirectional=True, device=backend, dtype=dtype, seed=0,
                                       **options)
        x = backend.xp.asarray(np.random.default_rng(1).standard_normal((3, 2, 4)).astype(dtype))
        layer(x, lengths=np.array([3, 1]))
        y, _, tape = layer.forward_train(x)
        layer.backward(tape, backend.xp.ones_like(y))
    else:
        import gpu_variants
        gpu_variants.run(*what[1:], backend)
    backend.synchronize()


def _exit_on_sigint():
    """Workers leave at the orchestrator's SIGINT (sent to the whole phase) instead of taking the next item."""
    signal.signal(signal.SIGINT, lambda *_: os._exit(130))


def _work(item):
    """In a worker process: one item, as a record (never raises: a failure is the record's error)."""
    dtype, label, what = item
    started = time.perf_counter()
    record = {"item": label, "dtype": dtype}
    try:
        dev = phases.device()
        dev.item("warm-up", f"{label} {dtype}")
        warm_item(dev.backend(), dtype, what)
    except Exception as exc:
        record["error"] = f"{type(exc).__name__}: {exc}"
    record["seconds"] = round(time.perf_counter() - started, 3)
    return record


def warm_up(out_dir, dev):
    records = phases.Records(Path(out_dir) / "warm-up.jsonl")
    todo = items()
    started, done = time.perf_counter(), {d: 0 for d in phases.DTYPES}
    print(f"warm-up: {len(todo)} items in {dev.workers} processes", flush=True)
    # spawn, not fork: a forked child of a process that touched CUDA cannot use it
    pool = ProcessPoolExecutor(dev.workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_exit_on_sigint)
    lost = False
    try:
        futures = {pool.submit(_work, item): item for item in todo}  # the pool takes them in this order
        for future in as_completed(futures):
            dtype, label, _ = futures[future]
            try:
                record = future.result()
            except Exception as exc:  # the worker died (e.g. a crash in the driver): its items are lost
                if not lost:  # or the cap's SIGINT reached the workers before this process handled its own:
                    lost = True  # on a loaded machine it can; it interrupts this wait and nothing is recorded
                    time.sleep(LOST_WAIT_S)
                record = {"item": label, "dtype": dtype, "error": f"worker lost: {type(exc).__name__}: {exc}"}
            records.add(record)
            done[dtype] += 1
            if "error" in record:
                print(f"warm-up: ERROR {label} {dtype}: {record['error']}", flush=True)
            if done[dtype] == sum(d == dtype for d, _, _ in todo):
                print(f"warm-up: {dtype} done ({time.perf_counter() - started:.1f} s)", flush=True)
    finally:  # stopped at the cap (SIGINT): leave at once, the workers got the signal too
        pool.shutdown(wait=False, cancel_futures=True)
    print(f"warm-up: {len(todo) - records.failed} of {len(todo)} items ok", flush=True)
    return 1 if records.failed else 0
