"""The one small error hierarchy of the project.

Every error the core raises on purpose derives from :class:`HyperbandError`.
``ConfigError`` is also a ``ValueError`` so that callers who only know the
standard library still catch bad input.
"""

from __future__ import annotations

__all__ = ["BackendError", "ConfigError", "HyperbandError", "StateError"]


class HyperbandError(Exception):
    """Base class of every error raised by ``hb_core`` on purpose."""


class ConfigError(HyperbandError, ValueError):
    """A tuning request or parameter that breaks a rule.

    The message names the JSON path of the offending field, the rule that must
    hold, and the value found, e.g.::

        HyperParameterTuningJobConfig.ResourceLimits.MaxParallelTrainingJobs:
        `1 <= MaxParallelTrainingJobs <= 2147483647` must hold, but got 0

    ``path`` and ``rule`` are kept as attributes for programmatic use.
    """

    def __init__(self, path: str, rule: str, found: object = None, *, hint: str | None = None) -> None:
        self.path = path
        self.rule = rule
        self.found = found
        self.hint = hint
        message = f"{path}: {rule}, but got {found!r}" if path else f"{rule}, but got {found!r}"
        if hint:
            message = f"{message}. {hint}"
        super().__init__(message)


class StateError(HyperbandError):
    """A persisted tuning state that cannot be read (bad schema, wrong version, corrupt)."""


class BackendError(HyperbandError):
    """An I/O adapter failed in a way the controller cannot fix by retrying."""
