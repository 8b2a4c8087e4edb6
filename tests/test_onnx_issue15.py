"""ONNX round trips (issue 15, defect 4): from_onnx(to_onnx(layer)) of a batch_first layer stays
batch_first (to_onnx writes layout=0 nodes with a Transpose in front, as ONNX Runtime rejects layout=1,
and from_onnx recognises it; an explicit batch_first= overrides what the graph says), and to_onnx of a
float64 layer warns that ONNX Runtime runs these nodes in float32 only."""

import warnings

import numpy as np
import pytest

import rnnkern

onnx = pytest.importorskip("onnx")


def _layer(kind, **options):
    return getattr(rnnkern, kind)(3, 4, num_layers=2, bidirectional=True, seed=0, **options)


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_the_round_trip_of_a_batch_first_layer_is_batch_first(kind):
    layer = _layer(kind, batch_first=True)
    back = getattr(rnnkern, kind).from_onnx(layer.to_onnx(), node=[0, 1])
    assert back.batch_first
    x = np.random.default_rng(0).standard_normal((2, 5, 3)).astype("float32")  # B=2, T=5: shapes that
    np.testing.assert_array_equal(back(x)[0], layer(x)[0])                   # a time-major layer takes too


def test_the_round_trip_of_a_time_major_layer_stays_time_major():
    assert not rnnkern.GRU.from_onnx(_layer("GRU").to_onnx(), node=[0, 1]).batch_first


def test_an_inner_node_reads_the_time_major_output_of_the_node_before():
    model = _layer("LSTM", batch_first=True).to_onnx()
    assert not rnnkern.LSTM.from_onnx(model, node="LSTM_l1").batch_first


@pytest.mark.parametrize("batch_first", [False, True])
def test_an_explicit_batch_first_wins(batch_first):
    for source in (_layer("GRU", batch_first=True), _layer("GRU")):
        layer = rnnkern.GRU.from_onnx(source.to_onnx(), node=[0, 1], batch_first=batch_first)
        assert layer.batch_first is batch_first


def test_a_layout_1_node_is_batch_first_unless_told_otherwise():
    model = _layer("RNN").to_onnx()
    for node in model.graph.node:
        if node.op_type == "RNN":
            node.attribute.append(onnx.helper.make_attribute("layout", 1))
    assert rnnkern.RNN.from_onnx(model, node=0).batch_first
    assert not rnnkern.RNN.from_onnx(model, node=0, batch_first=False).batch_first


def test_batch_first_must_be_none_or_a_bool():
    with pytest.raises(TypeError, match=r"^GRU.from_onnx: batch_first must be None \(read it off the graph\), "
                                        r"True or False, got str 'yes'$"):
        rnnkern.GRU.from_onnx(_layer("GRU").to_onnx(), node=0, batch_first="yes")


def test_to_onnx_of_a_float64_layer_warns_that_onnx_runtime_runs_float32():
    with pytest.warns(UserWarning, match=r"^GRU.to_onnx: this layer is float64.* ONNX Runtime runs RNN, GRU and "
                                         r"LSTM nodes in float32 only") as record:
        rnnkern.GRU(2, 3, dtype="float64").to_onnx()
    assert record[0].filename == __file__  # the warning points at the caller's line
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rnnkern.GRU(2, 3).to_onnx()
