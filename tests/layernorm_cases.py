"""The layer-normalised layers' test helpers: the CPU backends with the LayerNorm steps, golden files
(tests/golden/make_golden_layernorm.py) turned into layers, results compared in Haste's names."""

import json
import pathlib

import numpy as np

import rnnkern
from conftest import assert_close
from rnnkern._backend import CPU_KERNELS, cpu_backend, numba_unavailable_reason, use_cpu_kernels
from rnnkern._interop.haste import from_haste_arrays, to_haste_arrays

GOLDEN = sorted((pathlib.Path(__file__).resolve().parent / "golden" / "layernorm").glob("*.npz"))


def ln_backends():
    """The CPU kernels ("numpy", "numba") whose backend class has the LayerNorm steps."""
    usable = [k for k in CPU_KERNELS if k == "numpy" or numba_unavailable_reason() is None]
    return [k for k in usable if hasattr(type(cpu_backend(k)), "lnlstm_step")]


def load(path):
    with np.load(path, allow_pickle=False) as data:
        return parse({k: data[k] for k in data.files})


def parse(arrays):
    """(config, Haste parameters and gradients keyed (layer, direction), the other arrays) of a case."""
    arrays = dict(arrays)
    config = json.loads(str(arrays.pop("config")))
    haste, grads = {}, {}
    for key in list(arrays):
        if key.startswith(("haste/", "grad/")) and key.count("/") == 2:
            group, where, name = key.split("/")
            (haste if group == "haste" else grads).setdefault(tuple(map(int, where.split("_"))), {})[name] = \
                arrays.pop(key)
    return config, haste, grads, arrays


def suffix(layer, direction):
    return f"_l{layer}" + ("_reverse" if direction else "")


def layer_of(config, haste, dtype, device="cpu"):
    """The rnnkern layer holding a golden case's Haste parameters."""
    kind = config["kind"]
    sd = {}
    for (k, d), params in haste.items():
        sd.update({name + suffix(k, d): v for name, v in from_haste_arrays(kind, params, "golden").items()})
    cls = getattr(rnnkern, "LayerNorm" + kind)
    return cls.from_state_dict(sd, dtype=dtype, device=device, batch_first=config["batch_first"],
                               zoneout=config["zoneout"], dropout=config["dropout"])


def state(arrays, kind, prefix="", dtype="float64"):
    h = arrays[prefix + "h0" if not prefix else prefix + "h_n"].astype(dtype)
    if kind != "LSTM":
        return h
    return h, arrays[prefix + "c0" if not prefix else prefix + "c_n"].astype(dtype)


def assert_grads_in_haste_names(layer, dparams, expected, dtype, scale=1.0):
    """Every parameter's gradient, mapped to Haste's names and layouts per layer and direction."""
    kind = "LSTM" if isinstance(layer, (rnnkern.LayerNormLSTM, rnnkern.LayerNormLSTMCell)) else "GRU"
    for (k, d), haste_grads in expected.items():
        end = suffix(k, d) if hasattr(layer, "num_layers") else ""
        ours = to_haste_arrays(kind, {name[:len(name) - len(end)]: g for name, g in dparams.items()
                                      if name.endswith(end)})
        assert set(ours) == set(haste_grads)
        for name, value in haste_grads.items():
            assert_close(ours[name], value, dtype, scale)


def check_layer(config, haste, grads, a, dtype, kernels, device="cpu"):
    """forward_train, backward and inference of the case's layer against the transcription's results."""
    kind = config["kind"]
    with use_cpu_kernels(kernels):
        layer = layer_of(config, haste, dtype, device)

    def on(name):
        return rnnkern.asarray(a[name].astype(dtype), device=device)

    def st(*names):
        return (on(names[0]), on(names[1])) if kind == "LSTM" else on(names[0])

    x, lengths = on("x"), a.get("lengths")
    y, state_n, tape = layer.forward_train(x, st("h0", "c0"), lengths, generator=config["seed"],
                                           recurrent_dropout=config["recurrent_dropout"])
    assert_close(y, a["y"], dtype)
    for ours, name in zip(parts(state_n), ("h_n", "c_n")):
        assert_close(ours, a[name], dtype)
    dx, dstate0, dparams = layer.backward(tape, on("dy"), st("dh_n", "dc_n"))
    assert list(dparams) == list(layer.state_dict())
    assert_close(dx, a["grad/x"], dtype)
    for ours, name in zip(parts(dstate0), ("grad/h0", "grad/c0")):
        assert_close(ours, a[name], dtype)
    assert_grads_in_haste_names(layer, dparams, grads, dtype)
    y_eval, state_eval = layer(x, st("h0", "c0"), lengths)
    assert_close(y_eval, a["y_eval"], dtype)
    for ours, name in zip(parts(state_eval), ("h_n_eval", "c_n_eval")):
        assert_close(ours, a[name], dtype)


def parts(state):
    return state if isinstance(state, tuple) else (state,)


def perturbed_layer(kind, zoneout, dtype, input_size=3, hidden_size=5, **options):
    """A LayerNormLSTM ("lstm") or LayerNormGRU with every parameter moved off its initialisation, so that
    every gamma, beta and bias matters."""
    cls = rnnkern.LayerNormLSTM if kind == "lstm" else rnnkern.LayerNormGRU
    layer = cls(input_size, hidden_size, zoneout=zoneout, dtype=dtype, seed=7, **options)
    rng = np.random.default_rng(1)
    layer.load_state_dict({k: v + rng.uniform(-0.3, 0.3, v.shape).astype(v.dtype)
                           for k, v in layer.state_dict().items()})
    return layer


def counting(monkeypatch, module, names):
    """The names of ``module``'s functions ``names`` as they are called, in order (a list that grows)."""
    calls = []
    for name in names:
        original = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, _f=original, _n=name: (calls.append(_n), _f(*a))[1])
    return calls
