"""The CPU's two kernel sets: numba's compiled fused steps (the default where numba imports) and the
NumPy ufunc steps (the fallback). The rest of the suite runs on the default; here both run, against
the float64 reference and finite differences, and the compiled activations are checked over the
whole float32 range."""

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import rnnkern
import reference
from conftest import assert_close
from finite_diff import central_differences, random_positions
from rnnkern._backend import cpu_backend, cpu_kernels_description, get_backend, numba_unavailable_reason
from rnnkern._recurrences.semantics import default_math

NO_NUMBA = numba_unavailable_reason()
requires_numba = pytest.mark.skipif(NO_NUMBA is not None, reason=f"numba: {NO_NUMBA}")
KERNELS = ["numpy", pytest.param("numba", marks=requires_numba)]

OPTIONS = [("RNN", {"nonlinearity": "tanh"}), ("RNN", {"nonlinearity": "relu"}), ("LSTM", {}),
           ("GRU", {"linear_before_reset": True}), ("GRU", {"linear_before_reset": False})]


@pytest.fixture(params=KERNELS)
def backend(request):
    return cpu_backend(request.param)


# --- activations -------------------------------------------------------------------------------
def _activations():
    from numba import njit

    from rnnkern._backend.numba import scalar as m

    @njit(**m.JIT)
    def apply(x, t32, s32, e32):
        for i in range(x.size):
            t32[i], s32[i], e32[i] = m.tanh32(x[i]), m.sigmoid32(x[i]), m.exp32(x[i])

    def run(x):
        out = [np.empty_like(x) for _ in range(3)]
        apply(x, *out)
        return out

    return run


@requires_numba
def test_float32_activations_over_the_whole_range():
    apply = _activations()
    # every 4099th bit pattern: all exponents, both signs, NaNs and infinities
    x = np.arange(0, 2**32, 4099, dtype=np.uint64).astype(np.uint32).view(np.float32)
    x = np.concatenate([x, np.float32([np.inf, -np.inf, np.nan, 0.0, -0.0, 88.0, 88.5, -87.0, -87.5, 9.0, 0.625])])
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        tanh, sigmoid, exp = apply(x)
    finite = np.isfinite(x)
    x64 = x[finite].astype(np.float64)
    assert not np.isnan(tanh[finite]).any() and not np.isnan(sigmoid[finite]).any()
    assert np.isnan(tanh[np.isnan(x)]).all() and np.isnan(sigmoid[np.isnan(x)]).all()
    assert np.isnan(exp[np.isnan(x)]).all()
    np.testing.assert_allclose(tanh[finite], np.tanh(x64), rtol=2e-7, atol=1e-37)
    np.testing.assert_allclose(sigmoid[finite], reference.sigmoid(x64), rtol=3e-7, atol=1e-37 + 6e-8)
    in_range = finite & (x > -87) & (x < 88)
    np.testing.assert_allclose(exp[in_range], np.exp(x[in_range].astype(np.float64)), rtol=2e-7)
    # exact saturation, and the limits of exp
    special = np.float32([np.inf, -np.inf, 3e38, -3e38, 20.0, -20.0])
    t, s, e = apply(special)
    assert t.tolist() == [1, -1, 1, -1, 1, -1]
    assert s.tolist() == [1, 0, 1, 0, 1, s[5]] and 0 <= s[5] < 3e-9
    assert e[0] == np.inf and e[1] == 0 and e[2] == np.inf and e[3] == 0


# --- each step against the NumPy steps in float64 ---------------------------------------------------
def _maths():
    """(id, CellMath): the defaults, and options that together use every activation in every slot, the
    clip (one that bites and one that never does), input_forget and peepholes (test_kernels_variant)."""
    from test_kernels_variant import LAYERS, make

    maths = [("rnn_tanh", default_math("RNN")), ("rnn_relu", default_math("RNN", "relu")),
             ("lstm", default_math("LSTM")), ("gru", default_math("GRU")),
             ("lstm_clip_1e30", default_math("LSTM")._replace(clip=1e30)),
             ("gru_clip_1e30", default_math("GRU")._replace(clip=1e30))]
    for case, (kind, options) in enumerate(LAYERS):
        variants = dict.fromkeys(v for v in make(kind, options)._semantics.maths if not v.is_default)
        maths += [(f"{kind.lower()}_layers{case}_{k}", v) for k, v in enumerate(variants)]
    return maths


MATHS = _maths()


def _steps(m):
    """(name, train, args builder) of each step of CellMath ``m``; a builder gets arg(width, out=False,
    gates=False), gates=True for gates in gate form (activations in (0, 1) with saves_activations)."""
    H = 4
    if m.kind == "RNN":
        return [("rnn_step", False, lambda a: (a(1), a(1), a(1, out=True))),
                ("rnn_step", True, lambda a: (a(1), a(1, out=not m.saves_activations), a(1, out=True))),
                ("rnn_backward", None, lambda a: (a(1, gates=True), a(1), a(1, out=True)))]
    if m.kind == "LSTM":
        def p(a):
            return a(3)[0].copy() if m.peephole else None
        return [("lstm_step", False, lambda a: (a(4), a(4), a(1), p(a), a(1, out=True), a(1, out=True))),
                ("lstm_step", True, lambda a: (a(4), a(4, out=True), a(1), p(a), a(1, out=True), a(1, out=True))),
                ("lstm_backward", None, lambda a: (a(4, gates=True), a(1), a(1), a(1), a(1), p(a), a(4, out=True),
                                                   a(1, out=True)))]
    return [("gru_step", None, lambda a: (a(3), a(3), a(1)[0], a(1), a(1, out=True))),
            ("gru_step", None, lambda a: (a(3), a(3), None, a(1), a(1, out=True))),
            ("gru_step", None, lambda a: (a(3), a(3, out=True), a(1)[0], a(1), a(1, out=True), a(1, out=True))),
            ("gru_step", None, lambda a: (a(3), a(3, out=True), None, a(1), a(1, out=True), a(1, out=True))),
            ("gru_backward", None, lambda a: (a(3, gates=True), a(1), a(1), a(1), a(3, out=True), a(3, out=True),
                                              a(1, out=True))),
            ("gru_reset", None, lambda a: (a(3), a(2, out=True), a(1), a(1, out=True))),
            ("gru_update", False, lambda a: (a(3), a(2), a(1), a(1), a(1, out=True))),
            ("gru_update", True, lambda a: (a(3), a(2, out=True), a(1, out=True), a(1), a(1, out=True))),
            ("gru_backward_update", None, lambda a: (a(2, gates=True)[:, H:], a(1, gates=True), a(1), a(1),
                                                     a(3, out=True), a(1, out=True))),
            ("gru_backward_reset", None, lambda a: (a(1, gates=True), a(1), a(1), a(3, out=True),
                                                    a(1, out=True)))]


@requires_numba
@pytest.mark.parametrize("m", [m for _, m in MATHS], ids=[name for name, _ in MATHS])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("strided", [False, True])
def test_each_compiled_step_matches_the_numpy_step_in_float64(m, dtype, strided):
    """Every step's outputs (and what a training step leaves in its inputs), forward and backward, for
    every CellMath above, contiguous and as strided column views (the bidirectional layers' outputs)."""
    B, H = 5, 4
    numba_backend, numpy_backend = cpu_backend("numba"), cpu_backend("numpy")
    for name, train, build in _steps(m):
        rng = np.random.default_rng(0)
        outputs = []

        def arg(width, out=False, gates=False):
            if gates and m.saves_activations:  # activations, as the forward leaves them
                wide = rng.uniform(0.05, 0.95, (B, 2 * width * H))
            else:
                wide = rng.standard_normal((B, 2 * width * H)) * 2
            array = wide[:, ::2] if strided else wide[:, :width * H]
            if out:
                outputs.append(id(array))
            return array

        args64 = build(arg)
        compared = [isinstance(a, np.ndarray) and id(a) in outputs for a in args64]
        args = [a.astype(dtype) if isinstance(a, np.ndarray) else a for a in args64]
        extra = {} if train is None else {"train": train}
        getattr(numba_backend, name)(m, *args, **extra)
        getattr(numpy_backend, name)(m, *args64, **extra)
        assert any(compared)
        for got, want, check in zip(args, args64, compared):
            if check:
                assert_close(got, want, dtype, scale=4)


@requires_numba
def test_the_default_options_module_is_the_generators_output():
    """_numba_options.py (the defaults compiled into _numba_steps) is what the one activation table
    generates for the defaults: rewrite it with python -m rnnkern._backend.numba.specialise."""
    from pathlib import Path

    from rnnkern._backend.numba import options as _numba_options, specialise as _numba_specialise

    assert Path(_numba_options.__file__).read_text() == _numba_specialise.default_options_source()


@requires_numba
def test_maths_share_modules_and_the_defaults_are_the_template():
    from rnnkern._backend.numba import specialise as _numba_specialise, steps as _numba_steps

    for kind in ("RNN", "LSTM", "GRU"):
        assert _numba_specialise.steps(default_math(kind)) is _numba_steps
    relu = _numba_specialise.steps(default_math("RNN", "relu"))
    assert relu is not _numba_steps and relu.SAVES_ACTIVATIONS and relu is _numba_specialise.steps(
        default_math("RNN", "relu"))
    clipped = default_math("LSTM")._replace(clip=1e30)
    assert _numba_specialise.steps(clipped) is _numba_specialise.steps(default_math("GRU")._replace(clip=1e30))
    assert not _numba_specialise.steps(clipped).SAVES_ACTIVATIONS


# --- layers on both kernel sets -------------------------------------------------------------------
@pytest.mark.parametrize("kind, options", OPTIONS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("bidirectional, lengths", [(False, None), (True, [5, 2, 4])])
def test_layers_match_the_reference_on_both_kernel_sets(backend, kind, options, dtype, bidirectional, lengths):
    T, B, I, H = 5, 3, 4, 6
    layer = getattr(rnnkern, kind)(I, H, 2, bidirectional=bidirectional, device=backend, dtype=dtype, seed=3,
                                   **options)
    assert get_backend(layer._backend) is backend
    rng = np.random.default_rng(1)
    x = rng.standard_normal((T, B, I)).astype(dtype)
    D = layer.num_directions
    h0 = rng.standard_normal((2 * D, B, H)).astype(dtype)
    state = (h0, h0 * 0.5) if kind == "LSTM" else h0
    lengths = None if lengths is None else np.array(lengths)
    y, state_n = layer(x, state, lengths)
    want_y, want_state = reference.layer(kind, layer.state_dict(), x, state, lengths, num_layers=2,
                                         bidirectional=bidirectional, **options)
    assert_close(y, want_y, dtype, scale=4)
    for got, want in zip(state_n if kind == "LSTM" else (state_n,), want_state if kind == "LSTM" else (want_state,)):
        assert_close(got, want, dtype, scale=4)
    y_train, _, _ = layer.forward_train(x, state, lengths)
    np.testing.assert_array_equal(y_train, y)


@pytest.mark.parametrize("kind, options", OPTIONS)
@pytest.mark.parametrize("bias", [True, False])
def test_gradients_match_finite_differences_on_both_kernel_sets(backend, kind, options, bias):
    T, B, I, H, eps = 4, 3, 2, 3, 1e-6
    rng = np.random.default_rng(7)
    layer = getattr(rnnkern, kind)(I, H, bias=bias, bidirectional=True, device=backend, dtype="float64", seed=2,
                                   **options)
    x = rng.standard_normal((T, B, I))
    lengths = np.array([4, 2, 3])
    w = rng.standard_normal((T, B, 2 * H))
    y, _, tape = layer.forward_train(x, None, lengths)
    dx, _, dparams = layer.backward(tape, w)

    def loss():
        return float((layer(x, None, lengths)[0] * w).sum())

    for array, grad in [(x, dx)] + [(dict(layer.named_parameters())[k], dparams[k]) for k in ("weight_hh_l0", "weight_ih_l0")]:
        positions = random_positions(array, 6, rng)
        numeric = central_differences(loss, array, eps, positions)
        for pos in positions:
            np.testing.assert_allclose(grad[pos], numeric[pos], rtol=1e-6, atol=1e-8)


# --- choosing the kernels ---------------------------------------------------------------------
@pytest.mark.parametrize("kernels", ["numpy", pytest.param("numba", marks=requires_numba)])
def test_environment_variable_picks_the_kernels(monkeypatch, kernels):
    monkeypatch.setenv("RNNKERN_CPU_KERNELS", kernels)  # read when a CPU backend is asked for, not at import
    assert cpu_kernels_description().startswith("NumPy ufuncs" if kernels == "numpy" else "numba ")
    assert get_backend("cpu") is cpu_backend(kernels) and rnnkern.GRU(2, 3).device == "cpu"
    assert type(rnnkern.GRU(2, 3)._backend).__name__ == ("NumpyBackend" if kernels == "numpy" else "NumbaBackend")


@pytest.mark.parametrize("kernels", ["numpy", pytest.param("numba", marks=requires_numba)])
def test_use_cpu_kernels_switches_in_process_and_wins_over_the_environment(monkeypatch, kernels):
    from rnnkern._backend import use_cpu_kernels

    other = "numba" if kernels == "numpy" else "numpy"
    monkeypatch.setenv("RNNKERN_CPU_KERNELS", other)
    before = get_backend("cpu")
    with use_cpu_kernels(kernels) as chosen:
        assert chosen is cpu_backend(kernels) is get_backend("cpu")
        layer = rnnkern.LSTM(3, 4, seed=0)
        assert layer._backend is chosen and cpu_kernels_description().startswith(
            "NumPy ufuncs" if kernels == "numpy" else "numba ")
        if kernels == "numpy" and NO_NUMBA is None:
            assert "use_cpu_kernels('numpy') chose them over numba" in cpu_kernels_description()
        with use_cpu_kernels("numpy"):  # blocks nest
            assert get_backend("cpu") is cpu_backend("numpy")
        assert get_backend("cpu") is chosen
    assert get_backend("cpu") is before  # the environment's choice again
    assert layer._backend is chosen  # a layer keeps the backend it was made with
    y, _ = layer(np.ones((2, 1, 3), "float32"))
    assert np.isfinite(y).all()


def test_use_cpu_kernels_refuses_a_bad_name_before_the_block():
    from rnnkern._backend import use_cpu_kernels

    before = get_backend("cpu")
    with pytest.raises(ValueError, match="must be 'numba' or 'numpy', got 'fortran'"):
        with use_cpu_kernels("fortran"):
            pass
    assert get_backend("cpu") is before


def test_importing_the_backends_picks_no_cpu_kernels():
    """Importing rnnkern (or its backends) imports neither numba nor CuPy, and an invalid
    RNNKERN_CPU_KERNELS fails only when the CPU backend is asked for. A fresh process: what an
    import does cannot be seen in one that imported it already."""
    code = ("import sys, rnnkern, rnnkern._backend as b, rnnkern.cli\n"
            "print(sorted(m for m in ('numba', 'llvmlite', 'cupy') if m in sys.modules))\n"
            "try:\n"
            "    b.get_backend('cpu')\n"
            "except ValueError as exc:\n"
            "    print(exc)")
    env = dict(os.environ, RNNKERN_CPU_KERNELS="fortran", PYTHONPATH=os.pathsep.join(sys.path))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["[]", "RNNKERN_CPU_KERNELS must be 'numba' or 'numpy', got 'fortran'"]


def test_bad_kernel_choice_is_a_clear_error():
    with pytest.raises(ValueError, match="RNNKERN_CPU_KERNELS must be 'numba' or 'numpy', got 'fortran'"):
        cpu_backend("fortran")


@requires_numba
def test_default_cpu_backend_is_numba_where_it_imports():
    if os.environ.get("RNNKERN_CPU_KERNELS") == "numpy":
        pytest.skip("RNNKERN_CPU_KERNELS=numpy chose the NumPy steps")
    assert cpu_kernels_description().startswith("numba ") and get_backend("cpu") is cpu_backend("numba")


# --- weights in the GEMM's layout ---------------------------------------------------------------
def test_host_weights_are_column_major_and_stay_so():
    layer = rnnkern.LSTM(3, 4, 2, bidirectional=True, seed=0)
    for name, p in layer.named_parameters():
        if p.ndim == 2:  # W^T, which the GEMMs multiply by, is C-contiguous
            assert p.T.flags.c_contiguous, name
    sd = layer.state_dict()
    assert all(v.flags.c_contiguous for v in sd.values())
    live = dict(layer.named_parameters())["weight_hh_l1_reverse"]
    x = np.random.default_rng(0).standard_normal((5, 2, 3)).astype("float32")
    y, _, tape = layer.forward_train(x)
    _, _, grads = layer.backward(tape, np.ones_like(y))
    rnnkern.optim.SGD(layer, lr=0.1).step(grads)
    assert dict(layer.named_parameters())["weight_hh_l1_reverse"] is live and live.T.flags.c_contiguous
    np.testing.assert_array_equal(live, sd["weight_hh_l1_reverse"] - 0.1 * grads["weight_hh_l1_reverse"])
    again = rnnkern.LSTM.from_state_dict(sd)
    assert all(np.array_equal(again.state_dict()[k], v) for k, v in sd.items())


# --- the input projection in chunks -------------------------------------------------------------
@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_long_sequence_memory_is_bounded_by_the_output_not_the_projection(kind, batch_first):
    """Inference keeps one chunk of the input projection, not G*H values per step (which for the
    LSTM was four times the output)."""
    import tracemalloc

    T, B, I, H = 20_000, 8, 4, 16
    layer = getattr(rnnkern, kind)(I, H, batch_first=batch_first, bidirectional=True, seed=1)
    x = np.random.default_rng(2).standard_normal((B, T, I) if batch_first else (T, B, I)).astype("float32")
    layer(np.ascontiguousarray(x[:, :5] if batch_first else x[:5]))  # compiles the kernels outside the trace
    tracemalloc.start()
    y, _ = layer(x)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert np.isfinite(y).all()
    assert peak < 1.2 * y.nbytes + 2_000_000, (peak, y.nbytes)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("lengths", [None, [700, 3, 650]])
def test_chunked_projection_matches_one_projection(monkeypatch, batch_first, lengths):
    """Chunks of a few steps (and a last, shorter chunk) give the layer's result (up to the GEMM's
    rounding, which depends on its row count), in both directions, with and without lengths."""
    from rnnkern._recurrences import sequence as _sequence

    layer = rnnkern.GRU(5, 7, 2, batch_first=batch_first, bidirectional=True, seed=4)
    shape = (3, 701, 5) if batch_first else (701, 3, 5)
    x = np.random.default_rng(3).standard_normal(shape).astype("float32")
    lengths = None if lengths is None else np.array(lengths)
    whole, _ = layer(x, lengths=lengths)
    monkeypatch.setattr(_sequence, "CHUNK_ROWS", 3 * 64)
    chunked, _ = layer(x, lengths=lengths)
    np.testing.assert_allclose(chunked, whole, rtol=1e-6, atol=1e-6)


# --- the compiled time loop -----------------------------------------------------------------------
LOOP_OPTIONS = OPTIONS + [("LSTM", {"clip": 1e30}), ("LSTM", {"clip": 0.5, "peephole": True}),
                          ("LSTM", {"input_forget": True, "activations": ["HardSigmoid", "Softsign", "Elu"]}),
                          ("GRU", {"clip": 1e30}), ("GRU", {"linear_before_reset": False, "clip": 0.5}),
                          ("RNN", {"activations": ["LeakyRelu"], "clip": 1.0})]


@requires_numba
@pytest.mark.parametrize("kind, options", LOOP_OPTIONS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("batch, batch_first", [(1, False), (4, True)])
def test_compiled_time_loop_equals_the_python_loop(monkeypatch, kind, options, dtype, batch, batch_first):
    from rnnkern._backend.numba import backend as _numba, blas as _numba_blas
    from rnnkern._recurrences import sequence as _sequence

    if not _numba_blas.AVAILABLE:
        pytest.skip("NumPy's BLAS is not scipy-openblas64: no compiled loop here")
    layer = getattr(rnnkern, kind)(3, 5, 2, bias=kind != "GRU", batch_first=batch_first, bidirectional=True,
                                   device=cpu_backend("numba"), dtype=dtype, seed=8, **options)
    shape = (batch, 9, 3) if batch_first else (9, batch, 3)
    x = np.random.default_rng(4).standard_normal(shape).astype(dtype)
    monkeypatch.setattr(_sequence, "CHUNK_ROWS", 4 * batch)  # several chunks, the last one shorter
    calls = []
    original = _numba.NumbaBackend.time_loop
    monkeypatch.setattr(_numba.NumbaBackend, "time_loop", lambda *a: calls.append(original(*a)) or calls[-1])
    compiled = layer(x)
    assert calls and all(calls)  # every layer and direction ran compiled
    used = len(calls)
    monkeypatch.setattr(_numba, "LOOP_MAX_BATCH", 0)
    python = layer(x)
    assert len(calls) == 2 * used and not any(calls[used:])  # and now none did
    rtol = 1e-6 if dtype == "float32" else 1e-13
    np.testing.assert_allclose(compiled[0], python[0], rtol=rtol, atol=1e-7)
    pairs = zip(compiled[1], python[1]) if kind == "LSTM" else [(compiled[1], python[1])]
    for got, want in pairs:
        np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-7)


def test_without_numba_the_numpy_steps_run_and_say_how_to_get_the_fast_ones():
    code = ("import sys; sys.modules['numba'] = None\n"  # import numba now raises ImportError
            "import numpy as np, rnnkern\n"
            "from rnnkern._backend import cpu_kernels_description, get_backend\n"
            "y, _ = rnnkern.LSTM(3, 4, seed=0)(np.ones((5, 2, 3), 'float32'))\n"
            "print(type(get_backend('cpu')).__name__, np.isfinite(y).all(), cpu_kernels_description())")
    env = {k: v for k, v in os.environ.items() if k != "RNNKERN_CPU_KERNELS"}
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "NumpyBackend True NumPy ufuncs; pip install 'rnnkern[fast]' for the fused numba kernels"
