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
    pass


class ExportParityError(FacenetOfflineError):
    pass
