"""The job keys that decide whether and how often a job is added (``rules``, ``only``,
``except``, ``parallel``) and what it takes from ``default:`` and the global ``variables:``
(``inherit``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from conveyor.ciconfig import parallel as parallel_entry
from conveyor.ciconfig import policy, rules, values
from conveyor.ciconfig.model import DefaultConfig

ReportAt = Callable[[str, str], None]  # (message, key)
ReportLine = Callable[[str, str, "int | None"], None]  # (message, key, line or None)
INHERIT_KEYS = frozenset({"default", "variables"})
DEFAULT_KEYWORDS = frozenset(
    "after_script artifacts before_script cache hooks id_tokens identity image interruptible "
    "retry services tags timeout".split()
)


@dataclass(frozen=True)
class Conditions:
    rules: list[rules.Rule] | None = None
    only: policy.Policy | None = None
    except_: policy.Policy | None = None
    parallel: parallel_entry.Parallel | None = None


def parse(config: dict[str, Any], location: str, report_at: ReportAt, report_line: ReportLine) -> Conditions | None:
    """``rules``/``only``/``except``/``parallel`` of one job; None after reporting."""
    found: dict[str, Any] = {}
    valid = True
    for key in ("rules", "only", "except", "parallel"):
        if config.get(key) is None:
            continue
        problems: list[str] = []
        if key == "rules":
            found[key], located = rules.parse_rules(config[key], f"{location}:rules")
            for message, line in located:
                report_line(message, key, line)
            valid = valid and not located
            continue
        if key == "parallel":
            found[key] = parallel_entry.parse(config[key], location, problems)
        else:
            found[key] = policy.parse_policy(config[key], f"{location}:{key}", problems)
        for problem in problems:
            report_at(problem, key)
        valid = valid and not problems
    if config.get("rules") is not None:
        clashing = [key for key in ("only", "except", "start_in") if config.get(key) is not None]
        if clashing:
            report_at(f"{location} config key may not be used with `rules`: {', '.join(clashing)}", "rules")
            valid = False
    if not valid:
        return None
    return Conditions(found.get("rules"), found.get("only"), found.get("except"), found.get("parallel"))


@dataclass(frozen=True)
class Inherited:
    """The ``default:`` values a job takes, and which global variables it takes."""

    values: dict[str, Any]
    variables: bool | frozenset[str]


def inherited(
    config: dict[str, Any], location: str, report_at: ReportAt, default: DefaultConfig
) -> Inherited:
    raw = config.get("inherit")
    take_default: bool | frozenset[str] = True
    take_variables: bool | frozenset[str] = True
    if raw is not None:
        if not isinstance(raw, dict):
            report_at(f"{location}:inherit config should be a hash", "inherit")
        else:
            if unknown := values.unknown_keys(raw, INHERIT_KEYS):
                report_at(f"{location}:inherit {unknown}", "inherit")
            take_default = _choice(raw.get("default", True), f"{location}:inherit:default", report_at, DEFAULT_KEYWORDS)
            take_variables = _choice(raw.get("variables", True), f"{location}:inherit:variables", report_at, None)
    taken = {}
    for item in fields(DefaultConfig):
        chosen = take_default is True or (isinstance(take_default, frozenset) and item.name in take_default)
        value = getattr(default, item.name)
        if chosen and value is not None:
            taken[item.name] = value
    return Inherited(taken, take_variables)


def _choice(
    value: Any, location: str, report_at: ReportAt, allowed: frozenset[str] | None
) -> bool | frozenset[str]:
    if isinstance(value, bool):
        return value
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        report_at(f"{location} config should be a boolean value or an array of strings", "inherit")
        return True
    if allowed is not None:
        unknown = [item for item in value if item not in allowed]
        if unknown:
            report_at(f"{location} config contains unknown values: {', '.join(unknown)}", "inherit")
    return frozenset(value)
