"""Errors with a message a user can act on."""


class MmsError(Exception):
    """Base class for mmslib errors."""


class ParamError(MmsError, ValueError):
    """A bad parameter: names the parameter and what is allowed."""

    def __init__(self, name: str, value, allowed: str):
        self.name = name
        self.value = value
        self.allowed = allowed
        super().__init__(f"parameter {name!r}: got {value!r}; allowed: {allowed}")


class DeployError(MmsError, RuntimeError):
    """A model or server could not be deployed."""


class DependencyError(MmsError, RuntimeError):
    """A runtime dependency is missing; the message says what to install."""


class DiskFullError(MmsError, OSError):
    """Records could not be written for want of space (or a file size limit):
    names the path and the bytes needed. Files written before are intact."""
