"""What cells and layers share: device and dtype, parameters, state_dict, input checks."""

import numpy as np

from . import _params
from ._backend import device_of, get_backend
from ._validate import check_float_array, resolve_dtype


def _gemm_layout(array):
    """A parameter in the memory order BLAS runs fastest on. Host weight matrices (G*H, F) are stored
    column-major: every GEMM multiplies by W^T (x @ W_ih^T, h @ W_hh^T), which is then a C-contiguous
    (F, G*H) matrix that OpenBLAS reads without a transpose (on an Intel Xeon the step GEMM ran 16%
    faster, batch 1's GEMV 36%; see benchmarks/RESULTS.md for this AMD machine). Shape and indexing stay PyTorch's, the optimisers update the same
    arrays in place, and no call copies them; only ``w.reshape(-1)`` is a copy, not a view."""
    if isinstance(array, np.ndarray) and array.ndim == 2:
        return np.asfortranarray(array)
    return array


class ParamModule:
    """Holds named parameters (PyTorch names and layouts) on one backend in one dtype."""

    def _setup(self, device, dtype):
        name = type(self).__name__
        self._backend = get_backend(device)
        self.device = self._backend.name
        self.dtype = resolve_dtype(dtype, name)
        if self.dtype.name not in self._backend.dtypes:
            raise TypeError(f"{name}: dtype {self.dtype.name} is not supported on device='{self.device}' "
                            f"(supported there: {', '.join(self._backend.dtypes)})")

    def __getattr__(self, name):
        """Parameters as attributes, as in PyTorch: ``cell.weight_ih``, ``layer.bias_hh_l1_reverse``."""
        params = self.__dict__.get("_params", {})
        if name in params:
            return params[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    @property
    def xp(self):
        """The array module of the module's device: numpy on the CPU, cupy on the GPU."""
        return self._backend.xp

    def _set_params(self, arrays):
        self._params = {k: _gemm_layout(self._backend.asarray(v, self.dtype)) for k, v in arrays.items()}

    def state_dict(self):
        """The parameters as NumPy arrays (C-contiguous copies), keyed and laid out as in PyTorch."""
        return {k: np.array(self._backend.to_numpy(v), order="C") for k, v in self._params.items()}

    def parameters(self):
        """The live parameter arrays on the module's device, keyed like ``state_dict()``."""
        return dict(self._params)

    def to(self, device):
        """This module on another device ("cpu", "gpu", "auto"): a new module with the same weights."""
        if get_backend(device) is self._backend:
            return self
        return type(self).from_state_dict(self.state_dict(), device=device, dtype=self.dtype, **self._rebuild_options())

    def _rebuild_options(self):
        """Constructor options that ``to()`` carries over (beyond sizes, which the weights give)."""
        return self._options()

    _option_names = ()  # the subclass's own constructor options, which from_state_dict accepts

    @classmethod
    def _check_options(cls, options):
        unknown = [k for k in options if k not in cls._option_names]
        if unknown:
            raise TypeError(f"{cls.__name__}.from_state_dict: unexpected option(s) {', '.join(map(repr, unknown))} "
                            f"(options of {cls.__name__}: {', '.join(cls._option_names) or 'none'})")

    @classmethod
    def _read_state_dict(cls, state_dict, dtype):
        arrays = _params.read_state_dict(state_dict, cls.__name__)
        if dtype is None and arrays:
            dtype = _params.infer_dtype(arrays, cls.__name__)
        return arrays, dtype

    def _native(self, name, value, owner=None):
        """``value`` as an array of this module's device and dtype, or a clear error."""
        owner = owner or type(self).__name__
        if hasattr(value, "detach") and callable(value.detach):  # a torch tensor, maybe requiring grad
            value = value.detach()
        if hasattr(value, "__array__") or hasattr(value, "__cuda_array_interface__"):
            where = device_of(value)
            if where != self.device:
                raise TypeError(f"{owner}: {name} is on device '{where}' but the {owner} is on '{self.device}'; "
                                f"move it with rnnkern.asarray({name}, device='{self.device}')")
            array = self._backend.asarray(value)
            check_float_array(name, array, self.dtype, owner)
            return array
        # Python data (lists of floats): converted to the module's dtype, but never None or objects,
        # which NumPy would silently turn into NaN.
        try:
            host = np.asarray(value)
        except (TypeError, ValueError) as exc:
            host = None
            why = str(exc)
        if host is None or host.dtype.kind not in "biuf":
            why = why if host is None else f"it holds {host.dtype} values"
            raise TypeError(f"{owner}: {name} must be an array of dtype {self.dtype.name}, "
                            f"got {type(value).__name__} ({why}); nested lists of numbers are accepted too")
        return self._backend.asarray(host, self.dtype)

    def _checked_input(self, x, ranks, expected):
        """``x`` on this device and dtype, of a rank in ``ranks`` and with input_size features."""
        name = type(self).__name__
        x = self._native("input", x)
        if x.ndim not in ranks:
            raise ValueError(f"{name}: Expected input to be {expected}, got {x.ndim}D instead")
        if x.shape[-1] != self.input_size:
            raise ValueError(f"{name}: input must have {self.input_size} features (input_size) in its last "
                             f"dimension, got shape {tuple(x.shape)}")
        return x

    _state_names = ("h", "c")  # how messages name the state's parts

    def _split_state(self, state, what="state"):
        """((name, h), (name, c) or None): the state's parts, named for error messages."""
        if not self._recurrence.has_cell_state:
            return (what, state), None
        h, c = self._state_names
        if state is None:
            state = (None, None)
        elif not isinstance(state, (tuple, list)) or len(state) != 2:
            size = f" of length {len(state)}" if isinstance(state, (tuple, list)) else ""
            raise TypeError(f"{type(self).__name__}: {what} must be a tuple ({h}, {c}), "
                            f"got {type(state).__name__}{size}")
        return (f"{what}[0] ({h})", state[0]), (f"{what}[1] ({c})", state[1])

    def _pack_state(self, h, c):
        return (h, c) if self._recurrence.has_cell_state else h

    def __repr__(self):
        opts = "".join(f", {k}={v!r}" for k, v in self._options().items())
        return (f"{type(self).__name__}({self.input_size}, {self.hidden_size}{self._extra_repr()}{opts}, "
                f"device='{self.device}', dtype={self.dtype.name})")

    def _extra_repr(self):
        return ""
