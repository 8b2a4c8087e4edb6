"""The ``rnnkern`` command's subcommands (``rnnkern.cli`` dispatches): ``bench``, ``info``, ``gradflow``."""
