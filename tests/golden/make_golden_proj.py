"""Write golden vectors for LSTM with projections (``proj_size``) into tests/golden/proj/, with PyTorch's
torch.nn.LSTM and its autograd. Needs torch; the tests do not.

    python tests/golden/make_golden_proj.py

Each file is one case, computed by torch in the case's dtype:
    config          a 0-d JSON string: dtype, sizes (input_size, hidden_size, proj_size, seq_len, batch),
                    num_layers, bidirectional, batch_first, bias, batched, with_state, lengths, torch_version
    sd/<name>       the module's state_dict (weight_hr_l{k}[_reverse] included)
    x               the input: (T, B, I), (B, T, I) with batch_first, or (T, I) unbatched
    h0, c0          the initial state: (L*D, B, P) and (L*D, B, H) ((L*D, P), (L*D, H) unbatched); zeros in
                    a case with with_state false, which the tests then leave out (the layer's zero default)
    lengths         when the case runs packed sequences (pack_padded_sequence(enforce_sorted=False) and
                    pad_packed_sequence(total_length=T))
    y, h_n, c_n     the outputs
    dy, dh_n, dc_n  upstream gradients (standard normal)
    grad/x, grad/h0, grad/c0, grad/<param>   autograd's gradients of
                    loss = sum(y * dy) + sum(h_n * dh_n) + sum(c_n * dc_n)

Seeds are fixed; rerunning with the same PyTorch version rewrites identical files.
"""

import pathlib

import numpy as np
import torch
from golden_io import save_golden, write_cases

OUT = pathlib.Path(__file__).resolve().parent / "proj"
SEED = 20261127
TORCH_DTYPES = {"float32": torch.float32, "float64": torch.float64}

CASES = [  # name, dtype, num_layers, bidirectional, batch_first, bias, batched, with_state, lengths, H, P
    ("l1_uni", "float64", 1, False, False, True, True, False, None, 5, 2),
    ("l2_bi_lengths_state", "float64", 2, True, False, True, True, True, [3, 5, 1], 5, 3),
    ("l3_uni_batchfirst_lengths_state", "float32", 3, False, True, True, True, True, [5, 5, 2], 4, 1),
    ("l2_bi_batchfirst_nobias_state", "float64", 2, True, True, False, True, True, None, 6, 2),
    ("l1_bi_unbatched_state", "float64", 1, True, False, True, False, True, None, 5, 3),
    ("l2_uni_nobias_lengths", "float32", 2, False, False, False, True, False, [2, 5, 4], 5, 2),
    ("l2_bi_batchfirst_shortlengths_state", "float64", 2, True, True, True, True, True, [2, 4, 3], 4, 3),
    ("l1_uni_float32_state", "float32", 1, False, False, True, True, True, None, 6, 4),
]


def make_case(index, name, dtype, num_layers, bidirectional, batch_first, bias, batched, with_state, lengths,
              hidden_size, proj_size):
    torch.manual_seed(SEED + index)
    rng = np.random.default_rng(SEED + index)
    tdt = TORCH_DTYPES[dtype]
    T, B, I, D = 5, 3, 3, 2 if bidirectional else 1
    module = torch.nn.LSTM(I, hidden_size, num_layers, bias=bias, batch_first=batch_first,
                           bidirectional=bidirectional, proj_size=proj_size, dtype=tdt)
    lead = ((B, T) if batch_first else (T, B)) if batched else (T,)
    state_lead = (num_layers * D, B) if batched else (num_layers * D,)

    def tensor(shape, zeros=False):
        values = np.zeros(shape) if zeros else rng.standard_normal(shape)
        return torch.tensor(values, dtype=tdt, requires_grad=True)

    x = tensor((*lead, I))
    h0, c0 = tensor((*state_lead, proj_size), not with_state), tensor((*state_lead, hidden_size), not with_state)
    inp = x if lengths is None else torch.nn.utils.rnn.pack_padded_sequence(
        x, torch.tensor(lengths), batch_first=batch_first, enforce_sorted=False)
    y, (h_n, c_n) = module(inp, (h0, c0))
    if lengths is not None:
        y, _ = torch.nn.utils.rnn.pad_packed_sequence(y, batch_first=batch_first, total_length=T)
    dy, dh_n, dc_n = (torch.tensor(rng.standard_normal(t.shape), dtype=tdt) for t in (y, h_n, c_n))
    ((y * dy).sum() + (h_n * dh_n).sum() + (c_n * dc_n).sum()).backward()

    config = dict(module="LSTM", dtype=dtype, input_size=I, hidden_size=hidden_size, proj_size=proj_size,
                  num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first, bias=bias,
                  batched=batched, with_state=with_state, lengths=lengths, seq_len=T, batch=B,
                  torch_version=torch.__version__)
    arrays = {"x": x, "h0": h0, "c0": c0, "y": y, "h_n": h_n, "c_n": c_n, "dy": dy, "dh_n": dh_n, "dc_n": dc_n}
    if lengths is not None:
        arrays["lengths"] = np.asarray(lengths, dtype=np.int64)
    grads = {"x": x, "h0": h0, "c0": c0, **dict(module.named_parameters())}
    save_golden(OUT / f"lstm_proj_{index}_{name}.npz", config, module.state_dict(), arrays, grads)


def main():
    write_cases(torch, OUT, CASES, make_case)


if __name__ == "__main__":
    main()
