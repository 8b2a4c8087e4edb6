"""rnnkern on Dask (issue 18): what 2 worker processes buy against 1, measured interleaved.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/dask_scaling.py forward
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/dask_scaling.py train

``forward``: ``rnnkern.dask.forward`` of an LSTM (float32) on a Dask array held by the workers
(generated and persisted there before timing; 4 chunks along the batch, 2 per worker of the larger
cluster), computing the last step's
output and h_n (small results: the workers do the work, the driver gathers B*H numbers), on two
LocalClusters alive side by side, 1 worker process and 2 (one thread each; distributed sets their
BLAS to one thread), and, for context, the layer on the whole in-memory batch in this process
(NumPy's BLAS with its default threads). Each round runs every contender once, in an order
rotated each round; prints medians and the median of the per-round ratios.

``train``: one data-parallel step of examples/train_dask.py (GRU, 2 layers, float64, Adam) on the
2-worker cluster with 2 shards, against the same step in this process on the whole batch, at a
small, a middle and a large batch: the step time and what travels per step (weights to each
worker, data, gradients back).

The load average (1 minute) is printed before and after each measurement: the machine is shared.
"""

import argparse
import importlib.util
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

import rnnkern

ROOT = Path(__file__).resolve().parents[1]


def _clusters(sizes):
    from distributed import Client, LocalCluster

    clients = {}
    for n in sizes:
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0")
        clients[n] = Client(cluster, set_as_default=False)
    return clients


def _rounds(contenders, rounds):
    """{name: [seconds per round]}: every contender once per round, the order rotated each round."""
    names, times = list(contenders), {name: [] for name in contenders}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            time.sleep(0.1)  # BLAS threads of the previous contender stop spinning
            start = time.perf_counter()
            contenders[name]()
            times[name].append(time.perf_counter() - start)
    return times


def _load():
    return f"{os.getloadavg()[0]:.2f}"


def forward(args):
    import dask.array as da
    import distributed

    import rnnkern.dask

    clients = _clusters((1, 2))
    print("worker BLAS threads (OPENBLAS_NUM_THREADS):",
          set(clients[2].run(lambda: os.environ.get("OPENBLAS_NUM_THREADS")).values()))
    layer = rnnkern.LSTM(args.input_size, args.hidden_size, seed=0)
    for batch in args.batch:
        chunks = max(1, batch // 4)
        x = da.random.default_rng(0).standard_normal((args.steps, batch, args.input_size), chunks=(-1, chunks, -1),
                                                     dtype="float32")
        local_x = x.compute()

        def on(client):
            on_workers = client.persist(x)  # the data lives on the workers before the clock starts
            distributed.wait(on_workers)
            y, (h_n, _) = rnnkern.dask.forward(layer, on_workers)
            return lambda: client.compute([y[-1], h_n], sync=True)

        contenders = {"1 worker": on(clients[1]), "2 workers": on(clients[2]), "in-process": lambda: layer(local_x)}
        for fn in contenders.values():
            fn()  # warm-up: imports and numba's cache in the workers
        before = _load()
        times = _rounds(contenders, args.rounds)
        ratio = statistics.median(a / b for a, b in zip(times["1 worker"], times["2 workers"]))
        ratio_local = statistics.median(a / b for a, b in zip(times["in-process"], times["2 workers"]))
        medians = "  ".join(f"{name} {statistics.median(t) * 1e3:8.1f} ms" for name, t in times.items())
        print(f"LSTM({args.input_size}, {args.hidden_size}) T={args.steps} B={batch} float32, 4 chunks: {medians}  "
              f"speedup 2 vs 1 worker {ratio:.2f}x, 2 workers vs in-process {ratio_local:.2f}x  "
              f"(load {before} -> {_load()}, {args.rounds} rounds)")
    for client in clients.values():
        client.shutdown()


def _example():
    path = ROOT / "examples" / "train_dask.py"
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module, path


def train(args):
    example, path = _example()
    client = _clusters((2,))[2]
    client.upload_file(str(path))
    rng = np.random.default_rng(0)
    for batch, steps, hidden in ((16, 20, 32), (256, 50, 64), (1024, 100, 64)):
        layers = {name: rnnkern.GRU(4, hidden, num_layers=2, dtype="float64", seed=0) for name in ("cluster", "local")}
        opts = {name: rnnkern.optim.Adam(layer, lr=1e-3) for name, layer in layers.items()}
        data = example.regression_batch(rng, batch, steps, 4, hidden)
        contenders = {
            "2 workers, 2 shards": lambda: example.distributed_step(client, layers["cluster"], opts["cluster"], data, 2),
            "in-process": lambda: example.local_step(layers["local"], opts["local"], data),
        }
        for fn in contenders.values():
            fn()
        before = _load()
        times = _rounds(contenders, args.rounds)
        ratio = statistics.median(a / b for a, b in zip(times["in-process"], times["2 workers, 2 shards"]))
        weights = sum(v.nbytes for v in layers["local"].state_dict().values())
        data_bytes = sum(a.nbytes for a in data)
        medians = "  ".join(f"{name} {statistics.median(t) * 1e3:8.1f} ms" for name, t in times.items())
        print(f"GRU(4, {hidden}, 2 layers) float64 B={batch} T={steps}: {medians}  speedup {ratio:.2f}x  "
              f"per step: weights {weights / 1e3:.0f} kB to each worker, gradients {weights / 1e3:.0f} kB back per "
              f"shard, data {data_bytes / 1e6:.2f} MB (load {before} -> {_load()}, {args.rounds} rounds)")
    client.shutdown()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["forward", "train"])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--batch", type=int, nargs="+", default=[64, 4096], help="forward's batch sizes")
    parser.add_argument("--steps", type=int, default=50, help="forward's sequence length")
    parser.add_argument("--input-size", type=int, default=32)
    parser.add_argument("--hidden-size", type=int, default=128)
    args = parser.parse_args(argv)
    print(f"{os.cpu_count()} CPUs, load average (1 min) {_load()}")
    (forward if args.what == "forward" else train)(args)


if __name__ == "__main__":
    main()
