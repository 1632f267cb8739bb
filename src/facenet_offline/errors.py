"""Exceptions users see: each message names the input at fault and what to do about it."""


class FacenetOfflineError(Exception):
    """Base class for errors the CLI reports without a traceback."""


class WeightsNotFoundError(FacenetOfflineError, FileNotFoundError):
    pass


class ChecksumError(FacenetOfflineError):
    pass


class WeightsLayoutError(FacenetOfflineError):
    """A weights file lacks tensors the architecture needs, or has tensors it does not know."""


class ImageError(FacenetOfflineError):
    """An input that is not a readable image: ``source`` names it, ``reason`` says what is wrong and what to do,
    and ``code`` is a stable word for the kind of fault (``not_an_image``, ``corrupt``, ``empty`` ...)."""

    def __init__(self, source: str, reason: str, code: str = "bad_image"):
        super().__init__(f"{source}: {reason}")
        self.source, self.reason, self.code = str(source), reason, code


class ExportParityError(FacenetOfflineError):
    pass


class NoThresholdError(FacenetOfflineError, ValueError):
    """No verification threshold is known for a model, and none was given."""


class DiskFullError(FacenetOfflineError, OSError):
    """A write found the disk (or quota) full; the message names the folder and what to do."""
