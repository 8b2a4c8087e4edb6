"""A stand-in for hypothesis where it is not installed (e.g. a GPU machine's system python3).

Modules that use property tests import ``given``, ``settings``, ``HealthCheck`` and
``strategies`` at the top; without hypothesis that import would abort the collection of
every test in them, GPU tests included. With this stand-in they import, their property
tests are skipped with the reason, and all their other tests run.
"""

import sys
import types

import pytest

REASON = "hypothesis is not installed: property-based test skipped (pip install hypothesis)"


class _Anything:
    """Any strategy or constant: every attribute and call gives another one."""

    def __getattr__(self, name):
        return self

    def __call__(self, *args, **kwargs):
        return self


def given(*args, **kwargs):
    def decorator(test):
        def skipped():
            pytest.skip(REASON)
        skipped.__name__, skipped.__doc__, skipped.__module__ = test.__name__, test.__doc__, test.__module__
        return skipped
    return decorator


def settings(*args, **kwargs):
    return lambda test: test


def install():
    """Register the stand-in as ``hypothesis`` (and ``hypothesis.strategies``) when the real one is missing;
    returns whether it did."""
    try:
        import hypothesis  # noqa: F401
    except ImportError:
        pass
    else:
        return False
    strategies = _Anything()
    module = types.ModuleType("hypothesis", __doc__)
    module.given, module.settings, module.HealthCheck, module.strategies = given, settings, _Anything(), strategies
    module.assume = lambda condition: None
    sys.modules["hypothesis"] = module
    sys.modules["hypothesis.strategies"] = strategies
    return True
