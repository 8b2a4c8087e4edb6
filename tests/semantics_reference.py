"""A float64 reference of rnnkern's layers with ONNX's options, one sequence and step at a time.

Written from the ONNX operator specification (and ONNX Runtime's behaviour where the spec is
silent: see /work/coord/ISSUE12_API.md), independently of rnnkern's code: its own activation
formulas, rnnkern's (PyTorch's) weight names and gate orders (LSTM i, f, g, o; GRU r, z, n), the
peephole vector in ONNX's order (i, o, f). Checked against ONNX Runtime by test_semantics.py.
"""

import numpy as np


def _sig(x):
    return 1 / (1 + np.exp(-x))


def act(name, alpha=None, beta=None):
    """ONNX's activation ``name`` (canonical spelling) with alpha/beta already resolved."""
    a, b = alpha, beta
    return {
        "Sigmoid": _sig, "Tanh": np.tanh, "Relu": lambda x: np.maximum(x, 0),
        "HardSigmoid": lambda x: np.maximum(0, np.minimum(1, a * x + b)),
        "LeakyRelu": lambda x: np.where(x < 0, a * x, x),
        "ThresholdedRelu": lambda x: np.where(x > a, x, 0.0),
        "ScaledTanh": lambda x: a * np.tanh(b * x),
        "Elu": lambda x: np.where(x < 0, a * (np.exp(np.minimum(x, 0)) - 1), x),
        "Softsign": lambda x: x / (1 + np.abs(x)),
        "Softplus": lambda x: np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0),
        "Affine": lambda x: a * x + b,
    }[name]


TAKES = {"HardSigmoid": "ab", "LeakyRelu": "a", "ThresholdedRelu": "a", "ScaledTanh": "ab", "Elu": "a",
         "Affine": "ab"}
DEFAULT = {"HardSigmoid": (0.2, 0.5), "LeakyRelu": (0.01, None), "ThresholdedRelu": (1.0, None),
           "ScaledTanh": (1.0, 1.0), "Elu": (1.0, None), "Affine": (1.0, 0.0)}


def functions(names, alphas, betas):
    alphas, betas = list(alphas or ()), list(betas or ())
    out = []
    for name in names:
        a, b = DEFAULT.get(name, (None, None))
        if "a" in TAKES.get(name, "") and alphas:
            a = alphas.pop(0)
        if "b" in TAKES.get(name, "") and betas:
            b = betas.pop(0)
        out.append(act(name, a, b))
    return out


def _step(kind, x, h, c, W, R, bi, bh, p, fs, clip, input_forget, lbr):
    H = h.shape[-1]
    cl = (lambda v: np.clip(v, -clip, clip)) if clip else (lambda v: v)
    gx, gh = W @ x + bi, R @ h + bh
    if kind == "RNN":
        return fs[0](cl(gx + gh)), None
    if kind == "GRU":
        f, g = fs
        r = f(cl(gx[:H] + gh[:H]))
        z = f(cl(gx[H:2 * H] + gh[H:2 * H]))
        if lbr:
            n = g(cl(gx[2 * H:] + r * gh[2 * H:]))
        else:
            n = g(cl(gx[2 * H:] + R[2 * H:] @ (r * h) + bh[2 * H:]))
        return (1 - z) * n + z * h, None
    f, g, hf = fs
    a = gx + gh
    pi, po, pf = (p[:H], p[H:2 * H], p[2 * H:]) if p is not None else (0, 0, 0)
    i = f(cl(a[:H] + pi * c))
    fg = 1 - i if input_forget else f(cl(a[H:2 * H] + pf * c))
    c_new = fg * c + i * g(cl(a[2 * H:3 * H]))
    o = f(cl(a[3 * H:] + po * c_new))
    return o * hf(c_new), c_new


def run(kind, sd, x, *, num_layers=1, direction="forward", h0=None, c0=None, lengths=None,
        activations=None, activation_alpha=None, activation_beta=None, clip=None, input_forget=False,
        linear_before_reset=True):
    """(y (T, B, D*H), h_n, c_n) of a time-major input, float64."""
    sd = {k: np.asarray(v, np.float64) for k, v in sd.items()}
    x = np.asarray(x, np.float64)
    T, B, _ = x.shape
    D = 2 if direction == "bidirectional" else 1
    H = sd["weight_hh_l0"].shape[1]
    per = {"RNN": 1, "GRU": 2, "LSTM": 3}[kind]
    defaults = {"RNN": ["Tanh"], "GRU": ["Sigmoid", "Tanh"], "LSTM": ["Sigmoid", "Tanh", "Tanh"]}
    names = list(activations or defaults[kind])
    if len(names) == per:
        names = names * D
    fs = functions(names, activation_alpha, activation_beta)
    lengths = np.full(B, T) if lengths is None else np.asarray(lengths)
    h0 = np.zeros((num_layers * D, B, H)) if h0 is None else np.asarray(h0, np.float64)
    c0 = np.zeros((num_layers * D, B, H)) if c0 is None else np.asarray(c0, np.float64)
    h_n, c_n = np.zeros_like(h0), np.zeros_like(c0)
    inp = x
    for layer in range(num_layers):
        y = np.zeros((T, B, D * H))
        for d in range(D):
            sfx = f"_l{layer}" + ("_reverse" if d else "")
            W, R = sd["weight_ih" + sfx], sd["weight_hh" + sfx]
            bi = sd.get("bias_ih" + sfx, np.zeros(W.shape[0]))
            bh = sd.get("bias_hh" + sfx, np.zeros(W.shape[0]))
            p = sd.get("weight_p" + sfx)
            k = layer * D + d
            rev = d == 1 or direction == "reverse"
            for b in range(B):
                h, c = h0[k, b], c0[k, b]
                for t in (range(lengths[b] - 1, -1, -1) if rev else range(lengths[b])):
                    h, c = _step(kind, inp[t, b], h, c, W, R, bi, bh, p, fs[d * per:(d + 1) * per], clip,
                                 input_forget, linear_before_reset)
                    y[t, b, d * H:(d + 1) * H] = h
                h_n[k, b] = h
                if c is not None:
                    c_n[k, b] = c
        inp = y
    return y, h_n, (c_n if kind == "LSTM" else None)
