"""to_onnx: exported models run in ONNX Runtime with rnnkern's outputs; from_onnx(to_onnx(layer))
gives back the same weights and options. Layers with issue 12's new options (reverse, peepholes,
activations, clip, input_forget, initial_state) need those options; RNNKERN_TEST_REFERENCE_LAYERS=1
runs every test here on tests/onnx_reference.ReferenceLayer instead (see test_onnx_import.py)."""

import os
import sys

import numpy as np
import pytest

import onnx_reference as ref
import rnnkern

onnx = pytest.importorskip("onnx")
from rnnkern._recurrences import activations as _activations
from rnnkern._interop import convert as _convert, onnx_import as _onnx  # noqa: E402

REFERENCE_LAYERS = os.environ.get("RNNKERN_TEST_REFERENCE_LAYERS") == "1"
TODAY = {"num_layers", "bias", "batch_first", "bidirectional", "nonlinearity", "linear_before_reset"}


def make_layer(op, input_size, hidden_size, seed=0, **options):
    if not REFERENCE_LAYERS:
        return getattr(rnnkern, op)(input_size, hidden_size, **options, seed=seed, dtype="float32")
    direction = options.get("direction", "bidirectional" if options.get("bidirectional") else "forward")
    base = {k: v for k, v in options.items() if k in TODAY}
    base["bidirectional"] = direction == "bidirectional"
    sd = getattr(rnnkern, op)(input_size, hidden_size, **base, seed=seed).state_dict()
    if options.get("peephole"):
        rng = np.random.default_rng(seed)
        sd.update({k.replace("weight_ih", "weight_p"): rng.uniform(-0.5, 0.5, 3 * hidden_size)
                   for k in list(sd) if k.startswith("weight_ih")})
    opts = {**options, **base, "input_size": input_size, "hidden_size": hidden_size}
    return ref.ReferenceLayer(_convert.LayerSpec(op, opts, sd), dtype="float32")


def import_layer(model, op, node=None):
    if REFERENCE_LAYERS:
        return ref.ReferenceLayer(_onnx.model_spec(model, op, node))
    return getattr(rnnkern, op).from_onnx(model, node)


def inputs_for(layer, rng, T=6, B=3, lengths=False, state=False):
    D = 2 if layer.bidirectional else 1
    x = rng.normal(size=(B, T, layer.input_size) if layer.batch_first else (T, B, layer.input_size)).astype(np.float32)
    feed = {"input": x}
    if lengths:
        feed["lengths"] = rng.integers(1, T + 1, B).astype(np.int32)
    if state:
        shape = (layer.num_layers * D, B, layer.hidden_size)
        feed["h_0"] = rng.normal(size=shape).astype(np.float32)
        if type(layer).__name__ == "LSTM" or getattr(layer, "op", None) == "LSTM":
            feed["c_0"] = rng.normal(size=shape).astype(np.float32)
    return feed


def check_against_ort(layer, lengths=False, state=False, seed=0, **export):
    pytest.importorskip("onnxruntime")
    model = layer.to_onnx(state_inputs=state, lengths_input=lengths, **export)
    feed = inputs_for(layer, np.random.default_rng(seed), lengths=lengths, state=state)
    got = dict(zip([o.name for o in model.graph.output], ref.run_ort(model, feed)))
    st = None
    if state:
        st = (feed["h_0"], feed["c_0"]) if "c_0" in feed else feed["h_0"]
    y, out_state = layer(feed["input"], st, lengths=None if not lengths else feed["lengths"].astype(np.int64))
    h, c = out_state if isinstance(out_state, tuple) else (out_state, None)
    np.testing.assert_allclose(got["output"], y, rtol=2e-5, atol=2e-5)
    np.testing.assert_allclose(got["h_n"], h, rtol=2e-5, atol=2e-5)
    if c is not None:
        np.testing.assert_allclose(got["c_n"], c, rtol=2e-5, atol=2e-5)
    return model


TODAY_LAYERS = [
    ("RNN", {}), ("RNN", {"nonlinearity": "relu", "num_layers": 2, "bidirectional": True}),
    ("RNN", {"bias": False, "batch_first": True}),
    ("GRU", {}), ("GRU", {"linear_before_reset": False, "num_layers": 3}),
    ("GRU", {"bidirectional": True, "batch_first": True, "num_layers": 2}),
    ("LSTM", {}), ("LSTM", {"num_layers": 2, "bidirectional": True}), ("LSTM", {"batch_first": True, "bias": False}),
]
NEW_LAYERS = [  # need issue 12's options on the layers
    ("RNN", {"direction": "reverse", "num_layers": 2}),
    ("RNN", {"activations": ["Affine"], "activation_alpha": [0.5], "activation_beta": [0.1], "clip": 1.5}),
    ("GRU", {"direction": "reverse", "linear_before_reset": False, "clip": 0.8}),
    ("GRU", {"bidirectional": True, "activations": ["HardSigmoid", "Softsign", "Sigmoid", "Elu"],
             "activation_alpha": [0.3, 0.2, 0.7]}),
    ("LSTM", {"peephole": True, "num_layers": 2}),
    ("LSTM", {"direction": "reverse", "peephole": True, "input_forget": True, "clip": 1.0}),
    ("LSTM", {"bidirectional": True, "activations": ["Sigmoid", "ScaledTanh", "ThresholdedRelu"],
              "activation_alpha": [0.9, 0.2], "activation_beta": [1.4], "batch_first": True}),
]
ALL_LAYERS = TODAY_LAYERS + NEW_LAYERS
IDS = [f"{op}-{i}{'-new' if i >= len(TODAY_LAYERS) else ''}" for i, (op, _) in enumerate(ALL_LAYERS)]


@pytest.mark.parametrize("op, options", ALL_LAYERS, ids=IDS)
@pytest.mark.parametrize("lengths, state", [(False, False), (True, True)])
def test_exported_model_matches_layer_in_onnx_runtime(op, options, lengths, state):
    layer = make_layer(op, 4, 5, seed=3, **options)
    check_against_ort(layer, lengths=lengths, state=state)


@pytest.mark.parametrize("op, options", ALL_LAYERS, ids=IDS)
def test_from_onnx_of_to_onnx_gives_the_same_layer(op, options):
    layer = make_layer(op, 4, 5, seed=4, **options)
    back = import_layer(layer.to_onnx(), op, node=list(range(layer.num_layers)))
    sd, sd_back = layer.state_dict(), back.state_dict()
    assert list(sd_back) == list(sd) or set(sd_back) == set(sd)
    for key in sd:
        np.testing.assert_array_equal(sd_back[key], sd[key], err_msg=key)
    names = ["num_layers", "bidirectional", "hidden_size", "input_size", "nonlinearity", "linear_before_reset",
             "direction", "activations", "clip", "input_forget"]
    for name in names:  # batch_first is the graph's layout: its nodes are layout=0 (ORT rejects layout=1)
        assert getattr(back, name, None) == getattr(layer, name, None), name


def test_exported_nodes_are_one_per_layer_and_named():
    layer = make_layer("LSTM", 3, 4, num_layers=3, bidirectional=True)
    model = layer.to_onnx()
    lstm = [n for n in model.graph.node if n.op_type == "LSTM"]
    assert [n.name for n in lstm] == ["LSTM_l0", "LSTM_l1", "LSTM_l2"]
    assert [o.name for o in model.graph.output] == ["output", "h_n", "c_n"]
    single = import_layer(model, "LSTM", node="LSTM_l1")
    np.testing.assert_array_equal(single.state_dict()["weight_ih_l0_reverse"],
                                  layer.state_dict()["weight_ih_l1_reverse"])


def test_initial_state_is_exported_as_initializers():
    """A layer's initial_state (issue 12) becomes each node's initial_h/initial_c."""
    rng = np.random.default_rng(5)
    layer = make_layer("GRU", 3, 4, num_layers=2, bidirectional=True)
    layer.initial_state = rng.normal(size=(4, 2, 4)).astype(np.float32)
    model = layer.to_onnx()
    x = rng.normal(size=(5, 2, 3)).astype(np.float32)
    if REFERENCE_LAYERS or "onnxruntime" in sys.modules or _has("onnxruntime"):
        got = ref.run_ort(model, {"input": x})
        y, h = layer(x)
        np.testing.assert_allclose(got[0], y, rtol=2e-5, atol=2e-5)
        np.testing.assert_allclose(got[1], h, rtol=2e-5, atol=2e-5)
    back = import_layer(model, "GRU", node=[0, 1])
    np.testing.assert_allclose(np.asarray(back.initial_state), layer.initial_state)


def _has(module):
    import importlib.util

    return importlib.util.find_spec(module) is not None


def test_alpha_beta_are_written_explicitly():
    """ORT reads a missing Affine/ScaledTanh/ThresholdedRelu parameter as 0: every one is written."""
    names = ["Affine", "LeakyRelu", "ScaledTanh", "HardSigmoid", "ThresholdedRelu", "Elu", "Tanh"]
    acts = _activations.bind(names, [0.5, 0.02], [0.3])  # what a layer holds, and to_onnx writes
    alpha = [a.alpha for a in acts if a.alpha is not None]
    beta = [a.beta for a in acts if a.beta is not None]
    assert alpha == [0.5, 0.02, 1.0, 0.2, 1.0, 1.0]
    assert beta == [0.3, 1.0, 0.5]


def test_export_writes_to_path_and_checks(tmp_path):
    layer = make_layer("GRU", 3, 4)
    path = tmp_path / "gru.onnx"
    model = layer.to_onnx(path, opset=17)
    assert onnx.load(str(path)) == model
    assert model.opset_import[0].version == 17
    onnx.checker.check_model(model)


def test_export_errors():
    with pytest.raises(ValueError, match="proj_size=2"):
        rnnkern.LSTM(3, 4, proj_size=2).to_onnx()
    with pytest.raises(ValueError, match="opset must be an int in 14"):
        rnnkern.GRU(3, 4).to_onnx(opset=7)


def test_missing_onnx_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match=r"rnnkern\[onnx\]"):
        rnnkern.GRU(3, 4).to_onnx()
    with pytest.raises(ImportError, match=r"rnnkern\[onnx\]"):
        rnnkern.LSTM.from_onnx("model.onnx")
