"""Errors a user can act on. Each message names the file and what is wrong."""


class DemixError(Exception):
    """Base class: the command line prints these without a traceback."""


class AudioError(DemixError):
    """An input that cannot be read, or an output that cannot be written."""


class ConfigError(DemixError):
    """A configuration file that is malformed or inconsistent."""


class WeightsError(DemixError):
    """A weight file that is missing, damaged or cannot be fetched."""


def first_line(error: BaseException) -> str:
    """A library exception's first line, for embedding in our own message."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
