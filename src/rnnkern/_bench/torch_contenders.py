"""PyTorch baselines (never a dependency): its layer (cuDNN on the GPU) and its cell stepped from Python,
and for training its layer's forward + backward under autograd."""

import os

from .machine import usable_cpus
from .common import Contender, step_cells

_LAYERS = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}


def setup(device):
    """Configure PyTorch for a fair comparison (CPU: one thread per usable CPU, as the BLAS has, unless
    OMP_NUM_THREADS says otherwise;
    GPU: cuDNN on, TF32 off: on Ampere and later cuDNN's RNNs would otherwise multiply in TF32, a
    10-bit mantissa, while rnnkern's cuBLAS GEMMs are full float32). Returns False when PyTorch is
    not importable."""
    try:
        import torch
    except ImportError:
        return False
    if device == "gpu":
        torch.backends.cudnn.enabled = True
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    elif "OMP_NUM_THREADS" not in os.environ:  # the user's setting is PyTorch's too: keep it
        torch.set_num_threads(usable_cpus())
    return True


def _torch_for(cfg):
    """(torch, its device, its dtype) set up for ``cfg``, or a string saying why PyTorch cannot run here."""
    try:
        import torch
    except ImportError:
        return "PyTorch is not installed"
    if cfg.device == "gpu" and not torch.cuda.is_available():
        return "this PyTorch has no usable CUDA device"
    setup(cfg.device)
    return torch, torch.device("cuda" if cfg.device == "gpu" else "cpu"), getattr(torch, cfg.dtype)


def make(name, cfg, state_dict, x_host):
    """The Contender ``name`` ("torch" or "torch-cell"), or a string saying why it cannot run here."""
    found = _torch_for(cfg)
    if isinstance(found, str):
        return found
    torch, device, dtype = found
    x = torch.from_numpy(x_host).to(device)
    tensors = {k: torch.from_numpy(v) for k, v in state_dict.items()}
    if name == "torch":
        module = _layer(torch, cfg, tensors, device, dtype).eval()

        def fn():
            with torch.no_grad():
                return module(x)[0]
    else:
        cells = []
        for n in range(cfg.num_layers):
            size = cfg.input_size if n == 0 else cfg.hidden_size
            cell = getattr(torch.nn, _LAYERS[cfg.cell] + "Cell")(size, cfg.hidden_size)
            cell = cell.to(device=device, dtype=dtype).eval()
            cell.load_state_dict({k: tensors[f"{k}_l{n}"] for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")})
            cells.append(cell)

        def fn():
            with torch.no_grad():
                return step_cells(cells, x, lambda: torch.zeros(cfg.batch, cfg.hidden_size, device=device,
                                                                dtype=dtype), torch.stack, cfg.cell == "lstm")
    return Contender(name, fn, "torch" if cfg.device == "gpu" else "host")


def _layer(torch, cfg, tensors, device, dtype):
    """torch.nn's layer of ``cfg`` on ``device`` holding ``tensors`` (a state_dict)."""
    module = getattr(torch.nn, _LAYERS[cfg.cell])(cfg.input_size, cfg.hidden_size, cfg.num_layers)
    module = module.to(device=device, dtype=dtype)
    module.load_state_dict(tensors)  # after .to(): loading copies into the parameters' dtype
    return module


def make_training(cfg, state_dict, x_host, dy_host):
    """(Contender, gradients) for training, or a string saying why it cannot run here. The contender runs
    torch.nn's layer forward and autograd's backward of the loss sum(output * dy), whose gradient with
    respect to the output is dy; ``gradients()`` runs it once and returns {"output", "dx", parameter
    name: gradient} as NumPy arrays, for the check against rnnkern's."""
    found = _torch_for(cfg)
    if isinstance(found, str):
        return found
    torch, device, dtype = found
    module = _layer(torch, cfg, {k: torch.from_numpy(v) for k, v in state_dict.items()}, device, dtype).train()
    x = torch.from_numpy(x_host).to(device).requires_grad_()
    dy = torch.from_numpy(dy_host).to(device)

    def fn():
        module.zero_grad(set_to_none=True)
        x.grad = None
        y = module(x)[0]
        y.backward(dy)
        return y

    def gradients():
        y = fn()
        found = {"output": y, "dx": x.grad}
        found.update({k: p.grad for k, p in module.named_parameters()})
        return {k: v.detach().cpu().numpy() for k, v in found.items()}

    return Contender("torch", fn, "torch" if cfg.device == "gpu" else "host"), gradients
