"""The LayerNorm cells' fused numba steps (issue 20) against the plain cells' steps, per step kernel call
(no GEMM), through the backend's step API, interleaved in one process:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/ln_step_kernels.py [--batch 64] [--hidden 512]

Pairs: lstm_step vs lnlstm_step (inference, no zoneout), the training steps, the backwards, and the
GRU's; the compiled time loops (T=100, with the GEMMs) where NumPy's BLAS allows. Each round times ``calls`` calls of A and of B (the order alternating by round); prints the
median time per call of each and the median of the per-round ratios B/A.
"""

import argparse
import statistics
import time

import numpy as np

from rnnkern._backend import cpu_backend
from rnnkern._recurrences.layernorm_math import LNGRUNorms, LNLSTMNorms, Zoneout
from rnnkern._recurrences.semantics import default_math


def _pairs(B, H, dtype, zoneout):
    be, rng = cpu_backend("numba"), np.random.default_rng(0)

    def a(*shape):
        return rng.standard_normal(shape).astype(dtype)
    lstm, gru = default_math("LSTM"), default_math("GRU")
    gx4, gh4, c0, h0, c1, h1, dh, dc = a(B, 4 * H), a(B, 4 * H), a(B, H), a(B, H), a(B, H), a(B, H), a(B, H), a(B, H)
    gx3, gh3 = a(B, 3 * H), a(B, 3 * H)
    gates4, gates3 = rng.uniform(0, 1, (B, 4 * H)).astype(dtype), rng.uniform(0, 1, (B, 3 * H)).astype(dtype)
    d4, e4, d3, e3, f3 = a(B, 4 * H), a(B, 4 * H), a(B, 3 * H), a(B, 3 * H), a(B, 3 * H)
    norms = LNLSTMNorms(1 + 0.1 * a(4 * H), 1 + 0.1 * a(H), a(H))
    gnorms = LNGRUNorms(1 + 0.1 * a(3 * H), a(3 * H))
    mask = (rng.random((B, H)) < 0.9).astype(dtype)
    zone = Zoneout(0.1, mask) if zoneout else Zoneout(0.0, None)
    s4 = {"gates": gates4.copy(), "hh_hat": a(B, 4 * H), "c": c1, "c_hat": a(B, H), "rstd": np.ones((B, 2), dtype)}
    s3 = {"gates": gates3.copy(), "hh_hat": a(B, 3 * H), "rstd": np.ones((B, 1), dtype)}
    direct = a(B, H) if zoneout else None
    b_hn = a(H)
    loops = {}
    from rnnkern._backend.numba import blas, lnsteps, steps
    if blas.AVAILABLE:  # the compiled time loops, T=100 (inference; zoneout: the blend)
        T, prob = 100, 0.1 if zoneout else 0.0
        gxs4, gxs3, out = a(T, B, 4 * H), a(T, B, 3 * H), np.empty((T, B, H), dtype)
        w4, w3 = (a(H, 4 * H) * 0.05), (a(H, 3 * H) * 0.05)
        loops = {
            "lstm loop T=100": (lambda: steps.lstm_loop(gxs4, w4, h0, c0, c1, np.zeros(1, dtype), out, False, gh4, None),
                                lambda: lnsteps.lnlstm_loop(gxs4, w4, h0, c0, c1, *norms, prob, out, False, gh4)),
            "gru loop T=100": (lambda: steps.gru_loop(gxs3, w3, b_hn, h0, out, False, gh3, None),
                               lambda: lnsteps.lngru_loop(gxs3, w3, h0, *gnorms, prob, out, False, gh3))}
    return loops | {
        "lstm step": (lambda: be.lstm_step(lstm, gx4, gh4, c0, None, h1, c1),
                      lambda: be.lnlstm_step(gx4, gh4, c0, h0, norms, zone, h1, c1)),
        "lstm train step": (lambda: be.lstm_step(lstm, gx4, gh4, c0, None, h1, c1, True),
                            lambda: be.lnlstm_step(gx4, gh4, c0, h0, norms, zone, h1, s4["c"], s4)),
        "lstm backward": (lambda: be.lstm_backward(lstm, gates4, c0, c1, dh, dc, None, d4, h1),
                          lambda: be.lnlstm_backward(s4, c0, dh, dc, norms, zone, d4, e4, h1, direct, c1)),
        "gru step": (lambda: be.gru_step(gru, gx3, gh3, b_hn, h0, h1),
                     lambda: be.lngru_step(gx3, gh3, h0, gnorms, zone, h1)),
        "gru backward": (lambda: be.gru_backward(gru, gates3, c0, h0, dh, d3, e3, h1),
                         lambda: be.lngru_backward(s3, h0, dh, gnorms, zone, d3, f3, e3, h1)),
    }


def _time(fn, calls):
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--dtype", default="float32")
    p.add_argument("--rounds", type=int, default=21)
    p.add_argument("--calls", type=int, default=50)
    p.add_argument("--zoneout", action="store_true", help="the LN steps with a training zoneout mask")
    args = p.parse_args()
    print(f"B={args.batch} H={args.hidden} {args.dtype} zoneout={args.zoneout}: per call, median of "
          f"{args.rounds} rounds x {args.calls} calls")
    for label, (plain, ln) in _pairs(args.batch, args.hidden, args.dtype, args.zoneout).items():
        plain(), ln()  # compile / load
        times = {"plain": [], "ln": []}
        ratios = []
        for r in range(args.rounds):
            order = (("plain", plain), ("ln", ln)) if r % 2 == 0 else (("ln", ln), ("plain", plain))
            got = {name: _time(fn, args.calls) for name, fn in order}
            for name in got:
                times[name].append(got[name])
            ratios.append(got["ln"] / got["plain"])
        med = {k: statistics.median(v) * 1e6 for k, v in times.items()}
        print(f"  {label:16s} plain {med['plain']:8.1f} us   LN {med['ln']:8.1f} us   "
              f"LN/plain {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
