"""Exceptions raised by rnnkern."""


class DeviceUnavailableError(RuntimeError):
    """The requested device cannot be used here; the message says why and how to fix it."""
