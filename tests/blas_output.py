"""A pytest plugin (loaded by conftest.py): any text a BLAS library writes during a test fails it.

OpenBLAS answers a bad argument with ``** On entry to SGEMM parameter number 10 had an illegal value``
printed by C to stdout, and returns without computing: the caller goes on with whatever the output
buffer held (issue 15). Python never sees that text, so only file-descriptor capture (pytest's
default, ``--capture=fd``) catches it. Two details make it reach the right test:

- C's stdout is fully buffered when it is not a terminal (as under capture): the text would stay in
  libc's buffer and come out at some later test or at exit. So each test phase ends with
  ``fflush(NULL)``, inside the capture (this wrapper is ``trylast``, so the innermost one).
- The check reads the phase's captured stdout and stderr in ``pytest_runtest_makereport``.

With ``-s`` (``--capture=no``) or ``--capture=sys``/``tee-sys`` nothing is checked; the run says so.
"""

import ctypes
import ctypes.util
import re

import pytest

# OpenBLAS's and reference BLAS's xerbla ("** On entry to DGEMV  parameter number  6 had an illegal
# value"), MKL's ("Intel MKL ERROR: Parameter 6 was incorrect on entry to DGEMV."), OpenBLAS's own
# complaints ("BLAS : Program is Terminated. Because you tried to allocate too many memory regions.")
BLAS_MESSAGE = re.compile(r"On entry to \w+\s+parameter number\s+\d+ had an illegal value"
                          r"|\*\* On entry to \w+"
                          r"|MKL ERROR: .*"
                          r"|BLAS : .*")


def _libc_fflush():
    """libc's fflush, or None where there is no C library to ask (then nothing is flushed)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
        fflush = libc.fflush
    except (OSError, AttributeError, TypeError):
        return None
    fflush.argtypes = [ctypes.c_void_p]
    return fflush


_FFLUSH = _libc_fflush()


def blas_messages(text):
    """Every line of ``text`` that holds a BLAS library's error message."""
    return [line.strip() for line in text.splitlines() if BLAS_MESSAGE.search(line)]


def _flush_c_streams():
    if _FFLUSH is not None:
        _FFLUSH(None)  # NULL: every open output stream, C's stdout and stderr among them


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_setup(item):
    try:
        return (yield)
    finally:
        _flush_c_streams()


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_call(item):
    try:
        return (yield)
    finally:
        _flush_c_streams()


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_teardown(item, nextitem):
    try:
        return (yield)
    finally:
        _flush_c_streams()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    own = (f"Captured stdout {report.when}", f"Captured stderr {report.when}")  # not the earlier phases' again
    found = blas_messages("\n".join(text for name, text in report.sections if name in own))
    if found:
        note = (f"a BLAS library wrote an error during the test's {report.when} ({len(found)} line(s)); "
                f"it returns without computing, so the results cannot be trusted:\n  " + "\n  ".join(found[:5]))
        if report.passed:
            report.outcome, report.longrepr = "failed", note
        else:
            report.sections.append(("BLAS library output", note))
    return report


def pytest_report_header(config):
    if config.getoption("capture") != "fd":
        return [f"note: --capture={config.getoption('capture')}: text that BLAS libraries write from C "
                "(OpenBLAS's 'On entry to ... had an illegal value') is not checked; the default --capture=fd "
                "fails the test that caused it"]
    return []


def pytest_terminal_summary(terminalreporter, config):
    for line in pytest_report_header(config):
        terminalreporter.write_line(line)
