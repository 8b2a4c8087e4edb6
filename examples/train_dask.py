"""Data-parallel training on Dask: each worker runs forward_train and backward on its shard of the
batch, the driver sums the shards' gradients and takes one optimiser step, and the new weights are
broadcast to every worker for the next step.

    python examples/train_dask.py [--workers 2] [--shards 2] [--steps 30] [--batch 256] [--address ADDR]

Without ``--address`` it starts a LocalCluster of ``--workers`` processes with one thread each; with
one it joins a running cluster (``dask-scheduler``, or dask-cuda's ``LocalCUDACluster`` with
``--device gpu``, one GPU per worker). The loss is the mean over every element of
0.5 * (y - target)^2; each shard returns the gradient of its own mean and its element count, and
the driver weights each shard by its share of the elements, so N shards give the gradient of the
whole batch (the same weights after any number of steps, within rounding; tests/test_dask.py).

What travels each step: the weights to every worker (scatter with broadcast=True), each shard's
data to one worker, and each shard's gradients back (as many numbers as the weights). It pays when
a shard's forward and backward take much longer than that traffic and the scheduler's round trip
(a few milliseconds): large batches and long sequences, a small model (README, "Scaling out").
"""

import argparse
import time

import numpy as np

import rnnkern


def regression_batch(rng, batch, steps, input_size, features):
    """x (T, B, input_size), lengths (B,) and a target (T, B, features): a squashed random projection
    of the running mean of the inputs, zero past each sequence's end (where the layer's output is
    zero too)."""
    x = rng.standard_normal((steps, batch, input_size))
    lengths = rng.integers(1, steps + 1, batch)
    projection = np.random.default_rng(1234).standard_normal((input_size, features)) / np.sqrt(input_size)
    running = np.cumsum(x, axis=0) / np.arange(1, steps + 1)[:, None, None]
    target = np.tanh(running @ projection)
    target[np.arange(steps)[:, None] >= lengths[None, :]] = 0.0
    return x, target, lengths


def shard_gradients(layer, x, target, lengths, generator=None):
    """On a worker: (the gradients of the shard's mean loss, that loss, the shard's element count)."""
    x, target = rnnkern.asarray(x, layer.device), rnnkern.asarray(target, layer.device)
    y, _, tape = layer.forward_train(x, lengths=lengths, generator=generator)
    error = y - target
    count = error.size
    _, _, grads = layer.backward(tape, error / count)  # d/dy of 0.5 * mean(error ** 2)
    return grads, 0.5 * float((error * error).sum()) / count, count


def combine(results):
    """The whole batch's mean-loss gradient and loss: each shard's weighted by its share of the elements."""
    total = sum(count for _, _, count in results)
    grads = {key: sum(shard[key] * (count / total) for shard, _, count in results) for key in results[0][0]}
    return grads, sum(loss * (count / total) for _, loss, count in results)


def shard_generator(seed, step, shard):
    """Dropout's masks for one shard at one step: reproducible, and new every step and shard (a
    worker's copy of the layer carries the driver's generator, which never advances)."""
    return np.random.default_rng((seed, step, shard))


def distributed_step(client, layer, optimizer, batch, shards, step=0, seed=0):
    """One step on the cluster: broadcast the weights, a task per shard, sum, step. Returns the loss."""
    x, target, lengths = batch
    weights = client.scatter(layer, broadcast=True, hash=False)  # the current weights, to every worker
    pieces = zip(np.array_split(x, shards, axis=1), np.array_split(target, shards, axis=1),
                 np.array_split(lengths, shards))
    data = client.scatter([tuple(piece) for piece in pieces], hash=False)  # one shard per worker, in turn
    futures = [client.submit(_shard_task, weights, part, shard_generator(seed, step, i), pure=False)
               for i, part in enumerate(data)]
    grads, loss = combine(client.gather(futures))
    optimizer.step(grads)
    return loss


def _shard_task(layer, part, generator):
    return shard_gradients(layer, *part, generator=generator)


def local_step(layer, optimizer, batch, step=0, seed=0):
    """The same step in this process, on the whole batch (the reference the test compares with)."""
    grads, loss = combine([shard_gradients(layer, *batch, generator=shard_generator(seed, step, 0))])
    optimizer.step(grads)
    return loss


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", help="a running scheduler's address (default: start a LocalCluster)")
    parser.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes (1 thread each)")
    parser.add_argument("--shards", type=int, default=None, help="shards per batch (default: --workers)")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--seq-len", type=int, default=50)
    parser.add_argument("--hidden-size", type=int, default=32)
    parser.add_argument("--device", default="cpu", choices=["cpu", "gpu"])
    args = parser.parse_args(argv)
    shards = args.shards or args.workers
    for name in ("workers", "steps", "batch", "seq_len", "hidden_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if not 1 <= shards <= args.batch:
        parser.error(f"--shards must lie in 1..--batch ({args.batch}), got {shards}")
    from distributed import Client, LocalCluster

    if args.address:
        client, cluster = Client(args.address), None
    else:
        cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=":0")
        client = Client(cluster)
    rng = np.random.default_rng(0)
    layer = rnnkern.GRU(4, args.hidden_size, num_layers=2, device=args.device, dtype="float64", seed=0)
    optimizer = rnnkern.optim.Adam(layer, lr=1e-2, clip_norm=1.0)
    print(f"training {layer} on {len(client.scheduler_info()['workers'])} workers, {shards} shards of a batch "
          f"of {args.batch}")
    try:
        for step in range(1, args.steps + 1):
            batch = regression_batch(rng, args.batch, args.seq_len, 4, args.hidden_size)
            start = time.perf_counter()
            loss = distributed_step(client, layer, optimizer, batch, shards, step)
            if step == 1 or step % 5 == 0:
                print(f"step {step:4d}  loss {loss:.5f}  {1e3 * (time.perf_counter() - start):.0f} ms")
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return loss


if __name__ == "__main__":
    main()
