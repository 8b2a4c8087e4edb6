"""rnnkern on Dask (issue 18): what 2 worker processes buy against 1, measured interleaved.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/dask_scaling.py forward
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/dask_scaling.py train

``forward``: ``rnnkern.dask.forward`` of an LSTM (float32) on a Dask array held by the workers
(generated and persisted there before timing; 4 chunks along the batch, 2 per worker of the larger
cluster), computing the last step's output and h_n (small results: the workers do the work, the
driver gathers B*H numbers), on two LocalClusters alive side by side, 1 worker process and 2 (one
thread each; distributed sets their BLAS to one thread), and, for context, the layer on the whole
in-memory batch in this process, with NumPy's BLAS on its default threads and on one.

``train``: one data-parallel step of examples/train_dask.py (GRU, 2 layers, float64, Adam) on the
2-worker cluster with 2 shards, against the same step in this process on the whole batch (BLAS on
its default threads, and on one), at a small, a middle and a large batch: the step time and what
travels per step (weights to each worker, data, gradients back).

Each round runs every contender once, in an order rotated each round; printed: medians, and the
median of the per-round ratios with their range.

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


class Timed:
    """A contender: ``fn``, run on ``client``'s cluster or in this process (client None)."""

    def __init__(self, fn, client=None):
        self.fn, self.client = fn, client
        self.wall, self.driver_cpu, self.worker_cpu = [], [], []

    def _cpu(self):
        workers = self.client.run(time.process_time) if self.client is not None else {}
        return time.process_time(), workers

    def run(self):
        """One timed call: wall clock; CPU seconds of this process (client, scheduler) and of the
        busiest worker, which do not depend on what else runs on the machine as the wall clock does."""
        time.sleep(0.1)  # BLAS threads of the previous contender stop spinning
        driver, workers = self._cpu()
        start = time.perf_counter()
        self.fn()
        self.wall.append(time.perf_counter() - start)
        driver_after, workers_after = self._cpu()
        self.driver_cpu.append(driver_after - driver)
        self.worker_cpu.append(max([workers_after[w] - t for w, t in workers.items()], default=0.0))

    def summary(self):
        med = statistics.median
        cpu = f", CPU {med(self.driver_cpu) * 1e3:.0f} ms here" + (
            f" + {med(self.worker_cpu) * 1e3:.0f} ms busiest worker" if self.client is not None else "")
        return f"{med(self.wall) * 1e3:.1f} ms{cpu}"


def _rounds(contenders, rounds):
    """Every contender once per round, the order rotated each round (after one warm-up call each)."""
    for contender in contenders.values():
        contender.fn()  # warm-up: imports and numba's cache in the workers, BLAS threads
    names = list(contenders)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            contenders[name].run()


def _ratios(numerators, denominators):
    """The median of per-round ratios, with their range: 'median (min-max)'."""
    ratios = sorted(a / b for a, b in zip(numerators.wall, denominators.wall))
    return f"{statistics.median(ratios):.2f}x ({ratios[0]:.2f}-{ratios[-1]:.2f})"


def _one_thread(fn):
    """``fn`` with this process's BLAS on one thread, as each worker's (distributed sets that)."""
    from threadpoolctl import threadpool_limits

    def limited():
        with threadpool_limits(1):
            return fn()
    return limited


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
            with client.as_current():
                distributed.wait(on_workers)
            y, (h_n, _) = rnnkern.dask.forward(layer, on_workers)
            return Timed(lambda: client.compute([y[-1], h_n], sync=True), client)

        contenders = {"1 worker": on(clients[1]), "2 workers": on(clients[2]),
                      "in-process": Timed(lambda: layer(local_x)),
                      "in-process 1 thread": Timed(_one_thread(lambda: layer(local_x)))}
        before = _load()
        _rounds(contenders, args.rounds)
        print(f"LSTM({args.input_size}, {args.hidden_size}) T={args.steps} B={batch} float32, 4 chunks "
              f"(load {before} -> {_load()}, {args.rounds} rounds):")
        for name, contender in contenders.items():
            print(f"  {name:20s} {contender.summary()}")
        print(f"  speedup of 2 workers: against 1 worker {_ratios(contenders['1 worker'], contenders['2 workers'])}, "
              f"in-process {_ratios(contenders['in-process'], contenders['2 workers'])}, in-process 1 thread "
              f"{_ratios(contenders['in-process 1 thread'], contenders['2 workers'])}")
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
            "2 workers, 2 shards": Timed(lambda: example.distributed_step(client, layers["cluster"], opts["cluster"],
                                                                          data, 2), client),
            "in-process": Timed(lambda: example.local_step(layers["local"], opts["local"], data)),
            "in-process 1 thread": Timed(_one_thread(lambda: example.local_step(layers["local"], opts["local"], data))),
        }
        before = _load()
        _rounds(contenders, args.rounds)
        weights = sum(v.nbytes for v in layers["local"].state_dict().values())
        print(f"GRU(4, {hidden}, 2 layers) float64 B={batch} T={steps} (load {before} -> {_load()}, {args.rounds} "
              f"rounds); per step: weights {weights / 1e3:.0f} kB to each worker, gradients {weights / 1e3:.0f} kB "
              f"back per shard, data {sum(a.nbytes for a in data) / 1e6:.2f} MB:")
        for name, contender in contenders.items():
            print(f"  {name:20s} {contender.summary()}")
        cluster = contenders["2 workers, 2 shards"]
        print(f"  speedup of 2 workers: against in-process {_ratios(contenders['in-process'], cluster)}, "
              f"in-process 1 thread {_ratios(contenders['in-process 1 thread'], cluster)}")
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
