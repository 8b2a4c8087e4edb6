"""Layer-normalised LSTM and GRU with zoneout: Haste's LayerNormLSTM / LayerNormGRU (lmnt-com/haste),
as layers (whole sequences, torch.nn's habits) and cells (one step)."""

import re

from ._interop.haste import HasteMixin
from ._nn import layernorm_setup as _setup
from ._nn import params as _params
from ._nn.layernorm_setup import check_probability
from ._recurrences.dropout import check_dropout, dropout_generator, resolve_generator
from ._recurrences.sequence import run_direction, run_direction_packed
from ._validate import check_bool, check_seed, check_size
from .cells import _StepCell
from .layers import _SequenceLayer

_LAYER_KEY = re.compile(r"weight_ih_l(\d+)$")

_LSTM_EQUATIONS = r"""
    Gate blocks i, f, g, o (Haste's order is i, g, f, o; from_haste and to_haste reorder):

    .. math::
        v = LN(W_{ih} x; \gamma_{ih}) + LN(W_{hh} h; \gamma_{hh}) + b, \quad
        i, f, o = \sigma(v_i), \sigma(v_f), \sigma(v_o), \quad g = \tanh(v_g) \\
        c' = f \odot c + i \odot g, \quad h_{new} = o \odot \tanh(LN(c'; \gamma_c, \beta_c))

    The state carries the un-normalised c'.
"""

_GRU_EQUATIONS = r"""
    Gate blocks r, z, n (Haste's order is z, r, h; from_haste and to_haste reorder):

    .. math::
        a = LN(W_{ih} x; \gamma_{ih}) + b_{ih}, \quad u = LN(W_{hh} h; \gamma_{hh}) + b_{hh} \\
        r = \sigma(a_r + u_r), \quad z = \sigma(a_z + u_z), \quad n = \tanh(a_n + r \odot u_n), \quad
        h_{new} = (1 - z) \odot n + z \odot h
"""

_ZONEOUT = """
    LN(a; gamma, beta) = (a - mean(a)) / sqrt(var(a) + 1e-5) * gamma + beta over each row's G*H (or H)
    columns. Zoneout p on h: in ``forward_train``, h' = h + m * (h_new - h), m ~ Bernoulli(1 - p) per
    step, sequence and unit (drawn from ``generator``, reused by backward); at inference,
    h' = p*h + (1 - p)*h_new.
"""

_ARGS = """
    Args:
        input_size, hidden_size: the features of the input and of h.
        zoneout (keyword-only): the zoneout probability p of h, in [0, 1]; 0 for none.
        forget_bias (keyword-only, LSTM): the forget block's initial bias (Haste's default, 1.0).
        device, dtype, seed: as :class:`rnnkern.LSTM` (seed: Haste's initialisation, xavier-uniform gate
            blocks of W_ih, orthogonal ones of W_hh, gains ones, shifts and biases zeros but the forget
            bias; and the module's own generator of training masks).

    Parameters (suffix ``_lk`` / ``_lk_reverse`` in layers): ``weight_ih`` (G*H, I), ``weight_hh``
    (G*H, H), the LSTM's ``bias`` (4H,) (Haste's one bias; torch's bias_ih + bias_hh) or the GRU's
    ``bias_ih`` and ``bias_hh`` (3H,), ``layer_norm_ih_weight`` and ``layer_norm_hh_weight`` (G*H,)
    (Haste's gamma[0], gamma[1]), the LSTM's ``layer_norm_c_weight`` and ``layer_norm_c_bias`` (H,)
    (gamma_h, beta_h). ``from_haste`` / ``to_haste`` map Haste's names and layouts.
"""


class _LayerNormModule(HasteMixin):
    _kind = "LSTM"
    forget_bias = 0.0

    def _init_params(self, shapes, seed):
        seed = check_seed(seed, type(self).__name__)
        self._set_params(_setup.haste_init(self._kind, shapes, self.hidden_size, seed, self.forget_bias))

    def _make_recurrence(self, math=None, weight_p=None):
        # bound to its direction's parameters per call; the class says whether there is a cell state
        return _setup.RECURRENCES[self._kind]

    def _layer_params(self, suffix):
        return {name: self._params[name + suffix] for name in _setup.NAMES[self._kind]}

    def _recurrence_of(self, suffix):
        return _setup.RECURRENCES[self._kind](self._backend, self.hidden_size, self._layer_params(suffix),
                                               self.zoneout)

    def _set_options(self, zoneout, forget_bias):
        name = type(self).__name__
        self.zoneout = check_probability("zoneout", zoneout, name)
        if self._kind == "LSTM":  # the GRUs' constructors take no forget_bias
            self.forget_bias = _setup.check_forget_bias(forget_bias, name)

    def _draws(self, generator, recurrent_dropout, where):
        p = check_probability("recurrent_dropout", recurrent_dropout, where)
        return resolve_generator(generator, self._dropout_generator, where), {"recurrent_dropout": p}


class _LayerNormLayer(_LayerNormModule, _SequenceLayer):
    _option_names = ("dropout", "zoneout")

    def __init__(self, input_size, hidden_size, num_layers=1, *, batch_first=False, bidirectional=False,
                 dropout=0.0, zoneout=0.0, forget_bias=None, device="cpu", dtype="float32", seed=None):
        name = type(self).__name__
        self.input_size = check_size("input_size", input_size, name)
        self.hidden_size = check_size("hidden_size", hidden_size, name)
        self.num_layers = check_size("num_layers", num_layers, name)
        self.batch_first = check_bool("batch_first", batch_first, name)
        self.bidirectional = check_bool("bidirectional", bidirectional, name)
        self.direction = "bidirectional" if self.bidirectional else "forward"
        self.num_directions = 2 if self.bidirectional else 1
        self.__dict__["_initial_state"] = None
        self._set_options(zoneout, forget_bias)
        self.dropout = check_dropout(dropout, self.num_layers, name)
        self._setup(device, dtype)
        self._init_params(self._shapes(), seed)
        self._recurrence = self._make_recurrence()
        self._dropout_generator = dropout_generator(seed)

    def _shapes(self):
        shapes = {}
        for layer, _, suffix in self._suffixes():
            layer_input = self.input_size if layer == 0 else self.num_directions * self.hidden_size
            shapes.update(_setup.param_shapes(self._kind, layer_input, self.hidden_size, suffix))
        return shapes

    @classmethod
    def from_state_dict(cls, state_dict, device="cpu", dtype=None, batch_first=False, **options):
        """A layer holding these weights (the names of ``state_dict()``); sizes, depth and directions
        are read off the keys and arrays, the dtype too unless given. ``options``: dropout, zoneout."""
        cls._check_options(options)
        arrays, dtype = cls._read_state_dict(state_dict, dtype)
        input_size, hidden_size = _params.gates_and_sizes(arrays, cls.gates, cls.__name__, "_l0")
        num_layers = 1 + max(int(m.group(1)) for m in map(_LAYER_KEY.match, arrays) if m)
        layer = cls(input_size, hidden_size, num_layers, batch_first=batch_first,
                    bidirectional="weight_ih_l0_reverse" in arrays, device=device, dtype=dtype, **options)
        _params.check_params(arrays, layer._shapes(), cls.__name__)
        layer._set_params(arrays)
        return layer

    def _direction_recurrence(self, suffix):
        return self._recurrence_of(suffix)

    def _train_recurrence(self, suffix, draws):
        return _setup.training_recurrence(self, self._kind, self._layer_params(suffix), draws)

    def _run(self, layer_input, suffix, reverse, index, h0, c0, out, h_n, c_n, active):
        rec = self._recurrence_of(suffix)
        gx, w_hh = rec.project(layer_input, self.batch_first), rec.weights_of(rec.params).w_hh
        c0_i = c0[index] if c0 is not None else None
        c_n_i = c_n[index] if c_n is not None else None
        if active is None:
            run_direction(rec, gx, w_hh, None, h0[index], c0_i, out, reverse, h_n[index], c_n_i)
        else:
            run_direction_packed(rec, gx, w_hh, None, h0[index], c0_i, out, reverse, active, h_n[index], c_n_i)

    def forward_train(self, input, state=None, lengths=None, *, generator=None, recurrent_dropout=0.0):
        """``output, state_n, tape = layer.forward_train(input, state=None, lengths=None, *,
        generator=None, recurrent_dropout=0.0)``: as :meth:`rnnkern.LSTM.forward_train`, with zoneout's
        training form, and DropConnect on W_hh with ``recurrent_dropout`` p (Haste's "dropout": each
        entry kept with probability 1 - p and scaled by 1 / (1 - p), one mask per layer and direction
        for the whole sequence). Masks are drawn from ``generator`` (rnnkern._nn.layernorm_setup says in
        which order) and reused by :meth:`backward`; dropout between layers as the other layers.

        Memory: per layer, direction, step and sequence the tape keeps 14*H + 3 values for the LSTM
        (gates, LN_hh's normalised row, c', LN(c')'s normalised row, the input side's normalised
        row, three rstd) and 9*H + 2 for the GRU, plus H for zoneout's mask."""
        rng, options = self._draws(generator, recurrent_dropout, type(self).__name__ + ".forward_train")
        return self._forward_train(input, state, lengths, rng, options)

    def _option_values(self):
        return {}

    def _rebuild_options(self):
        return {"batch_first": self.batch_first, "dropout": self.dropout, "zoneout": self.zoneout}

    def _extra_repr(self):
        # forget_bias only initialises the bias: not shown, as torch does not show its init
        defaults = {"num_layers": 1, "batch_first": False, "bidirectional": False, "dropout": 0.0, "zoneout": 0.0}
        return "".join(f", {k}={getattr(self, k)!r}" for k, v in defaults.items() if getattr(self, k) != v)


class LayerNormLSTM(_LayerNormLayer):
    __doc__ = r"""A multi-layer layer-normalised LSTM with zoneout: Haste's LayerNormLSTM, with
    num_layers, bidirectional, lengths and dropout between layers as :class:`rnnkern.LSTM`.
    """ + _LSTM_EQUATIONS + _ZONEOUT + r"""
    Call: ``output, (h_n, c_n) = layer(input, state=None, lengths=None)``, shapes as :class:`rnnkern.LSTM`'s.
    Constructor: ``LayerNormLSTM(input_size, hidden_size, num_layers=1, *, batch_first=False,
    bidirectional=False, dropout=0.0, zoneout=0.0, forget_bias=1.0, device="cpu", dtype="float32",
    seed=None)``; layer k > 0 reads D*H features.
""" + _ARGS
    gates = 4
    _kind = "LSTM"

    def __init__(self, input_size, hidden_size, num_layers=1, *, batch_first=False, bidirectional=False,
                 dropout=0.0, zoneout=0.0, forget_bias=1.0, device="cpu", dtype="float32", seed=None):
        super().__init__(input_size, hidden_size, num_layers, batch_first=batch_first, bidirectional=bidirectional,
                         dropout=dropout, zoneout=zoneout, forget_bias=forget_bias, device=device, dtype=dtype,
                         seed=seed)


class LayerNormGRU(_LayerNormLayer):
    __doc__ = r"""A multi-layer layer-normalised GRU with zoneout: Haste's LayerNormGRU, with num_layers,
    bidirectional, lengths and dropout between layers as :class:`rnnkern.GRU`.
    """ + _GRU_EQUATIONS + _ZONEOUT + r"""
    Call: ``output, h_n = layer(input, state=None, lengths=None)``, shapes as :class:`rnnkern.GRU`'s.
    Constructor: ``LayerNormGRU(input_size, hidden_size, num_layers=1, *, batch_first=False,
    bidirectional=False, dropout=0.0, zoneout=0.0, device="cpu", dtype="float32", seed=None)``.
""" + _ARGS
    gates = 3
    _kind = "GRU"

    def __init__(self, input_size, hidden_size, num_layers=1, *, batch_first=False, bidirectional=False,
                 dropout=0.0, zoneout=0.0, device="cpu", dtype="float32", seed=None):
        super().__init__(input_size, hidden_size, num_layers, batch_first=batch_first, bidirectional=bidirectional,
                         dropout=dropout, zoneout=zoneout, device=device, dtype=dtype, seed=seed)


class _LayerNormCell(_LayerNormModule, _StepCell):
    _option_names = ("zoneout",)
    _haste_suffix = ""

    def __init__(self, input_size, hidden_size, *, zoneout=0.0, forget_bias=None, device="cpu", dtype="float32",
                 seed=None):
        name = type(self).__name__
        self.input_size = check_size("input_size", input_size, name)
        self.hidden_size = check_size("hidden_size", hidden_size, name)
        self._init_cell_options({})
        self._set_options(zoneout, forget_bias)
        self._setup(device, dtype)
        self._init_params(self._cell_shapes(), seed)
        self._recurrence = self._make_recurrence()
        self._dropout_generator = dropout_generator(seed)

    def _cell_shapes(self):
        return _setup.param_shapes(self._kind, self.input_size, self.hidden_size)

    @classmethod
    def from_state_dict(cls, state_dict, device="cpu", dtype=None, **options):
        """A cell holding these weights (the names of ``state_dict()``); sizes read off the arrays, the
        dtype too unless given. ``options``: zoneout."""
        cls._check_options(options)
        arrays, dtype = cls._read_state_dict(state_dict, dtype)
        input_size, hidden_size = _params.gates_and_sizes(arrays, cls.gates, cls.__name__)
        cell = cls(input_size, hidden_size, device=device, dtype=dtype, **options)
        _params.check_params(arrays, cell._cell_shapes(), cls.__name__)
        cell._set_params(arrays)
        return cell

    def _cell_recurrence(self):
        return self._recurrence_of("")

    def _train_recurrence(self, draws):
        return _setup.training_recurrence(self, self._kind, self._layer_params(""), draws)

    def _run(self, x, h, c):
        rec, bk = self._recurrence_of(""), self._backend
        gx = rec.project(x[None], False)[0]
        h_out = bk.empty(h.shape, self.dtype)
        c_out = bk.empty(c.shape, self.dtype) if c is not None else None
        rec.step(gx, h, c, rec.weights_of(rec.params).w_hh, None, rec.workspace(x.shape[0], self.dtype), h_out, c_out)
        return h_out, c_out

    def forward_train(self, input, state=None, *, generator=None, recurrent_dropout=0.0):
        """``new_state, tape = cell.forward_train(input, state=None, *, generator=None,
        recurrent_dropout=0.0)``: as :meth:`rnnkern.LSTMCell.forward_train`, with zoneout's training
        mask (B, H) and DropConnect's on W_hh drawn from ``generator`` (the layers' rule, T = 1)."""
        rng, options = self._draws(generator, recurrent_dropout, type(self).__name__ + ".forward_train")
        return self._forward_train(input, state, rng, options)

    def _options(self):
        return {"zoneout": self.zoneout} if self.zoneout else {}

    def _rebuild_options(self):
        return {"zoneout": self.zoneout}

    def _extra_repr(self):
        return ""


class LayerNormLSTMCell(_LayerNormCell):
    __doc__ = r"""One step of :class:`LayerNormLSTM`: ``h', c' = cell(input, (h, c))``, shapes as
    :class:`rnnkern.LSTMCell`'s. ``LayerNormLSTMCell(input_size, hidden_size, *, zoneout=0.0,
    forget_bias=1.0, device="cpu", dtype="float32", seed=None)``.
    """ + _LSTM_EQUATIONS + _ZONEOUT + _ARGS
    gates = 4
    _kind = "LSTM"

    def __init__(self, input_size, hidden_size, *, zoneout=0.0, forget_bias=1.0, device="cpu", dtype="float32",
                 seed=None):
        super().__init__(input_size, hidden_size, zoneout=zoneout, forget_bias=forget_bias, device=device,
                         dtype=dtype, seed=seed)


class LayerNormGRUCell(_LayerNormCell):
    __doc__ = r"""One step of :class:`LayerNormGRU`: ``h' = cell(input, h)``, shapes as
    :class:`rnnkern.GRUCell`'s.
    """ + _GRU_EQUATIONS + _ZONEOUT + _ARGS
    gates = 3
    _kind = "GRU"

    def __init__(self, input_size, hidden_size, *, zoneout=0.0, device="cpu", dtype="float32", seed=None):
        super().__init__(input_size, hidden_size, zoneout=zoneout, device=device, dtype=dtype, seed=seed)
