"""Arrays from other libraries, as PyTorch hands them over: CUDA tensors (which NumPy cannot read) and
tensors that require grad (whose __cuda_array_interface__ raises RuntimeError, and which refuse
DLPack export until detached). A stand-in object behaves like such a tensor, so this runs anywhere."""

import numpy as np
import pytest

import rnnkern
from rnnkern._backend import device_of, to_host


class CudaTensorStandIn:
    """What rnnkern may touch on a CUDA torch tensor: requires_grad, detach(), cpu().numpy(),
    __dlpack_device__ (kDLCUDA = 2) and __cuda_array_interface__ (RuntimeError while it requires grad)."""

    def __init__(self, values, requires_grad=False, on_cuda=True):
        self._values, self.requires_grad, self._on_cuda = np.array(values), requires_grad, on_cuda

    def detach(self):
        return CudaTensorStandIn(self._values, False, self._on_cuda)

    def cpu(self):
        return CudaTensorStandIn(self._values, self.requires_grad, False)

    def numpy(self):
        if self._on_cuda:
            raise TypeError("can't convert cuda:0 device type tensor to numpy. Use Tensor.cpu() first.")
        if self.requires_grad:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy()")
        return self._values

    def __array__(self, dtype=None, copy=None):
        return self.numpy() if dtype is None else self.numpy().astype(dtype)

    def __dlpack_device__(self):
        return (2, 0) if self._on_cuda else (1, 0)

    @property
    def __cuda_array_interface__(self):
        if not self._on_cuda:
            raise AttributeError("Can't get __cuda_array_interface__ on non-CUDA tensor")
        if self.requires_grad:
            raise RuntimeError("Can't get __cuda_array_interface__ on Variable that requires grad. "
                               "If gradients aren't required, use var.detach() to get Variable that doesn't "
                               "require grad.")
        return {}


class InterfaceOnly:
    """A device array known only by __cuda_array_interface__, which raises RuntimeError (as torch's may)."""

    @property
    def __cuda_array_interface__(self):
        raise RuntimeError("requires grad")


@pytest.mark.parametrize("requires_grad", [False, True])
def test_device_of_cuda_tensors(requires_grad):
    assert device_of(CudaTensorStandIn(np.zeros(3), requires_grad)) == "gpu"
    assert device_of(CudaTensorStandIn(np.zeros(3), requires_grad, on_cuda=False)) == "cpu"
    assert device_of(InterfaceOnly()) == "gpu"
    assert device_of(np.zeros(3)) == "cpu" and device_of([1.0]) == "cpu"


@pytest.mark.parametrize("requires_grad", [False, True])
def test_to_host_copies_cuda_tensors(requires_grad):
    values = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(to_host(CudaTensorStandIn(values, requires_grad)), values)
    np.testing.assert_array_equal(rnnkern.asarray(CudaTensorStandIn(values, requires_grad), device="cpu"), values)


@pytest.mark.parametrize("requires_grad", [False, True])  # True: as dict(model.named_parameters()) gives
@pytest.mark.parametrize("cls", [rnnkern.LSTM, rnnkern.GRU, rnnkern.LSTMCell])
def test_from_state_dict_of_cuda_tensors(cls, requires_grad):
    source = cls(3, 4, seed=0)
    cuda_sd = {k: CudaTensorStandIn(v, requires_grad) for k, v in source.state_dict().items()}
    loaded = cls.from_state_dict(cuda_sd)
    for key, value in source.state_dict().items():
        np.testing.assert_array_equal(loaded.state_dict()[key], value)


def test_lengths_as_cuda_tensor():
    layer = rnnkern.GRU(3, 4, seed=0)
    x = np.random.default_rng(0).standard_normal((5, 2, 3)).astype("float32")
    lengths = np.array([5, 2])
    want, _ = layer(x, lengths=lengths)
    got, _ = layer(x, lengths=CudaTensorStandIn(lengths))
    np.testing.assert_array_equal(got, want)
