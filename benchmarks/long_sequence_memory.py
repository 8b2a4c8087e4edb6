"""Peak memory of one inference forward over a long sequence (issue 11): T=20,000, B=64, H=I=64,
rnnkern against torch.nn, each in a fresh process, as the growth of peak RSS over the forward
(the input and the model are allocated, and one short forward run, before the baseline is taken).

    PYTHONPATH=src python benchmarks/long_sequence_memory.py
"""

import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys
import numpy as np
which, kind = sys.argv[1], sys.argv[2]
T, B, H = 20_000, 64, 64
x = np.random.default_rng(0).standard_normal((T, B, H), dtype=np.float32)
if which == "rnnkern":
    import rnnkern
    layer = getattr(rnnkern, kind)(H, H, seed=0)
    run = lambda a: layer(a)[0]
else:
    import torch
    torch.set_num_threads(2)
    module = getattr(torch.nn, kind)(H, H).eval()
    def run(a):
        with torch.no_grad():
            return module(torch.from_numpy(a))[0]
run(x[:10])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
y = run(x)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"peak_growth_mb": (after - before) / 1024, "output_mb": T * B * H * 4 / 2**20}))
"""


def main():
    for kind in ("LSTM", "GRU", "RNN"):
        res = {}
        for which in ("rnnkern", "torch"):
            out = subprocess.run([sys.executable, "-c", CHILD, which, kind], capture_output=True, text=True, check=True)
            res[which] = json.loads(out.stdout)
        r, t = res["rnnkern"]["peak_growth_mb"], res["torch"]["peak_growth_mb"]
        print(f"{kind}: output {res['rnnkern']['output_mb']:.0f} MiB; peak growth rnnkern {r:.0f} MiB, "
              f"torch {t:.0f} MiB ({r / t:.2f}x torch)")


if __name__ == "__main__":
    main()
