"""The numba kernels' on-disk caches depend on every file of their folder (``cachekey``): numba keys a
cache on its function's own file only, so a change to blas.py alone once left the compiled loops that
inline it running the old code."""

import shutil

import numpy as np
from numba import njit

from rnnkern._backend.numba import cachekey, choice, lnsteps, scalar, steps


def test_any_file_of_the_folder_changes_the_digest(tmp_path):
    folder = tmp_path / "numba"
    shutil.copytree(cachekey.HERE, folder, ignore=shutil.ignore_patterns("__pycache__"))
    before = cachekey.folder_digest(str(folder))
    assert before == cachekey.folder_digest(cachekey.HERE)
    for name in ("blas.py", "simd.py", "units.py"):
        path = folder / name
        text = path.read_bytes()
        path.write_bytes(text + b"\n# an edit\n")
        assert cachekey.folder_digest(str(folder)) != before, name
        path.write_bytes(text)
    assert cachekey.folder_digest(str(folder)) == before
    (folder / "new.py").write_text("")  # a new module counts too
    assert cachekey.folder_digest(str(folder)) != before


def test_the_folders_kernels_are_stamped_with_the_folder():
    assert cachekey.INSTALLED
    if not scalar.COMPILE_CACHE:  # a read-only install: nothing is cached, nothing to stamp
        return
    for kernel in (steps.rnn_loop, steps.lstm_step, choice.repeat_matmul, lnsteps.lnlstm_loop):
        locator = kernel._cache._impl._locator
        assert isinstance(locator, cachekey._FolderStamp), kernel
        assert locator.get_source_stamp() == cachekey.folder_digest()


def test_functions_elsewhere_keep_numbas_own_key():
    def twice(x):
        return 2 * x

    elsewhere = njit(cache=True)(twice)
    assert elsewhere(np.float32(2)) == 4
    assert not isinstance(elsewhere._cache._impl._locator, cachekey._FolderStamp)
