"""The contenders, the implementations compared: each computes one layer stack's forward pass from the
same weights and input (``rnnkern bench --variants`` names them). ``Contender.fn()`` runs it once and
returns the top layer's output (T, B, H) on its device, except ``blas-bound``, which times only the
GEMMs the forward needs and returns None. PyTorch's two are built in torch_contenders.py, ONNX
Runtime's in ort_contender.py.
"""

import numpy as np

from . import ort_contender, torch_contenders
from .common import GATES, NAMES, Contender, step_cells

CONTENDERS = ("rnnkern", "rnnkern-cell", "unfused", "article", "torch", "torch-cell", "onnxruntime", "blas-bound")
# What `rnnkern bench` times unless told otherwise (about 2 minutes on a 2-core CPU): the verdict's four,
# and the unfused code that shows what fusing the gates buys.
DEFAULT_CONTENDERS = ("rnnkern", "unfused", "torch", "onnxruntime", "blas-bound")


def _layer_params(params, num_layers):
    """[(w_ih, w_hh, b_ih, b_hh)] per layer from a layer's parameters (PyTorch names)."""
    return [tuple(params[f"{k}_l{n}"] for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
            for n in range(num_layers)]


# --- unfused: plain array code, one operation per gate, on the backend's xp ------------------------
def _sigmoid(xp, x):
    return 0.5 * xp.tanh(0.5 * x) + 0.5  # tanh form: cannot overflow


def unfused_forward(xp, cell, layers, x):
    """The forward as plain code writes it: the input projection in one GEMM, then per step
    h @ W_hh^T and separate ops per gate slice, each allocating its result."""
    y = x
    for w_ih, w_hh, b_ih, b_hh in layers:
        T, B, H = y.shape[0], y.shape[1], w_hh.shape[1]
        gx = (y.reshape(T * B, -1) @ w_ih.T + b_ih).reshape(T, B, -1)
        h = xp.zeros((B, H), dtype=y.dtype)
        c = xp.zeros((B, H), dtype=y.dtype)
        hs = []
        for t in range(T):
            gh = h @ w_hh.T + b_hh
            if cell == "lstm":
                g = gx[t] + gh
                i = _sigmoid(xp, g[:, :H])
                f = _sigmoid(xp, g[:, H:2 * H])
                n = xp.tanh(g[:, 2 * H:3 * H])
                o = _sigmoid(xp, g[:, 3 * H:])
                c = f * c + i * n
                h = o * xp.tanh(c)
            elif cell == "gru":  # linear_before_reset=True (PyTorch's GRU)
                r = _sigmoid(xp, gx[t, :, :H] + gh[:, :H])
                z = _sigmoid(xp, gx[t, :, H:2 * H] + gh[:, H:2 * H])
                n = xp.tanh(gx[t, :, 2 * H:] + r * gh[:, 2 * H:])
                h = (1 - z) * n + z * h
            else:
                h = xp.tanh(gx[t] + gh)
            hs.append(h)
        y = xp.stack(hs)
    return y


# --- article: the seed article's loop, per-gate (I, H) matrices, per-step x.dot(W) + h.dot(U) + b ---
def article_params(cell, layers):
    """Per layer, per gate: (W_x (I, H), W_h (H, H), bias) in the article's layout (x.dot(W)).
    The GRU's n gate keeps b_in and b_hn apart, as PyTorch's equations need."""
    out = []
    for w_ih, w_hh, b_ih, b_hh in layers:
        H = w_hh.shape[1]
        gates = []
        for k in range(GATES[cell]):
            rows = slice(k * H, (k + 1) * H)
            bias = (b_ih[rows], b_hh[rows]) if cell == "gru" and k == 2 else b_ih[rows] + b_hh[rows]
            gates.append((np.ascontiguousarray(w_ih[rows].T), np.ascontiguousarray(w_hh[rows].T), bias))
        out.append(gates)
    return out


def _naive_sigmoid(x):
    return 1 / (1 + np.exp(-x))


def article_forward(cell, params, x):
    """The seed article's per-step functions (lstm(xt, prev_c, prev_h), gru, rnn) unrolled over time,
    with PyTorch's equations (biases; GRU with r applied after W_hn) so the output matches the layer."""
    y = x
    with np.errstate(over="ignore"):  # exp(-x) overflowing to inf still gives sigmoid 0
        for gates in params:
            B, H = y.shape[1], gates[0][1].shape[0]
            prev_h = np.zeros((B, H), dtype=y.dtype)
            prev_c = np.zeros((B, H), dtype=y.dtype)
            outputs = []
            for xt in y:
                if cell == "lstm":
                    (W_xi, W_hi, b_i), (W_xf, W_hf, b_f), (W_xc, W_hc, b_c), (W_xo, W_ho, b_o) = gates
                    ft = _naive_sigmoid(xt.dot(W_xf) + prev_h.dot(W_hf) + b_f)
                    it = _naive_sigmoid(xt.dot(W_xi) + prev_h.dot(W_hi) + b_i)
                    ot = _naive_sigmoid(xt.dot(W_xo) + prev_h.dot(W_ho) + b_o)
                    candidate_memory = np.tanh(xt.dot(W_xc) + prev_h.dot(W_hc) + b_c)
                    prev_c = ft * prev_c + it * candidate_memory
                    prev_h = ot * np.tanh(prev_c)
                elif cell == "gru":
                    (W_xr, W_hr, b_r), (W_xz, W_hz, b_z), (W_xc, W_hc, (b_in, b_hn)) = gates
                    zt = _naive_sigmoid(xt.dot(W_xz) + prev_h.dot(W_hz) + b_z)
                    rt = _naive_sigmoid(xt.dot(W_xr) + prev_h.dot(W_hr) + b_r)
                    candidate_activation = np.tanh(xt.dot(W_xc) + b_in + rt * (prev_h.dot(W_hc) + b_hn))
                    prev_h = zt * prev_h + (1. - zt) * candidate_activation
                else:
                    ((U, W, b),) = gates
                    prev_h = np.tanh(xt.dot(U) + prev_h.dot(W) + b)
                outputs.append(np.copy(prev_h))
            y = np.stack(outputs)
    return y


# --- blas-bound: the forward's GEMMs alone, into preallocated outputs ------------------------------
def blas_bound_fn(xp, layers, x, seed=1):
    """One (T*B, I) x (I, G*H) GEMM per layer plus T GEMMs (B, H) x (H, G*H), nothing else."""
    T, B = x.shape[:2]
    rng = np.random.default_rng(seed)
    plans = []
    for n, (w_ih, w_hh, _, _) in enumerate(layers):
        H, GH = w_hh.shape[1], w_hh.shape[0]
        a = x.reshape(T * B, -1) if n == 0 else xp.asarray(rng.uniform(-1, 1, (T * B, H)).astype(x.dtype))
        h = xp.asarray(rng.uniform(-1, 1, (B, H)).astype(x.dtype))
        plans.append((a, w_ih.T, xp.empty((T * B, GH), x.dtype), h, w_hh.T, xp.empty((B, GH), x.dtype)))

    def fn():
        for a, w_ih_t, gx, h, w_hh_t, gh in plans:
            xp.matmul(a, w_ih_t, out=gx)
            for _ in range(T):
                xp.matmul(h, w_hh_t, out=gh)
    return fn


# --- building them all ---------------------------------------------------------------------------
def make_input(cfg, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (cfg.seq_len, cfg.batch, cfg.input_size)).astype(cfg.dtype)


def build_contenders(cfg, names=CONTENDERS, seed=0):
    """(list of Contender in the order of ``names``, {name: why it was left out}). Raises
    ContenderMismatchError when ONNX Runtime's output differs from the layer's."""
    import rnnkern

    layer = getattr(rnnkern, NAMES[cfg.cell])(cfg.input_size, cfg.hidden_size, cfg.num_layers,
                                                device=cfg.device, dtype=cfg.dtype, seed=seed)
    backend, x_host = layer._backend, make_input(cfg, seed)
    xp, x = backend.xp, rnnkern.asarray(x_host, device=cfg.device)
    layers = _layer_params(dict(layer.named_parameters()), cfg.num_layers)
    timer = "host" if cfg.device == "cpu" else "cupy"
    contenders, skipped = [], {}
    for name in names:
        if name == "rnnkern":
            contenders.append(Contender(name, lambda: layer(x)[0], timer))
        elif name == "rnnkern-cell":
            contenders.append(Contender(name, _cell_loop(cfg, layer, xp, x), timer))
        elif name == "unfused":
            contenders.append(Contender(name, lambda: unfused_forward(xp, cfg.cell, layers, x), timer))
        elif name == "article":
            if cfg.device != "cpu":
                skipped[name] = "CPU only (the article's code is NumPy)"
                continue
            params = article_params(cfg.cell, layers)
            contenders.append(Contender(name, lambda: article_forward(cfg.cell, params, x), timer))
        elif name == "blas-bound":
            contenders.append(Contender(name, blas_bound_fn(xp, layers, x), timer))
        elif name in ("torch", "torch-cell", ort_contender.NAME):  # the optional peers: a reason when absent
            made = (ort_contender.make(cfg, layer, x_host) if name == ort_contender.NAME
                    else torch_contenders.make(name, cfg, layer.state_dict(), x_host))
            if isinstance(made, str):
                skipped[name] = made
            else:
                contenders.append(made)
        else:
            raise ValueError(f"unknown contender {name!r} (choose from {', '.join(CONTENDERS)})")
    return contenders, skipped


def _cell_loop(cfg, layer, xp, x):
    """rnnkern's cell stepped from Python, one cell per layer, as user code would write it."""
    import rnnkern

    cls = getattr(rnnkern, NAMES[cfg.cell] + "Cell")
    sd = layer.state_dict()
    cells = [cls.from_state_dict({k: sd[f"{k}_l{n}"] for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")},
                                 device=cfg.device, dtype=cfg.dtype) for n in range(cfg.num_layers)]

    def fn():
        return step_cells(cells, x, lambda: xp.zeros((cfg.batch, cfg.hidden_size), dtype=cfg.dtype), xp.stack,
                          cfg.cell == "lstm")
    return fn
