"""Turning times into records (what --json writes), the table and the one-line verdict per cell.

Ratios are medians of per-round ratios: each round times every contender once, back to back (in
an order rotated each round), so a ratio within a round compares two runs under the same load;
the median over rounds then drops the rounds a neighbour disturbed.
"""

import dataclasses
import json
import os
import statistics

from .common import GATES, NAMES, forward_flops, training_flops

RATIO_STATISTIC = "median of per-round ratios"
# What users read says "variant" for a contender (the table's column, the legend, the JSON key), as
# `rnnkern bench --variants` does: that text is the CLI's and stays as it is.
# Contenders whose GEMMs are NumPy's/CuPy's, the ones blas-bound times: it bounds them (up to noise).
BOUNDED = ("rnnkern", "rnnkern-cell", "unfused", "article", "blas-bound")
_CLOSE = 0.03  # within 3%: "as fast as"


def paired_ratio(numerators, denominators):
    """The median over rounds of numerators[r] / denominators[r] (None without data)."""
    ratios = [a / b for a, b in zip(numerators, denominators) if b > 0]
    return statistics.median(ratios) if ratios else None


def summarize(cfg, times, machine=None, mode="forward"):
    """One record per measured contender: the configuration, the mode ("forward", or "training" for
    forward_train + backward), min/median/max ms, GFLOP/s (GEMM flops at the median), ratio_to_torch
    and ratio_to_onnxruntime (its time / the peer's) and fraction_of_bound (blas-bound's time / its
    time), each the median of per-round ratios; None where the baseline was not measured. The record
    names it under "variant", the CLI's word, which --json readers rely on."""
    flops = forward_flops(cfg) if mode == "forward" else training_flops(cfg)
    records = []
    for name, ms in times.items():
        if not ms:
            continue
        median = statistics.median(ms)
        record = dataclasses.asdict(cfg)
        record.update({
            "variant": name, "mode": mode, "median_ms": median, "min_ms": min(ms), "max_ms": max(ms),
            "gflops": flops / (median * 1e-3) / 1e9 if median > 0 else None, "flops": flops,
            "ratio_to_torch": paired_ratio(ms, times["torch"]) if times.get("torch") else None,
            "ratio_to_onnxruntime": paired_ratio(ms, times["onnxruntime"]) if times.get("onnxruntime") else None,
            "fraction_of_bound": paired_ratio(times["blas-bound"], ms) if times.get("blas-bound") else None,
            "ratio_statistic": RATIO_STATISTIC, "repeat": len(ms), "times_ms": list(ms),
        })
        if machine is not None:
            record["machine"] = machine
        records.append(record)
    return records


def _num(value, fmt):
    return "-" if value is None else format(value, fmt)


def _bound_text(record):
    """The "GEMM share" cell: blas-bound / contender for the contenders it bounds (above 100%, noise or
    batch 1's own row product: shown as 100%*), n/a for PyTorch, which multiplies with its own GEMM library."""
    share = record["fraction_of_bound"]
    if share is None:
        return "-"
    if record["variant"] not in BOUNDED:
        return "n/a"
    return "100%*" if share > 1 else f"{100 * share:.0f}%"


def _ratio_text(ratio):
    return "-" if ratio is None else f"{ratio:.2f}x" if ratio >= 0.1 else f"{ratio:.2g}x"


def format_table(cfg, records, skipped=None, mode="forward"):
    """Lines of the table for one cell and configuration (``mode``: "forward" or "training")."""
    G = GATES[cfg.cell]
    if mode == "forward":
        title = (f"{cfg.describe()}: {forward_flops(cfg) / 1e9:.3g} GFLOP per forward "
                 f"(GEMMs only, 2*T*B*G*H*(I+H) per layer, G={G})")
    else:
        title = (f"{cfg.describe()}, training: forward_train + backward against torch autograd's forward + "
                 f"backward (same dy); {training_flops(cfg) / 1e9:.3g} GFLOP per step (GEMMs only, 3x the forward's)")
    lines = [title]
    header = f"  {'variant':<13}{'min ms':>10}{'median ms':>11}{'max ms':>10}{'GFLOP/s':>9}" \
             f"{'vs torch':>10}{'vs ORT':>8}{'GEMM share':>12}"
    lines += [header, "  " + "-" * (len(header) - 2)]
    for r in records:
        lines.append(f"  {r['variant']:<13}{r['min_ms']:>10.3f}{r['median_ms']:>11.3f}{r['max_ms']:>10.3f}"
                     f"{_num(r['gflops'], '.1f'):>9}{_ratio_text(r['ratio_to_torch']):>10}"
                     f"{_ratio_text(r.get('ratio_to_onnxruntime')):>8}{_bound_text(r):>12}")
    for name, why in (skipped or {}).items():
        lines.append(f"  {name:<13}skipped: {why}")
    if any(_bound_text(r) == "100%*" for r in records):
        lines.append("  * measured above 100% in most rounds: as fast as its GEMMs alone, within this machine's noise")
    return lines


def _times(ratio):
    """"1.31x slower than" / "1.25x faster than" / "as fast as (within 3%)": never to be read backwards."""
    if abs(ratio - 1) <= _CLOSE:
        return "as fast as (within 3% of)"
    return f"{ratio:.2f}x slower than" if ratio > 1 else f"{1 / ratio:.2f}x faster than"


def verdict(cfg, records, torch_library=None, gemm_library=None):
    """One line: how rnnkern's layer compares with torch.nn, ONNX Runtime and its own GEMMs, e.g.
    "LSTM: rnnkern is 1.31x slower than torch.nn.LSTM (oneDNN) and 1.10x faster than ONNX Runtime;
    its GEMMs alone take 0.61 of its time"."""
    by_name = {r["variant"]: r for r in records}
    name = NAMES[cfg.cell]
    ours = by_name.get("rnnkern")
    if ours is None:
        return f"{name}: rnnkern was not measured (add it to --variants for a verdict)"
    peers = []
    if ours["ratio_to_torch"] is not None:
        peers.append(f"{_times(ours['ratio_to_torch'])} torch.nn.{name}"
                     + (f" ({torch_library})" if torch_library else ""))
    if ours.get("ratio_to_onnxruntime") is not None:
        peers.append(f"{_times(ours['ratio_to_onnxruntime'])} ONNX Runtime")
    if peers:
        parts = ["rnnkern is " + " and ".join(peers)]
    else:
        parts = [f"rnnkern takes {ours['median_ms']:.3g} ms per forward (torch.nn not measured)"]
    if ours["fraction_of_bound"] is not None:
        share = min(ours["fraction_of_bound"], 1.0)
        parts.append(f"its GEMMs alone{f' ({gemm_library})' if gemm_library else ''} take {share:.2f} of its time")
    return f"{name}: " + "; ".join(parts)


def training_verdict(cfg, records):
    """One line: how rnnkern's forward_train + backward compares with torch autograd's forward + backward."""
    by_name = {r["variant"]: r for r in records}
    name, ours = NAMES[cfg.cell], by_name.get("rnnkern")
    if ours is None:
        return f"{name} training: rnnkern was not measured (add it to --variants for a verdict)"
    if ours["ratio_to_torch"] is None:
        return (f"{name} training: rnnkern takes {ours['median_ms']:.3g} ms per forward_train + backward "
                "(torch autograd not measured)")
    return f"{name} training: rnnkern is {_times(ours['ratio_to_torch'])} torch autograd (forward + backward)"


LEGEND = """Variants: rnnkern = the layer (rnnkern.LSTM etc.); rnnkern-cell = its cell stepped from Python;
  unfused = plain array code, one operation per gate; article = the seed article's per-gate loop;
  torch / torch-cell = torch.nn.LSTM etc. / torch.nn.LSTMCell in a Python loop; onnxruntime = the
  layer's own to_onnx export run by ONNX Runtime (MLAS); blas-bound = the forward's GEMMs alone (one
  input projection plus T recurrent GEMMs, NumPy's), nothing else (at batch 1 rnnkern's compiled loop
  may run its own one-row product instead, faster than NumPy's GEMV: see the GEMM line). Training rows (--full): rnnkern's
  forward_train + backward and torch autograd's forward + backward of the same loss.
Columns: vs torch = variant time / torch.nn's (above 1: slower than PyTorch); vs ORT = variant time /
  ONNX Runtime's; GEMM share = blas-bound time / variant time (100% = as fast as its GEMMs alone; n/a
  for PyTorch and ONNX Runtime, which multiply with their own GEMM libraries); all are the median of
  per-round ratios (every round times each variant once, back to back). GFLOP/s counts the GEMM flops
  only, at the median time."""


def spread_warning(records, limit=1.5):
    """A line warning that the times of some contender spread widely (max/min > limit), or None."""
    spread = {r["variant"]: r["max_ms"] / r["min_ms"] for r in records if r["min_ms"] > 0}
    wide = {name: ratio for name, ratio in spread.items() if ratio > limit}
    if not wide:
        return None
    worst = max(wide, key=wide.get)
    return (f"  note: noisy timings (max/min up to {wide[worst]:.1f}x, for {worst}): the machine is busy or "
            f"throttling; the ratios (medians of per-round ratios) resist this, single times do not")


def write_json(path, records):
    """Write the records (a JSON list) to ``path``, replacing it whole (never half-written)."""
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(records, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)
