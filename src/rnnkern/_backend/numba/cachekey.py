"""The on-disk kernel caches of this folder depend on the whole folder, not on one file.

numba keys a cached function on the contents of its own file (a SHA-256 since numba 0.60; touching a
file changes nothing). A compiled loop in steps.py inlines code from blas.py, units.py, rowgemm.py and
simd.py, and choice.repeat_matmul blas.py's: after an edit of blas.py alone, or an upgrade of rnnkern
that changed only blas.py, numba would load the old machine code and run it without a word (seen here:
a K = 0 fix in blas.py stayed invisible to choice.repeat_matmul until its cache was deleted). The
locators below, put before numba's own for the files of this folder only, stamp each cache with a
digest of every .py file in the folder, so that any change in it recompiles every kernel here.
Functions outside the folder (and specialise's generated modules, which carry a digest of their
sources in their own text) keep numba's locators.

Where numba's cache classes are not as expected (a numba release that renamed them), nothing is
changed, and the old behaviour stands: the folder's kernels then depend on their own files only.
"""

import hashlib
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def folder_digest(folder=HERE):
    """SHA-256 over the names and contents of the .py files directly in ``folder``, in name order."""
    digest = hashlib.sha256()
    for name in sorted(n for n in os.listdir(folder) if n.endswith(".py")):
        digest.update(name.encode() + b"\0")
        with open(os.path.join(folder, name), "rb") as f:
            digest.update(f.read())
    return digest.hexdigest()


_DIGEST = folder_digest()


class _FolderStamp:
    """A locator mixin: only for files of this folder; their caches' stamp is the folder's digest."""

    @classmethod
    def from_function(cls, py_func, py_file):
        if os.path.dirname(os.path.abspath(py_file)) != HERE:
            return None
        return super().from_function(py_func, py_file)

    def get_source_stamp(self):
        return _DIGEST


def _install():
    """Put the folder's locators first in numba's list (once); False where numba's classes differ."""
    try:
        from numba.core import caching

        bases = (caching.UserProvidedCacheLocator, caching.InTreeCacheLocator, caching.UserWideCacheLocator)
        classes = caching.CacheImpl._locator_classes
    except AttributeError:
        return False
    if any(issubclass(c, _FolderStamp) for c in classes):
        return True
    ours = [type(f"Folder{base.__name__}", (_FolderStamp, base), {"__module__": __name__}) for base in bases]
    classes[:0] = ours
    return True


INSTALLED = _install()
