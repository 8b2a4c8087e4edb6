"""Write the golden vectors in tests/golden/ with PyTorch (CPU). Needs torch; the tests do not.

    python tests/golden/make_golden.py            # rewrites tests/golden/cells/*.npz, layers/*.npz

Every file holds one case:
    config        a 0-d string array: the case's settings as JSON
    sd/<name>     the module's state_dict tensors, PyTorch names and layouts
    x             the input; for cells the inputs of ``steps`` successive calls,
                  (steps, B, I) or (steps, I) unbatched, each call's state being the previous output
    h0 [, c0]     the initial state, when the case passes one (absent: the module's zero default)
    lengths       layers only, when the case uses packed sequences
    h [, c]       cells: the state after each call, (steps, B, H) or (steps, H)
    y, h_n [, c_n]  layers: the output and the final state(s); for the unbatched case (config
                  "batched": false) x is (T, I), y (T, D*H), h0 and h_n (L*D, H)

Seeds are fixed; rerunning gives the same files (with the same PyTorch version).
"""

import json
import pathlib
import sys

import numpy as np
import torch

HERE = pathlib.Path(__file__).resolve().parent
SEED = 20240601
TORCH_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def save(path, config, sd, arrays):
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"config": np.array(json.dumps(config, sort_keys=True))}
    payload.update({f"sd/{k}": v.detach().numpy() for k, v in sd.items()})
    payload.update({k: (v.detach().numpy() if isinstance(v, torch.Tensor) else np.asarray(v))
                    for k, v in arrays.items()})
    np.savez_compressed(path, **payload)


# ---------------------------------------------------------------------- cells
CELL_KINDS = {  # file prefix -> (torch class, extra constructor kwargs)
    "rnn_tanh": (torch.nn.RNNCell, {"nonlinearity": "tanh"}),
    "rnn_relu": (torch.nn.RNNCell, {"nonlinearity": "relu"}),
    "lstm": (torch.nn.LSTMCell, {}),
    "gru": (torch.nn.GRUCell, {}),
}


def cell_cases():
    for kind in CELL_KINDS:
        for dtype in ("float32", "float64"):
            for bias in (True, False):
                for batched in (True, False):
                    for with_state in (True, False):
                        yield kind, dtype, bias, batched, with_state


def make_cell(index, kind, dtype, bias, batched, with_state):
    cls, kwargs = CELL_KINDS[kind]
    torch.manual_seed(SEED + index)
    input_size, hidden_size, batch, steps = 3, 4, 2, 3
    tdt = TORCH_DTYPES[dtype]
    cell = cls(input_size, hidden_size, bias=bias, dtype=tdt, **kwargs)
    lead = (steps, batch) if batched else (steps,)
    state_shape = lead[1:] + (hidden_size,)
    x = torch.randn(*lead, input_size, dtype=tdt)
    arrays = {"x": x}
    is_lstm = cls is torch.nn.LSTMCell
    state = None
    if with_state:
        h0 = torch.randn(*state_shape, dtype=tdt)
        arrays["h0"] = h0
        state = h0
        if is_lstm:
            c0 = torch.randn(*state_shape, dtype=tdt)
            arrays["c0"] = c0
            state = (h0, c0)
    hs, cs = [], []
    with torch.no_grad():
        for t in range(steps):
            out = cell(x[t], state)
            state = out
            if is_lstm:
                hs.append(out[0])
                cs.append(out[1])
            else:
                hs.append(out)
    arrays["h"] = torch.stack(hs)
    if is_lstm:
        arrays["c"] = torch.stack(cs)
    config = {"module": cls.__name__, "nonlinearity": kwargs.get("nonlinearity"), "dtype": dtype,
              "bias": bias, "batched": batched, "with_state": with_state, "input_size": input_size,
              "hidden_size": hidden_size, "steps": steps, "torch_version": torch.__version__}
    name = (f"{kind}_{dtype}_{'bias' if bias else 'nobias'}_{'batched' if batched else 'unbatched'}"
            f"_{'state' if with_state else 'nostate'}.npz")
    save(HERE / "cells" / name, config, cell.state_dict(), arrays)
    return name


# --------------------------------------------------------------------- layers
# A handful of configurations per module, chosen so that every option is covered, and in
# combination: depth 1-3, uni/bidirectional, batch_first, bias, lengths (including a batch
# whose longest sequence is shorter than T, and unsorted lengths), initial states; and one
# unbatched input.
LAYER_CONFIGS = [
    dict(name="l1_uni", num_layers=1, bidirectional=False, batch_first=False, bias=True,
         lengths=None, with_state=False, dtype="float32"),
    dict(name="l2_bi_lengths_state", num_layers=2, bidirectional=True, batch_first=False, bias=True,
         lengths=[2, 5, 1], with_state=True, dtype="float32"),
    dict(name="l3_uni_bf_nobias_state", num_layers=3, bidirectional=False, batch_first=True, bias=False,
         lengths=None, with_state=True, dtype="float64"),
    dict(name="l1_bi_bf_lengths", num_layers=1, bidirectional=True, batch_first=True, bias=True,
         lengths=[3, 1, 2], with_state=False, dtype="float64"),  # longest (3) < T (5)
    dict(name="l2_uni_nobias_lengths_state", num_layers=2, bidirectional=False, batch_first=False, bias=False,
         lengths=[4, 5, 2], with_state=True, dtype="float32"),
    dict(name="l3_bi_bf_lengths_state", num_layers=3, bidirectional=True, batch_first=True, bias=True,
         lengths=[5, 3, 1], with_state=True, dtype="float64"),
    dict(name="l2_bi_unbatched_state", num_layers=2, bidirectional=True, batch_first=False, bias=True,
         lengths=None, with_state=True, dtype="float32", batched=False),  # x (T, I), h0 (L*D, H)
]
LAYER_KINDS = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}


def make_layer(index, kind, cfg):
    cls = LAYER_KINDS[kind]
    torch.manual_seed(SEED + 1000 + index)
    input_size, hidden_size, batch, T = 3, 4, 3, 5
    tdt = TORCH_DTYPES[cfg["dtype"]]
    D = 2 if cfg["bidirectional"] else 1
    extra = {}
    if kind == "rnn":  # alternate the non-linearity over the configurations
        extra["nonlinearity"] = "relu" if index % 2 else "tanh"
    module = cls(input_size, hidden_size, num_layers=cfg["num_layers"], bias=cfg["bias"],
                 batch_first=cfg["batch_first"], bidirectional=cfg["bidirectional"], dtype=tdt, **extra)
    module.eval()
    batched = cfg.get("batched", True)
    shape = (batch, T, input_size) if cfg["batch_first"] else (T, batch, input_size)
    x = torch.randn(*(shape if batched else (T, input_size)), dtype=tdt)
    arrays = {"x": x}
    state = None
    state_shape = (cfg["num_layers"] * D,) + ((batch,) if batched else ()) + (hidden_size,)
    if cfg["with_state"]:
        h0 = torch.randn(*state_shape, dtype=tdt)
        arrays["h0"] = h0
        state = h0
        if kind == "lstm":
            c0 = torch.randn(*state_shape, dtype=tdt)
            arrays["c0"] = c0
            state = (h0, c0)
    with torch.no_grad():
        if cfg["lengths"] is None:
            y, state_n = module(x, state)
        else:
            lengths = torch.tensor(cfg["lengths"], dtype=torch.int64)
            arrays["lengths"] = lengths
            packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=cfg["batch_first"],
                                                             enforce_sorted=False)
            packed_y, state_n = module(packed, state)
            y, _ = torch.nn.utils.rnn.pad_packed_sequence(packed_y, batch_first=cfg["batch_first"],
                                                          total_length=T)
    arrays["y"] = y
    if kind == "lstm":
        arrays["h_n"], arrays["c_n"] = state_n
    else:
        arrays["h_n"] = state_n
    config = {k: v for k, v in cfg.items() if k != "name"}
    config.update(batched=batched, module=cls.__name__, input_size=input_size, hidden_size=hidden_size, seq_len=T,
                  batch=batch, torch_version=torch.__version__, **extra)
    name = f"{kind}_{cfg['name']}.npz"
    save(HERE / "layers" / name, config, module.state_dict(), arrays)
    return name


def main():
    torch.use_deterministic_algorithms(True)
    for folder in ("cells", "layers"):
        for old in (HERE / folder).glob("*.npz"):
            old.unlink()
    names = [make_cell(i, *case) for i, case in enumerate(cell_cases())]
    for kind in LAYER_KINDS:
        names += [make_layer(i, kind, cfg) for i, cfg in enumerate(LAYER_CONFIGS)]
    total = sum(p.stat().st_size for p in HERE.glob("*/*.npz"))
    print(f"wrote {len(names)} files, {total / 1024:.0f} KiB in all, with torch {torch.__version__}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
