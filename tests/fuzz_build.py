"""The fuzz's layers: the CPU paths (backend objects) and every way of making a layer.

A layer is built directly on the path's backend object (the constructors take one as ``device``),
never moved there afterwards, so that its weights keep the layout its constructor gave them: the
layout is what some defects depend on (issue 15: hidden_size=1 weights from from_state_dict,
deepcopy or pickle).
"""

import copy
import pickle
import warnings

import numpy as np
import pytest

import rnnkern
from rnnkern._backend import NumpyBackend, numba_unavailable_reason

NUMBA_REASON = numba_unavailable_reason()
if NUMBA_REASON is None:
    from rnnkern._backend.numba.backend import NumbaBackend

    class NumbaStepsBackend(NumbaBackend):
        """The numba step kernels with the compiled time loop declined: the Python loop drives them."""

        def time_loop(self, *args):
            return False
else:  # the numba paths are skipped (see PATHS)
    NumbaBackend = NumbaStepsBackend = None

# path name -> backend class: the NumPy steps, the numba steps, the numba compiled loop (batch <= 16)
PATHS = {"numpy": NumpyBackend, "numba_steps": NumbaStepsBackend, "numba_loop": NumbaBackend}


def intended_state_dict(cfg):
    """The weights every constructor of the case must produce (C-contiguous arrays in cfg.dtype): a
    seeded class-built layer's; for Keras, bias_hh zeros where Keras keeps a single bias."""
    layer = _construct(cfg, NumpyBackend())
    sd = layer.state_dict()
    if cfg.constructor == "keras" and not (cfg.kind == "GRU" and cfg.cell["linear_before_reset"]):
        sd = {k: np.zeros_like(v) if k.startswith("bias_hh") else v for k, v in sd.items()}
    return sd


def _construct(cfg, backend):
    cls = getattr(rnnkern, cfg.kind)
    return cls(cfg.input_size, cfg.hidden_size, **cfg.constructor_kwargs(), device=backend, dtype=cfg.dtype,
               seed=cfg.index)


def build(cfg, backend, sd, tmp_path):
    """The case's layer on ``backend``, made by cfg.constructor from the weights ``sd``."""
    cls, how = getattr(rnnkern, cfg.kind), cfg.constructor
    if how == "class":
        return _construct(cfg, backend)
    if how == "deepcopy":
        return copy.deepcopy(_construct(cfg, backend))
    if how == "pickle":
        return pickle.loads(pickle.dumps(_construct(cfg, backend)))
    if how == "state_dict":
        options = {k: v for k, v in cfg.constructor_kwargs().items()
                   if k not in ("num_layers", "bias", "bidirectional", "proj_size")}
        return cls.from_state_dict(sd, device=backend, dtype=cfg.dtype, **options)
    if how == "onnx":
        pytest.importorskip("onnx", reason="from_onnx and to_onnx need the onnx package")
        source = cls.from_state_dict(sd, dtype=cfg.dtype, batch_first=cfg.batch_first, **cfg.cell)
        path = tmp_path / f"{cfg.id}.onnx"
        with warnings.catch_warnings():  # the float64 export warns that ONNX Runtime needs float32
            warnings.filterwarnings("ignore", ".*this layer is float64", UserWarning)
            source.to_onnx(str(path))
        nodes = list(range(cfg.num_layers)) if cfg.num_layers > 1 else None  # to_onnx: one node per layer
        return cls.from_onnx(str(path), nodes, device=backend, dtype=cfg.dtype)
    if how == "keras":
        configs, weights = keras_layers(cfg, sd)
        return cls.from_keras(configs, weights, device=backend, dtype=cfg.dtype)
    raise ValueError(how)


# --- Keras: configs and weights as Keras 3 keeps them (the inverse of rnnkern/_interop/keras.py) -----------
_KERAS_CLASS = {"LSTM": "LSTM", "GRU": "GRU", "RNN": "SimpleRNN"}
_KERAS_ORDER = {"LSTM": [0, 1, 2, 3], "GRU": [1, 0, 2], "RNN": [0]}  # rnnkern r, z, n -> Keras z, r, h
_GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}


def _keras_blocks(array, kind, H):
    """rnnkern's (G*H, in) rows (or (G*H,) bias) in Keras's gate order, as Keras's (in, G*H)."""
    blocks = np.concatenate([array[k * H:(k + 1) * H] for k in _KERAS_ORDER[kind]])
    return blocks.T if blocks.ndim == 2 else blocks


def _keras_direction(cfg, sd, suffix, backwards):
    kind, H = cfg.kind, cfg.hidden_size
    config = {"units": H, "use_bias": cfg.bias, "return_sequences": True, "go_backwards": backwards,
              "activation": cfg.cell.get("nonlinearity", "tanh")}
    if kind == "GRU":
        config["reset_after"] = cfg.cell["linear_before_reset"]
    weights = [_keras_blocks(sd["weight_ih" + suffix], kind, H), _keras_blocks(sd["weight_hh" + suffix], kind, H)]
    if cfg.bias:
        bias = _keras_blocks(sd["bias_ih" + suffix], kind, H)
        if config.get("reset_after"):
            bias = np.stack([bias, _keras_blocks(sd["bias_hh" + suffix], kind, H)])
        weights.append(bias)
    return {"class_name": _KERAS_CLASS[kind], "config": config}, weights


def keras_layers(cfg, sd):
    """(list of layer configs, list of their weight lists): one Keras layer, or Bidirectional, per layer."""
    configs, weights = [], []
    for k in range(cfg.num_layers):
        forward, w = _keras_direction(cfg, sd, f"_l{k}", False)
        if cfg.bidirectional:
            backward, w_back = _keras_direction(cfg, sd, f"_l{k}_reverse", True)
            forward = {"class_name": "Bidirectional",
                       "config": {"layer": forward, "backward_layer": backward, "merge_mode": "concat"}}
            w = w + w_back
        configs.append(forward)
        weights.append(w)
    return configs, weights
