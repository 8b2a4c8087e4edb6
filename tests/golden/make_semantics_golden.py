"""Make tests/golden/semantics_ort.npz: ONNX Runtime's outputs for random one-layer RNN/GRU/LSTM nodes with
ONNX's options (directions, activations with alpha/beta, clip, input_forget, peepholes, lengths,
initial states), so that test_semantics_ort.py checks rnnkern against ORT without ORT installed.

Run from the repository root:  PYTHONPATH=src:tests python tests/golden/make_semantics_golden.py
(made with onnxruntime 1.32.0, onnx 1.23.2)."""

import json
from pathlib import Path

import numpy as np

import rnnkern
from semantics_ort import attributes, run_ort
from test_semantics import random_config

CASES = 36


def main():
    arrays, configs = {}, []
    for case in range(CASES):
        cfg = random_config(5000 + case)
        cfg["L"], cfg["batch_first"] = 1, False
        layer = getattr(rnnkern, cfg["kind"])(cfg["I"], cfg["H"], bias=cfg["bias"], seed=case, **cfg["opts"])
        rng = cfg["rng"]
        D = layer.num_directions
        x = (rng.standard_normal((cfg["T"], cfg["B"], cfg["I"])) * 1.5).astype(np.float32)
        lengths = rng.integers(1, cfg["T"] + 1, size=cfg["B"]) if cfg["lengths"] else None
        h0, c0 = rng.standard_normal((2, D, cfg["B"], cfg["H"])).astype(np.float32)
        use_state = cfg["state"] != "none"
        sd = layer.state_dict()
        lbr = cfg["opts"].get("linear_before_reset")
        y, h_n, c_n = run_ort(cfg["kind"], sd, x, attributes(layer, lbr), lengths,
                              h0 if use_state else None, c0 if use_state and cfg["kind"] == "LSTM" else None)
        found = {"x": x, "y": y, "h_n": h_n, **({"c_n": c_n} if c_n is not None else {}),
                 **({"lengths": lengths} if lengths is not None else {}),
                 **({"h0": h0, "c0": c0} if use_state else {}), **{"sd." + k: v for k, v in sd.items()}}
        arrays.update({f"{case}/{k}": v for k, v in found.items()})
        configs.append({"kind": cfg["kind"], "opts": cfg["opts"]})
    arrays["configs"] = np.array(json.dumps(configs))
    out = Path(__file__).with_name("semantics_ort.npz")
    np.savez_compressed(out, **arrays)
    print(f"wrote {out} ({CASES} cases)")


if __name__ == "__main__":
    main()
