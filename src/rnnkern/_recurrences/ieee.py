"""NaN from infinities, as IEEE arithmetic (and torch) gives it, without NumPy's warning.

An infinite input or state makes ``inf - inf`` in the GEMMs' sums and ``0 * inf`` in the gates
(a saturated sigmoid times an infinite candidate). The result is NaN in torch too, silently; NumPy
would add "RuntimeWarning: invalid value encountered in matmul/multiply". Only that flag is
silenced, and only around the recurrences: overflow and division keep their own handling.
"""

import functools

import numpy as np


def nan_from_inf_expected(function):
    """``function`` run with NumPy's invalid-value flag ignored (a fresh errstate per call, so
    that nested calls restore correctly)."""

    @functools.wraps(function)
    def quiet(*args, **kwargs):
        with np.errstate(invalid="ignore"):
            return function(*args, **kwargs)

    return quiet
