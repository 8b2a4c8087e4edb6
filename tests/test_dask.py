"""rnnkern.dask.forward and the data-parallel example on a LocalCluster of worker processes (issue 18).

One cluster (2 worker processes, 1 thread each) serves the module: starting one takes seconds.
Skipped, with the reason, where dask or distributed is not installed (``pip install 'rnnkern[dask]'``).
"""

import importlib.util
import pathlib
import pickle
import re
import sys

import numpy as np
import pytest

import rnnkern

da = pytest.importorskip("dask.array", reason="rnnkern.dask needs dask: pip install 'rnnkern[dask]'")
distributed = pytest.importorskip("distributed", reason="the tests' cluster needs distributed: "
                                                        "pip install 'rnnkern[dask]'")
import dask  # noqa: E402

import rnnkern.dask  # noqa: E402
from conftest import requires_gpu  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "train_dask.py"
RTOL = 1e-12  # float64: the chunks' GEMMs round differently from the whole batch's, nothing more


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
    with cluster, distributed.Client(cluster) as client:
        yield client


@pytest.fixture(scope="module")
def example(client):
    """examples/train_dask.py, imported here and on the workers (client.upload_file), so that the
    tasks' references to its functions resolve there."""
    spec = importlib.util.spec_from_file_location(EXAMPLE.stem, EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    client.upload_file(str(EXAMPLE))
    yield module
    del sys.modules[spec.name]


# every layer kind: (class, constructor arguments)
KINDS = {
    "rnn-tanh": (rnnkern.RNN, {}),
    "rnn-relu-bidirectional": (rnnkern.RNN, {"nonlinearity": "relu", "bidirectional": True}),
    "lstm-2-layers-bidirectional": (rnnkern.LSTM, {"num_layers": 2, "bidirectional": True}),
    "lstm-proj": (rnnkern.LSTM, {"num_layers": 2, "proj_size": 3}),
    "lstm-batch-first-onnx": (rnnkern.LSTM, {"batch_first": True, "peephole": True, "clip": 2.0,
                                              "activations": ["HardSigmoid", "Tanh", "Softsign"]}),
    "gru": (rnnkern.GRU, {}),
    "gru-onnx-reverse-batch-first": (rnnkern.GRU, {"linear_before_reset": False, "direction": "reverse",
                                                   "batch_first": True}),
}
T, B, I, H = 6, 11, 4, 5


def _data(layer, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((B, T, I) if layer.batch_first else (T, B, I))
    return x, rng.integers(1, T + 1, B)


def _dask_x(layer, x, size=4):
    return da.from_array(x, chunks={0 if layer.batch_first else 1: size})


def _assert_outputs(got, expected):
    (y, state), (y_ref, state_ref) = got, expected
    states, refs = (state, state_ref) if isinstance(state_ref, tuple) else ((state,), (state_ref,))
    np.testing.assert_allclose(y, y_ref, rtol=RTOL, atol=RTOL)
    assert len(states) == len(refs)
    for s, ref in zip(states, refs):
        np.testing.assert_allclose(s, ref, rtol=RTOL, atol=RTOL)


@pytest.mark.parametrize("kind", list(KINDS))
def test_forward_on_the_cluster_equals_the_layer(client, kind):
    cls, options = KINDS[kind]
    layer = cls(I, H, dtype="float64", seed=1, **options)
    x, lengths = _data(layer)
    rng = np.random.default_rng(2)
    state_shape = (layer.num_layers * layer.num_directions, B, layer.proj_size or H)
    h0 = rng.standard_normal(state_shape)
    state = (h0, rng.standard_normal(state_shape[:2] + (H,))) if cls is rnnkern.LSTM else h0
    y, state_n = rnnkern.dask.forward(layer, _dask_x(layer, x), state, lengths)
    batch_axis = 0 if layer.batch_first else 1
    parts = state_n if isinstance(state_n, tuple) else (state_n,)
    assert y.chunks[batch_axis] == (4, 4, 3) and all(p.chunks[1] == (4, 4, 3) for p in parts)
    computed = client.compute([y, *parts], sync=True)
    got = (computed[0], tuple(computed[1:]) if isinstance(state_n, tuple) else computed[1])
    _assert_outputs(got, layer(x, state, lengths))


def test_the_layer_is_one_node_of_the_graph():
    """Every chunk's task depends on one node holding the layer; no task embeds a copy."""
    layer = rnnkern.LSTM(I, H, num_layers=2, dtype="float64", seed=3)
    x, lengths = _data(layer)
    y, (h_n, c_n) = rnnkern.dask.forward(layer, _dask_x(layer, x, size=2), lengths=lengths)
    graph = {key: task for array in (y, h_n, c_n) for key, task in dict(array.__dask_graph__()).items()}
    weights = layer.weight_hh_l1.tobytes(order="F")
    holding = [key for key, task in graph.items() if weights in pickle.dumps(task)]
    assert len(holding) == 1 and "rnnkern-lstm" in str(holding[0])
    runs = [key for key in graph if "rnnkern-forward" in str(key)]
    assert len(runs) == 6  # one per batch chunk, each depending on the layer's node
    assert all(holding[0] in graph[key].dependencies for key in runs)
    for arrays in ((y, h_n, c_n), (y,), (c_n,)):  # the graphs that dask sends, after its optimisations
        optimised = {key: task for a in dask.optimize(*arrays) for key, task in dict(a.__dask_graph__()).items()}
        assert sum(weights in pickle.dumps(task) for task in optimised.values()) == 1


def test_forward_with_the_local_schedulers_and_dask_inputs():
    """lengths and states as Dask arrays in other chunks (rechunked to x's), threads and sync."""
    layer = rnnkern.GRU(I, H, num_layers=2, bidirectional=True, dtype="float64", seed=4)
    x, lengths = _data(layer)
    h0 = np.random.default_rng(5).standard_normal((4, B, H))
    y, h_n = rnnkern.dask.forward(layer, _dask_x(layer, x, size=3), da.from_array(h0, chunks=(1, 5, 2)),
                                  da.from_array(lengths, chunks=2))
    for scheduler in ("threads", "sync"):
        _assert_outputs(dask.compute(y, h_n, scheduler=scheduler), layer(x, h0, lengths))


def test_initial_state_is_split_to_the_chunks():
    layer = rnnkern.RNN(I, H, dtype="float64", seed=6)
    x, lengths = _data(layer)
    layer.initial_state = np.random.default_rng(7).standard_normal((1, B, H))
    y, h_n = rnnkern.dask.forward(layer, _dask_x(layer, x), lengths=lengths)
    _assert_outputs(dask.compute(y, h_n, scheduler="sync"), layer(x, lengths=lengths))
    layer.initial_state = np.zeros((1, B - 1, H))
    with pytest.raises(ValueError, match=re.escape(f"layer.initial_state must have shape (num_layers * D, {B}, ")):
        rnnkern.dask.forward(layer, _dask_x(layer, x))


@pytest.mark.parametrize("batch_first", [False, True])
def test_unbatched_input_is_one_task(batch_first):
    layer = rnnkern.LSTM(I, H, batch_first=batch_first, dtype="float64", seed=8)
    x = np.random.default_rng(9).standard_normal((T, I))
    y, (h_n, c_n) = rnnkern.dask.forward(layer, da.from_array(x))
    assert y.shape == (T, H) and h_n.shape == c_n.shape == (1, H)
    _assert_outputs((y.compute(scheduler="sync"), tuple(dask.compute(h_n, c_n, scheduler="sync"))), layer(x))
    with pytest.raises(ValueError, match=re.escape("must be one chunk, got chunks ((3, 3), (4,)); rechunk it "
                                                   "with x.rechunk(-1)")):
        rnnkern.dask.forward(layer, da.from_array(x, chunks=(3, -1)))
    with pytest.raises(ValueError, match="lengths is only accepted with batched"):  # the layer's own check
        rnnkern.dask.forward(layer, da.from_array(x), lengths=[3])


class Doubled:
    """A layer-like object with the layers' call signature (as the LayerNorm layers will have)."""

    batch_first = False

    def __init__(self):
        self.inner = rnnkern.GRU(I, H, dtype="float64", seed=10)

    def __call__(self, x, state=None, lengths=None):
        y, h_n = self.inner(x, state, lengths)
        return 2 * y, h_n


def test_any_layer_with_the_call_signature():
    layer = Doubled()
    x, lengths = _data(layer)
    y, h_n = rnnkern.dask.forward(layer, _dask_x(layer, x), lengths=lengths)
    _assert_outputs(dask.compute(y, h_n, scheduler="sync"), layer(x, lengths=lengths))


@pytest.mark.parametrize("batch_first, chunks, fix", [
    (False, (2, 4, -1), "x.rechunk({0: -1, 2: -1})"),
    (True, (4, -1, 2), "x.rechunk({1: -1, 2: -1})"),
])
def test_chunks_along_another_axis_say_how_to_rechunk(batch_first, chunks, fix):
    layer = rnnkern.GRU(I, H, batch_first=batch_first, dtype="float64")
    x, _ = _data(layer)
    with pytest.raises(ValueError, match=re.escape(fix)) as info:
        rnnkern.dask.forward(layer, da.from_array(x, chunks=chunks))
    assert "chunked along its batch axis" in str(info.value)


@pytest.mark.parametrize("make, error, words", [
    (lambda layer, x: (layer, x, None, None), TypeError, "x must be a dask.array.Array, got ndarray"),
    (lambda layer, x: (rnnkern.GRUCell(I, H), da.from_array(x), None, None), TypeError, "got the cell GRUCell"),
    (lambda layer, x: (layer, da.from_array(x), np.zeros((1, B - 1, H)), None), ValueError,
     f"state must have shape (num_layers * D, {B}, features)"),
    (lambda layer, x: (layer, da.from_array(x), None, np.ones(B + 1, int)), ValueError,
     f"lengths must have shape ({B},)"),
    (lambda layer, x: (layer, da.from_array(x.astype("float32")), None, None), TypeError, "float32"),
    (lambda layer, x: (layer, da.from_array(x[..., :2]), None, None), ValueError, "input_size"),
    (lambda layer, x: (layer, da.from_array(x[:0]), None, None), ValueError,
     f"x must have at least one time step, got shape (0, {B}, {I})"),
    (lambda layer, x: (layer, da.from_array(x)[:, da.from_array(x[0, :, 0]) > 0], None, None), ValueError,
     "compute_chunk_sizes"),
])
def test_bad_arguments_fail_when_the_graph_is_built(make, error, words):
    layer = rnnkern.GRU(I, H, dtype="float64")
    x, _ = _data(layer)
    with pytest.raises(error, match=re.escape(words)):
        rnnkern.dask.forward(*make(layer, x))


def test_lengths_out_of_range_fail_in_the_task():
    layer = rnnkern.GRU(I, H, dtype="float64")
    x, lengths = _data(layer)
    lengths[-1] = T + 1
    y, h_n = rnnkern.dask.forward(layer, _dask_x(layer, x), lengths=lengths)
    with pytest.raises(ValueError, match=re.escape(f"lengths must lie in 1..{T}")):
        dask.compute(y, h_n, scheduler="sync")


@pytest.mark.parametrize("optimizer", ["SGD", "Adam"])
def test_data_parallel_training_equals_one_process(client, example, optimizer):
    """3 uneven shards (4, 4, 3 sequences) on 2 workers, 3 steps: the weights of the whole batch in
    one process, within float64 rounding."""
    def make():
        layer = rnnkern.GRU(3, H, num_layers=2, dtype="float64", seed=11)
        opt = (rnnkern.optim.SGD(layer, 0.5, momentum=0.9) if optimizer == "SGD"
               else rnnkern.optim.Adam(layer, lr=0.05))
        return layer, opt

    rng = np.random.default_rng(12)
    batches = [example.regression_batch(rng, B, T, 3, H) for _ in range(3)]
    sharded, sharded_opt = make()
    whole, whole_opt = make()
    for step, batch in enumerate(batches):
        loss = example.distributed_step(client, sharded, sharded_opt, batch, shards=3, step=step)
        reference = example.local_step(whole, whole_opt, batch, step=step)
        assert loss == pytest.approx(reference, rel=1e-12)
    start = rnnkern.GRU(3, H, num_layers=2, dtype="float64", seed=11).state_dict()
    for key, value in whole.state_dict().items():
        assert not np.allclose(value, start[key])  # training moved every weight
        np.testing.assert_allclose(sharded.state_dict()[key], value, rtol=1e-12, atol=1e-14, err_msg=key)


def test_readme_scaling_out_example():
    text = (ROOT / "README.md").read_text()
    (block,) = re.findall(r"```python\n(.*?)```", text[text.index("## Scaling out"):], re.S)[:1]
    namespace = {}
    exec(compile(block, "README.md", "exec"), namespace)
    assert namespace["y"].shape == (50, 1000, 40) and namespace["y"].chunks[1] == (250,) * 4
    assert namespace["last"].shape == (1000, 40) and namespace["h_n"].shape == (4, 1000, 20)
    lstm, x, lengths = namespace["lstm"], namespace["x"].compute(), namespace["lengths"]
    y_ref, (h_ref, _) = lstm(x, lengths=lengths)
    np.testing.assert_allclose(namespace["last"], y_ref[-1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(namespace["h_n"], h_ref, rtol=1e-5, atol=1e-6)


def test_example_runs_on_a_running_cluster(client, example, capsys):
    loss = example.main(["--address", client.scheduler.address, "--steps", "5", "--batch", "9", "--seq-len", "6",
                         "--hidden-size", "4", "--shards", "3"])
    out = capsys.readouterr().out
    assert "on 2 workers, 3 shards of a batch of 9" in out and "step    5  loss" in out
    assert np.isfinite(loss) and loss > 0


@pytest.mark.gpu
@requires_gpu
@pytest.mark.parametrize("kind", ["lstm-proj", "gru-onnx-reverse-batch-first"])
def test_cupy_chunks_run_the_gpu_layer(kind):
    """CuPy chunks through a GPU layer: CuPy results (meta and chunks), the GPU layer's own values."""
    import cupy

    cls, options = KINDS[kind]
    layer = cls(I, H, dtype="float64", seed=1, device="gpu", **options)
    x, lengths = _data(layer)
    x_gpu = cupy.asarray(x)
    y, state_n = rnnkern.dask.forward(layer, _dask_x(layer, x_gpu), lengths=lengths)
    assert isinstance(y._meta, cupy.ndarray)
    parts = state_n if isinstance(state_n, tuple) else (state_n,)
    computed = dask.compute(y, *parts, scheduler="sync")
    assert all(isinstance(a, cupy.ndarray) for a in computed)
    y_ref, state_ref = layer(x_gpu, lengths=lengths)
    refs = state_ref if isinstance(state_ref, tuple) else (state_ref,)
    for got, want in zip(computed, (y_ref, *refs)):
        np.testing.assert_allclose(cupy.asnumpy(got), cupy.asnumpy(want), rtol=RTOL, atol=RTOL)
    with pytest.raises(TypeError, match="is on device 'cpu' but the"):  # host chunks: the layer's own error
        rnnkern.dask.forward(layer, _dask_x(layer, x))
