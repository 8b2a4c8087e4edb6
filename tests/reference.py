"""Float64 reference implementations of the cells and sequence layers, written to be obviously correct.

These are transcriptions of the equations (PyTorch's documentation; ONNX for the
GRU variant with linear_before_reset=False), deliberately written differently
from the library: every gate gets its own weight matrices, sigmoid uses ``exp``,
layers loop over time one sequence at a time. Nothing is fused, nothing is done
in place, everything is float64. Slow, and meant to be.

Weights are PyTorch-layout: ``weight_ih`` (gates*H, I), ``weight_hh`` (gates*H, H),
``bias_ih`` / ``bias_hh`` (gates*H,), gate blocks in PyTorch's order (LSTM: i, f, g, o;
GRU: r, z, n). Inputs and states of the cells are 2-D: (batch, features). An LSTM with
projections (torch's proj_size P) has ``weight_hr`` (P, H) and ``weight_hh`` (4*H, P):
h = W_hr (o * tanh(c)), and h, h_0 and h_n have P features.
"""

import json
import pathlib

import numpy as np


def f64(a):
    return np.array(a, dtype=np.float64)


def sigmoid(a):
    """1 / (1 + exp(-a)) without overflow: exp is only ever taken of a non-positive number."""
    a = f64(a)
    e = np.exp(-np.abs(a))  # in (0, 1]
    return np.where(a >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def relu(a):
    return np.where(a > 0, a, 0.0)


def gate_params(sd, gates, suffix=""):
    """Split PyTorch's stacked tensors into per-gate (W_i, W_h, b_i, b_h); missing biases are zeros."""
    w_ih, w_hh = f64(sd["weight_ih" + suffix]), f64(sd["weight_hh" + suffix])
    H = w_hh.shape[0] // gates  # not w_hh.shape[1]: with proj_size that is the projection's width
    b_ih = f64(sd["bias_ih" + suffix]) if "bias_ih" + suffix in sd else np.zeros(gates * H)
    b_hh = f64(sd["bias_hh" + suffix]) if "bias_hh" + suffix in sd else np.zeros(gates * H)
    blocks = []
    for k in range(gates):
        rows = slice(k * H, (k + 1) * H)
        blocks.append((w_ih[rows], w_hh[rows], b_ih[rows], b_hh[rows]))
    return blocks


# ---------------------------------------------------------------------- cells
def rnn_cell(sd, x, h, nonlinearity="tanh", suffix=""):
    """h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh)."""
    ((W_i, W_h, b_i, b_h),) = gate_params(sd, 1, suffix)
    a = f64(x) @ W_i.T + b_i + f64(h) @ W_h.T + b_h
    return np.tanh(a) if nonlinearity == "tanh" else relu(a)


def lstm_cell(sd, x, h, c, suffix=""):
    """(h', c') of the LSTM; gate blocks i, f, g, o."""
    x, h, c = f64(x), f64(h), f64(c)
    (Wii, Whi, bii, bhi), (Wif, Whf, bif, bhf), (Wig, Whg, big, bhg), (Wio, Who, bio, bho) = gate_params(sd, 4, suffix)
    i = sigmoid(x @ Wii.T + bii + h @ Whi.T + bhi)
    f = sigmoid(x @ Wif.T + bif + h @ Whf.T + bhf)
    g = np.tanh(x @ Wig.T + big + h @ Whg.T + bhg)
    o = sigmoid(x @ Wio.T + bio + h @ Who.T + bho)
    c_new = f * c + i * g
    h_new = o * np.tanh(c_new)
    if "weight_hr" + suffix in sd:  # torch's LSTM with proj_size: h = W_hr (o * tanh(c))
        h_new = h_new @ f64(sd["weight_hr" + suffix]).T
    return h_new, c_new


def gru_cell(sd, x, h, linear_before_reset=True, suffix=""):
    """h' of the GRU; gate blocks r, z, n.

    linear_before_reset=True (PyTorch):  n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
    linear_before_reset=False (ONNX default, Cho et al.): n = tanh(W_in x + b_in + W_hn (r * h) + b_hn)
    """
    x, h = f64(x), f64(h)
    (Wir, Whr, bir, bhr), (Wiz, Whz, biz, bhz), (Win, Whn, bin_, bhn) = gate_params(sd, 3, suffix)
    r = sigmoid(x @ Wir.T + bir + h @ Whr.T + bhr)
    z = sigmoid(x @ Wiz.T + biz + h @ Whz.T + bhz)
    if linear_before_reset:
        n = np.tanh(x @ Win.T + bin_ + r * (h @ Whn.T + bhn))
    else:
        n = np.tanh(x @ Win.T + bin_ + (r * h) @ Whn.T + bhn)
    return (1.0 - z) * n + z * h


# --------------------------------------------------------------------- layers
def _run_direction(kind, sd, suffix, xs, h, c, options):
    """Run one sequence (xs: (steps, features)) through one direction of one layer, step by step.

    Returns the outputs (steps, H) and the final (h, c) (c is None but for the LSTM)."""
    outputs = []
    for x in xs:
        x = x[None, :]
        if kind == "LSTM":
            h, c = lstm_cell(sd, x, h, c, suffix)
        elif kind == "GRU":
            h = gru_cell(sd, x, h, options.get("linear_before_reset", True), suffix)
        else:
            h = rnn_cell(sd, x, h, options.get("nonlinearity", "tanh"), suffix)
        outputs.append(h[0])
    return np.array(outputs).reshape(len(xs), -1), h, c


def layer(kind, sd, x, state=None, lengths=None, num_layers=1, bidirectional=False, batch_first=False,
          **options):
    """A stacked, optionally bidirectional RNN / LSTM / GRU over a padded batch of sequences.

    kind: "RNN", "LSTM" or "GRU"; sd: a torch.nn.RNN/LSTM/GRU-style state_dict
    (weight_ih_l0, weight_hh_l0_reverse, ...). x: (T, B, I), or (B, T, I) when batch_first.
    state: None (zeros), h0 (L*D, B, H), or (h0, c0) for the LSTM.
    lengths: None (all T) or B ints in 1..T. Semantics of PyTorch's packed sequences and ONNX's
    sequence_lens: sequence b only uses its first lengths[b] steps; its outputs past that are
    zero; its final state is the state after its last valid step; the reverse direction starts
    at its last valid step. options: nonlinearity (RNN), linear_before_reset (GRU).

    Returns (y, h_n) or, for the LSTM, (y, (h_n, c_n)); y is (T, B, D*H) ((B, T, D*H) when
    batch_first), h_n and c_n are (L*D, B, H), index layer*D + direction.
    """
    x = f64(x)
    if batch_first:
        x = x.transpose(1, 0, 2)
    T, B, _ = x.shape
    D = 2 if bidirectional else 1
    H = f64(sd["weight_hh_l0"]).shape[1]  # the width of h: hidden_size, or the LSTM's proj_size
    C = f64(sd["weight_hh_l0"]).shape[0] // 4  # the LSTM's cell width (hidden_size)
    lengths = [T] * B if lengths is None else [int(n) for n in lengths]
    if kind == "LSTM":
        h0, c0 = (None, None) if state is None else (f64(state[0]), f64(state[1]))
    else:
        h0, c0 = (None if state is None else f64(state)), None
    if h0 is None:
        h0 = np.zeros((num_layers * D, B, H))
    if c0 is None and kind == "LSTM":
        c0 = np.zeros((num_layers * D, B, C))

    y = np.zeros((T, B, D * H))
    h_n = np.zeros((num_layers * D, B, H))
    c_n = np.zeros((num_layers * D, B, C)) if kind == "LSTM" else None
    for b in range(B):  # one sequence at a time, only its valid steps
        n = lengths[b]
        seq = x[:n, b, :]  # (n, features) input of the current layer
        for layer_index in range(num_layers):
            outs = []
            for d in range(D):
                k = layer_index * D + d
                suffix = f"_l{layer_index}" + ("_reverse" if d == 1 else "")
                h = h0[k, b][None, :]
                c = c0[k, b][None, :] if kind == "LSTM" else None
                steps = seq if d == 0 else seq[::-1]  # the reverse direction starts at step n-1
                out, h, c = _run_direction(kind, sd, suffix, steps, h, c, options)
                outs.append(out if d == 0 else out[::-1])
                h_n[k, b] = h[0]
                if kind == "LSTM":
                    c_n[k, b] = c[0]
            seq = np.concatenate(outs, axis=1)  # (n, D*H): the next layer's input
        y[:n, b, :] = seq  # steps n..T-1 stay zero
    if batch_first:
        y = y.transpose(1, 0, 2)
    return (y, (h_n, c_n)) if kind == "LSTM" else (y, h_n)


def rnn_layer(sd, x, state=None, lengths=None, num_layers=1, bidirectional=False, batch_first=False,
              nonlinearity="tanh"):
    return layer("RNN", sd, x, state, lengths, num_layers, bidirectional, batch_first, nonlinearity=nonlinearity)


def lstm_layer(sd, x, state=None, lengths=None, num_layers=1, bidirectional=False, batch_first=False):
    return layer("LSTM", sd, x, state, lengths, num_layers, bidirectional, batch_first)


def gru_layer(sd, x, state=None, lengths=None, num_layers=1, bidirectional=False, batch_first=False,
              linear_before_reset=True):
    return layer("GRU", sd, x, state, lengths, num_layers, bidirectional, batch_first,
                 linear_before_reset=linear_before_reset)


# --------------------------------------------------------------- golden files
GOLDEN_DIR = pathlib.Path(__file__).resolve().parent / "golden"


def golden_files(kind):
    """The golden .npz files of ``kind`` ("cells" or "layers"), sorted (written by golden/make_golden.py)."""
    return sorted((GOLDEN_DIR / kind).glob("*.npz"))


def load_golden(path):
    """(config dict, state_dict, other arrays) of one golden file."""
    with np.load(path, allow_pickle=False) as data:
        config = json.loads(str(data["config"]))
        sd = {k[len("sd/"):]: data[k] for k in data.files if k.startswith("sd/")}
        arrays = {k: data[k] for k in data.files if k != "config" and not k.startswith("sd/")}
    return config, sd, arrays
