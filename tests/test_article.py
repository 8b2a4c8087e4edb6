"""Reproduce the three cells of the seed article ("RNNs Part 1: Creating a Cell", 2015) with rnnkern.

The article's functions are written out below as it writes them (per-gate matrices applied on the
right, x.dot(W)), with a sigmoid that cannot overflow (the article leaves it undefined). Its
matrices are then mapped into rnnkern state_dicts (transposed, stacked in rnnkern's gate order) and
both are run side by side for a few steps.
"""

import importlib.util
import pathlib

import numpy as np
import pytest

import rnnkern
from conftest import assert_close, to_numpy

STEPS = 6


def sigmoid(a):
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


class Article:
    """The article's parameters and cell functions (its code, with its globals made attributes)."""

    def __init__(self, rng, input_size, hidden_size):
        randn = rng.standard_normal
        # rnn params
        self.U = randn((input_size, hidden_size))
        self.W = randn((hidden_size, hidden_size))
        self.V = randn((hidden_size, hidden_size))
        # lstm params. The article writes b_f = np.ones(hidden_size).reshape(-1, 1), a column
        # vector: added to xt.dot(W_xf), of shape (hidden_size,), it would broadcast into a
        # (hidden_size, hidden_size) matrix. One bias per unit is what is meant, so the biases
        # here are 1-D (and random rather than ones, so that mixing up two gates' biases shows).
        self.W_xf, self.W_hf = randn((input_size, hidden_size)), randn((hidden_size, hidden_size))
        self.b_f = randn(hidden_size)
        self.W_xi, self.W_hi = randn((input_size, hidden_size)), randn((hidden_size, hidden_size))
        self.b_i = randn(hidden_size)
        self.W_xo, self.W_ho = randn((input_size, hidden_size)), randn((hidden_size, hidden_size))
        self.b_o = randn(hidden_size)
        self.W_xc, self.W_hc = randn((input_size, hidden_size)), randn((hidden_size, hidden_size))
        self.b_c = randn(hidden_size)
        # gru params (the GRU's candidate matrices are its own, not the LSTM's)
        self.G_xz, self.G_hz = randn((input_size, hidden_size)), randn((hidden_size, hidden_size))
        self.G_xr, self.G_hr = randn((input_size, hidden_size)), randn((hidden_size, hidden_size))
        self.G_xc, self.G_hc = randn((input_size, hidden_size)), randn((hidden_size, hidden_size))

    def rnn(self, xt, prev_h):
        ht = np.tanh(xt.dot(self.U) + prev_h.dot(self.W))
        ot = ht.dot(self.V)
        return ot, ht

    def lstm(self, xt, prev_c, prev_h):
        ft = sigmoid(xt.dot(self.W_xf) + prev_h.dot(self.W_hf) + self.b_f)
        it = sigmoid(xt.dot(self.W_xi) + prev_h.dot(self.W_hi) + self.b_i)
        ot = sigmoid(xt.dot(self.W_xo) + prev_h.dot(self.W_ho) + self.b_o)
        candidate_memory = np.tanh(xt.dot(self.W_xc) + prev_h.dot(self.W_hc) + self.b_c)
        ct = ft * prev_c + it * candidate_memory
        ht = ot * np.tanh(ct)
        return np.copy(ht), ct, ht

    def gru(self, xt, prev_h):
        zt = sigmoid(xt.dot(self.G_xz) + prev_h.dot(self.G_hz))
        rt = sigmoid(xt.dot(self.G_xr) + prev_h.dot(self.G_hr))
        candidate_activation = np.tanh(xt.dot(self.G_xc) + (rt * prev_h).dot(self.G_hc))
        ht = (1. - zt) * prev_h + zt * candidate_activation
        return np.copy(ht), ht


# ------------------------------------------------- the article's matrices -> rnnkern
def rnn_state_dict(a):
    """h = tanh(x U + h W): weight_ih = U^T, weight_hh = W^T, no bias."""
    return {"weight_ih": a.U.T, "weight_hh": a.W.T}


def lstm_state_dict(a):
    """rnnkern's gate order is i, f, g, o (g: the article's candidate memory c); its one bias per
    gate goes into bias_ih, and bias_hh is zero."""
    return {
        "weight_ih": np.concatenate([a.W_xi.T, a.W_xf.T, a.W_xc.T, a.W_xo.T]),
        "weight_hh": np.concatenate([a.W_hi.T, a.W_hf.T, a.W_hc.T, a.W_ho.T]),
        "bias_ih": np.concatenate([a.b_i, a.b_f, a.b_c, a.b_o]),
        "bias_hh": np.zeros(4 * a.b_i.size),
    }


def gru_state_dict(a, flip_z=True):
    """Gate order r, z, n; the article's n = tanh(x W_xc + (r*h) W_hc) is linear_before_reset=False.

    The article blends h = (1-z)*h_prev + z*n, rnnkern (and PyTorch) h = (1-z')*n + z'*h_prev: so
    z' = 1 - z = 1 - sigmoid(s) = sigmoid(-s), i.e. the z rows of both weights are negated."""
    sign = -1.0 if flip_z else 1.0
    return {
        "weight_ih": np.concatenate([a.G_xr.T, sign * a.G_xz.T, a.G_xc.T]),
        "weight_hh": np.concatenate([a.G_hr.T, sign * a.G_hz.T, a.G_hc.T]),
    }


SIZES = [(10, 10), (6, 9)]  # the article's sizes, and unequal ones so a missing transpose cannot hide
BATCHES = [None, 4]  # the article calls its cells on one vector; rnnkern takes batches too


@pytest.fixture
def article():
    return lambda input_size, hidden_size: Article(np.random.default_rng(2015), input_size, hidden_size)


def inputs(input_size, batch):
    lead = () if batch is None else (batch,)
    return np.random.default_rng(10).standard_normal((STEPS,) + lead + (input_size,)), lead


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("input_size,hidden_size", SIZES)
def test_article_rnn(article, input_size, hidden_size, batch, device):
    a = article(input_size, hidden_size)
    cell = rnnkern.RNNCell.from_state_dict(rnn_state_dict(a), device=device)
    assert not cell.bias and cell.dtype == np.float64
    xs, lead = inputs(input_size, batch)
    h_article = np.zeros(lead + (hidden_size,))
    h_ours = rnnkern.asarray(h_article, device=device)  # an explicit zero state this time
    for x in xs:
        o_article, h_article = a.rnn(x, h_article)
        h_ours = cell(rnnkern.asarray(x, device=device), h_ours)
        assert_close(h_ours, h_article, "float64")
        assert_close(to_numpy(h_ours).dot(a.V), o_article, "float64")  # the article's output o = h V


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("input_size,hidden_size", SIZES)
def test_article_lstm(article, input_size, hidden_size, batch, device):
    a = article(input_size, hidden_size)
    cell = rnnkern.LSTMCell.from_state_dict(lstm_state_dict(a), device=device)
    xs, lead = inputs(input_size, batch)
    c_article = h_article = np.zeros(lead + (hidden_size,))
    state = None  # rnnkern's default: zeros, as the article starts
    for x in xs:
        out_article, c_article, h_article = a.lstm(x, c_article, h_article)
        state = cell(rnnkern.asarray(x, device=device), state)
        assert_close(state[0], h_article, "float64")
        assert_close(state[0], out_article, "float64")
        assert_close(state[1], c_article, "float64")


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("input_size,hidden_size", SIZES)
def test_article_gru(article, input_size, hidden_size, batch, device):
    a = article(input_size, hidden_size)
    cell = rnnkern.GRUCell.from_state_dict(gru_state_dict(a), device=device, linear_before_reset=False)
    xs, lead = inputs(input_size, batch)
    h_article = np.zeros(lead + (hidden_size,))
    h_ours = None
    for x in xs:
        out_article, h_article = a.gru(x, h_article)
        h_ours = cell(rnnkern.asarray(x, device=device), h_ours)
        assert_close(h_ours, h_article, "float64")
        assert_close(h_ours, out_article, "float64")


def test_article_gru_needs_both_the_z_flip_and_the_variant(article):
    """Without negating z, or with PyTorch's linear_before_reset=True, the numbers are different:
    the two conventions really differ, and the test above would notice either mistake."""
    a = article(10, 10)
    xs, _ = inputs(10, 4)
    h_article = np.zeros((4, 10))
    for x in xs:
        _, h_article = a.gru(x, h_article)

    def run(sd, linear_before_reset):
        cell = rnnkern.GRUCell.from_state_dict(sd, linear_before_reset=linear_before_reset)
        h = None
        for x in xs:
            h = cell(x, h)
        return h

    assert_close(run(gru_state_dict(a), False), h_article, "float64")
    assert np.abs(run(gru_state_dict(a, flip_z=False), False) - h_article).max() > 1e-3
    assert np.abs(run(gru_state_dict(a), True) - h_article).max() > 1e-3


def test_example_script_reports_agreement():
    """examples/article_cells.py (its own copy of the article's code) finds rnnkern and the article agree."""
    path = pathlib.Path(__file__).resolve().parents[1] / "examples" / "article_cells.py"
    spec = importlib.util.spec_from_file_location("article_cells", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    for batch in (None, 3):
        diffs = example.max_differences(seed=1, batch=batch)
        assert set(diffs) == {"RNN h", "RNN o = h V", "LSTM h", "LSTM c", "GRU h"}
        for name, diff in diffs.items():
            assert diff < 1e-10, name
