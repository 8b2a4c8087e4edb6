"""The three cells of "RNNs Part 1: Creating a Cell" (2015), rebuilt with rnnkern.

The article writes each cell as NumPy code over per-gate matrices applied on the right
(``x.dot(U)``, U of shape (input_size, hidden_size)). rnnkern, like PyTorch, stacks the gates
into one matrix applied on the left (``weight_ih`` of shape (gates*hidden_size, input_size)).
This script maps the article's matrices into rnnkern state_dicts, runs both for a few steps
and prints the largest absolute difference for each cell.

    python examples/article_cells.py

The mapping, cell by cell:
  RNN   h = tanh(x U + h W)                       -> weight_ih = U^T, weight_hh = W^T, bias=False
  LSTM  gates f, i, o and candidate c             -> blocks in rnnkern's order i, f, g(=c), o;
                                                     bias_ih = the article's biases, bias_hh = 0
  GRU   n = tanh(x W_xc + (r*h) W_hc)             -> GRUCell(linear_before_reset=False), order r, z, n
        h = (1-z)*h_prev + z*n                       rnnkern (like PyTorch) has h = (1-z')*n + z'*h_prev,
                                                     so z' = 1 - z = sigmoid(-(x W_xz + h W_hz)):
                                                     the z rows of both weights are negated.
"""

import numpy as np

import rnnkern

INPUT_SIZE = 10
HIDDEN_SIZE = 10
STEPS = 5


def sigmoid(a):
    """The article leaves sigmoid undefined; this one cannot overflow (exp of non-positive numbers only)."""
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def article_parameters(rng, input_size=INPUT_SIZE, hidden_size=HIDDEN_SIZE):
    """The article's parameters, drawn like it draws them (np.random.randn)."""
    def randn(*shape):
        return rng.standard_normal(shape)

    rnn = {"U": randn(input_size, hidden_size), "W": randn(hidden_size, hidden_size),
           "V": randn(hidden_size, hidden_size)}
    lstm = {}
    for gate in "fioc":
        lstm[f"W_x{gate}"] = randn(input_size, hidden_size)
        lstm[f"W_h{gate}"] = randn(hidden_size, hidden_size)
        # The article sets b = np.ones(hidden_size).reshape(-1, 1): a column, which broadcasts
        # x.dot(W) (H,) + b (H, 1) into an (H, H) matrix. The intent is one bias per unit, so the
        # biases here are 1-D; random rather than ones so that a mix-up between gates would show.
        lstm[f"b_{gate}"] = randn(hidden_size)
    gru = {}
    for gate in "zrc":
        gru[f"W_x{gate}"] = randn(input_size, hidden_size)
        gru[f"W_h{gate}"] = randn(hidden_size, hidden_size)
    return rnn, lstm, gru


# ------------------------------------------------------------ the article's code
def make_article_cells(rnn_p, lstm_p, gru_p):
    U, W, V = rnn_p["U"], rnn_p["W"], rnn_p["V"]
    p, q = lstm_p, gru_p

    def rnn(xt, prev_h):
        ht = np.tanh(xt.dot(U) + prev_h.dot(W))
        ot = ht.dot(V)
        return ot, ht

    def lstm(xt, prev_c, prev_h):
        ft = sigmoid(xt.dot(p["W_xf"]) + prev_h.dot(p["W_hf"]) + p["b_f"])
        it = sigmoid(xt.dot(p["W_xi"]) + prev_h.dot(p["W_hi"]) + p["b_i"])
        ot = sigmoid(xt.dot(p["W_xo"]) + prev_h.dot(p["W_ho"]) + p["b_o"])
        candidate_memory = np.tanh(xt.dot(p["W_xc"]) + prev_h.dot(p["W_hc"]) + p["b_c"])
        ct = ft * prev_c + it * candidate_memory
        ht = ot * np.tanh(ct)
        return np.copy(ht), ct, ht

    def gru(xt, prev_h):
        zt = sigmoid(xt.dot(q["W_xz"]) + prev_h.dot(q["W_hz"]))
        rt = sigmoid(xt.dot(q["W_xr"]) + prev_h.dot(q["W_hr"]))
        candidate_activation = np.tanh(xt.dot(q["W_xc"]) + (rt * prev_h).dot(q["W_hc"]))
        ht = (1. - zt) * prev_h + zt * candidate_activation
        return np.copy(ht), ht

    return rnn, lstm, gru


# ------------------------------------------------------- the mapping to rnnkern
def rnn_state_dict(rnn_p):
    return {"weight_ih": rnn_p["U"].T, "weight_hh": rnn_p["W"].T}


def lstm_state_dict(p):
    order = "ifco"  # rnnkern / PyTorch: i, f, g, o; the article's candidate c is g
    return {
        "weight_ih": np.concatenate([p[f"W_x{g}"].T for g in order]),
        "weight_hh": np.concatenate([p[f"W_h{g}"].T for g in order]),
        "bias_ih": np.concatenate([p[f"b_{g}"] for g in order]),
        "bias_hh": np.zeros(4 * p["b_i"].shape[0]),  # the article has one bias per gate
    }


def gru_state_dict(q):
    # order r, z, n; z negated: the article's z is rnnkern's 1 - z
    return {
        "weight_ih": np.concatenate([q["W_xr"].T, -q["W_xz"].T, q["W_xc"].T]),
        "weight_hh": np.concatenate([q["W_hr"].T, -q["W_hz"].T, q["W_hc"].T]),
    }


def max_differences(seed=0, steps=STEPS, input_size=INPUT_SIZE, hidden_size=HIDDEN_SIZE, batch=None):
    """Run the article's cells and rnnkern's side by side; the largest |difference| of each state."""
    rng = np.random.default_rng(seed)
    rnn_p, lstm_p, gru_p = article_parameters(rng, input_size, hidden_size)
    rnn, lstm, gru = make_article_cells(rnn_p, lstm_p, gru_p)
    rnn_k = rnnkern.RNNCell.from_state_dict(rnn_state_dict(rnn_p), dtype="float64")
    lstm_k = rnnkern.LSTMCell.from_state_dict(lstm_state_dict(lstm_p), dtype="float64")
    gru_k = rnnkern.GRUCell.from_state_dict(gru_state_dict(gru_p), dtype="float64", linear_before_reset=False)

    lead = () if batch is None else (batch,)
    xs = rng.standard_normal((steps,) + lead + (input_size,))
    zeros = np.zeros(lead + (hidden_size,))
    diffs = {"RNN h": 0.0, "RNN o = h V": 0.0, "LSTM h": 0.0, "LSTM c": 0.0, "GRU h": 0.0}
    h_a = h_k = zeros
    c_a, hl_a, hl_k, cl_k = zeros, zeros, zeros, zeros
    hg_a = hg_k = zeros
    for x in xs:
        o_a, h_a = rnn(x, h_a)
        h_k = rnn_k(x, h_k)
        diffs["RNN h"] = max(diffs["RNN h"], np.abs(h_k - h_a).max())
        diffs["RNN o = h V"] = max(diffs["RNN o = h V"], np.abs(h_k.dot(rnn_p["V"]) - o_a).max())

        _, c_a, hl_a = lstm(x, c_a, hl_a)
        hl_k, cl_k = lstm_k(x, (hl_k, cl_k))
        diffs["LSTM h"] = max(diffs["LSTM h"], np.abs(hl_k - hl_a).max())
        diffs["LSTM c"] = max(diffs["LSTM c"], np.abs(cl_k - c_a).max())

        _, hg_a = gru(x, hg_a)
        hg_k = gru_k(x, hg_k)
        diffs["GRU h"] = max(diffs["GRU h"], np.abs(hg_k - hg_a).max())
    return diffs


def main():
    print(f"The article's cells vs rnnkern, float64, input_size={INPUT_SIZE}, hidden_size={HIDDEN_SIZE}, "
          f"{STEPS} steps")
    for name, diff in max_differences().items():
        print(f"  {name:<12} max |difference| = {diff:.3e}")


if __name__ == "__main__":
    main()
