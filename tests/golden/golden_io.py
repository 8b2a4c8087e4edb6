"""What the golden-vector scripts share: the .npz layout that tests/golden_files.py reads back, and
the main loop that rewrites one folder of cases. Imported by the scripts beside it (run as
``python tests/golden/make_golden_*.py``), never by rnnkern."""

import json
import sys

import numpy as np


def save_golden(path, config, state_dict, arrays, grads):
    """One case: ``config`` as JSON, the torch module's state_dict under ``sd/``, ``arrays`` (tensors or
    NumPy) by name, and the ``.grad`` of each tensor in ``grads`` under ``grad/``."""
    payload = {"config": np.array(json.dumps(config, sort_keys=True))}
    payload.update({f"sd/{k}": v.detach().numpy() for k, v in state_dict.items()})
    payload.update({k: v.detach().numpy() if hasattr(v, "detach") else v for k, v in arrays.items()})
    payload.update({f"grad/{k}": v.grad.numpy() for k, v in grads.items()})
    np.savez_compressed(path, **payload)


def write_cases(torch, out, cases, make_case):
    """Rewrite folder ``out`` (old .npz files removed) with ``make_case(index, *case)`` for every case."""
    torch.use_deterministic_algorithms(True)
    out.mkdir(exist_ok=True)
    for old in out.glob("*.npz"):
        old.unlink()
    for index, case in enumerate(cases):
        make_case(index, *case)
    print(f"wrote {len(cases)} files to {out} with torch {torch.__version__}", file=sys.stderr)
