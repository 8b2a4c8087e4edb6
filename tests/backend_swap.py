"""Running a module's copy on another backend object (the NumPy or numba steps, or CuPy's code path on
the host-compiled kernels), so that tests can compare backends on the same weights."""

import copy


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
