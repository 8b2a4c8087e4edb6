"""Issue 15, defect 2: rnnkern imports and runs its numba kernels from a read-only install.

A system-wide install, a container image, a shared cluster environment: installed by root, run by a
user who can write neither beside the package (numba's __pycache__) nor in HOME (numba's ~/.cache).
numba's ``cache=True`` then raised at decoration time, and ``import rnnkern`` with it.

Here the wheel is built, installed with pip into a folder made read-only, and run by a user the
kernel refuses writes there. Root may write anywhere (CI runs as root), so when the suite runs as
root the run is made by the user nobody (uid 65534), or, where nobody cannot reach this interpreter
(pyenv's lives under /root, mode 0700), by root stripped of every capability: the kernel then applies
the permission bits to it as to any user. The child checks that it cannot write there before it runs.
"""

import contextlib
import ctypes
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

import rnnkern
from backend_swap import on_backend
from rnnkern._backend import cpu_backend, numba_unavailable_reason

ROOT = Path(__file__).resolve().parents[1]
NOBODY = 65534
PR_CAPBSET_DROP = 24  # <linux/prctl.h>

pytestmark = pytest.mark.skipif(numba_unavailable_reason() is not None,
                                reason=f"the numba kernels are what needs a cache: {numba_unavailable_reason()}")

# One small LSTM (batch 2: the compiled time loop), run through the installed numba kernels. The child
# proves first that it can write neither in the package nor in HOME, so a pass cannot come from a
# writable setup; it prints the outputs as JSON for the parent to compare with the NumPy steps.
CHILD = """
import json, os, sys
import numpy as np
target, home = sys.argv[1], sys.argv[2]
for folder in (os.path.join(target, "rnnkern", "_backend"), home):
    try:
        open(os.path.join(folder, "probe.txt"), "w").close()
    except PermissionError:
        continue
    sys.exit(f"this user can write in {folder}: the run would not be a read-only install")
import rnnkern
from rnnkern._backend import cpu_kernels_description, get_backend
from rnnkern._backend.numba import scalar as _numba_math
assert rnnkern.__file__.startswith(target), f"imported {rnnkern.__file__}, not the install in {target}"
x = np.random.default_rng(0).standard_normal((5, 2, 3)).astype("float32")
y, (h, c) = rnnkern.LSTM(3, 4, seed=0)(x)
print(json.dumps({"backend": type(get_backend("cpu")).__name__, "cache": _numba_math.COMPILE_CACHE,
                  "kernels": cpu_kernels_description(),
                  "y": y.tolist(), "h": h.tolist(), "c": c.tolist()}))
"""


def _become_nobody():
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)


def _drop_all_capabilities():
    """Empty root's capability bounding set: after exec it is uid 0 without CAP_DAC_OVERRIDE & co."""
    libc = ctypes.CDLL(None, use_errno=True)
    last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    for cap in range(last + 1):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), f"prctl(PR_CAPBSET_DROP, {cap}) failed")


def _unprivileged_runs():
    """(description, preexec_fn) of the ways to run a process that obeys the permission bits, best first."""
    if os.geteuid() != 0:
        return [(f"this user (uid {os.geteuid()})", None)]
    return [(f"the user nobody (uid {NOBODY})", _become_nobody),
            ("root without capabilities", _drop_all_capabilities)]


def _run(args, preexec_fn, env, cwd):
    return subprocess.run([sys.executable, *args], preexec_fn=preexec_fn, env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def _pick_unprivileged_run(env, cwd, target):
    """The first way that can start this interpreter and read numba and the install, or skip saying why not."""
    reach = f"import numba, numpy; open({str(target / 'rnnkern' / '__init__.py')!r}).close()"
    failures = []
    for description, preexec_fn in _unprivileged_runs():
        try:
            probe = _run(["-c", reach], preexec_fn, env, cwd)
        except (OSError, subprocess.SubprocessError) as exc:
            failures.append(f"{description}: {type(exc).__name__}: {exc}")
            continue
        if probe.returncode == 0:
            return description, preexec_fn
        failures.append(f"{description}: {probe.stderr.strip().splitlines()[-1:]}")
    pytest.skip("no unprivileged user can run this interpreter and read its site-packages: " + "; ".join(failures))


def _build_wheel(dist):
    backend = pytest.importorskip("hatchling.build", reason="hatchling (the build backend) builds the wheel")
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        return dist / backend.build_wheel(str(dist))
    finally:
        os.chdir(cwd)


@contextlib.contextmanager
def _world_readable_tmpdir():
    """A temporary folder others can enter (pytest's tmp_path sits in a 0700 folder of the running user)."""
    path = Path(tempfile.mkdtemp(prefix="rnnkern-readonly-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        for folder, _, _ in os.walk(path):  # give write back, so that a non-root owner can delete it
            os.chmod(folder, 0o755)
        shutil.rmtree(path)


def _make_read_only(path):
    for folder, dirs, files in os.walk(path):
        for name in files:
            Path(folder, name).chmod(0o444)
        os.chmod(folder, 0o555)


def test_a_read_only_install_imports_and_runs_the_numba_kernels():
    with _world_readable_tmpdir() as tmp:
        target, home = tmp / "site-packages", tmp / "home"
        home.mkdir()
        wheel = _build_wheel(tmp)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                        "--target", str(target), str(wheel)], check=True, capture_output=True, timeout=120)
        _make_read_only(target)
        _make_read_only(home)
        env = {k: v for k, v in os.environ.items()
               if k not in ("NUMBA_CACHE_DIR", "XDG_CACHE_HOME", "PYTHONPATH", "PYTHONUSERBASE")}
        env.update(HOME=str(home), PYTHONPATH=str(target), RNNKERN_CPU_KERNELS="numba")
        description, preexec_fn = _pick_unprivileged_run(env, tmp, target)
        child = _run(["-c", CHILD, str(target), str(home)], preexec_fn, env, tmp)
    assert child.returncode == 0, f"run as {description}:\n{child.stderr}"
    got = json.loads(child.stdout.strip().splitlines()[-1])
    assert got["backend"] == "NumbaBackend" and got["cache"] is False, got
    assert "no writable compile cache" in got["kernels"] and "NUMBA_CACHE_DIR" in got["kernels"], got["kernels"]

    layer = rnnkern.LSTM(3, 4, seed=0)
    x = np.random.default_rng(0).standard_normal((5, 2, 3)).astype("float32")
    y, (h, c) = on_backend(layer, cpu_backend("numpy"))(x)
    for name, want in (("y", y), ("h", h), ("c", c)):
        np.testing.assert_allclose(np.array(got[name], "float32"), want, rtol=1e-5, atol=1e-6, err_msg=name)
