"""What cells and layers share: device and dtype, parameters, state_dict, input checks."""

from __future__ import annotations

import inspect
import re
import types
from typing import Any, Iterator, Mapping, NamedTuple

import numpy as np

from . import params as _params
from .._backend import device_of, get_backend
from .._backend.host import CACHE_LINE, aligned_empty
from .._validate import check_bool, check_float_array, check_seed, check_shape, native_byte_order, resolve_dtype

Array = Any  # numpy.ndarray on the CPU, cupy.ndarray on the GPU

# attribute names that look like a parameter's: assigning one the module does not have is an error,
# not a new attribute that the forward pass would silently ignore
_PARAM_NAME = re.compile(r"(weight|bias)_(ih|hh|hr)|layer_norm_")

# inherited methods that public classes get under their own name, so that Python's own messages
# ("LSTM.__init__() got an unexpected keyword argument") name the class the user called
_OWN_NAME_METHODS = ("__init__", "__call__", "forward_train", "backward")


def _is_array(value):
    """Whether ``value`` is an array of any library (NumPy, CuPy, torch), not a number or a list."""
    return hasattr(value, "__array__") or hasattr(value, "__cuda_array_interface__") or hasattr(value, "detach")


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict(..., strict=False)`` did not load, as in PyTorch."""

    missing_keys: list
    unexpected_keys: list


def _gemm_layout(array):
    """A parameter in the memory order BLAS runs fastest on. Host weight matrices (G*H, F) are stored
    column-major: every GEMM multiplies by W^T (x @ W_ih^T, h @ W_hh^T), which is then a C-contiguous
    (F, G*H) matrix that OpenBLAS reads without a transpose (on an Intel Xeon the step GEMM ran 16%
    faster, batch 1's GEMV 36%; see benchmarks/RESULTS.md for this AMD machine). Shape and indexing stay PyTorch's, the optimisers update the same
    arrays in place, and no call copies them; only ``w.reshape(-1)`` is a copy, not a view. They
    start on a cache line (``host.aligned_empty``): batch 1's GEMV ran 1.3x slower 16 bytes off one."""
    if isinstance(array, np.ndarray) and array.ndim == 2:
        if array.flags.f_contiguous and array.ctypes.data % CACHE_LINE == 0:
            return array
        stored = aligned_empty(array.shape, array.dtype, order="F")
        stored[...] = array
        return stored
    return array


class ParamModule:
    """Holds named parameters (PyTorch names and layouts) on one backend in one dtype.

    Parameters are created by ``_set_params`` and from then on written only by ``_write_params``, in
    place. ``_version`` counts those writes (and the optimisers' in-place steps, which call
    ``_mark_params_written``), so that ``backward`` can refuse a tape recorded with other weights.
    """

    _version = 0

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__name__.startswith("_"):
            return
        for name in _OWN_NAME_METHODS:
            inherited = getattr(cls, name, None)
            if name not in cls.__dict__ and isinstance(inherited, types.FunctionType):
                own = types.FunctionType(inherited.__code__, inherited.__globals__, name,
                                         inherited.__defaults__, inherited.__closure__)
                own.__kwdefaults__, own.__doc__ = inherited.__kwdefaults__, inherited.__doc__
                own.__annotations__ = inherited.__annotations__
                own.__qualname__, own.__module__ = f"{cls.__name__}.{name}", cls.__module__
                setattr(cls, name, own)

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

    def __setattr__(self, name, value):
        """``layer.weight_ih_l0 = array`` writes the parameter (checked: shape, dtype, device)."""
        params = self.__dict__.get("_params")
        if params is not None and name in params:
            self._write_params({name: value}, type(self).__name__)
        elif params is not None and _PARAM_NAME.match(name):
            raise AttributeError(f"{type(self).__name__} has no parameter {name!r} to assign "
                                 f"(its parameters: {', '.join(params)})")
        else:
            object.__setattr__(self, name, value)

    @property
    def xp(self):
        """The array module of the module's device: numpy on the CPU, cupy on the GPU."""
        return self._backend.xp

    def _init_params(self, shapes, seed):
        seed = check_seed(seed, type(self).__name__)
        self._set_params(_params.init_params(shapes, self.hidden_size, seed, self.dtype))

    def _set_params(self, arrays):
        self._params = {k: _gemm_layout(self._backend.asarray(v, self.dtype)) for k, v in arrays.items()}

    def _write_params(self, arrays, owner, cast=False):
        """The one path that writes existing parameters (assignment, load_state_dict).

        Every value is checked before any is written: a known name, the parameter's shape, and its
        dtype and device (``cast``: any floating dtype and either device, converted, as
        load_state_dict does). Values are copied into the existing arrays in place, so that the
        parameters' layout and the optimisers' references to them stay valid."""
        converted = {}
        for key, value in arrays.items():
            if key not in self._params:
                raise KeyError(f"{owner}: {type(self).__name__} has no parameter {key!r} "
                               f"(its parameters: {', '.join(self._params)})")
            label = f"state_dict[{key!r}]" if cast else key
            value = self._cast(label, value, owner) if cast else self._native(label, value, owner)
            check_shape(label, value, self._params[key].shape, owner)
            converted[key] = value
        for key, value in converted.items():
            param = self._params[key]
            if value is not param and self.xp.may_share_memory(value, param):
                value = value.copy()  # e.g. ``w = w[::-1]``: CuPy's copy does not guard against overlap
            param[...] = value
        if converted:
            self._mark_params_written()

    def _cast(self, label, value, owner):
        """A host float array from read_state_dict, on this device in this dtype."""
        if value.dtype.kind != "f":
            raise TypeError(f"{owner}: {label} must hold floating-point values, got dtype {value.dtype}")
        return self._backend.asarray(value, self.dtype)

    def _mark_params_written(self):
        """Record that the parameters changed in place: tapes recorded before can no longer be used."""
        self.__dict__["_version"] = self._version + 1

    def state_dict(self) -> dict:
        """The parameters as NumPy arrays (C-contiguous copies), keyed and laid out as in PyTorch."""
        return {k: np.array(self._backend.to_numpy(v), order="C") for k, v in self._params.items()}

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Copy the weights of ``state_dict`` (NumPy, CuPy or torch tensors, any floating dtype, either
        device) into this module's parameters, in place, as ``torch.nn.Module.load_state_dict``.

        With ``strict`` the keys must be exactly ``state_dict()``'s (KeyError otherwise); without, the
        keys that match are loaded and the others returned as ``(missing_keys, unexpected_keys)``.
        Shapes must match either way, and nothing is written unless everything checks out."""
        where = f"{type(self).__name__}.load_state_dict"
        strict = check_bool("strict", strict, where)
        arrays = _params.read_state_dict(state_dict, where)
        missing, unexpected = _params.check_keys(arrays, self._params, where, strict)
        self._write_params({k: v for k, v in arrays.items() if k in self._params}, where, cast=True)
        return IncompatibleKeys(missing, unexpected)

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Array]]:
        """``(name, array)`` for every parameter, in PyTorch's order; the arrays are the live ones on
        the module's device (changing them in place changes the module)."""
        for name, array in self._params.items():
            yield prefix + name, array

    def parameters(self) -> Iterator[Array]:
        """The live parameter arrays, in ``named_parameters()``'s order, as ``torch.nn.Module.parameters``."""
        return iter(list(self._params.values()))

    def to(self, device: str) -> "ParamModule":
        """This module on another device ("cpu", "gpu", "auto"): a new module with the same weights."""
        if get_backend(device) is self._backend:
            return self
        # from_state_dict is defined by cells and layers
        rebuild = type(self).from_state_dict  # type: ignore[attr-defined]
        return rebuild(self.state_dict(), device=device, dtype=self.dtype, **self._rebuild_options())

    def _rebuild_options(self):
        """Constructor options that ``to()`` carries over (beyond sizes, which the weights give)."""
        return self._options()

    _option_names: tuple = ()  # the subclass's own constructor options, which from_state_dict accepts
    # read off the state_dict's keys and shapes, so not options of from_state_dict
    _structure_names: tuple = ("input_size", "hidden_size", "bias", "num_layers", "bidirectional", "proj_size")

    @classmethod
    def _check_options(cls, options):
        unknown = [k for k in options if k not in cls._option_names]
        if not unknown:
            return
        where = f"{cls.__name__}.from_state_dict"
        structural = [k for k in unknown if k in cls._structure_names]
        if structural:
            raise TypeError(f"{where}: {', '.join(structural)} cannot be passed: the sizes, bias, depth and "
                            f"directions are read off the state_dict's keys and shapes")
        signature = inspect.signature(cls.from_state_dict).parameters.values()
        accepted = ", ".join([p.name for p in signature if p.kind != p.VAR_KEYWORD and p.name != "state_dict"]
                             + list(cls._option_names))
        raise TypeError(f"{where}: unexpected option(s) {', '.join(map(repr, unknown))} "
                        f"({where} accepts: {accepted})")

    @classmethod
    def _read_state_dict(cls, state_dict, dtype):
        arrays = _params.read_state_dict(state_dict, f"{cls.__name__}.from_state_dict", copy=True)
        if dtype is None and arrays:
            dtype = _params.infer_dtype(arrays, cls.__name__)
        return arrays, dtype

    def _native(self, name, value, owner=None):
        """``value`` as an array of this module's device and dtype, or a clear error."""
        owner = owner or type(self).__name__
        is_torch = type(value).__module__.split(".")[0] == "torch"
        if hasattr(value, "detach") and callable(value.detach):  # a torch tensor, maybe requiring grad
            value = value.detach()
        if hasattr(value, "__array__") or hasattr(value, "__cuda_array_interface__"):
            where = device_of(value)
            if where != self.device:
                raise TypeError(f"{owner}: {name} is on device '{where}' but the {owner.split('.')[0]} is on "
                                f"'{self.device}'; move it with rnnkern.asarray({name}, device='{self.device}')")
            convert = f".to(torch.{self.dtype.name})" if is_torch else None
            if is_torch and where == "cpu":
                value = _params.torch_to_numpy(value, f"{owner}: {name}", f"convert it with {convert}")
            array = native_byte_order(self._backend.asarray(value))
            check_float_array(name, array, self.dtype, owner, convert, self._backend.dtypes, self.device)
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
            self._check_not_a_tuple(state, what)
            return (what, state), None
        h, c = self._state_names
        if state is None:
            state = (None, None)
        elif not isinstance(state, (tuple, list)) or len(state) != 2:
            size = f" of length {len(state)}" if isinstance(state, (tuple, list)) else ""
            raise TypeError(f"{type(self).__name__}: {what} must be a tuple ({h}, {c}), "
                            f"got {type(state).__name__}{size}")
        return (f"{what}[0] ({h})", state[0]), (f"{what}[1] ({c})", state[1])

    def _check_not_a_tuple(self, state, what):
        """A tuple of arrays where one array is expected is (h, c) by habit from the LSTM, or torch's
        (h,): say so, rather than report a shape with an extra leading 2 (nested lists of numbers are
        one array, and pass)."""
        if isinstance(state, (tuple, list)) and any(_is_array(part) for part in state):
            name, count = type(self).__name__, len(state)
            lstm = "LSTMCell" if name.endswith("Cell") else "LSTM"
            raise TypeError(f"{name}: {what} must be one array, {self._state_names[0]} (the {name} has no cell "
                            f"state; only the {lstm} takes a tuple ({', '.join(self._state_names)})), got a "
                            f"{type(state).__name__} of {count} array{'s' if count != 1 else ''}")

    def _pack_state(self, h, c):
        return (h, c) if self._recurrence.has_cell_state else h

    def __repr__(self):
        opts = "".join(f", {k}={v!r}" for k, v in self._options().items())
        return (f"{type(self).__name__}({self.input_size}, {self.hidden_size}{self._extra_repr()}{opts}, "
                f"device='{self.device}', dtype={self.dtype.name})")

    def _extra_repr(self):
        return ""
