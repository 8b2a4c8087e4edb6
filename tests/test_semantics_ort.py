"""rnnkern's layers with ONNX's options against ONNX Runtime: committed golden vectors (made by
tests/golden/make_semantics_golden.py) always, and ORT live when it is installed, which also checks
the float64 reference (semantics_reference.py) that test_semantics.py relies on."""

import json
from pathlib import Path

import numpy as np
import pytest

import rnnkern
import semantics_reference as ref
from conftest import to_numpy
from test_semantics import cpu_steps, gpu_subset, random_config

GOLDEN = np.load(Path(__file__).parent / "golden" / "semantics_ort.npz")
CONFIGS = json.loads(str(GOLDEN["configs"]))
ORT_TOL = {"float32": 2e-5, "float64": 2e-5}  # ORT computes in float32


def _case(i):
    return {k.split("/", 1)[1]: GOLDEN[k] for k in GOLDEN.files if k.startswith(f"{i}/")}


GOLDEN_GPU_EVERY = 2  # on the GPU every other case runs (each compiles its own kernel variants)


def golden_layer(case, device, dtype):
    """(the layer of golden case ``case``, its input, its initial state or None) on ``device``."""
    cfg, arrays = CONFIGS[case], _case(case)
    sd = {k[3:]: v for k, v in arrays.items() if k.startswith("sd.")}
    layer = getattr(rnnkern, cfg["kind"]).from_state_dict(sd, device=cpu_steps(device, case), dtype=dtype, **{
        k: v for k, v in cfg["opts"].items() if k != "peephole"})
    xp = layer.xp
    state = None
    if "h0" in arrays:
        state = xp.asarray(arrays["h0"].astype(dtype))
        if cfg["kind"] == "LSTM":
            state = (state, xp.asarray(arrays["c0"].astype(dtype)))
    return layer, xp.asarray(arrays["x"].astype(dtype)), state


@pytest.mark.parametrize("case", range(len(CONFIGS)))
def test_golden_ort_outputs(case, device, dtype):
    gpu_subset(device, case, every=GOLDEN_GPU_EVERY)
    cfg, arrays = CONFIGS[case], _case(case)
    layer, x, state = golden_layer(case, device, dtype)
    y, state_n = layer(x, state, arrays.get("lengths"))
    h_n = state_n[0] if cfg["kind"] == "LSTM" else state_n
    tol = ORT_TOL[dtype]
    np.testing.assert_allclose(to_numpy(y), arrays["y"], rtol=tol, atol=tol)
    np.testing.assert_allclose(to_numpy(h_n), arrays["h_n"], rtol=tol, atol=tol)
    if cfg["kind"] == "LSTM":
        np.testing.assert_allclose(to_numpy(state_n[1]), arrays["c_n"], rtol=tol, atol=tol)


@pytest.mark.parametrize("seed", range(24))
def test_live_ort_matches_the_reference_and_the_layer(seed):
    pytest.importorskip("onnxruntime")
    from semantics_ort import attributes, run_ort
    cfg = random_config(7000 + seed)
    layer = getattr(rnnkern, cfg["kind"])(cfg["I"], cfg["H"], bias=cfg["bias"], seed=seed,
                                          device=cpu_steps("cpu", seed), **cfg["opts"])
    rng = cfg["rng"]
    x = (rng.standard_normal((cfg["T"], cfg["B"], cfg["I"])) * 1.5).astype(np.float32)
    lengths = rng.integers(1, cfg["T"] + 1, size=cfg["B"]) if cfg["lengths"] else None
    h0, c0 = rng.standard_normal((2, layer.num_directions, cfg["B"], cfg["H"])).astype(np.float32)
    lstm = cfg["kind"] == "LSTM"
    y, h_n, c_n = run_ort(cfg["kind"], layer.state_dict(), x, attributes(layer, cfg["opts"].get("linear_before_reset")),
                          lengths, h0, c0 if lstm else None)
    o = {k: v for k, v in cfg["opts"].items() if k not in ("peephole", "linear_before_reset")}
    y_ref, h_ref, c_ref = ref.run(cfg["kind"], layer.state_dict(), x, h0=h0, c0=c0, lengths=lengths,
                                  linear_before_reset=cfg["opts"].get("linear_before_reset", True), **o)
    np.testing.assert_allclose(y, y_ref, rtol=2e-5, atol=2e-5)
    np.testing.assert_allclose(h_n, h_ref, rtol=2e-5, atol=2e-5)
    got, state_n = layer(x, (h0, c0) if lstm else h0, lengths)
    np.testing.assert_allclose(got, y, rtol=2e-5, atol=2e-5)
    if lstm:
        np.testing.assert_allclose(c_n, c_ref, rtol=2e-5, atol=2e-5)
        np.testing.assert_allclose(state_n[1], c_n, rtol=2e-5, atol=2e-5)
