"""Errors raised inside the runner.

ConveyorError (conveyor.protocol.errors)
 └── RunnerError
      ├── SettingsError    missing or invalid configuration; raised once, at startup
      └── ExecutorError    an infrastructure fault while preparing or running a job; carries the
                           FailureReason the job is reported with (a non-zero script exit is a
                           return value, never an ExecutorError)
"""

from __future__ import annotations

from conveyor.protocol.enums import FailureReason
from conveyor.protocol.errors import ConveyorError


class RunnerError(ConveyorError):
    """A runner error."""


class SettingsError(RunnerError):
    """The runner configuration is missing or invalid."""


class ExecutorError(RunnerError):
    """The executor failed for a reason outside the job's script."""

    def __init__(
        self,
        message: str | None = None,
        reason: FailureReason = FailureReason.RUNNER_SYSTEM_FAILURE,
    ) -> None:
        super().__init__(message)
        self.reason = reason
