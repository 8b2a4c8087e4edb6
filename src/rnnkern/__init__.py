"""rnnkern: RNN, LSTM and GRU cells and layers on NumPy (CPU) or CuPy with fused CUDA kernels (GPU)."""

from . import optim
from ._backend import asarray, available_devices
from ._errors import DeviceUnavailableError
from .cells import GRUCell, LSTMCell, RNNCell
from .layernorm import LayerNormGRU, LayerNormGRUCell, LayerNormLSTM, LayerNormLSTMCell
from .layers import GRU, LSTM, RNN

__version__ = "0.1.0"

__all__ = ["DeviceUnavailableError", "GRU", "GRUCell", "LSTM", "LSTMCell", "LayerNormGRU", "LayerNormGRUCell",
           "LayerNormLSTM", "LayerNormLSTMCell", "RNN", "RNNCell", "asarray", "available_devices", "optim"]
