"""``from_torch``: a layer or cell built from a torch.nn module itself.

A state_dict holds only arrays: nothing in it says whether a torch RNN is tanh or ReLU, nor whether the
module is batch_first or uses dropout. The module says, so ``from_torch`` reads its configuration
attributes as well as its ``state_dict()``. torch is never imported here: any object with those
attributes and a ``state_dict()`` method is read the same way.
"""

# The module's attributes that the state_dict's keys and shapes also give: checked, not passed on.
_STRUCTURE = ("input_size", "hidden_size", "num_layers", "bias", "bidirectional", "proj_size")


class TorchMixin:
    # the torch.nn module's attributes that become constructor options (set per class)
    _torch_options: tuple = ()

    @classmethod
    def from_torch(cls, module, *, device="cpu", dtype=None):
        """This class's equivalent of a ``torch.nn`` module of the same name (``torch.nn.RNN`` for
        ``rnnkern.RNN``, ``torch.nn.GRUCell`` for ``rnnkern.GRUCell``...): its weights, and the
        configuration its state_dict cannot carry (the RNN's ``nonlinearity``, ``batch_first``,
        ``dropout``). dtype defaults to the weights'; torch itself is not imported by rnnkern.
        """
        where = f"{cls.__name__}.from_torch"
        _check_kind(cls.__name__, module, where)
        options = {name: _attribute(module, name, where) for name in cls._torch_options}
        built = cls.from_state_dict(module.state_dict(), device=device, dtype=dtype, **options)
        _check_structure(built, module, where)
        return built


def _check_kind(name, module, where):
    """The module must be a torch.nn.<name> (or a subclass of one) with a state_dict() method."""
    kinds = [kind.__name__ for kind in type(module).__mro__]
    if name not in kinds or not callable(getattr(module, "state_dict", None)):
        raise TypeError(f"{where}: module must be a torch.nn.{name}, got {type(module).__module__}."
                        f"{type(module).__name__}")


def _attribute(module, name, where):
    try:
        return getattr(module, name)
    except AttributeError:
        raise TypeError(f"{where}: module has no attribute {name!r}, which a torch.nn module of this kind "
                        "has") from None


def _check_structure(built, module, where):
    """The sizes, depth, directions and bias read off the state_dict must be the module's own."""
    for name in _STRUCTURE:
        if hasattr(module, name) and hasattr(built, name) and getattr(module, name) != getattr(built, name):
            raise ValueError(f"{where}: the module's state_dict gives {name}={getattr(built, name)!r}, but the "
                             f"module says {name}={getattr(module, name)!r}")
