"""rnnkern: RNN, LSTM and GRU cells and layers on NumPy (CPU) or CuPy with fused CUDA kernels (GPU)."""

from ._backend import asarray, available_devices
from ._errors import DeviceUnavailableError
from .cells import GRUCell, LSTMCell, RNNCell

__version__ = "0.1.0"

__all__ = ["DeviceUnavailableError", "GRUCell", "LSTMCell", "RNNCell", "asarray", "available_devices"]
