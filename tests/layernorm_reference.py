"""An independent PyTorch transcription of Haste's LayerNormLSTM / LayerNormGRU (lmnt-com/haste,
frameworks/pytorch/layer_norm_lstm.py and layer_norm_gru.py), for autograd's gradients.

Written in Haste's own layout and gate orders (kernel (I, G*H) used as x @ kernel; LSTM i, g, f, o;
GRU z, r, h), with F.layer_norm, one sequence at a time over only its valid steps (packed
semantics), stacked and bidirectional by composition. Slow, float64, and meant to be. Needs torch
(the golden script and the live tests import it; the golden tests do not).

Masks, as rnnkern draws them (rnnkern._nn.layernorm_setup) but given here explicitly:
``zoneout[(layer, d)]`` (T, B, H) 0/1, the mask of the step that reads x[t]; ``dropconnect[(layer,
d)]`` (H, G*H) in Haste's layout (R is multiplied by it); ``dropout[layer]`` (T, B, D*H) applied
to layer ``layer``'s output before the next layer reads it.
"""

import torch
import torch.nn.functional as F


def lstm_step(p, x, h, c, R):
    G = R.shape[1]
    v = F.layer_norm(x @ p["kernel"], (G,), weight=p["gamma"][0]) + \
        F.layer_norm(h @ R, (G,), weight=p["gamma"][1]) + p["bias"]
    i, g, f, o = torch.chunk(v, 4, -1)
    c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    H = c.shape[-1]
    h_new = torch.sigmoid(o) * torch.tanh(F.layer_norm(c_new, (H,), weight=p["gamma_h"], bias=p["beta_h"]))
    return h_new, c_new


def gru_step(p, x, h, R):
    G = R.shape[1]
    vx = torch.chunk(F.layer_norm(x @ p["kernel"], (G,), weight=p["gamma"][0]) + p["bias"], 3, -1)
    vh = torch.chunk(F.layer_norm(h @ R, (G,), weight=p["gamma"][1]) + p["recurrent_bias"], 3, -1)
    z = torch.sigmoid(vx[0] + vh[0])
    r = torch.sigmoid(vx[1] + vh[1])
    g = torch.tanh(vx[2] + r * vh[2])
    return z * h + (1 - z) * g


def _zone(h_prev, h_new, p, mask, training):
    if not p:
        return h_new
    if training:
        return (h_new - h_prev) * mask + h_prev
    return p * h_prev + (1 - p) * h_new


def run_sequence(kind, p, xs, h, c, zoneout, mask, R, training, reverse):
    """One sequence (n, I) through one direction: outputs (n, H) in time order, final (h, c)."""
    n = xs.shape[0]
    outs = [None] * n
    for t in (range(n - 1, -1, -1) if reverse else range(n)):
        x = xs[t:t + 1]
        if kind == "LSTM":
            h_new, c = lstm_step(p, x, h, c, R)
        else:
            h_new = gru_step(p, x, h, R)
        h = _zone(h, h_new, zoneout, None if mask is None else mask[t:t + 1], training)
        outs[t] = h[0]
    return torch.stack(outs), h, c


def layer(kind, params, x, h0, c0, lengths, num_layers, D, zoneout=0.0, masks=None, training=True):
    """params[(layer, d)]: Haste dicts of tensors; x (T, B, I); h0, c0 (L*D, B, H) (c0 None for the
    GRU); lengths: B ints. Returns y (T, B, D*H), h_n, c_n (None for the GRU)."""
    masks = masks or {}
    zone, drop_c, drop = masks.get("zoneout", {}), masks.get("dropconnect", {}), masks.get("dropout", {})
    T, B, _ = x.shape
    ys, hs, cs = [], [[None] * B for _ in range(num_layers * D)], [[None] * B for _ in range(num_layers * D)]
    for b in range(B):
        n = int(lengths[b])
        seq = x[:n, b]
        for k in range(num_layers):
            outs = []
            for d in range(D):
                i, p = k * D + d, params[(k, d)]
                R = p["recurrent_kernel"] * drop_c[(k, d)] if (k, d) in drop_c else p["recurrent_kernel"]
                mask = zone[(k, d)][:n, b] if (k, d) in zone else None
                out, h, c = run_sequence(kind, p, seq, h0[i, b:b + 1], None if c0 is None else c0[i, b:b + 1],
                                         zoneout, mask, R, training, reverse=d == 1)
                outs.append(out)
                hs[i][b], cs[i][b] = h[0], (None if c is None else c[0])
            seq = torch.cat(outs, dim=1)
            if k < num_layers - 1 and k in drop:
                seq = seq * drop[k][:n, b]
        ys.append(torch.cat([seq, seq.new_zeros((T - n, seq.shape[1]))]))
    y = torch.stack(ys, dim=1)
    h_n = torch.stack([torch.stack(row) for row in hs])
    c_n = None if c0 is None else torch.stack([torch.stack(row) for row in cs])
    return y, h_n, c_n
