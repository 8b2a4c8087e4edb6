"""The GPU tests that run layers and cells with ONNX's options (test_semantics.py and
test_semantics_ort.py), as warm-up items for benchmarks/gpu_check.py.

Each combination of options compiles its own kernels (NVRTC) on first use, which would otherwise
happen one at a time inside the GPU suite. Running the very test functions, with the parameters
they take on the GPU, compiles exactly the kernels (variant, dtype and array shapes) the suite
will load from CuPy's disk cache; the warm-up runs them in parallel processes."""

import importlib

DTYPES = ("float32", "float64")  # the tests' dtype fixture (conftest.CPU_DTYPES); no float16 variants


def _values(function, name):
    """The values ``name`` takes in ``function``'s @pytest.mark.parametrize."""
    for mark in getattr(function, "pytestmark", []):
        if mark.name == "parametrize" and mark.args[0] == name:
            return list(mark.args[1])
    raise LookupError(f"{function.__name__} is not parametrized over {name!r}")


def items():
    """(dtype, module, function, keyword arguments) of every warm-up item, float32's first."""
    import test_semantics as sem
    import test_semantics_ort as ort

    def on_gpu(module, name, param, every=4):
        return [s for s in _values(getattr(module, name), param) if sem.runs_on_gpu(s, every)]
    rows = []
    for dtype in DTYPES:
        for name in ("test_random_configurations_match_the_reference", "test_hand_loop_of_cells_equals_the_layer"):
            rows += [(dtype, sem.__name__, name, {"seed": s, "dtype": dtype}) for s in on_gpu(sem, name, "seed")]
        rows += [(dtype, ort.__name__, "test_golden_ort_outputs", {"case": c, "dtype": dtype})
                 for c in on_gpu(ort, "test_golden_ort_outputs", "case", ort.GOLDEN_GPU_EVERY)]
    for name in ("test_gradients_match_finite_differences", "test_cell_gradients_match_finite_differences"):
        rows += [("float64", sem.__name__, name, {"seed": s}) for s in on_gpu(sem, name, "seed")]
    rows.append(("float64", sem.__name__, "test_proj_size_combines_with_activations_clip_and_input_forget", {}))
    return rows


def run(module, function, kwargs, backend):
    """Run one test function on ``backend`` (an assertion error there is the test's, reported again
    by the suite; the kernels it compiled stay cached)."""
    getattr(importlib.import_module(module), function)(device=backend, **kwargs)
