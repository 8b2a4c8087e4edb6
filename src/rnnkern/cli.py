"""The ``rnnkern`` command: ``rnnkern bench``, ``rnnkern info``, ``rnnkern gradflow``; also ``python -m rnnkern``."""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Optional, Sequence

from . import __version__

# what ``rnnkern --help`` says, in plain text (the module docstring is reST, for the docs)
DESCRIPTION = ("rnnkern: RNN, LSTM and GRU kernels on NumPy (CPU) and CuPy (GPU). "
               "Run 'rnnkern COMMAND --help' for a command's options.")

# subcommand -> module defining add_arguments(parser) and run(args) -> exit status
COMMANDS = {
    "bench": ("rnnkern._cli.bench", "time the cells and layers against baselines and the BLAS bound"),
    "info": ("rnnkern._cli.info", "versions, the GPU, and (--compile-kernels) an NVRTC build of every kernel"),
    "gradflow": ("rnnkern._cli.gradflow", "how the gradient of the last step's loss flows back through time"),
}


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line ``argv`` (default: sys.argv[1:]); returns the exit status."""
    parser = argparse.ArgumentParser(prog="rnnkern", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"rnnkern {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules = {}
    for name, (module_name, help_text) in COMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        modules[name] = module
        module.add_arguments(sub.add_parser(name, help=help_text, description=help_text))
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return modules[args.command].run(args) or 0


if __name__ == "__main__":
    sys.exit(main())
