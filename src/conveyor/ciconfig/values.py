"""Value normalisers shared by global keywords, ``default:`` and jobs: scalars, scripts, variables.

Each takes the raw YAML value plus where it sits (``location``, GitLab's ``jobs:build:script``
style, and a line) and an ``IssueCollector``; it returns the normalised value, or None after
recording an issue.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from conveyor.ciconfig.errors import IssueCollector
from conveyor.ciconfig.yamlsource import YamlMap

MAX_SCRIPT_NESTING = 10
SCRIPT_TYPE_ERROR = "config should be a string or a nested array of strings up to 10 levels deep"
Report = Callable[[str], None]  # records one issue at the key being parsed
GLOBAL_VARIABLE_DATA = ("value", "description", "expand", "options")
JOB_VARIABLE_DATA = ("value", "expand")


class CountingReport:
    """A ``Report`` that also counts what it reported, to tell whether an entry was valid."""

    def __init__(self, report: Report) -> None:
        self.report, self.count = report, 0

    def __call__(self, message: str) -> None:
        self.count += 1
        self.report(message)


def is_string_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def unknown_keys(value: dict[Any, Any], allowed: Any) -> str | None:
    """GitLab's ``config contains unknown keys: a, b`` for the keys of ``value`` not allowed."""
    unknown = [str(key) for key in value if key not in allowed]
    return f"config contains unknown keys: {', '.join(unknown)}" if unknown else None


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


def scalar_text(value: str | int | float | bool) -> str:
    """A YAML scalar as GitLab turns it into a string (Ruby's ``to_s``): ``true``, ``1.0e+20``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        text = repr(value)
        mantissa, _, exponent = text.partition("e")
        if exponent and "." not in mantissa:
            text = f"{mantissa}.0e{exponent}"
        return text
    return str(value)


def commands(
    value: Any, location: str, line: int | None, issues: IssueCollector, **where: str | None
) -> list[str] | None:
    """``script``-like value: a string, or nested arrays of strings up to 10 levels, flattened."""
    flat: list[str] = []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and _flatten(value, 1, flat):
        return flat
    issues.add(f"{location} {SCRIPT_TYPE_ERROR}", line, **where)
    return None


def _flatten(items: list[Any], level: int, into: list[str]) -> bool:
    if level > MAX_SCRIPT_NESTING:
        return False
    for item in items:
        if isinstance(item, str):
            into.append(item)
        elif not (isinstance(item, list) and _flatten(item, level + 1, into)):
            return False
    return True


def variables(
    value: Any,
    location: str,
    line: int | None,
    issues: IssueCollector,
    *,
    allowed_data: tuple[str, ...],
    job: str | None = None,
) -> dict[str, str]:
    """``variables:``: names to strings. Numbers and booleans become strings; the hash form
    ``{value: ..., description: ...}`` gives its ``value``. ``variables: null`` means none."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        issues.add(
            f"{location} config should be a hash of key value pairs, value can be a hash",
            line,
            job=job,
            key="variables",
        )
        return {}
    result: dict[str, str] = {}
    key_lines = value.lines if isinstance(value, YamlMap) else {}
    for raw_name, raw in value.items():
        where = key_lines.get(raw_name, line)
        if not is_scalar(raw_name):
            message = f"{location} variable names must be strings"
            issues.add(message, where, job=job, key="variables")
            continue
        name = scalar_text(raw_name)
        text = _variable_value(raw, f"{location}:{name}", where, issues, allowed_data, job)
        if text is not None:
            result[name] = text
    return result


def raw_variable_names(value: Any) -> frozenset[str]:
    """Names of the variables written ``{value: ..., expand: false}`` (not expanded)."""
    if not isinstance(value, dict):
        return frozenset()
    return frozenset(
        scalar_text(name)
        for name, raw in value.items()
        if is_scalar(name) and isinstance(raw, dict) and raw.get("expand") is False
    )


def _variable_value(
    raw: Any,
    location: str,
    line: int | None,
    issues: IssueCollector,
    allowed_data: tuple[str, ...],
    job: str | None,
) -> str | None:
    if is_scalar(raw):
        return scalar_text(raw)
    if raw is None:  # GitLab: `KEY:`/`KEY: null` is the long form without a value, ""
        return ""
    if not isinstance(raw, dict):
        issues.add(
            f"{location} variable definition must be either a string or a hash",
            line,
            job=job,
            key="variables",
        )
        return None
    extra = [str(key) for key in raw if key not in allowed_data]
    if extra:
        issues.add(
            f"{location} config uses invalid data keys: {', '.join(extra)}",
            line,
            job=job,
            key="variables",
        )
        return None
    data = raw.get("value")
    if data is None:
        return ""
    if not is_scalar(data):
        issues.add(f"{location} config value must be a string", line, job=job, key="variables")
        return None
    text = scalar_text(data)
    options = raw.get("options")
    if isinstance(options, list) and text not in [scalar_text(o) for o in options if is_scalar(o)]:
        issues.add(
            f"{location} config value must be present in options", line, job=job, key="variables"
        )
        return None
    return text


def tags(value: Any, location: str, line: int, issues: IssueCollector, **where: str) -> list[str] | None:
    """``tags``: an array of strings (numbers are taken as text); duplicates removed, order kept."""
    if not isinstance(value, list) or any(isinstance(t, (list, dict)) or t is None or isinstance(t, bool) for t in value):
        issues.add(f"{location} config should be an array of strings", line, **where)
        return None
    unique: list[str] = []
    for tag in (str(t) for t in value):
        if tag not in unique:
            unique.append(tag)
    return unique
