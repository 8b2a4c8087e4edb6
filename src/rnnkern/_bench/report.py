"""Turning times into records (what --json writes), the table and the one-line verdict per cell.

Ratios are medians of per-round ratios: each round times every contender once, back to back (in
an order rotated each round), so a ratio within a round compares two runs under the same load;
the median over rounds then drops the rounds a neighbour disturbed.
"""

import dataclasses
import json
import os
import statistics

from .common import GATES, NAMES, forward_flops

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


def summarize(cfg, times, machine=None):
    """One record per measured contender: the configuration, min/median/max ms, GFLOP/s (GEMM flops
    at the median), ratio_to_torch (its time / torch's) and fraction_of_bound (blas-bound's time /
    its time), both the median of per-round ratios; None where the baseline was not measured. The
    record names it under "variant", the CLI's word, which --json readers rely on."""
    flops = forward_flops(cfg)
    records = []
    for name, ms in times.items():
        if not ms:
            continue
        median = statistics.median(ms)
        record = dataclasses.asdict(cfg)
        record.update({
            "variant": name, "median_ms": median, "min_ms": min(ms), "max_ms": max(ms),
            "gflops": flops / (median * 1e-3) / 1e9 if median > 0 else None, "flops": flops,
            "ratio_to_torch": paired_ratio(ms, times["torch"]) if times.get("torch") else None,
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
    """The "GEMM share" cell: blas-bound / contender for the contenders it bounds (above 100% is noise: shown
    as 100%*), n/a for PyTorch, which multiplies with its own GEMM library."""
    share = record["fraction_of_bound"]
    if share is None:
        return "-"
    if record["variant"] not in BOUNDED:
        return "n/a"
    return "100%*" if share > 1 else f"{100 * share:.0f}%"


def format_table(cfg, records, skipped=None):
    """Lines of the table for one cell and configuration."""
    flops = forward_flops(cfg)
    G = GATES[cfg.cell]
    lines = [f"{cfg.describe()}: {flops / 1e9:.3g} GFLOP per forward "
             f"(GEMMs only, 2*T*B*G*H*(I+H) per layer, G={G})"]
    header = f"  {'variant':<13}{'min ms':>10}{'median ms':>11}{'max ms':>10}{'GFLOP/s':>9}" \
             f"{'vs torch':>10}{'GEMM share':>12}"
    lines += [header, "  " + "-" * (len(header) - 2)]
    for r in records:
        ratio = r["ratio_to_torch"]
        ratio = None if ratio is None else f"{ratio:.2f}x" if ratio >= 0.1 else f"{ratio:.2g}x"
        lines.append(f"  {r['variant']:<13}{r['min_ms']:>10.3f}{r['median_ms']:>11.3f}{r['max_ms']:>10.3f}"
                     f"{_num(r['gflops'], '.1f'):>9}{ratio or '-':>10}{_bound_text(r):>12}")
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
    """One line: how rnnkern's layer compares with torch.nn and with its own GEMMs, e.g.
    "LSTM: rnnkern is 1.31x slower than torch.nn.LSTM (oneDNN); its GEMMs alone take 0.61 of its time"."""
    by_name = {r["variant"]: r for r in records}
    name = NAMES[cfg.cell]
    ours = by_name.get("rnnkern")
    if ours is None:
        return f"{name}: rnnkern was not measured (add it to --variants for a verdict)"
    parts = []
    if ours["ratio_to_torch"] is not None:
        parts.append(f"rnnkern is {_times(ours['ratio_to_torch'])} torch.nn.{name}"
                     + (f" ({torch_library})" if torch_library else ""))
    else:
        parts.append(f"rnnkern takes {ours['median_ms']:.3g} ms per forward (torch.nn not measured)")
    if ours["fraction_of_bound"] is not None:
        share = min(ours["fraction_of_bound"], 1.0)
        parts.append(f"its GEMMs alone{f' ({gemm_library})' if gemm_library else ''} take {share:.2f} of its time")
    return f"{name}: " + "; ".join(parts)


LEGEND = """Variants: rnnkern = the layer (rnnkern.LSTM etc.); rnnkern-cell = its cell stepped from Python;
  unfused = plain array code, one operation per gate; article = the seed article's per-gate loop;
  torch / torch-cell = torch.nn.LSTM etc. / torch.nn.LSTMCell in a Python loop; blas-bound = the
  forward's GEMMs alone (one input projection plus T recurrent GEMMs), nothing else.
Columns: vs torch = variant time / torch.nn's (above 1: slower than PyTorch); GEMM share = blas-bound
  time / variant time (100% = as fast as its GEMMs alone; n/a for PyTorch, which multiplies with its
  own GEMM library); both are the median of per-round ratios (every round times each variant once,
  back to back). GFLOP/s counts the GEMM flops only, at the median time."""


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
