"""Exceptions raised for failures a user can cause.

Every message says what was received, what was expected and how to fix it.
The CLI turns a :class:`ForecasterError` into one ``error: ...`` line and exit
code 1; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class ForecasterError(Exception):
    """Base class of every user-facing failure."""


class ConfigError(ForecasterError):
    """An option or argument has a value the program cannot use."""


class DataError(ForecasterError):
    """Price data is missing, unreachable or fails validation."""


class ModelError(ForecasterError):
    """A model cannot be built, trained or applied as asked."""


class RegistryError(ForecasterError):
    """A model artifact or champion pointer is missing or corrupt."""


class EvaluationError(ForecasterError):
    """An evaluation cannot be run as asked."""


class LockError(ForecasterError):
    """Another run holds the lock on the data home."""
