"""Haste's LayerNormLSTM / LayerNormGRU (lmnt-com/haste) parameters, into the layer-normalised
layers and cells and back: ``from_haste`` and ``to_haste``.

Haste's layers are single-layer and unidirectional, and lay their weights out as x @ W:

=====================  ==========================  ======================================
Haste (LSTM / GRU)      shape                       rnnkern (suffix ``_l0`` in layers)
=====================  ==========================  ======================================
kernel                  (I, G*H)                    weight_ih (G*H, I), transposed
recurrent_kernel        (H, G*H)                    weight_hh (G*H, H), transposed
bias                    (G*H,)                      LSTM ``bias``; GRU ``bias_ih``
recurrent_bias (GRU)    (3H,)                       bias_hh
gamma                   (2, G*H)                    layer_norm_ih_weight (gamma[0]), layer_norm_hh_weight (gamma[1])
gamma_h, beta_h (LSTM)  (H,)                        layer_norm_c_weight, layer_norm_c_bias
=====================  ==========================  ======================================

Every G*H axis is also reordered, gate block by block: Haste's LSTM is (i, g, f, o), rnnkern's
(i, f, g, o); Haste's GRU (z, r, h), rnnkern's (r, z, n). Both reorderings swap two blocks, so the
same one maps either way. Haste's zoneout, dropout (DropConnect: ``forward_train``'s
``recurrent_dropout``) and forget_bias (an initialiser) are not in its state_dict.
"""

import numpy as np

from .._backend import to_host
from .._nn import params as _params
from .._nn.layernorm_setup import NAMES

HASTE_NAMES = {"LSTM": ("kernel", "recurrent_kernel", "bias", "gamma", "gamma_h", "beta_h"),
               "GRU": ("kernel", "recurrent_kernel", "bias", "recurrent_bias", "gamma")}
_BLOCKS = {"LSTM": (0, 2, 1, 3), "GRU": (1, 0, 2)}


def _reorder(kind, array, axis=0):
    """The gate blocks of ``array`` along ``axis`` swapped between Haste's order and rnnkern's."""
    blocks = np.split(array, len(_BLOCKS[kind]), axis=axis)
    return np.concatenate([blocks[k] for k in _BLOCKS[kind]], axis=axis)


def _haste_shapes(kind, arrays, where):
    """Haste's expected shapes, from kernel and recurrent_kernel; a ValueError naming a wrong one."""
    G = 4 if kind == "LSTM" else 3
    kernel, recurrent = arrays["kernel"], arrays["recurrent_kernel"]
    if recurrent.ndim != 2 or recurrent.shape[0] == 0 or recurrent.shape[1] != G * recurrent.shape[0]:
        raise ValueError(f"{where}: 'recurrent_kernel' must have shape (H, {G}*H) (Haste's layout), "
                         f"got {recurrent.shape}")
    H = recurrent.shape[0]
    if kernel.ndim != 2 or kernel.shape[1] != G * H:
        raise ValueError(f"{where}: 'kernel' must have shape (input_size, {G * H}) (Haste's layout, "
                         f"H = {H} from recurrent_kernel), got {kernel.shape}")
    shapes = {"kernel": kernel.shape, "recurrent_kernel": recurrent.shape, "bias": (G * H,),
              "recurrent_bias": (G * H,), "gamma": (2, G * H), "gamma_h": (H,), "beta_h": (H,)}
    return {name: shapes[name] for name in HASTE_NAMES[kind]}


def from_haste_arrays(kind, state_dict, where):
    """Haste's state_dict -> arrays keyed by rnnkern's names without suffix."""
    arrays = _params.read_state_dict(state_dict, where, copy=True)
    _params.check_keys(arrays, HASTE_NAMES[kind], where)
    for name, shape in _haste_shapes(kind, arrays, where).items():
        if arrays[name].shape != shape:
            raise ValueError(f"{where}: {name!r} must have shape {shape} (Haste's layout), got {arrays[name].shape}")
    a = {name: _reorder(kind, value, axis=-1) if name not in ("gamma_h", "beta_h") else value
         for name, value in arrays.items()}
    out = {"weight_ih": a["kernel"].T, "weight_hh": a["recurrent_kernel"].T}
    if kind == "LSTM":
        out.update(bias=a["bias"], layer_norm_ih_weight=a["gamma"][0], layer_norm_hh_weight=a["gamma"][1],
                   layer_norm_c_weight=a["gamma_h"], layer_norm_c_bias=a["beta_h"])
    else:
        out.update(bias_ih=a["bias"], bias_hh=a["recurrent_bias"], layer_norm_ih_weight=a["gamma"][0],
                   layer_norm_hh_weight=a["gamma"][1])
    return {k: np.ascontiguousarray(v) for k, v in out.items()}


def to_haste_arrays(kind, arrays):
    """Arrays keyed by rnnkern's names without suffix -> Haste's names and layouts (NumPy)."""
    a = {k: np.asarray(to_host(v)) for k, v in arrays.items()}
    out = {"kernel": _reorder(kind, a["weight_ih"]).T, "recurrent_kernel": _reorder(kind, a["weight_hh"]).T,
           "bias": _reorder(kind, a["bias" if kind == "LSTM" else "bias_ih"])}
    if kind == "GRU":
        out["recurrent_bias"] = _reorder(kind, a["bias_hh"])
    out["gamma"] = np.stack([_reorder(kind, a["layer_norm_ih_weight"]), _reorder(kind, a["layer_norm_hh_weight"])])
    if kind == "LSTM":
        out["gamma_h"], out["beta_h"] = a["layer_norm_c_weight"], a["layer_norm_c_bias"]
    return {k: np.ascontiguousarray(v) for k, v in out.items()}


class HasteMixin:
    """``from_haste`` / ``to_haste`` on the layer-normalised layers and cells."""
    _haste_suffix = "_l0"  # the parameters' key suffix: "_l0" in layers, "" in cells

    @classmethod
    def from_haste(cls, state_dict, *, device="cpu", dtype=None, **options):
        """The layer (one layer, one direction) or cell holding a Haste LayerNormLSTM's (LayerNormGRU's)
        parameters: ``state_dict`` maps Haste's names (kernel, recurrent_kernel, bias, gamma and the
        LSTM's gamma_h, beta_h or the GRU's recurrent_bias) to torch tensors (CPU or CUDA), NumPy or
        CuPy arrays, as ``haste_layer.state_dict()`` gives them; the table of rnnkern._interop.haste
        maps names, layouts and gate orders. dtype defaults to the arrays'; ``options`` as
        ``from_state_dict``'s (batch_first, zoneout: Haste keeps them outside its state_dict)."""
        arrays = from_haste_arrays(cls._kind, state_dict, f"{cls.__name__}.from_haste")
        suffix = cls._haste_suffix
        return cls.from_state_dict({k + suffix: v for k, v in arrays.items()}, device=device, dtype=dtype, **options)

    def to_haste(self, arrays=None):
        """Haste's names and layouts (NumPy arrays) of a dict keyed like ``state_dict()``: the
        parameters (the default, None) or the gradients ``backward`` returns. A layer must have one
        layer and one direction (Haste's layers have no more)."""
        name = type(self).__name__
        arrays = self.state_dict() if arrays is None else arrays
        if getattr(self, "num_layers", 1) != 1 or getattr(self, "num_directions", 1) != 1:
            raise ValueError(f"{name}.to_haste: Haste's layers have one layer and one direction, this one has "
                             f"num_layers={self.num_layers}, bidirectional={self.bidirectional}")
        suffix = self._haste_suffix
        expected = [k + suffix for k in NAMES[self._kind]]
        _params.check_keys(arrays, expected, f"{name}.to_haste")
        return to_haste_arrays(self._kind, {k[:len(k) - len(suffix)]: v for k, v in arrays.items()})

