"""The package's exceptions. Every message names the file, line, frame or key and what was expected."""

from __future__ import annotations


class EdgeAssistantError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(EdgeAssistantError, ValueError):
    """A configuration value is missing or out of range; the message names the key."""


class NativeError(EdgeAssistantError, RuntimeError):
    """The C front end is missing, stale, or returned an error code."""


class AudioFileError(EdgeAssistantError):
    """An audio file cannot be read or is not in a form we can use."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class ModelFileError(EdgeAssistantError):
    """A model file is missing, corrupt or of the wrong shape."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"model file {self.path}: {reason}")


class DataFormatError(EdgeAssistantError, ValueError):
    """Input data (a log line, a DBC, a frame, a serial reply) is malformed.

    ``where`` names the place: ``file:line``, a frame id, a port.
    """

    def __init__(self, where: str, reason: str) -> None:
        self.where = where
        self.reason = reason
        super().__init__(f"{where}: {reason}")


class BusError(EdgeAssistantError, OSError):
    """A CAN bus cannot be opened or failed; ``where`` names the interface and channel."""

    def __init__(self, where: str, reason: str) -> None:
        self.where = where
        self.reason = reason
        super().__init__(f"{where}: {reason}")
