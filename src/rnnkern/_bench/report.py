"""Turning times into records (what --json writes) and the table printed for a person."""

import dataclasses
import json
import statistics

from .variants import GATES, forward_flops


def summarize(cfg, times, machine=None):
    """One record per measured variant: the configuration, min/median/max ms, GFLOP/s (GEMM flops
    at the median), ratio_to_torch (median / torch's median) and fraction_of_bound
    (blas-bound's median / median); None where the baseline was not measured."""
    flops = forward_flops(cfg)
    medians = {name: statistics.median(ms) for name, ms in times.items() if ms}
    records = []
    for name, ms in times.items():
        if not ms:
            continue
        median = medians[name]
        record = dataclasses.asdict(cfg)
        record.update({
            "variant": name, "median_ms": median, "min_ms": min(ms), "max_ms": max(ms),
            "gflops": flops / (median * 1e-3) / 1e9 if median > 0 else None, "flops": flops,
            "ratio_to_torch": median / medians["torch"] if medians.get("torch") else None,
            "fraction_of_bound": medians["blas-bound"] / median if "blas-bound" in medians and median > 0 else None,
            "repeat": len(ms), "times_ms": list(ms),
        })
        if machine is not None:
            record["machine"] = machine
        records.append(record)
    return records


def _num(value, fmt):
    return "-" if value is None else format(value, fmt)


def format_table(cfg, records, skipped=None):
    """Lines of the table for one cell and configuration."""
    flops = forward_flops(cfg)
    G = GATES[cfg.cell]
    lines = [f"{cfg.describe()}: {flops / 1e9:.3g} GFLOP per forward "
             f"(GEMMs only, 2*T*B*G*H*(I+H) per layer, G={G})"]
    header = f"  {'variant':<13}{'min ms':>10}{'median ms':>11}{'max ms':>10}{'GFLOP/s':>9}" \
             f"{'vs torch':>10}{'of bound':>10}"
    lines += [header, "  " + "-" * (len(header) - 2)]
    for r in records:
        ratio = None if r["ratio_to_torch"] is None else f"{r['ratio_to_torch']:.2f}x"
        bound = None if r["fraction_of_bound"] is None else f"{100 * r['fraction_of_bound']:.0f}%"
        lines.append(f"  {r['variant']:<13}{r['min_ms']:>10.3f}{r['median_ms']:>11.3f}{r['max_ms']:>10.3f}"
                     f"{_num(r['gflops'], '.1f'):>9}{ratio or '-':>10}{bound or '-':>10}")
    for name, why in (skipped or {}).items():
        lines.append(f"  {name:<13}skipped: {why}")
    return lines


def spread_warning(records, limit=1.5):
    """A line warning that the times of some variant spread widely (max/min > limit), or None."""
    spread = {r["variant"]: r["max_ms"] / r["min_ms"] for r in records if r["min_ms"] > 0}
    wide = {name: ratio for name, ratio in spread.items() if ratio > limit}
    if not wide:
        return None
    worst = max(wide, key=wide.get)
    return (f"  note: noisy timings (max/min up to {wide[worst]:.1f}x, for {worst}): the machine is busy or "
            f"throttling; rerun with more --repeat, or compare the min columns")


LEGEND = ("vs torch = variant median / torch (layer) median (below 1 is faster than PyTorch); "
          "of bound = blas-bound median / variant median (100% = as fast as its GEMMs alone); "
          "GFLOP/s counts the GEMM flops only, at the median.")


def write_json(path, records):
    """Write the records (a JSON list) to ``path``."""
    with open(path, "w") as f:
        json.dump(records, f, indent=1)
        f.write("\n")
