"""``rnnkern bench``: time rnnkern's layers and cells against plain NumPy/CuPy code, the seed
article's loop, PyTorch and ONNX Runtime (when installed) and the bare GEMMs (the BLAS bound), side
by side; with ``--full`` also training (forward_train + backward) against torch autograd.

Those implementations are the contenders (``_bench.contenders``); what the user types and reads
calls them variants (``--variants``, its help, the progress lines), and that text stays as it is."""

import argparse
import os
import sys
import time

from .._bench import CELLS, CONFIGS, CONTENDERS, DEFAULT_CONTENDERS, BenchConfig, build_contenders
from .._bench import machine as _machine
from .._bench import report as _report
from .._bench import timing as _timing
from .._bench import torch_contenders as _torch_contenders
from .._bench.common import ContenderMismatchError
from .._bench.training import TRAINING_CONTENDERS, build_training

SIZE_OPTIONS = ("seq_len", "batch", "input_size", "hidden_size", "num_layers")


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _non_negative_int(text):
    return 0 if text.strip() == "0" else _positive_int(text)


def _contender_list(text):
    """--variants LIST (the CLI's word for the contenders): the names, in the table's order."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in CONTENDERS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown variant(s) {', '.join(map(repr, unknown)) or repr(text)}; "
                                         f"choose a comma-separated list from: {', '.join(CONTENDERS)}")
    return [name for name in CONTENDERS if name in names]  # the table's order, duplicates dropped


def add_arguments(parser):
    configs = "; ".join(f"{name}: T={c['seq_len']} B={c['batch']} I={c['input_size']} H={c['hidden_size']}"
                        for name, c in CONFIGS.items())
    parser.add_argument("--cell", choices=CELLS + ("all",), default="all", help="which cell (default: all)")
    parser.add_argument("--device", choices=("cpu", "gpu", "cuda", "cuda:0", "auto"), default="auto",
                        help="auto: the GPU when usable, else the CPU (default); cuda, cuda:0: the GPU")
    parser.add_argument("--dtype", choices=("float16", "float32", "float64"), default="float32",
                        help="default float32 (float16: GPU only)")
    parser.add_argument("--config", choices=tuple(CONFIGS), default=None,
                        help=f"sizes ({configs}); one layer each; the options below override them "
                             "(default: default; with --full: all three)")
    parser.add_argument("--full", action="store_true",
                        help="the full sweep: every variant at every configuration (unless --config / --variants "
                             "say otherwise), then training (forward_train + backward) against torch autograd; "
                             "many times longer than the default run")
    for name in SIZE_OPTIONS:
        parser.add_argument("--" + name.replace("_", "-"), type=_positive_int, default=None, metavar="N")
    parser.add_argument("--repeat", type=_positive_int, default=8, metavar="N",
                        help="timed rounds per variant, taken in alternation (default 8)")
    parser.add_argument("--warmup", type=_non_negative_int, default=1, metavar="N",
                        help="untimed rounds before them (default 1)")
    parser.add_argument("--pause", type=float, default=None, metavar="SECONDS",
                        help="sleep before each timed call so the previous variant's BLAS/OpenMP threads stop "
                             "spinning (default 0.2 on the CPU, 0 on the GPU)")
    parser.add_argument("--variants", type=_contender_list, default=None, metavar="LIST",
                        help=f"comma-separated subset of: {', '.join(CONTENDERS)} (default: "
                             f"{','.join(DEFAULT_CONTENDERS)}; with --full: all)")
    parser.add_argument("--json", metavar="PATH", default=None, help="also write the results as a JSON list of records")
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)


def _error(message, code=2):
    print(f"rnnkern bench: error: {message}", file=sys.stderr)
    return code


def _resolve_device(device):
    """(backend name "cpu"/"gpu", None) or (None, error message)."""
    from .._backend import get_backend
    from .._errors import DeviceUnavailableError

    try:
        return get_backend(device).name, None
    except DeviceUnavailableError as exc:
        return None, str(exc)
    except Exception as exc:  # a CuPy install that fails beyond what the backend checks
        if device == "auto":
            return "cpu", None
        return None, f"the GPU backend could not be loaded ({type(exc).__name__}: {exc})"


def run(args):
    device, problem = _resolve_device(args.device)
    if problem:
        return _error(problem)
    from .._backend import get_backend

    supported = get_backend(device).dtypes
    if args.dtype not in supported:
        return _error(f"--dtype {args.dtype} is not supported on the {device} (supported: {', '.join(supported)})")
    if args.pause is not None and not 0 <= args.pause <= 60:
        return _error(f"--pause must lie in 0..60 seconds, got {args.pause}")
    pause = args.pause if args.pause is not None else (0.2 if device == "cpu" else 0.0)
    if args.json is not None:
        folder = os.path.dirname(os.path.abspath(args.json))
        if not os.path.isdir(folder):
            return _error(f"--json {args.json}: the folder {folder} does not exist")
    configs = [args.config] if args.config else (list(CONFIGS) if args.full else ["default"])
    names = args.variants or list(CONTENDERS if args.full else DEFAULT_CONTENDERS)
    cells = CELLS if args.cell == "all" else (args.cell,)

    def progress(message):
        print(f"rnnkern bench: {message}", file=sys.stderr, flush=True)

    wants_torch = any(v.startswith("torch") for v in names)
    wants_ort = "onnxruntime" in names and device == "cpu"
    if wants_torch:
        _torch_contenders.setup(device)
    machine = _machine.machine_info(device, with_torch=wants_torch, with_onnxruntime=wants_ort)
    for line in _machine.format_header(machine, device, wants_torch, wants_ort):
        print(line)
    print(f"Timing:  {args.repeat} round(s) after {args.warmup} warm-up, variants in alternation (order rotated "
          f"each round), {pause:g} s pause before each call; {'CUDA events' if device == 'gpu' else 'wall clock'}; "
          f"ratios: {_report.RATIO_STATISTIC}")
    records, verdicts = [], []
    training = [name for name in TRAINING_CONTENDERS if name in names] if args.full else []
    try:
        for config in configs:
            sizes = dict(CONFIGS[config])
            sizes.update({k: getattr(args, k) for k in SIZE_OPTIONS if getattr(args, k) is not None})
            tag = f" [{config}]" if len(configs) > 1 else ""
            for cell in cells:
                cfg = BenchConfig(cell=cell, device=device, dtype=args.dtype, **sizes)
                cell_records = _run_cell(cfg, names, args, pause, machine, progress)
                verdicts.append(_report.verdict(cfg, cell_records, _machine.torch_library(cell, device, machine),
                                                _machine.gemm_library(device, machine)) + tag)
                if training:
                    training_records = _run_cell(cfg, training, args, pause, machine, progress, "training")
                    verdicts.append(_report.training_verdict(cfg, training_records) + tag)
                    cell_records += training_records
                records += cell_records
                if args.json is not None:  # after each cell: a run stopped later keeps what it measured
                    _report.write_json(args.json, records)
        if args.full and device == "cpu" and args.cell in ("all", "lstm"):
            records += _layernorm_row(args, pause, progress)
            if args.json is not None:
                _report.write_json(args.json, records)
    except ContenderMismatchError as exc:  # a peer computing something else: its time would mislead
        return _error(str(exc), code=1)
    print()
    print(_report.LEGEND)
    print()
    print(f"Verdict ({device}, {args.dtype}, {_report.RATIO_STATISTIC}):")
    for line in verdicts:
        print(f"  {line}")
    if args.json is not None:
        progress(f"wrote {len(records)} records to {args.json}")
    return 0


def _layernorm_row(args, pause, progress):
    """--full on the CPU: the LayerNormLSTM table (_bench/layernorm.py), at its sizes unless given."""
    from .._bench import layernorm as _layernorm

    sizes = _layernorm.SIZES
    if any(getattr(args, k) is not None for k in ("seq_len", "batch", "hidden_size")):
        sizes = ((args.seq_len or 100, args.batch or 64, args.hidden_size or 512),)
    records = _layernorm.run(args.repeat, args.warmup, pause, lambda m: progress(f"layernorm-lstm: {m}"), sizes)
    print()
    for line in _layernorm.format_table(records):
        print(line)
    return records


def _run_cell(cfg, names, args, pause, machine, progress, mode="forward"):
    """Build, time and print one cell's contenders (``mode``: "forward", or "training" for the
    training comparison); its records."""
    label = cfg.cell if mode == "forward" else f"{cfg.cell} training"
    progress(f"{cfg.describe()}{', training' if mode != 'forward' else ''}: building {len(names)} variant(s)")
    started = time.perf_counter()
    build = build_contenders if mode == "forward" else build_training
    contenders, skipped = build(cfg, names, seed=args.seed)
    for name, why in skipped.items():
        progress(f"{label}: {name} left out: {why}")
    times = _timing.measure(contenders, args.repeat, args.warmup,
                            progress=lambda message: progress(f"{label}: {message}"), pause=pause)
    progress(f"{label}: done in {time.perf_counter() - started:.1f} s")
    cell_records = _report.summarize(cfg, times, machine, mode)
    print()
    for line in _report.format_table(cfg, cell_records, skipped, mode):
        print(line)
    warning = _report.spread_warning(cell_records)
    if warning:
        print(warning)
    sys.stdout.flush()
    return cell_records
