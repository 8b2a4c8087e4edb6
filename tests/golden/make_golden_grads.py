"""Write golden gradients from PyTorch's autograd into tests/golden/grads/. Needs torch; the tests do not.

    python tests/golden/make_golden_grads.py

Each file is one case (float64): ``config`` (JSON string), ``sd/<name>`` (the module's weights),
``x``, ``h0`` [, ``c0``], ``lengths`` (when packed), the upstream gradients ``dy``, ``dh_n``
[, ``dc_n``] (for cells only ``dh_n`` [, ``dc_n``]: the gradient of the new state), and autograd's
``grad/x``, ``grad/h0`` [, ``grad/c0``] and ``grad/<param name>`` of
loss = sum(y * dy) + sum(h_n * dh_n) [+ sum(c_n * dc_n)].
"""

import json
import pathlib

import numpy as np
import torch

OUT = pathlib.Path(__file__).resolve().parent / "grads"
SEED = 20251125

LAYER_CASES = [  # kind, num_layers, bidirectional, batch_first, bias, lengths
    ("RNN", 1, False, False, True, None), ("RNN", 2, True, True, False, [5, 2, 4]),
    ("LSTM", 1, False, False, True, None), ("LSTM", 2, True, False, True, [3, 5, 1]),
    ("LSTM", 3, False, True, True, [5, 5, 2]), ("GRU", 1, True, False, True, None),
    ("GRU", 2, False, True, False, [1, 4, 5]), ("GRU", 2, True, True, True, [2, 5, 3]),
]
CELL_CASES = ["RNNCell", "LSTMCell", "GRUCell"]


def tensors(rng, *shapes):
    return [torch.tensor(rng.standard_normal(s), requires_grad=True) for s in shapes]


def write(name, config, module, inputs, upstream, grads):
    payload = {"config": np.array(json.dumps(config))}
    payload.update({f"sd/{k}": v.detach().numpy() for k, v in module.state_dict().items()})
    payload.update({k: v.detach().numpy() if isinstance(v, torch.Tensor) else np.asarray(v) for k, v in inputs.items()})
    payload.update({k: v.numpy() for k, v in upstream.items()})
    payload.update({f"grad/{k}": v.grad.numpy() for k, v in grads.items()})
    np.savez_compressed(OUT / f"{name}.npz", **payload)


def layer_case(index, kind, num_layers, bidirectional, batch_first, bias, lengths):
    torch.manual_seed(SEED + index)
    rng = np.random.default_rng(SEED + index)
    T, B, I, H, D = 5, 3, 3, 4, 2 if bidirectional else 1
    module = getattr(torch.nn, kind)(I, H, num_layers, bias=bias, batch_first=batch_first,
                                     bidirectional=bidirectional).double()
    x, h0, c0 = tensors(rng, (B, T, I) if batch_first else (T, B, I), (num_layers * D, B, H), (num_layers * D, B, H))
    inp = x if lengths is None else torch.nn.utils.rnn.pack_padded_sequence(
        x, torch.tensor(lengths), batch_first=batch_first, enforce_sorted=False)
    y, state = module(inp, (h0, c0) if kind == "LSTM" else h0)
    if lengths is not None:
        y, _ = torch.nn.utils.rnn.pad_packed_sequence(y, batch_first=batch_first, total_length=T)
    h_n, c_n = state if kind == "LSTM" else (state, None)
    dy, dh_n, dc_n = (torch.tensor(rng.standard_normal(s)) for s in (y.shape, h_n.shape, h_n.shape))
    loss = (y * dy).sum() + (h_n * dh_n).sum() + (0 if c_n is None else (c_n * dc_n).sum())
    loss.backward()
    config = dict(kind=kind, num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first, bias=bias)
    inputs = {"x": x, "h0": h0, **({"c0": c0} if kind == "LSTM" else {}),
              **({"lengths": lengths} if lengths is not None else {})}
    upstream = {"dy": dy, "dh_n": dh_n, **({"dc_n": dc_n} if kind == "LSTM" else {})}
    grads = {"x": x, "h0": h0, **({"c0": c0} if kind == "LSTM" else {}), **dict(module.named_parameters())}
    write(f"layer_{index}_{kind.lower()}", config, module, inputs, upstream, grads)


def cell_case(index, kind):
    torch.manual_seed(SEED + 100 + index)
    rng = np.random.default_rng(SEED + 100 + index)
    module = getattr(torch.nn, kind)(3, 4).double()
    x, h, c = tensors(rng, (2, 3), (2, 4), (2, 4))
    out = module(x, (h, c) if kind == "LSTMCell" else h)
    h_new, c_new = out if kind == "LSTMCell" else (out, None)
    dh, dc = (torch.tensor(rng.standard_normal((2, 4))) for _ in range(2))
    ((h_new * dh).sum() + (0 if c_new is None else (c_new * dc).sum())).backward()
    lstm = kind == "LSTMCell"
    write(f"cell_{kind.lower()}", {"kind": kind}, module,
          {"x": x, "h0": h, **({"c0": c} if lstm else {})},
          {"dh_n": dh, **({"dc_n": dc} if lstm else {})},
          {"x": x, "h0": h, **({"c0": c} if lstm else {}), **dict(module.named_parameters())})


if __name__ == "__main__":
    OUT.mkdir(exist_ok=True)
    for i, case in enumerate(LAYER_CASES):
        layer_case(i, *case)
    for i, kind in enumerate(CELL_CASES):
        cell_case(i, kind)
    print(f"wrote {len(LAYER_CASES) + len(CELL_CASES)} files to {OUT} with torch {torch.__version__}")
