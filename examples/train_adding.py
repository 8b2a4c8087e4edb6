"""Train an LSTM on the adding problem (Hochreiter & Schmidhuber, 1997) and print the loss falling.

Each sequence holds T random numbers and two markers; the target is the sum of the two marked
numbers. Predicting the mean (1.0) gives a loss of about 0.167; learning brings it far below.

    python examples/train_adding.py [--device cpu|gpu|auto] [--steps 400] [--cell lstm|gru|rnn]
"""

import argparse

import numpy as np

import rnnkern


def adding_batch(rng, batch, steps):
    """x (T, B, 2): value and marker channels; y (B,): the sum of the two marked values."""
    values = rng.uniform(0, 1, (steps, batch))
    markers = np.zeros((steps, batch))
    first = rng.integers(0, steps // 2, batch)
    second = rng.integers(steps // 2, steps, batch)
    markers[first, np.arange(batch)] = markers[second, np.arange(batch)] = 1
    target = values[first, np.arange(batch)] + values[second, np.arange(batch)]
    return np.stack([values, markers], axis=-1), target


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", choices=["cpu", "gpu", "auto"])
    parser.add_argument("--cell", default="lstm", choices=["lstm", "gru", "rnn"])
    parser.add_argument("--steps", type=int, default=400, help="training steps (at least 1)")
    parser.add_argument("--seq-len", type=int, default=10, help="sequence length T (at least 2: two markers)")
    parser.add_argument("--hidden-size", type=int, default=32)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args(argv)
    for name, least in (("steps", 1), ("seq_len", 2), ("hidden_size", 1), ("batch", 1)):
        if getattr(args, name) < least:
            parser.error(f"--{name.replace('_', '-')} must be at least {least}, got {getattr(args, name)}")

    rng = np.random.default_rng(0)
    try:
        layer = getattr(rnnkern, args.cell.upper())(2, args.hidden_size, device=args.device, dtype="float64", seed=0)
    except rnnkern.DeviceUnavailableError as exc:
        parser.exit(1, f"{parser.prog}: --device {args.device}: {exc}\n")
    xp = layer.xp
    # a linear readout of the last hidden state, trained alongside the recurrent layer by one
    # optimiser: its parameters are named "rnn.weight_ih_l0", ..., "head.w", "head.b"
    head = {"w": rnnkern.asarray(rng.normal(0, 0.1, args.hidden_size), layer.device),
            "b": rnnkern.asarray(np.zeros(1), layer.device)}
    optimizer = rnnkern.optim.Adam({"rnn": layer, "head": head}, lr=1e-2, clip_norm=1.0)
    print(f"training {layer} on the adding problem, T={args.seq_len}")
    for step in range(1, args.steps + 1):
        x, target = adding_batch(rng, args.batch, args.seq_len)
        x, target = rnnkern.asarray(x, layer.device), rnnkern.asarray(target, layer.device)
        y, _, tape = layer.forward_train(x)
        last = y[-1]                                    # (B, H)
        prediction = last @ head["w"] + head["b"]
        error = prediction - target
        loss = float((error ** 2).mean())
        d_prediction = 2 * error / error.size
        dy = xp.zeros_like(y)
        dy[-1] = xp.outer(d_prediction, head["w"])
        _, _, dparams = layer.backward(tape, dy)
        optimizer.step({"rnn": dparams, "head": {"w": last.T @ d_prediction, "b": d_prediction.sum(keepdims=True)}})
        if step == 1 or step % 25 == 0:
            print(f"step {step:4d}  loss {loss:.4f}")
    return loss


if __name__ == "__main__":
    main()
