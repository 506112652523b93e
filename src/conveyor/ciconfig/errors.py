"""Errors of ``conveyor.ciconfig`` (and of ``conveyor.pipeline``, which reuses them).

ConveyorError                 conveyor.protocol.errors
 └── ConfigError              the CI configuration cannot become a pipeline; carries every
                              ConfigIssue found, not only the first

A ``ConfigIssue`` is one problem with its location: file, 1-based line (None when unknown),
and the job and key it concerns. Messages use GitLab's own texts where GitLab has one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from conveyor.protocol.errors import ConveyorError


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a CI configuration file."""

    message: str
    file: str
    line: int | None
    job: str | None = None
    key: str | None = None

    def __str__(self) -> str:
        if self.line is None:
            return f"{self.file}: {self.message}"
        return f"{self.file}:{self.line}: {self.message}"


class ConfigError(ConveyorError):
    """The CI configuration is invalid."""

    def __init__(self, issues: Iterable[ConfigIssue]) -> None:
        self.issues: list[ConfigIssue] = list(issues)
        super().__init__("\n".join(str(issue) for issue in self.issues) or None)


class IssueCollector:
    """Collects issues for one file so that every problem is reported at once."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.issues: list[ConfigIssue] = []

    def add(
        self,
        message: str,
        line: int | None,
        *,
        job: str | None = None,
        key: str | None = None,
        file: str | None = None,
    ) -> None:
        """Record one issue; ``file`` defaults to the collector's (an included file may differ)."""
        self.issues.append(ConfigIssue(message, file or self.file, line, job, key))

    def __bool__(self) -> bool:
        return bool(self.issues)

    def raise_if_any(self) -> None:
        """Raise one ``ConfigError`` holding every issue collected so far, if there is any."""
        if self.issues:
            raise ConfigError(self.issues)
