"""The job keywords that ``default:`` can also hold, or that map one-to-one to a ``JobSpec``
field: one table from keyword to parser, shared by jobs and ``default:``.

Each parser returns the normalised value (payload-shaped for ``image``, ``services``,
``artifacts`` and ``cache``), or None after reporting at the keyword's line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from conveyor.ciconfig import artifacts, images, scheduling
from conveyor.ciconfig.values import Report

Parser = Callable[[Any, str, Report], Any]



def _at(location: str, key: str) -> str:
    """GitLab's location of a keyword: ``jobs:build:image``, or ``image`` at the top level."""
    return f"{location}:{key}" if location else key


PARSERS: dict[str, Parser] = {
    "image": lambda value, at, report: images.image(value, _at(at, "image"), report),
    "services": lambda value, at, report: images.services(value, _at(at, "services"), report),
    "artifacts": lambda value, at, report: artifacts.artifacts(value, _at(at, "artifacts"), report),
    "cache": lambda value, at, report: artifacts.cache(value, _at(at, "cache"), report),
    "retry": lambda value, at, report: scheduling.retry(value, report),
    "interruptible": scheduling.interruptible,
    "resource_group": scheduling.resource_group,
    "environment": scheduling.environment,
    "coverage": scheduling.coverage,
    "dependencies": scheduling.dependencies,
}
DEFAULT_INHERITABLE = ("image", "services", "artifacts", "cache", "retry", "interruptible")


def parse(
    config: dict[Any, Any], location: str, report_at: Callable[[str, str], None], keys: tuple[str, ...]
) -> tuple[dict[str, Any], bool]:
    """Parse the ``keys`` present (and not null) in ``config``.

    Args:
        location: GitLab's location of the holder, ``jobs:build`` or ``default``.
        report_at: records ``(message, key)``; the key gives the line.

    Returns:
        The parsed values by keyword, and whether every one was valid.
    """
    parsed: dict[str, Any] = {}
    valid = True
    for key in keys:
        if config.get(key) is None:
            continue
        problems: list[str] = []
        value = PARSERS[key](config[key], location, problems.append)
        for message in problems:
            report_at(message, key)
        if problems or value is None:
            valid = False
        else:
            parsed[key] = value
    return parsed, valid
