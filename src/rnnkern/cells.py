"""Single-step cells: RNNCell, LSTMCell, GRUCell (PyTorch's API, names and weight layouts)."""

from __future__ import annotations

from typing import Any, Mapping, Optional, Tuple, Union

from ._nn import params as _params
from ._nn.module import Array, ParamModule
from ._recurrences.ieee import nan_from_inf_expected
from ._nn.layer_options import CellOptions
from ._recurrences.semantics import OPTION_NAMES, uniform_nonlinearity
from ._interop.torch import TorchMixin
from ._nn.training import TrainableCell
from ._validate import check_bool, check_choice, check_shape, check_size


State = Union[None, Array, Tuple[Optional[Array], Optional[Array]]]  # h, or (h, c) for the LSTMCell
Seed = Union[None, int, Any]  # or a numpy.random.Generator


class _StepCell(CellOptions, TrainableCell, ParamModule):
    """What every cell shares (rnnkern.layernorm's too): input and state checks, the call, state_dict."""
    gates = 1
    _option_names = OPTION_NAMES[1:]  # ONNX's options but direction (see rnnkern.LSTM's docstring)

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, *, device: str = "cpu",
                 dtype: Any = "float32", seed: Seed = None, **options):
        name = type(self).__name__
        self.input_size = check_size("input_size", input_size, name)
        self.hidden_size = check_size("hidden_size", hidden_size, name)
        self.bias = check_bool("bias", bias, name)
        self._init_cell_options(options, getattr(self, "nonlinearity", None))
        self._setup(device, dtype)
        self._init_params(self._cell_shapes(), seed)
        self._recurrence = self._make_recurrence()

    @classmethod
    def from_state_dict(cls, state_dict: Mapping[str, Any], device: str = "cpu", dtype: Any = None, **options):
        """A cell holding these weights (PyTorch names); sizes and bias are read off the arrays,
        the dtype too unless ``dtype`` is given. ``options``: nonlinearity (RNNCell) or
        linear_before_reset (GRUCell). A state_dict does not say an RNNCell's nonlinearity (tanh
        unless given): pass ``nonlinearity="relu"``, or build from the torch module with
        :meth:`from_torch`, which reads it."""
        cls._check_options(options)
        arrays, dtype = cls._read_state_dict(state_dict, dtype)
        input_size, hidden_size = _params.gates_and_sizes(arrays, cls.gates, cls.__name__)
        bias = "bias_ih" in arrays or "bias_hh" in arrays
        if cls._kind == "LSTM" and "weight_p" in arrays:  # elsewhere check_params names the stray key
            options["peephole"] = True
        cell = cls(input_size, hidden_size, bias, device=device, dtype=dtype, **options)
        _params.check_params(arrays, cell._cell_shapes(), cls.__name__)
        cell._set_params(arrays)
        return cell

    def _options(self):
        return {}

    def __call__(self, input: Array, state: State = None) -> State:
        """One step: ``h' = cell(input, h)``, or ``h', c' = cell(input, (h, c))`` for the LSTMCell.

        Args:
            input: (B, input_size), or (input_size,) unbatched; an array of the cell's device and
                dtype (NumPy or CuPy; torch tensors and nested lists are read too).
            state: h, or (h, c) for the LSTMCell, each (B, hidden_size), or (hidden_size,)
                unbatched; None means zeros.

        Returns:
            The new state, same structure and shapes as ``state``: fresh arrays on the cell's device.
        """
        x, batched = self._input(input)
        (h_name, h), c_part = self._split_state(state)
        h = self._hidden(h_name, h, x.shape[0], batched)
        c = self._hidden(c_part[0], c_part[1], x.shape[0], batched) if c_part else None
        h_new, c_new = self._run(x, h, c)
        return self._user_state(h_new, c_new, batched)

    def _extra_repr(self):
        return ("" if self.bias else ", bias=False") + "".join(f", {k}={v!r}" for k, v in self._option_values().items())

    def _input(self, x):
        """(x as a 2-D array, whether the caller's input was batched)."""
        x = self._checked_input(x, (1, 2), "1D or 2D")
        return (x, True) if x.ndim == 2 else (x[None, :], False)

    def _hidden(self, name, value, batch, batched):
        """A state tensor (zeros when None) as 2-D, checked against the input's batch."""
        if value is None:
            return self._backend.zeros((batch, self.hidden_size), self.dtype)
        value = self._native(name, value)
        expected = (batch, self.hidden_size) if batched else (self.hidden_size,)
        check_shape(name, value, expected, type(self).__name__ + f" (input batch {batch})" if batched
                    else type(self).__name__ + " (unbatched input)")
        return value if batched else value[None, :]

    @nan_from_inf_expected
    def _run(self, x, h, c):
        """One step; returns fresh (h, c) arrays of shape (B, H) (c is None without a cell state)."""
        p, rec, bk = self._params, self._cell_recurrence(), self._backend
        gx_bias, b_hn = rec.fold_bias(p.get("bias_ih"), p.get("bias_hh"))
        gx = bk.xp.matmul(x, p["weight_ih"].T)
        if gx_bias is not None:
            gx += gx_bias
        ws = rec.workspace(x.shape[0], self.dtype)
        h_out = bk.empty(h.shape, self.dtype)
        c_out = bk.empty(c.shape, self.dtype) if c is not None else None
        rec.step(gx, h, c, p["weight_hh"], b_hn, ws, h_out, c_out)
        return h_out, c_out


class _Cell(TorchMixin, _StepCell):
    """RNNCell, LSTMCell and GRUCell: torch.nn's cells, with from_torch."""


class RNNCell(_Cell):
    r"""An Elman RNN cell with tanh or ReLU non-linearity.

    .. math:: h' = \tanh(W_{ih} x + b_{ih} + W_{hh} h + b_{hh})

    Args:
        input_size: the number of features of the input ``x``.
        hidden_size: the number of features of the hidden state ``h``.
        bias: if False, the cell has no ``bias_ih`` and ``bias_hh``.
        nonlinearity: ``"tanh"`` or ``"relu"``.
        device: ``"cpu"``, ``"gpu"`` or ``"auto"``.
        dtype: ``"float32"`` or ``"float64"`` (and ``"float16"`` on the GPU).
        seed: seed of the U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)) initialisation.
        activations, activation_alpha, activation_beta, clip (keyword-only): ONNX's options, one
            direction's, as the layers take them (see :class:`rnnkern.LSTM`); the LSTMCell also takes
            ``input_forget`` and ``peephole`` (parameter ``weight_p`` (3*hidden_size,), order i, o, f).

    Call: ``h' = cell(input, state=None)``; input (B, input_size) or (input_size,),
    state ``h`` (B, hidden_size) or (hidden_size,), zeros when None; ``h'`` has the state's shape.

    Weights: ``weight_ih`` (hidden_size, input_size), ``weight_hh`` (hidden_size, hidden_size),
    ``bias_ih`` and ``bias_hh`` (hidden_size,).
    """

    gates = 1
    _option_names = ("nonlinearity",) + _Cell._option_names
    _torch_options = ("nonlinearity",)

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: Optional[str] = None, *,
                 device: str = "cpu", dtype: Any = "float32", seed: Seed = None, **options):
        self.nonlinearity = None if nonlinearity is None else check_choice(
            "nonlinearity", nonlinearity, ("tanh", "relu"), "RNNCell")
        super().__init__(input_size, hidden_size, bias, device=device, dtype=dtype, seed=seed, **options)
        self.nonlinearity = self.nonlinearity or uniform_nonlinearity(self.activations)

    def _options(self):
        return {"nonlinearity": self.nonlinearity}


class LSTMCell(_Cell):
    r"""A long short-term memory (LSTM) cell.

    .. math::
        \begin{array}{ll}
        i = \sigma(W_{ii} x + b_{ii} + W_{hi} h + b_{hi}) \\
        f = \sigma(W_{if} x + b_{if} + W_{hf} h + b_{hf}) \\
        g = \tanh(W_{ig} x + b_{ig} + W_{hg} h + b_{hg}) \\
        o = \sigma(W_{io} x + b_{io} + W_{ho} h + b_{ho}) \\
        c' = f \odot c + i \odot g \\
        h' = o \odot \tanh(c')
        \end{array}

    Args: as :class:`RNNCell`, without ``nonlinearity``.

    Call: ``h', c' = cell(input, state=None)``; input (B, input_size) or (input_size,),
    state ``(h, c)``, each (B, hidden_size) or (hidden_size,), zeros when None.

    Weights: ``weight_ih`` (4*hidden_size, input_size), ``weight_hh`` (4*hidden_size, hidden_size),
    ``bias_ih`` and ``bias_hh`` (4*hidden_size,); gate blocks in the order i, f, g, o.
    """

    gates = 4
    _kind = "LSTM"
    _option_names = _Cell._option_names + ("input_forget",)  # peephole: read off the keys


class GRUCell(_Cell):
    r"""A gated recurrent unit (GRU) cell, in either of its two published variants.

    .. math::
        \begin{array}{ll}
        r = \sigma(W_{ir} x + b_{ir} + W_{hr} h + b_{hr}) \\
        z = \sigma(W_{iz} x + b_{iz} + W_{hz} h + b_{hz}) \\
        n = \tanh(W_{in} x + b_{in} + r \odot (W_{hn} h + b_{hn}))
            \quad \text{(linear\_before\_reset=True: PyTorch, cuDNN)} \\
        n = \tanh(W_{in} x + b_{in} + W_{hn} (r \odot h) + b_{hn})
            \quad \text{(linear\_before\_reset=False: Cho et al., ONNX's default)} \\
        h' = (1 - z) \odot n + z \odot h
        \end{array}

    Args: as :class:`RNNCell`, with ``linear_before_reset`` instead of ``nonlinearity``.

    Call: ``h' = cell(input, state=None)``, shapes as :class:`RNNCell`.

    Weights: ``weight_ih`` (3*hidden_size, input_size), ``weight_hh`` (3*hidden_size, hidden_size),
    ``bias_ih`` and ``bias_hh`` (3*hidden_size,); gate blocks in the order r, z, n.
    """

    gates = 3
    _kind = "GRU"
    _option_names = ("linear_before_reset",) + _Cell._option_names

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, linear_before_reset: bool = True, *,
                 device: str = "cpu", dtype: Any = "float32", seed: Seed = None, **options):
        self.linear_before_reset = check_bool("linear_before_reset", linear_before_reset, "GRUCell")
        super().__init__(input_size, hidden_size, bias, device=device, dtype=dtype, seed=seed, **options)

    def _options(self):
        return {"linear_before_reset": self.linear_before_reset}
