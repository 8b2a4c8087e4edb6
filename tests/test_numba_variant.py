"""The numba kernels with ONNX's options (_backend/_numba_steps compiled for a CellMath by _numba_specialise)
against the NumPy backend, whole layers forward, forward_train and backward, for options covering every
activation, the clip, input_forget and peepholes (test_kernels_variant.LAYERS); and the compiled
combinations kept on disk, so that a second process compiles nothing."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from test_kernels_variant import LAYERS, make
from backend_swap import on_backend, run_everything
from rnnkern._backend import cpu_backend

pytest.importorskip("numba", reason="numba is not installed")


@pytest.fixture(scope="module")
def numpy_backend():
    from rnnkern._backend.numpy.steps import NumpyBackend
    return NumpyBackend()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", range(len(LAYERS)))
def test_numba_options_match_numpy(numpy_backend, case, dtype):
    kind, options = LAYERS[case]
    net = make(kind, options, dtype, seed=case)
    layers = [on_backend(net, numpy_backend), on_backend(net, cpu_backend("numba"))]
    rng = np.random.default_rng(case)
    x, lengths = (rng.standard_normal((5, 4, 3)) * 2).astype(dtype), [5, 2, 4, 1]
    tol = {"float32": 2e-5, "float64": 1e-12}[dtype]
    results = [run_everything(layer, x, lengths) for layer in layers]
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(theirs, ours, rtol=tol, atol=tol)


def test_each_combination_is_made_once_per_process():
    from rnnkern._backend.numba.specialise import steps

    m = make(*LAYERS[0])._semantics.maths[0]
    assert steps(m) is steps(m._replace()) and steps(m).CLIPPED and steps(m).PEEPHOLE


# A non-default GRU's forward and backward steps, then how each kernel it ran was compiled: numba's
# dispatcher counts per signature the machine code it loaded from disk (cache_hits) and what it compiled
# because the disk had nothing for it (cache_misses).
CHILD = """
import json, sys
import numpy as np
from rnnkern._recurrences.semantics import default_math
from rnnkern._backend import cpu_backend
from rnnkern._backend.numba.specialise import steps

m = default_math("GRU")._replace(clip=3.0)
bk, B, H = cpu_backend("numba"), 2, 3
r = np.random.default_rng(0)
gx, gh, h, dh = r.standard_normal((B, 3 * H)), r.standard_normal((B, 3 * H)), np.zeros((B, H)), np.ones((B, H))
ghn, h_out, dgx, dgh, direct = (np.empty((B, w * H)) for w in (1, 1, 3, 3, 1))
bk.gru_step(m, gx, gh, None, h, h_out, ghn)
bk.gru_backward(m, gh, ghn, h, dh, dgx, dgh, direct)
k = steps(m)
used = [k.gru_step_train, k.gru_backward]
print(json.dumps({"file": k.__file__, "hits": sum(sum(f.stats.cache_hits.values()) for f in used),
                  "misses": sum(sum(f.stats.cache_misses.values()) for f in used)}))
"""


def test_a_combination_compiled_once_is_loaded_from_disk_in_the_next_process(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path), PYTHONPATH=os.pathsep.join(sys.path))
    env.pop("RNNKERN_CPU_KERNELS", None)

    def run():
        out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True,
                             check=True, timeout=300).stdout
        return json.loads(out.strip().splitlines()[-1])

    first, second = run(), run()
    assert first["file"] == second["file"] and first["file"].startswith(str(tmp_path)), (first, second)
    assert first["misses"] == 2 and first["hits"] == 0, first  # compiled, and written to the cache
    assert second["misses"] == 0 and second["hits"] == 2, second  # loaded: nothing compiled


def test_where_no_folder_is_writable_a_combination_compiles_in_memory(monkeypatch, tmp_path):
    """A read-only install (test_readonly_install.py) cannot keep a generated module on disk: it is
    compiled in memory instead, once per process, and computes the same."""
    from rnnkern._recurrences.semantics import default_math
    from rnnkern._backend.numba import specialise as _numba_specialise

    blocked = tmp_path / "a-file"
    blocked.write_text("")
    monkeypatch.setattr(_numba_specialise, "cache_folder", lambda: blocked / "rnnkern")  # mkdir fails
    options = _numba_specialise.module_options(default_math("RNN")._replace(clip=0.5))
    module = _numba_specialise._module.__wrapped__(options)
    assert not hasattr(module, "__file__") and module.CLIPPED and not list(blocked.parent.glob("*.py"))
    x, h = np.array([[-2.0, 0.25, 3.0]]), np.empty((1, 3))
    module.rnn_step(x, np.zeros_like(x), h)
    np.testing.assert_allclose(h, np.tanh([[-0.5, 0.25, 0.5]]), rtol=1e-15)
