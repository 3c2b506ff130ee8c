"""Errors a user can act on. The CLI prints them as one line and exits 2."""


class T2IError(Exception):
    """Base class: bad input or a bad bundle, never a bug."""


class InputError(T2IError, ValueError):
    """The caller's arguments are wrong (empty prompt, bad budget, ...)."""


class PipelineClosed(InputError):
    """A ``Pipeline`` was called (or a stage used) after :meth:`Pipeline.close`."""


class BundleError(T2IError):
    """A bundle is missing, malformed, of an unknown schema, or fails its hash check."""


class Cancelled(T2IError):
    """A run was cancelled before it had made any image (after that, a cancelled run returns
    its best image with ``Result.cancelled`` set)."""
