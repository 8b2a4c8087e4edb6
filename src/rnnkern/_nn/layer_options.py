"""The layers' side of ONNX's options (see _semantics.py): attributes, per-direction recurrences,
the reverse-only direction, peephole parameters and ``initial_state``. Mixed into _Layer."""

from . import params as _params
from .._recurrences import semantics as _semantics
from .._recurrences.cells import GRURecurrence, LSTMRecurrence, RNNRecurrence


class LayerOptions:
    _kind = "RNN"  # ONNX's op: "RNN", "LSTM", "GRU"
    peephole = False
    input_forget = False

    def _init_options(self, bidirectional, options, nonlinearity=None, proj_size=0):
        """Set direction, bidirectional, num_directions and the ONNX options' attributes."""
        name = type(self).__name__
        options = dict(options)
        self.direction, self.bidirectional = _semantics.check_direction(
            options.pop("direction", None), bidirectional, name)
        self.num_directions = 2 if self.bidirectional else 1
        sem = _semantics.resolve(self._kind, self.num_directions, options, name, nonlinearity, proj_size)
        self._semantics = sem
        self.activations, self.clip = sem.activations, sem.clip
        self.activation_alpha, self.activation_beta = sem.activation_alpha, sem.activation_beta
        if self._kind == "LSTM":
            self.input_forget, self.peephole = sem.input_forget, sem.peephole
        self.__dict__["_initial_state"] = None

    def _reverse(self, d):
        """Whether direction ``d`` of a layer runs from the last step to the first."""
        return d == 1 or self.direction == "reverse"

    def _make_recurrence(self, math=None, weight_p=None):
        """A recurrence of this module's cell with ``math`` (default: the first direction's CellMath)."""
        bk, H = self._backend, self.hidden_size
        math = math or self._semantics.maths[0]
        if self._kind == "RNN":
            return RNNRecurrence(bk, H, math)
        if self._kind == "LSTM":
            return LSTMRecurrence(bk, H, math, weight_p)
        return GRURecurrence(bk, H, math, self.linear_before_reset)

    def _build_recurrence(self, suffix):
        """The recurrence of one layer and direction (key suffix): the module's own (``_recurrence``)
        where its CellMath is that direction's, else one made for it; a peephole LSTM's is bound to
        that direction's ``weight_p``."""
        math = self._semantics.maths[1 if suffix.endswith("_reverse") else 0]
        if math.peephole:
            return self._make_recurrence(math, self._params["weight_p" + suffix])
        return self._recurrence if self._recurrence.math == math else self._make_recurrence(math)

    def _option_values(self):
        """The ONNX options that differ from the defaults, as constructor arguments (repr, ``to()``)."""
        sem = self._semantics
        default = _semantics.default_names(self._kind, self.num_directions, getattr(self, "nonlinearity", None))
        values = {"direction": "reverse" if self.direction == "reverse" else None,
                  "activations": list(sem.activations) if sem.activations != default else None,
                  "activation_alpha": list(sem.activation_alpha) or None,
                  "activation_beta": list(sem.activation_beta) or None,
                  "clip": sem.clip, "input_forget": sem.input_forget or None}
        return {k: v for k, v in values.items() if v is not None}

    # --- initial_state ---------------------------------------------------------------------
    @property
    def initial_state(self):
        """The state used when ``state=None`` is passed (``h_0``, or ``(h_0, c_0)`` for the LSTM,
        shaped as ``state``), or None for zeros. Set it to an array (pair) or None."""
        return self.__dict__.get("_initial_state")

    @initial_state.setter
    def initial_state(self, value):
        if value is not None:
            value = self._checked_initial_state(value)
        self.__dict__["_initial_state"] = value

    def _checked_initial_state(self, value):
        name = type(self).__name__
        (h_name, h), c_part = self._split_state(value, "initial_state")
        L, hs = self.num_layers * self.num_directions, self._h_size
        parts = [(h_name, h, hs)] + ([(c_part[0], c_part[1], self.hidden_size)] if c_part else [])
        arrays = []
        for label, array, features in parts:
            if array is None:
                raise TypeError(f"{name}: {label} must be an array, got None")
            array = self._native(label, array)
            if array.ndim not in (2, 3) or array.shape[0] != L or array.shape[-1] != features:
                raise ValueError(f"{name}: {label} must have shape ({L}, batch, {features}) or ({L}, {features}) "
                                 f"unbatched, got {tuple(array.shape)}")
            arrays.append(array)
        if len(arrays) == 2 and arrays[0].shape[:-1] != arrays[1].shape[:-1]:
            raise ValueError(f"{name}: initial_state's h_0 {tuple(arrays[0].shape)} and c_0 {tuple(arrays[1].shape)} "
                             f"must have the same batch")
        return tuple(arrays) if c_part else arrays[0]

    def _state_or_initial(self, state, input):
        """``state``, or initial_state when state is None, checked against the input's batch."""
        init = self.initial_state
        if state is not None or init is None:
            return state
        h = init[0] if isinstance(init, tuple) else init
        ndim = getattr(input, "ndim", None)
        batch = input.shape[0 if self.batch_first else 1] if ndim == 3 else None
        own = h.shape[1] if h.ndim == 3 else None
        if ndim in (2, 3) and batch != own:
            def what(b):
                return "unbatched input" if b is None else f"a batch of {b}"
            raise ValueError(f"{type(self).__name__}: initial_state is for {what(own)} but the input is "
                             f"{what(batch)}; pass state= explicitly or set initial_state to match")
        return init

    def to(self, device):
        moved = super().to(device)
        if moved is not self and self.initial_state is not None:
            init = self.initial_state
            bk = moved._backend
            moved.initial_state = tuple(bk.asarray(a) for a in init) if isinstance(init, tuple) else bk.asarray(init)
        return moved


class CellOptions(LayerOptions):
    """ONNX's options on a cell: those of one direction (no ``direction``); peepholes are ``weight_p``."""

    def _init_cell_options(self, options, nonlinearity=None):
        if "direction" in options:
            raise TypeError(f"{type(self).__name__}.__init__() got an unexpected keyword argument 'direction' "
                            f"(a cell runs one step; use a layer for direction)")
        self._init_options(False, options, nonlinearity)

    def _cell_shapes(self):
        shapes = _params.param_shapes(self.gates, self.input_size, self.hidden_size, self.bias)
        if self.peephole:
            shapes["weight_p"] = (3 * self.hidden_size,)
        return shapes

    def _cell_recurrence(self):
        return self._build_recurrence("")

    def _state_or_initial(self, state, input):
        return state

    initial_state = None  # cells take their state in each call
