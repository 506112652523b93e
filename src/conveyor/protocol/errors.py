"""The root of every Conveyor exception.

ConveyorError
 ├── conveyor.ciconfig.errors.ConfigError
 ├── conveyor.server.errors.*      (auth, not found, range mismatch, ...)
 └── conveyor.runner.errors.*      (executor failures)
"""


class ConveyorError(Exception):
    """A Conveyor error."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())
