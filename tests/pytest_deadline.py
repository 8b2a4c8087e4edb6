"""Stop a pytest session cleanly when the epoch time in RNNKERN_TEST_DEADLINE has passed.

A GPU lease is short and `make gpu-check` gives its test phase a fixed budget. Killed at the cap,
pytest would leave no summary, no failing test names and no JUnit XML (written only at the end);
stopped through ``session.shouldstop`` after the current test, it still writes all three.
Imported into conftest.py; a stand-in suite's conftest can import it as well."""

import os
import time

import pytest


def _deadline():
    text = os.environ.get("RNNKERN_TEST_DEADLINE", "").strip()
    try:
        return float(text) if text else None
    except ValueError:
        raise pytest.UsageError(f"RNNKERN_TEST_DEADLINE must be an epoch time in seconds, got {text!r}") from None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    yield  # the test ran (setup, call, teardown); pytest checks shouldstop before the next one
    deadline = _deadline()
    if deadline is not None and time.time() >= deadline and nextitem is not None:
        item.session.shouldstop = (f"RNNKERN_TEST_DEADLINE reached after {item.nodeid}: "
                                   "the remaining tests were not run")
