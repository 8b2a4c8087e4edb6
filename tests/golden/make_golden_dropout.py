"""Write golden vectors for dropout between layers into tests/golden/dropout/, with PyTorch. Needs torch;
the tests do not.

    python tests/golden/make_golden_dropout.py

torch draws its dropout masks from its own RNG, which rnnkern cannot reproduce, so two kinds of case:

``masked`` (0 < p < 1): the masks are drawn here by rnnkern's documented rule (rnnkern/_recurrences/dropout.py:
``rng = np.random.default_rng(seed)``, then per dropped layer output in turn
``rng.random((T, B, D * H_out)) >= p``, time-major, the batch in the caller's order, scaled by
1 / (1 - p)) and torch runs the stack layer by layer: layer k is a one-layer torch.nn module holding
the full module's layer-k weights, reading layer k-1's output times its mask, exactly where torch's
own dropout sits (the output of every layer but the last; h_n and c_n never dropped). The script
checks first that this layer-by-layer stack with all-ones masks reproduces the full torch module.

``torch_p1`` (p = 1): torch's own module in training mode, whose dropout with p = 1 zeroes every
dropped element, so its result is deterministic; ``y_eval`` is the same module in eval mode.

Each file: ``config`` (JSON: module, options, dtype, sizes, num_layers, bidirectional, batch_first, bias,
batched, with_state, lengths, dropout, seed, kind, torch_version), ``sd/<name>``, ``x``, ``h0`` [, ``c0``]
(zeros, with with_state false), ``lengths``, ``masks`` (masked cases: (L-1, T, B, D*H_out)), ``y``,
``h_n`` [, ``c_n``], upstream gradients ``dy``, ``dh_n`` [, ``dc_n``] and autograd's ``grad/x``,
``grad/h0`` [, ``grad/c0``], ``grad/<param>`` of sum(y*dy) + sum(h_n*dh_n) [+ sum(c_n*dc_n)].
"""

import pathlib

import numpy as np
import torch
from golden_io import save_golden, write_cases

OUT = pathlib.Path(__file__).resolve().parent / "dropout"
SEED = 20261128
TORCH_DTYPES = {"float32": torch.float32, "float64": torch.float64}

CASES = [  # name, kind, module, options, dtype, L, bidirectional, batch_first, bias, batched, with_state, lengths, p
    ("lstm_l2", "masked", "LSTM", {}, "float64", 2, False, False, True, True, False, None, 0.5),
    ("gru_l3_bi_bf_lengths_state", "masked", "GRU", {}, "float64", 3, True, True, True, True, True, [3, 5, 2], 0.3),
    ("rnn_l2_bi_unbatched_state", "masked", "RNN", {"nonlinearity": "tanh"}, "float64", 2, True, False, False,
     False, True, None, 0.7),
    ("lstm_proj_l3_bi_bf_lengths_state", "masked", "LSTM", {"proj_size": 2}, "float64", 3, True, True, True, True,
     True, [4, 5, 1], 0.4),
    ("lstm_l2_float32_lengths", "masked", "LSTM", {}, "float32", 2, False, False, True, True, True, [5, 2, 4], 0.5),
    ("lstm_l2_bi_state_p1", "torch_p1", "LSTM", {}, "float64", 2, True, False, True, True, True, None, 1.0),
    ("gru_l3_bf_lengths_p1", "torch_p1", "GRU", {}, "float64", 3, False, True, True, True, False, [2, 5, 4], 1.0),
]


def run(module, x, state, lengths, batch_first, T):
    inp = x if lengths is None else torch.nn.utils.rnn.pack_padded_sequence(
        x, torch.tensor(lengths), batch_first=batch_first, enforce_sorted=False)
    y, state_n = module(inp, state)
    if lengths is not None:
        y, _ = torch.nn.utils.rnn.pad_packed_sequence(y, batch_first=batch_first, total_length=T)
    return y, state_n


def layer_by_layer(full, masks, x, h0, c0, lengths, batch_first, T):
    """torch's stack run one layer at a time, layer k's output times masks[k] (time-major) before layer k+1.
    Returns (y, h_n, c_n, {full parameter name: the one-layer module's parameter holding it})."""
    L, D = full.num_layers, 2 if full.bidirectional else 1
    lstm = isinstance(full, torch.nn.LSTM)
    hs, cs, params, inp = [], [], {}, x
    for k in range(L):
        options = dict(bias=full.bias, batch_first=batch_first, bidirectional=full.bidirectional,
                       dtype=full.weight_ih_l0.dtype)
        if lstm:
            options["proj_size"] = full.proj_size
        elif isinstance(full, torch.nn.RNN) and not isinstance(full, torch.nn.GRU):
            options["nonlinearity"] = full.nonlinearity
        one = type(full)(inp.shape[-1], full.hidden_size, 1, **options)
        with torch.no_grad():
            for name, param in one.named_parameters():
                param.copy_(getattr(full, name.replace("_l0", f"_l{k}")))
        params.update({name.replace("_l0", f"_l{k}"): param for name, param in one.named_parameters()})
        rows = slice(k * D, (k + 1) * D)
        y, state_n = run(one, inp, (h0[rows], c0[rows]) if lstm else h0[rows], lengths, batch_first, T)
        h_n, c_n = state_n if lstm else (state_n, None)
        hs.append(h_n)
        cs.append(c_n)
        if k < L - 1:
            mask = torch.tensor(masks[k], dtype=y.dtype)  # (T, B, F)
            if x.dim() == 2:
                mask = mask[:, 0]
            elif batch_first:
                mask = mask.transpose(0, 1)
            inp = y * mask
    return y, torch.cat(hs, dim=0), (torch.cat(cs, dim=0) if lstm else None), params


def make_case(index, name, kind, module_name, options, dtype, L, bidirectional, batch_first, bias, batched,
              with_state, lengths, p):
    torch.manual_seed(SEED + index)
    rng = np.random.default_rng(SEED + index)
    tdt = TORCH_DTYPES[dtype]
    T, B, I, H, D = 5, 3, 3, 4, 2 if bidirectional else 1
    H_out = options.get("proj_size") or H
    lstm = module_name == "LSTM"
    full = getattr(torch.nn, module_name)(I, H, L, bias=bias, batch_first=batch_first, dropout=p,
                                          bidirectional=bidirectional, dtype=tdt, **options)
    Bx = B if batched else 1
    lead = ((B, T) if batch_first else (T, B)) if batched else (T,)
    state_lead = (L * D, B) if batched else (L * D,)

    def tensor(shape, zeros=False):
        return torch.tensor(np.zeros(shape) if zeros else rng.standard_normal(shape), dtype=tdt, requires_grad=True)

    x = tensor((*lead, I))
    h0, c0 = tensor((*state_lead, H_out), not with_state), tensor((*state_lead, H), not with_state)
    seed = SEED + 1000 + index
    masks = None
    if kind == "masked":
        mask_rng = np.random.default_rng(seed)  # rnnkern's rule, rnnkern/_recurrences/dropout.py
        masks = np.stack([(mask_rng.random((T, Bx, D * H_out)) >= p) / (1 - p) for _ in range(L - 1)])
        ones = np.ones_like(masks)
        full.eval()
        y_full, state_full = run(full, x, (h0, c0) if lstm else h0, lengths, batch_first, T)
        y_check, h_check, _, _ = layer_by_layer(full, ones, x, h0, c0, lengths, batch_first, T)
        assert torch.allclose(y_full, y_check, atol=1e-6) and torch.allclose(
            state_full[0] if lstm else state_full, h_check, atol=1e-6), "layer-by-layer stack differs from torch"
        y, h_n, c_n, params = layer_by_layer(full, masks, x, h0, c0, lengths, batch_first, T)
    else:
        full.eval()
        with torch.no_grad():
            y_eval, _ = run(full, x, (h0, c0) if lstm else h0, lengths, batch_first, T)
        full.train()
        y, state_n = run(full, x, (h0, c0) if lstm else h0, lengths, batch_first, T)
        h_n, c_n = state_n if lstm else (state_n, None)
        params = dict(full.named_parameters())
    dy, dh_n = torch.tensor(rng.standard_normal(y.shape), dtype=tdt), torch.tensor(rng.standard_normal(h_n.shape),
                                                                                     dtype=tdt)
    loss = (y * dy).sum() + (h_n * dh_n).sum()
    arrays = {"x": x, "h0": h0, "y": y, "h_n": h_n, "dy": dy, "dh_n": dh_n}
    grads = {"x": x, "h0": h0, **params}
    if lstm:
        dc_n = torch.tensor(rng.standard_normal(c_n.shape), dtype=tdt)
        loss = loss + (c_n * dc_n).sum()
        arrays.update(c0=c0, c_n=c_n, dc_n=dc_n)
        grads["c0"] = c0
    loss.backward()
    if masks is not None:
        arrays["masks"] = masks.astype(dtype)
    else:
        arrays["y_eval"] = y_eval
    if lengths is not None:
        arrays["lengths"] = np.asarray(lengths, dtype=np.int64)
    config = dict(kind=kind, module=module_name, options=options, dtype=dtype, input_size=I, hidden_size=H,
                  num_layers=L, bidirectional=bidirectional, batch_first=batch_first, bias=bias, batched=batched,
                  with_state=with_state, lengths=lengths, dropout=p, seed=seed, seq_len=T, batch=B,
                  torch_version=torch.__version__)
    save_golden(OUT / f"dropout_{index}_{name}.npz", config, full.state_dict(), arrays, grads)


def main():
    write_cases(torch, OUT, CASES, make_case)


if __name__ == "__main__":
    main()
