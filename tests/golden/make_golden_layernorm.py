"""Write golden vectors of the layer-normalised LSTM and GRU into tests/golden/layernorm/: outputs and
autograd gradients of tests/layernorm_reference.py (an independent PyTorch transcription of Haste's
equations), float64. Needs torch; the tests do not.

    PYTHONPATH=tests python tests/golden/make_golden_layernorm.py

Each file is one case: ``config`` (JSON: kind, num_layers, bidirectional, batch_first, zoneout,
recurrent_dropout, dropout, the generator seed of forward_train, torch's version), Haste-layout
parameters ``haste/<layer>_<direction>/<name>``, the inputs ``x`` (the caller's layout), ``h0``
[, ``c0``], ``lengths``, the upstream gradients ``dy``, ``dh_n`` [, ``dc_n``], the training
forward's ``y``, ``h_n`` [, ``c_n``], inference's ``y_eval``, ``h_n_eval`` [, ``c_n_eval``], and
autograd's ``grad/x``, ``grad/h0`` [, ``grad/c0``], ``grad/<layer>_<direction>/<name>`` of
loss = sum(y * dy) + sum(h_n * dh_n) [+ sum(c_n * dc_n)].

The training masks are drawn here from numpy.random.default_rng(seed) by the documented rule
(rnnkern/_nn/layernorm_setup.py), written out independently: per layer, per direction,
DropConnect's ``rng.random((G*H, H)) >= p`` (rnnkern's W_hh layout, scaled by 1 / (1 - p)) then
zoneout's ``rng.random((T, B, H)) >= zoneout``; then dropout's ``rng.random((T, B, D*H)) >= p``
(scaled) after every layer but the last.
"""

import json
import pathlib

import numpy as np
import torch

import layernorm_reference as ref

OUT = pathlib.Path(__file__).resolve().parent / "layernorm"
SEED = 20261202
# kind, num_layers, bidirectional, batch_first, zoneout, recurrent_dropout, dropout, lengths, T, B, I, H
CASES = [
    ("LSTM", 1, False, False, 0.0, 0.0, 0.0, None, 5, 3, 3, 4),
    ("LSTM", 1, False, True, 0.3, 0.0, 0.0, [5, 2, 4], 5, 3, 3, 4),
    ("LSTM", 2, True, False, 0.25, 0.0, 0.3, [3, 5, 1], 5, 3, 2, 4),
    ("LSTM", 2, False, True, 0.2, 0.4, 0.0, None, 4, 2, 3, 5),
    ("LSTM", 1, False, False, 0.3, 0.3, 0.0, None, 1, 2, 3, 4),  # one step: the cell's case
    ("LSTM", 1, True, False, 0.0, 0.0, 0.0, [1], 1, 1, 1, 1),  # size 1 everywhere
    ("GRU", 1, False, False, 0.0, 0.0, 0.0, None, 5, 3, 3, 4),
    ("GRU", 1, False, True, 0.3, 0.0, 0.0, [5, 2, 4], 5, 3, 3, 4),
    ("GRU", 2, True, False, 0.25, 0.0, 0.3, [3, 5, 1], 5, 3, 2, 4),
    ("GRU", 2, False, True, 0.2, 0.4, 0.0, None, 4, 2, 3, 5),
    ("GRU", 1, False, False, 0.3, 0.3, 0.0, None, 1, 2, 3, 4),
    ("GRU", 1, True, False, 0.0, 0.0, 0.0, [1], 1, 1, 1, 1),
]
# rnnkern's gate block k sits at Haste's block HASTE_BLOCK[k] (and back: both orders swap two blocks)
HASTE_BLOCK = {"LSTM": (0, 2, 1, 3), "GRU": (1, 0, 2)}


def haste_params(rng, kind, I, H):
    G = (4 if kind == "LSTM" else 3) * H
    p = {"kernel": rng.standard_normal((I, G)) * 0.6, "recurrent_kernel": rng.standard_normal((H, G)) * 0.6,
         "bias": rng.standard_normal(G) * 0.3, "gamma": 1 + 0.3 * rng.standard_normal((2, G))}
    if kind == "LSTM":
        p["gamma_h"], p["beta_h"] = 1 + 0.3 * rng.standard_normal(H), 0.3 * rng.standard_normal(H)
    else:
        p["recurrent_bias"] = rng.standard_normal(G) * 0.3
    return p


def to_haste_mask(kind, mask, H):
    """DropConnect's mask in rnnkern's W_hh layout (G*H, H) -> Haste's recurrent_kernel layout (H, G*H)."""
    blocks = [mask[k * H:(k + 1) * H] for k in range(len(HASTE_BLOCK[kind]))]
    return np.concatenate([blocks[HASTE_BLOCK[kind][j]] for j in range(len(blocks))]).T


def draw_masks(kind, case, seed):
    _, L, bi, _, zoneout, rd, dropout, _, T, B, _, H = case
    G, D, rng = (4 if kind == "LSTM" else 3) * H, 2 if bi else 1, np.random.default_rng(seed)
    masks = {"zoneout": {}, "dropconnect": {}, "dropout": {}}
    for k in range(L):
        for d in range(D):
            if rd:
                keep = rng.random((G, H)) >= rd
                masks["dropconnect"][(k, d)] = torch.tensor(to_haste_mask(kind, keep / (1 - rd), H))
            if zoneout:
                masks["zoneout"][(k, d)] = torch.tensor((rng.random((T, B, H)) >= zoneout).astype(np.float64))
        if dropout and k < L - 1:
            masks["dropout"][k] = torch.tensor((rng.random((T, B, D * H)) >= dropout) / (1 - dropout))
    return masks


def compute_case(case, seed):
    """One case's arrays, keyed as the files are (``config`` a JSON string)."""
    kind, L, bi, batch_first, zoneout, rd, dropout, lengths, T, B, I, H = case
    rng, D = np.random.default_rng(seed), 2 if bi else 1
    params = {(k, d): {n: torch.tensor(v, requires_grad=True)
                       for n, v in haste_params(rng, kind, I if k == 0 else D * H, H).items()}
              for k in range(L) for d in range(D)}
    x = torch.tensor(rng.standard_normal((T, B, I)), requires_grad=True)
    h0 = torch.tensor(rng.standard_normal((L * D, B, H)) * 0.5, requires_grad=True)
    c0 = torch.tensor(rng.standard_normal((L * D, B, H)) * 0.5, requires_grad=True) if kind == "LSTM" else None
    lens = lengths or [T] * B
    masks = draw_masks(kind, case, seed + 1000)
    y, h_n, c_n = ref.layer(kind, params, x, h0, c0, lens, L, D, zoneout, masks, training=True)
    dy, dh_n = torch.tensor(rng.standard_normal(y.shape)), torch.tensor(rng.standard_normal(h_n.shape))
    dc_n = torch.tensor(rng.standard_normal(h_n.shape)) if c0 is not None else None
    loss = (y * dy).sum() + (h_n * dh_n).sum() + (0 if c_n is None else (c_n * dc_n).sum())
    loss.backward()
    with torch.no_grad():
        y_eval, h_eval, c_eval = ref.layer(kind, params, x, h0, c0, lens, L, D, zoneout, training=False)
    layout = (lambda a: a.transpose(0, 1)) if batch_first else (lambda a: a)
    config = dict(kind=kind, num_layers=L, bidirectional=bi, batch_first=batch_first, zoneout=zoneout,
                  recurrent_dropout=rd, dropout=dropout, seed=seed + 1000, torch=torch.__version__)
    out = {"config": np.array(json.dumps(config)), "x": layout(x).detach().numpy(), "h0": h0.detach().numpy(),
           "dy": layout(dy).numpy(), "dh_n": dh_n.numpy(), "y": layout(y).detach().numpy(),
           "h_n": h_n.detach().numpy(), "y_eval": layout(y_eval).numpy(), "h_n_eval": h_eval.numpy(),
           "grad/x": layout(x.grad).numpy(), "grad/h0": h0.grad.numpy()}
    if lengths is not None:
        out["lengths"] = np.array(lengths)
    if c0 is not None:
        out.update({"c0": c0.detach().numpy(), "dc_n": dc_n.numpy(), "c_n": c_n.detach().numpy(),
                    "c_n_eval": c_eval.numpy(), "grad/c0": c0.grad.numpy()})
    for (k, d), p in params.items():
        for name, value in p.items():
            out[f"haste/{k}_{d}/{name}"] = value.detach().numpy()
            out[f"grad/{k}_{d}/{name}"] = value.grad.numpy()
    return out


def case_file(index, case):
    np.savez_compressed(OUT / f"{index:02d}_{case[0].lower()}.npz", **compute_case(case, SEED + index))


if __name__ == "__main__":
    OUT.mkdir(exist_ok=True)
    for i, case in enumerate(CASES):
        case_file(i, case)
    print(f"wrote {len(CASES)} files to {OUT} with torch {torch.__version__}")
