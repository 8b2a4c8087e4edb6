"""Running a module's copy on another backend object (the NumPy or numba steps, or CuPy's code path on
the host-compiled kernels), so that tests can compare backends on the same weights."""

import copy

import numpy as np


def on_backend(net, backend):
    """A copy of ``net`` whose arrays and steps go through ``backend``."""
    other = copy.deepcopy(net)
    other._backend = backend
    other._recurrence = other._make_recurrence()
    other._set_params(net.state_dict())
    return other


def parts(state):
    """A state as a tuple of its arrays: (h,) or (h, c)."""
    return state if isinstance(state, tuple) else (state,)


def run_everything(layer, x, lengths):
    """Every result of a layer on ``x``: inference, training forward, and backward from ones (and the
    final state as its own gradient), flattened into one tuple of arrays to compare across backends."""
    y, state_n = layer(x, lengths=lengths)
    y_train, state_train, tape = layer.forward_train(x, lengths=lengths)
    dx, dstate0, dparams = layer.backward(tape, np.ones_like(y_train), state_train)
    return (y, y_train, dx, *parts(state_n), *parts(dstate0), *dparams.values())
