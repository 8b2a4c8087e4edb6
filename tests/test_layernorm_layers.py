"""LayerNormLSTM / LayerNormGRU and their cells: the layers' habits (cells looped = the layer, unbatched
input, state_dict, to_haste round trips, the optimisers, training masks from generator=, Haste's
initialisation) and clear errors. The numbers are checked against Haste's equations in
test_layernorm_golden.py."""

import json
import pathlib
import re

import numpy as np
import pytest

import rnnkern
from layernorm_cases import ln_backends
from rnnkern import optim
from rnnkern._backend import use_cpu_kernels

KINDS = ["LSTM", "GRU"]


def _layer(kind, *args, **kwargs):
    return getattr(rnnkern, "LayerNorm" + kind)(*args, **kwargs)


def _perturbed(module, seed=0):
    """The module with every parameter moved off Haste's initial values (gains 1, shifts 0)."""
    rng = np.random.default_rng(seed)
    module.load_state_dict({k: v + 0.3 * rng.standard_normal(v.shape) for k, v in module.state_dict().items()})
    return module


@pytest.mark.parametrize("kernels", ln_backends())
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("zoneout", [0.0, 0.3])
def test_a_loop_of_cells_is_the_layer(kind, zoneout, kernels):
    with use_cpu_kernels(kernels):
        layer = _perturbed(_layer(kind, 3, 5, zoneout=zoneout, dtype="float64", seed=1))
        cell = getattr(rnnkern, f"LayerNorm{kind}Cell").from_state_dict(
            {k[:-3]: v for k, v in layer.state_dict().items()}, zoneout=zoneout)
    rng = np.random.default_rng(2)
    x, h = rng.standard_normal((4, 2, 3)), rng.standard_normal((2, 5))
    st = (h, rng.standard_normal((2, 5))) if kind == "LSTM" else h
    y, st_n = layer(x, tuple(s[None] for s in st) if kind == "LSTM" else st[None])
    for t in range(4):
        st = cell(x[t], st)
        np.testing.assert_allclose(st[0] if kind == "LSTM" else st, y[t], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(st[1] if kind == "LSTM" else st, st_n[1][0] if kind == "LSTM" else st_n[0],
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_unbatched_is_a_batch_of_one(kind):
    layer = _perturbed(_layer(kind, 2, 3, 2, bidirectional=True, zoneout=0.2, dtype="float64", seed=3))
    x = np.random.default_rng(4).standard_normal((5, 2))
    y, st = layer(x)
    y1, st1 = layer(x[:, None])
    np.testing.assert_allclose(y, y1[:, 0], rtol=1e-14)
    assert (st[0] if kind == "LSTM" else st).shape == (4, 3)
    y_train, st_train, tape = layer.forward_train(x, generator=5)
    dx, dst0, dparams = layer.backward(tape, np.ones_like(y_train))
    assert dx.shape == x.shape and set(dparams) == set(layer.state_dict())


@pytest.mark.parametrize("kind", KINDS)
def test_state_dict_round_trips_and_to_haste(kind):
    layer = _perturbed(_layer(kind, 3, 4, 2, bidirectional=True, batch_first=True, dropout=0.1, zoneout=0.25,
                              seed=6))
    again = type(layer).from_state_dict(layer.state_dict(), batch_first=True, dropout=0.1, zoneout=0.25)
    x = np.random.default_rng(7).standard_normal((2, 5, 3)).astype("float32")
    np.testing.assert_array_equal(layer(x)[0], again(x)[0])
    assert repr(again) == repr(layer)
    single = _perturbed(_layer(kind, 3, 4, seed=8))
    rebuilt = type(single).from_haste(single.to_haste())
    for name, value in single.state_dict().items():
        np.testing.assert_array_equal(rebuilt.state_dict()[name], value)
    cell = getattr(rnnkern, f"LayerNorm{kind}Cell")(3, 4, seed=9)
    back = type(cell).from_haste(cell.to_haste()).state_dict()
    assert all(np.array_equal(back[k], v) for k, v in cell.state_dict().items())


def test_from_haste_reads_torch_tensors():
    torch = pytest.importorskip("torch")
    layer = _perturbed(_layer("GRU", 2, 3, dtype="float64", seed=10))
    haste = {k: torch.tensor(v) for k, v in layer.to_haste().items()}
    again = rnnkern.LayerNormGRU.from_haste(haste)
    assert again.dtype == np.float64
    np.testing.assert_array_equal(again.weight_hh_l0, layer.weight_hh_l0)


@pytest.mark.parametrize("kind", KINDS)
def test_haste_initialisation(kind):
    layer = _layer(kind, 3, 4, forget_bias=2.5, seed=11) if kind == "LSTM" else _layer(kind, 3, 4, seed=11)
    sd, H = layer.state_dict(), 4
    for k in range(layer.gates):
        block = sd["weight_hh_l0"][k * H:(k + 1) * H].astype(np.float64)
        np.testing.assert_allclose(block @ block.T, np.eye(H), atol=1e-6)
        assert np.abs(sd["weight_ih_l0"][k * H:(k + 1) * H]).max() <= np.sqrt(6 / (3 + H))
    assert (sd["layer_norm_ih_weight_l0"] == 1).all() and (sd["layer_norm_hh_weight_l0"] == 1).all()
    if kind == "LSTM":
        expected = np.zeros(4 * H)
        expected[H:2 * H] = 2.5  # the forget block, in the order i, f, g, o
        np.testing.assert_array_equal(sd["bias_l0"], expected)
        assert (sd["layer_norm_c_weight_l0"] == 1).all() and (sd["layer_norm_c_bias_l0"] == 0).all()
        assert layer.to_haste()["bias"][2 * H:3 * H].tolist() == [2.5] * H  # Haste's order i, g, f, o
    else:
        assert not sd["bias_ih_l0"].any() and not sd["bias_hh_l0"].any()
    np.testing.assert_array_equal(_layer(kind, 3, 4, seed=11).weight_hh_l0, sd["weight_hh_l0"])


@pytest.mark.parametrize("kind", KINDS)
def test_training_masks_come_from_the_generator(kind):
    layer = _perturbed(_layer(kind, 2, 3, zoneout=0.4, dtype="float64", seed=12))
    x = np.random.default_rng(13).standard_normal((6, 2, 2))
    first = layer.forward_train(x, generator=14, recurrent_dropout=0.3)[0]
    np.testing.assert_array_equal(first, layer.forward_train(x, generator=14, recurrent_dropout=0.3)[0])
    assert not np.array_equal(first, layer.forward_train(x, generator=15, recurrent_dropout=0.3)[0])
    # the layer's own generator: reproducible from the constructor's seed
    twin = _perturbed(_layer(kind, 2, 3, zoneout=0.4, dtype="float64", seed=12))
    np.testing.assert_array_equal(layer.forward_train(x)[0], twin.forward_train(x)[0])
    # zoneout 1 keeps the initial state at every step; 0 is the plain cell
    frozen = type(layer).from_state_dict(layer.state_dict(), zoneout=1.0)
    y, _, _ = frozen.forward_train(x, generator=0)
    assert not y.any()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("make_opt", [lambda m: optim.SGD(m, lr=0.05), lambda m: optim.Adam(m, lr=0.01)])
def test_optimisers_train_the_layer(kind, make_opt):
    layer = _layer(kind, 3, 4, 2, zoneout=0.1, dtype="float64", seed=16)
    opt = make_opt(layer)
    rng = np.random.default_rng(17)
    x, target = rng.standard_normal((5, 3, 3)), rng.standard_normal((5, 3, 4)) * 0.5
    losses = []
    for step in range(30):
        y, _, tape = layer.forward_train(x, generator=step, recurrent_dropout=0.1)
        losses.append(float(((y - target) ** 2).sum()))
        opt.step(layer.backward(tape, 2 * (y - target))[2])
    assert losses[-1] < 0.7 * losses[0]
    with pytest.raises(RuntimeError, match="parameters changed"):
        layer.backward(tape, np.ones_like(y))


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"LayerNormLSTM: zoneout must be a number in \[0, 1\], got 1.5"):
        rnnkern.LayerNormLSTM(2, 3, zoneout=1.5)
    with pytest.raises(TypeError, match="LayerNormGRU: zoneout must be a number"):
        rnnkern.LayerNormGRU(2, 3, zoneout="0.1")
    with pytest.raises(TypeError, match="unexpected keyword argument 'forget_bias'"):
        rnnkern.LayerNormGRU(2, 3, forget_bias=1.0)
    with pytest.raises(TypeError, match="forget_bias must be a finite number"):
        rnnkern.LayerNormLSTMCell(2, 3, forget_bias=float("nan"))
    layer = rnnkern.LayerNormLSTM(2, 3)
    with pytest.raises(ValueError, match=r"LayerNormLSTM.forward_train: recurrent_dropout must be a number in "
                                         r"\[0, 1\], got -0.1"):
        layer.forward_train(np.zeros((2, 1, 2), "float32"), recurrent_dropout=-0.1)
    with pytest.raises(ValueError, match="input must have 2 features"):
        layer(np.zeros((2, 1, 3), "float32"))
    haste = layer.to_haste()
    with pytest.raises(KeyError, match=r"LayerNormLSTM.from_haste: missing key\(s\) 'gamma_h'"):
        rnnkern.LayerNormLSTM.from_haste({k: v for k, v in haste.items() if k != "gamma_h"})
    with pytest.raises(ValueError, match=r"'gamma' must have shape \(2, 12\) \(Haste's layout\), got \(12,\)"):
        rnnkern.LayerNormLSTM.from_haste({**haste, "gamma": haste["gamma"][0]})
    with pytest.raises(ValueError, match=r"'recurrent_kernel' must have shape \(H, 4\*H\)"):
        rnnkern.LayerNormLSTM.from_haste({**haste, "recurrent_kernel": haste["recurrent_kernel"].T})
    with pytest.raises(ValueError, match="to_haste: Haste's layers have one layer and one direction"):
        rnnkern.LayerNormGRU(2, 3, 2).to_haste()
    with pytest.raises(TypeError, match="unexpected option"):
        rnnkern.LayerNormLSTM.from_state_dict(layer.state_dict(), forget_bias=2.0)
    with pytest.raises(KeyError, match="missing key"):
        rnnkern.LayerNormLSTM.from_state_dict({k: v for k, v in layer.state_dict().items() if k != "bias_l0"})


def test_bench_full_has_the_layernorm_row(capsys, tmp_path):
    from rnnkern import cli

    sizes = ["--seq-len", "2", "--batch", "2", "--input-size", "3", "--hidden-size", "4"]
    path = tmp_path / "bench.json"
    assert cli.main(["bench", "--device", "cpu", "--full", "--cell", "lstm", "--config", "small", *sizes,
                     "--repeat", "1", "--warmup", "0", "--pause", "0", "--variants", "rnnkern",
                     "--json", str(path)]) == 0
    out = capsys.readouterr().out
    table = out[out.index("LayerNormLSTM (Haste's cell"):].splitlines()
    rows = [line.split() for line in table[2:] if line.startswith(("inference", "training"))]
    assert {(r[0], r[4]) for r in rows} >= {(m, v) for m in ("inference", "training")
                                           for v in ("rnnkern", "numpy", "lstm")}
    records = [r for r in json.loads(path.read_text()) if r.get("cell") == "layernorm-lstm"]
    assert all(r["median_ms"] > 0 and r["ratio_to_lstm"] > 0 for r in records)


def test_readme_layernorm_example_runs():
    readme = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text()
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "# LayerNorm and zoneout cells" in b]
    namespace = {}
    exec(compile(block, "README.md", "exec"), namespace)
    assert namespace["y"].shape == (4, 30, 256) and namespace["h_n"].shape == (4, 4, 128)
    assert set(namespace["dparams"]) == set(namespace["enc"].state_dict())
    assert namespace["haste_like"]["kernel"].shape == (80, 768)
    assert namespace["gru"].hidden_size == 256


def test_parameters_as_attributes():
    layer = rnnkern.LayerNormLSTM(2, 3, dtype="float64")
    layer.layer_norm_c_bias_l0 = np.full(3, 0.5)
    assert (layer.state_dict()["layer_norm_c_bias_l0"] == 0.5).all()
    with pytest.raises(AttributeError, match="has no parameter 'layer_norm_c_weight_l1'"):
        layer.layer_norm_c_weight_l1 = np.ones(3)
    assert repr(rnnkern.LayerNormGRUCell(2, 3, zoneout=0.5)) == \
        "LayerNormGRUCell(2, 3, zoneout=0.5, device='cpu', dtype=float32)"
