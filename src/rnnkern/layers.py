"""Sequence layers: RNN, LSTM and GRU over whole sequences (PyTorch's nn.RNN/LSTM/GRU API)."""

import re

import numpy as np

from ._nn import params as _params
from ._backend import to_host
from ._recurrences.dropout import check_dropout, dropout_generator
from ._interop.methods import InteropMixin
from ._nn.layer_docs import LAYER_ARGS as _LAYER_ARGS
from ._nn.layer_options import LayerOptions
from ._nn.module import ParamModule
from ._recurrences.projection import ProjectedLSTMRecurrence, check_proj_size, projected_sizes
from ._recurrences.sequence import project_inputs, run_direction, run_direction_packed, sort_plan, take
from ._recurrences.semantics import LSTM_OPTION_NAMES, OPTION_NAMES, uniform_nonlinearity
from ._interop.torch import TorchMixin
from ._nn.training import TrainableLayer
from ._validate import check_bool, check_choice, check_shape, check_size

_LAYER_KEY = re.compile(r"weight_ih_l(\d+)$")


class _SequenceLayer(LayerOptions, TrainableLayer, ParamModule):
    """What every sequence layer shares (rnnkern.layernorm's too): sizes, depth, directions, input
    checks, lengths, the forward over layers and directions, state_dict."""
    gates = 1
    proj_size = 0  # only the LSTM has projections
    _state_names = ("h_0", "c_0")
    _option_names = ("dropout",) + OPTION_NAMES

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 bidirectional=False, *, dropout=0.0, device="cpu", dtype="float32", seed=None, **options):
        name = type(self).__name__
        self.input_size = check_size("input_size", input_size, name)
        self.hidden_size = check_size("hidden_size", hidden_size, name)
        self.num_layers = check_size("num_layers", num_layers, name)
        self.bias = check_bool("bias", bias, name)
        self.batch_first = check_bool("batch_first", batch_first, name)
        self._init_options(check_bool("bidirectional", bidirectional, name), options,
                           getattr(self, "nonlinearity", None), self.proj_size)
        self.dropout = check_dropout(dropout, self.num_layers, name)
        self._setup(device, dtype)
        self._init_params(self._shapes(), seed)
        self._recurrence = self._make_recurrence()
        self._dropout_generator = dropout_generator(seed)

    @property
    def _h_size(self):
        """The features of h, of h_0 / h_n and of each direction's output: proj_size, else hidden_size."""
        return self.proj_size or self.hidden_size

    def _direction_recurrence(self, suffix):
        """The recurrence of one layer and direction (the LSTM's binds that direction's projection)."""
        return self._build_recurrence(suffix)

    def _directions(self, layer):
        """(direction, key suffix) of one layer, in PyTorch's order: _lk, then _lk_reverse."""
        return [(d, f"_l{layer}" + ("_reverse" if d else "")) for d in range(self.num_directions)]

    def _suffixes(self):
        """(layer, direction, key suffix) of every layer, in PyTorch's order."""
        return [(layer, d, suffix) for layer in range(self.num_layers) for d, suffix in self._directions(layer)]

    def _shapes(self):
        shapes = {}
        for layer, _, suffix in self._suffixes():
            layer_input = self.input_size if layer == 0 else self.num_directions * self._h_size
            shapes.update(_params.param_shapes(self.gates, layer_input, self.hidden_size, self.bias, suffix))
            if self.proj_size:  # torch's LSTM with projections: W_hh reads the P-wide h; W_hr last
                shapes[f"weight_hh{suffix}"] = (self.gates * self.hidden_size, self.proj_size)
                shapes[f"weight_hr{suffix}"] = (self.proj_size, self.hidden_size)
            if self.peephole:  # ONNX's P: (p_i, p_o, p_f)
                shapes[f"weight_p{suffix}"] = (3 * self.hidden_size,)
        return shapes

    @classmethod
    def from_state_dict(cls, state_dict, device="cpu", dtype=None, batch_first=False, **options):
        """A layer holding these weights (torch.nn names such as ``weight_hh_l1_reverse``); sizes,
        depth, direction and bias are read off the keys and arrays, the dtype too unless given.

        A state_dict does not say an RNN's nonlinearity (a torch ``RNN(..., nonlinearity="relu")``
        has the same keys and shapes as a tanh one), nor batch_first or dropout: pass them
        (``nonlinearity="relu"``; otherwise tanh), or build from the module itself with
        :meth:`from_torch`, which reads them."""
        cls._check_options(options)
        arrays, dtype = cls._read_state_dict(state_dict, dtype)
        input_size, hidden_size, inferred = cls._sizes_from(arrays)
        num_layers = 1 + max(int(m.group(1)) for m in map(_LAYER_KEY.match, arrays) if m)
        layer = cls(input_size, hidden_size, num_layers=num_layers, bias="bias_ih_l0" in arrays,
                    batch_first=batch_first, bidirectional="weight_ih_l0_reverse" in arrays,
                    device=device, dtype=dtype, **inferred, **options)
        _params.check_params(arrays, layer._shapes(), cls.__name__)
        layer._set_params(arrays)
        return layer

    @classmethod
    def _sizes_from(cls, arrays):
        """(input_size, hidden_size, other constructor arguments read off the weights)."""
        return (*_params.gates_and_sizes(arrays, cls.gates, cls.__name__, "_l0"), {})

    def _options(self):
        return {}

    def _rebuild_options(self):
        return {**self._options(), **self._option_values(), "batch_first": self.batch_first, "dropout": self.dropout}

    def _extra_repr(self):
        # torch.nn's order and defaults
        defaults = {"proj_size": 0, "num_layers": 1, "bias": True, "batch_first": False, "dropout": 0.0,
                    "bidirectional": False}
        return "".join([f", {k}={getattr(self, k)!r}" for k, v in defaults.items() if getattr(self, k) != v]
                       + [f", {k}={v!r}" for k, v in self._option_values().items()])

    # --- input checks ------------------------------------------------------------------------
    def _input(self, x):
        """(x as a contiguous 3-D array in the caller's layout, whether it was batched)."""
        name = type(self).__name__
        x = self._checked_input(x, (2, 3), "2D (unbatched) or 3D")
        batched = x.ndim == 3
        if x.shape[1 if batched and self.batch_first else 0] == 0:  # the shape as the caller gave it
            raise ValueError(f"{name}: input must have at least one time step, got shape {tuple(x.shape)}")
        if not batched:
            x = x[None] if self.batch_first else x[:, None]
        return self._backend.xp.ascontiguousarray(x), batched

    def _state_tensor(self, name, value, batch, batched, features=None):
        """A (L*D, B, features) initial state tensor (features: hidden_size unless given), zeros when None."""
        shape = (self.num_layers * self.num_directions, batch, features or self.hidden_size)
        if value is None:
            return self._backend.zeros(shape, self.dtype)
        value = self._native(name, value)
        check_shape(name, value, shape if batched else (shape[0], shape[2]), type(self).__name__)
        return value if batched else value[:, None]

    def _lengths(self, lengths, steps, batch, batched):
        """Sequence lengths as a host int64 array (B,), each in 1..T, or None."""
        name = type(self).__name__
        if lengths is None:
            return None
        if not batched:
            raise ValueError(f"{name}: lengths is only accepted with batched (3-D) input")
        lengths = to_host(lengths)  # a host copy of CuPy arrays and (CUDA) torch tensors too
        if lengths.size == 0:  # np.asarray([]) is float64; an empty list is a (wrong-sized) list of ints
            lengths = lengths.astype(np.int64)
        if lengths.dtype.kind not in "iu":
            raise TypeError(f"{name}: lengths must be integers, got dtype {lengths.dtype}")
        if lengths.shape != (batch,):
            raise ValueError(f"{name}: lengths must have shape ({batch},) (one per sequence in the batch), "
                             f"got {lengths.shape}")
        if batch and (lengths.min() < 1 or lengths.max() > steps):
            bad = lengths[(lengths < 1) | (lengths > steps)]
            raise ValueError(f"{name}: lengths must lie in 1..{steps} (the input's time steps), got {bad.tolist()}")
        return lengths.astype(np.int64)

    # --- forward -------------------------------------------------------------------------------
    def _forward(self, x, h0, c0, lengths):
        """Run every layer and direction. x (B,T,I) or (T,B,I); h0, c0 (L*D, B, H).
        Returns y in x's layout and (h_n, c_n)."""
        bk, H, D = self._backend, self._h_size, self.num_directions
        batch_axis = 0 if self.batch_first else 1
        T, B = x.shape[1 - batch_axis], x.shape[batch_axis]
        active, order = sort_plan(lengths, T, B) if lengths is not None else (None, None)
        if order is not None:
            x, h0 = take(bk, x, order, batch_axis), take(bk, h0, order, 1)
            c0 = take(bk, c0, order, 1) if c0 is not None else None
        h_n = bk.empty(h0.shape, self.dtype)
        c_n = bk.empty(c0.shape, self.dtype) if c0 is not None else None
        layer_input = x
        for layer in range(self.num_layers):
            shape = (B, T, D * H) if self.batch_first else (T, B, D * H)
            y = (bk.zeros if lengths is not None else bk.empty)(shape, self.dtype)
            y_tm = y.transpose(1, 0, 2) if self.batch_first else y
            for d, suffix in self._directions(layer):
                self._run(layer_input, suffix, self._reverse(d), layer * D + d, h0, c0, y_tm[..., d * H:(d + 1) * H],
                          h_n, c_n, active)
            layer_input = y
        if order is not None:
            inverse = np.argsort(order)
            y, h_n = take(bk, y, inverse, batch_axis), take(bk, h_n, inverse, 1)
            c_n = take(bk, c_n, inverse, 1) if c_n is not None else None
        return y, h_n, c_n

    def _run(self, layer_input, suffix, reverse, index, h0, c0, out, h_n, c_n, active):
        p, rec = self._params, self._direction_recurrence(suffix)
        gx_bias, b_hn = rec.fold_bias(p.get("bias_ih" + suffix), p.get("bias_hh" + suffix))
        gx = project_inputs(self._backend, layer_input, p["weight_ih" + suffix], gx_bias, self.batch_first)
        c0_i = c0[index] if c0 is not None else None
        c_n_i = c_n[index] if c_n is not None else None
        if active is None:
            run_direction(rec, gx, p["weight_hh" + suffix], b_hn, h0[index], c0_i, out, reverse, h_n[index], c_n_i)
        else:
            run_direction_packed(rec, gx, p["weight_hh" + suffix], b_hn, h0[index], c0_i, out, reverse,
                                 active, h_n[index], c_n_i)

    def _call(self, input, h0, c0, lengths):
        """Shared body of __call__: checks, forward, unbatched outputs squeezed."""
        x, batched = self._input(input)
        batch = x.shape[0 if self.batch_first else 1]
        steps = x.shape[1 if self.batch_first else 0]
        lengths = self._lengths(lengths, steps, batch, batched)
        h0 = self._state_tensor(h0[0], h0[1], batch, batched, self._h_size)
        c0 = None if c0 is None else self._state_tensor(c0[0], c0[1], batch, batched)
        y, h_n, c_n = self._forward(x, h0, c0, lengths)
        if not batched:
            y = y[0] if self.batch_first else y[:, 0]
            h_n, c_n = h_n[:, 0], (c_n[:, 0] if c_n is not None else None)
        return y, h_n, c_n

    def __call__(self, input, state=None, lengths=None):
        """The whole sequence: ``output, h_n = layer(input, h_0)``, or
        ``output, (h_n, c_n) = lstm(input, (h_0, c_0))``.

        Args:
            input: (T, B, input_size), (B, T, input_size) with batch_first, or (T, input_size)
                unbatched; an array of the layer's device and dtype.
            state: h_0, or (h_0, c_0) for the LSTM, each (num_layers * D, B, hidden_size), or
                (num_layers * D, hidden_size) unbatched; None means ``initial_state`` (zeros when that
                is None).
            lengths: B integers in 1..T (batched input only), as packed sequences: outputs past a
                sequence's end are zero and its final state is the one at its last step.

        Returns:
            output (T, B, D * hidden_size) in the input's layout, and the final state, shaped as ``state``.
        """
        h_arg, c_arg = self._split_state(self._state_or_initial(state, input))
        y, h_n, c_n = self._call(input, h_arg, c_arg, lengths)
        return y, self._pack_state(h_n, c_n)


class _Layer(InteropMixin, TorchMixin, _SequenceLayer):
    """RNN, LSTM and GRU: ONNX's, torch's and Keras's layers, with converters from and to them."""
    _torch_options = ("batch_first", "dropout")  # here: TorchMixin's empty default comes first in the MRO



class RNN(_Layer):
    __doc__ = r"""A multi-layer Elman RNN, :math:`h_t = \tanh(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh})`
    (or ReLU with ``nonlinearity="relu"``); G = 1.

    Call: ``output, h_n = rnn(input, state=None, lengths=None)``: output (T, B, D*H), h_n and
    ``state`` (h_0) (L*D, B, H), or (L*D, H) unbatched.
""" + _LAYER_ARGS
    gates = 1

    _option_names = ("nonlinearity",) + _Layer._option_names
    _torch_options = ("nonlinearity",) + _Layer._torch_options

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity=None, bias=True, batch_first=False,
                 bidirectional=False, *, dropout=0.0, device="cpu", dtype="float32", seed=None, **options):
        self.nonlinearity = None if nonlinearity is None else check_choice(
            "nonlinearity", nonlinearity, ("tanh", "relu"), "RNN")
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, bidirectional,
                         dropout=dropout, device=device, dtype=dtype, seed=seed, **options)
        self.nonlinearity = self.nonlinearity or uniform_nonlinearity(self.activations)

    def _options(self):
        return {"nonlinearity": self.nonlinearity}


class LSTM(_Layer):
    __doc__ = r"""A multi-layer LSTM; the cell's equations are :class:`rnnkern.LSTMCell`'s; G = 4 (i, f, g, o).

    Call: ``output, (h_n, c_n) = lstm(input, state=None, lengths=None)``: output (T, B, D*H); h_n, c_n
    and ``state = (h_0, c_0)`` (L*D, B, H), or (L*D, H) unbatched.

    With ``proj_size`` P > 0 (keyword-only; 0 < P < hidden_size), an LSTM with projections as in
    torch.nn (Sak et al., 2014): after each step, :math:`h_t = W_{hr} (o_t \odot \tanh(c_t))`, so h, h_0,
    h_n and each direction's output have P features (output (T, B, D*P), h_0 and h_n (L*D, B, P)) while
    c_0 and c_n keep H; ``weight_hh_lk`` is (4*H, P), layer k > 0 reads D*P features, and each layer and
    direction has ``weight_hr_lk`` (P, H). ``from_state_dict`` reads P off ``weight_hr_l0``.
""" + _LAYER_ARGS
    gates = 4
    _kind = "LSTM"
    _option_names = _Layer._option_names + LSTM_OPTION_NAMES[:1]  # peephole is read off the keys

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, bidirectional=False,
                 *, dropout=0.0, proj_size=0, device="cpu", dtype="float32", seed=None, **options):
        self.proj_size = check_proj_size(proj_size, hidden_size, "LSTM")
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, bidirectional,
                         dropout=dropout, device=device, dtype=dtype, seed=seed, **options)

    def _direction_recurrence(self, suffix):
        rec = self._build_recurrence(suffix)
        return ProjectedLSTMRecurrence(rec, self._params["weight_hr" + suffix]) if self.proj_size else rec

    @classmethod
    def _sizes_from(cls, arrays):
        sizes = super()._sizes_from(arrays) if "weight_hr_l0" not in arrays else projected_sizes(arrays, cls.__name__)
        return (*sizes[:2], {**sizes[2], **({"peephole": True} if "weight_p_l0" in arrays else {})})


class GRU(_Layer):
    __doc__ = r"""A multi-layer GRU; the cell's equations, both variants, are :class:`rnnkern.GRUCell`'s;
    G = 3 (r, z, n). ``linear_before_reset=True`` is PyTorch's and cuDNN's GRU, ``False`` ONNX's default.

    Call: ``output, h_n = gru(input, state=None, lengths=None)``, shapes as :class:`RNN`.
""" + _LAYER_ARGS
    gates = 3
    _kind = "GRU"
    _option_names = ("linear_before_reset",) + _Layer._option_names

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, bidirectional=False,
                 linear_before_reset=True, *, dropout=0.0, device="cpu", dtype="float32", seed=None, **options):
        self.linear_before_reset = check_bool("linear_before_reset", linear_before_reset, "GRU")
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, bidirectional,
                         dropout=dropout, device=device, dtype=dtype, seed=seed, **options)

    def _options(self):
        return {"linear_before_reset": self.linear_before_reset}
