"""Settings of the pytest-benchmark suite (``make bench-suite``), from environment variables:

    RNNKERN_BENCH_CONFIGS   configurations to run, comma-separated (default "small,default";
                            add "large" for the throughput one, which is slow on a CPU)
    RNNKERN_BENCH_DEVICE    cpu, gpu or auto (default auto)
    RNNKERN_BENCH_DTYPE     default float32
    RNNKERN_BENCH_ROUNDS    timed rounds per benchmark (default 5, after one warm-up round)

Select further with -k, e.g. ``-k "default and lstm and not article"``. Unlike ``rnnkern bench``,
pytest-benchmark times one contender after another, not in alternation, and on the GPU it times
wall clock around a synchronised call rather than with CUDA events.
"""

import os

import pytest

from rnnkern._bench import CONFIGS, BenchConfig, build_contenders

SELECTED_CONFIGS = [c.strip() for c in os.environ.get("RNNKERN_BENCH_CONFIGS", "small,default").split(",") if c.strip()]
DEVICE = os.environ.get("RNNKERN_BENCH_DEVICE", "auto")
DTYPE = os.environ.get("RNNKERN_BENCH_DTYPE", "float32")
ROUNDS = int(os.environ.get("RNNKERN_BENCH_ROUNDS", "5"))

unknown = set(SELECTED_CONFIGS) - set(CONFIGS)
if unknown:
    raise pytest.UsageError(f"RNNKERN_BENCH_CONFIGS: unknown configuration(s) {sorted(unknown)}; "
                            f"choose from {', '.join(CONFIGS)}")


def pytest_collection_modifyitems(config, items):
    """Skip (cheaply, with the reason) the benchmarks of configurations not selected."""
    for item in items:
        name = getattr(item, "callspec", None) and item.callspec.params.get("config")
        if name is not None and name not in SELECTED_CONFIGS:
            item.add_marker(pytest.mark.skip(reason=f"configuration {name!r} not selected "
                                                    f"(RNNKERN_BENCH_CONFIGS={','.join(SELECTED_CONFIGS)})"))


@pytest.fixture(scope="session")
def bench_rounds():
    return ROUNDS


@pytest.fixture(scope="session")
def bench_device():
    """The resolved device ("cpu" or "gpu"); a clear failure when the GPU was asked for and is unusable."""
    from rnnkern._backend import get_backend

    try:
        return get_backend(DEVICE).name
    except Exception as exc:
        pytest.fail(f"RNNKERN_BENCH_DEVICE={DEVICE}: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def built_contenders(bench_device):
    """build(config name, cell) -> (config, {name: Contender}, {name: why skipped}), the last one cached,
    so that the contenders of one configuration and cell share their weights and input."""
    cache = {}

    def build(config, cell):
        key = (config, cell)
        if key not in cache:
            cache.clear()
            cfg = BenchConfig(cell=cell, device=bench_device, dtype=DTYPE, **CONFIGS[config])
            contenders, skipped = build_contenders(cfg)
            cache[key] = (cfg, {c.name: c for c in contenders}, skipped)
        return cache[key]

    return build
