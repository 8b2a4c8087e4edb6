"""proj_size and dropout through the CuPy backend's code on a machine without a GPU: CupyBackend over
tests/kernel_host.py's fake cupy (NumPy arrays, the fused kernels compiled for the host) must give the
NumPy backend's results, forward, forward_train with dropout and backward. On a GPU the device-
parametrised tests in test_proj_size.py / test_dropout.py run the real thing."""


import numpy as np
import pytest

import kernel_host
import rnnkern
from backend_swap import on_backend, parts


@pytest.fixture(scope="module")
def host_backend(tmp_path_factory):
    if kernel_host.GXX is None:
        pytest.skip("g++ not found: the kernels' math cannot be compiled for the host")
    lib, _ = kernel_host.build(tmp_path_factory.mktemp("rnnkern_host_kernels_proj"))
    return kernel_host.host_backend(lib)




@pytest.mark.parametrize("cls,options", [(rnnkern.LSTM, {"proj_size": 2}), (rnnkern.GRU, {}),
                                         (rnnkern.RNN, {"nonlinearity": "relu"})])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cupy_backend_code_matches_numpy(host_backend, cls, options, dtype):
    net = cls(3, 6, 3, bidirectional=True, batch_first=True, dropout=0.3, dtype=dtype, seed=0, **options)
    other = on_backend(net, host_backend)
    rng = np.random.default_rng(0)
    x, lengths = rng.standard_normal((4, 5, 3)).astype(dtype), [5, 2, 4, 1]
    tol = {"float32": 2e-6, "float64": 1e-13}[dtype]
    results = []
    for layer in (net, other):
        y, state_n = layer(x, lengths=lengths)
        y_train, state_train, tape = layer.forward_train(x, lengths=lengths, generator=3)
        dx, dstate0, dparams = layer.backward(tape, np.ones_like(y_train), state_train)
        results.append((y, y_train, dx, *parts(state_n), *parts(dstate0), *dparams.values()))
    assert len(results[0]) == len(results[1])
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(theirs, ours, rtol=tol, atol=tol)
