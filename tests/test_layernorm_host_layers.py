"""The layer-normalised layers through the GPU backend's code path (CupyBackend) on the host build of
the CUDA LayerNorm kernels (tests/ln_kernel_host.py: g++, every CUDA thread a std::thread), against the
golden vectors of Haste's equations: forward_train, backward and inference, float64 and float32."""

import numpy as np
import pytest

import kernel_host
from backend_swap import on_backend
from conftest import assert_close
from layernorm_cases import GOLDEN, assert_grads_in_haste_names, layer_of, load, parts, state

ln_kernel_host = pytest.importorskip("ln_kernel_host", reason="the CUDA LayerNorm kernels' host build is not here")


@pytest.fixture(scope="module")
def ln_host(tmp_path_factory):
    if kernel_host.GXX is None:
        pytest.skip("g++ not found: the kernels' math cannot be compiled for the host")
    lib, dtypes = ln_kernel_host.build(tmp_path_factory.mktemp("rnnkern_ln_host_layers"), ("float32", "float64"))
    return ln_kernel_host.ln_host_backend(lib)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
def test_layers_on_the_cuda_kernels_host_build(ln_host, path, dtype):
    config, haste, grads, a = load(path)
    kind = config["kind"]
    layer = on_backend(layer_of(config, haste, dtype), ln_host)
    on = ln_host.asarray
    x, lengths = on(a["x"].astype(dtype)), a.get("lengths")
    st = tuple(map(on, parts(state(a, kind, dtype=dtype))))
    st = st if kind == "LSTM" else st[0]
    y, state_n, tape = layer.forward_train(x, st, lengths, generator=config["seed"],
                                           recurrent_dropout=config["recurrent_dropout"])
    assert_close(y, a["y"], dtype)
    dstate_n = tuple(on(a[k].astype(dtype)) for k in ("dh_n", "dc_n")[:len(parts(st))])
    dx, dstate0, dparams = layer.backward(tape, on(a["dy"].astype(dtype)), dstate_n if kind == "LSTM" else dstate_n[0])
    assert_close(dx, a["grad/x"], dtype)
    for ours, name in zip(parts(dstate0), ("grad/h0", "grad/c0")):
        assert_close(ours, a[name], dtype)
    assert_grads_in_haste_names(layer, {k: np.asarray(v) for k, v in dparams.items()}, grads, dtype)
    y_eval, state_eval = layer(x, st, lengths)
    assert_close(y_eval, a["y_eval"], dtype)
    for ours, name in zip(parts(state_eval), ("h_n_eval", "c_n_eval")):
        assert_close(ours, a[name], dtype)
