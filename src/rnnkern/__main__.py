"""``python -m rnnkern``: the ``rnnkern`` command (``rnnkern --help``)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
