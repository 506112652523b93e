"""``rules:`` (jobs, ``workflow:``, ``include:``): parsing with GitLab's texts, and choosing the
first rule that matches (GitLab's ``Build::Rules``).

A rule matches when all of its clauses hold: ``if`` (an expression), ``changes`` (any changed
file matches a pattern; true when the changes are unknown: tags, schedules, web and API runs,
new branches), ``exists`` (any repository file matches). A rule with only ``when`` matches.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from conveyor.ciconfig import expressions, flatten, globs, scheduling, values
from conveyor.ciconfig.context import PipelineContext
from conveyor.ciconfig.expansion import expand_existing
from conveyor.ciconfig.model import Need
from conveyor.ciconfig.need import parse_needs
from conveyor.ciconfig.yamlsource import YamlList

JOB_RULE_KEYS = frozenset(
    "if changes exists when start_in allow_failure variables needs interruptible".split()
)
WORKFLOW_RULE_KEYS = frozenset("if changes exists when variables auto_cancel".split())
INCLUDE_RULE_KEYS = frozenset("if changes exists when".split())
JOB_WHEN = ("on_success", "on_failure", "always", "never", "manual", "delayed")
MAX_PATTERNS = 50
MAX_GLOB_CHECKS = 50_000
CHANGES_PUSH_SOURCES = frozenset({"push", "merge_request_event", "external_pull_request_event"})


@dataclass(frozen=True)
class Rule:
    condition: expressions.Node | None = None
    changes: tuple[str, ...] | None = None
    compare_to: str | None = None
    exists: tuple[str, ...] | None = None
    when: str | None = None
    allow_failure: bool | None = None
    start_in: int | None = None
    variables: dict[str, str] | None = None
    needs: list[Need] | None = None
    interruptible: bool | None = None
    auto_cancel: dict[str, Any] | None = None
    line: int | None = None
    exists_in: tuple[str, str | None] | None = None  # rules:exists:project and :ref


def parse_rules(
    raw: Any, location: str, *, include: bool = False, workflow: bool = False
) -> tuple[list[Rule] | None, list[tuple[str, int | None]]]:
    """``(rules, problems)``: each problem with the line of its rule (None: the key's line).
    ``location`` is GitLab's, e.g. ``jobs:build:rules``."""
    found: list[tuple[str, int | None]] = []
    if raw is None or raw == []:
        return None, [(f"{location} config can't be blank", None)]
    if not isinstance(raw, list):
        return None, [(f"{location} config should be an array of hashes", None)]
    if not include and flatten.is_nested(raw):
        # GitLab flattens job rules up to 10 levels, workflow rules at any depth
        flat = flatten.flatten(raw, None if workflow else flatten.MAX_RULE_LEVELS)
        if flat is None:
            holder = location.removesuffix(":rules")
            return None, [(f"{holder} rules should be an array containing hashes and arrays of hashes", None)]
        raw = flat
    allowed = INCLUDE_RULE_KEYS if include else WORKFLOW_RULE_KEYS if workflow else JOB_RULE_KEYS
    whens = ("never", "always") if include or workflow else JOB_WHEN
    lines = raw.lines if isinstance(raw, YamlList) else [None] * len(raw)
    parsed = []
    for item, line in zip(raw, lines, strict=True):
        problems: list[str] = []
        rule = _rule(item, f"{location}:rule", allowed, whens, problems, line)
        found.extend((problem, line) for problem in problems)
        if rule is not None:
            parsed.append(rule)
    return (None if found else parsed), found


def _rule(
    item: Any, location: str, allowed: frozenset[str], whens: tuple[str, ...], problems: list[str], line: int | None
) -> Rule | None:
    before = len(problems)
    if not isinstance(item, dict):
        problems.append(f"{location} config should be a hash")
        return None
    if not item:
        problems.append(f"{location} config can't be blank")
        return None
    if unknown := values.unknown_keys(item, allowed):
        problems.append(f"{location} {unknown}")
        return None
    condition = None
    if item.get("if") is not None:
        try:
            condition = expressions.parse(item["if"])
        except expressions.ExpressionError:
            problems.append(f"{location} if invalid expression syntax")
    changes, compare_to = _changes(item.get("changes"), f"{location}:changes", problems)
    exists, exists_in = _exists(item.get("exists"), f"{location}:exists", problems)
    when = item.get("when")
    if when is not None and when not in whens:
        problems.append(f"{location} when should be one of: {', '.join(whens)}")
    allow_failure = item.get("allow_failure")
    if allow_failure is not None and not isinstance(allow_failure, bool):
        problems.append(f"{location} allow_failure should be a boolean value")
    start_in = None
    if when == "delayed":
        start_in = scheduling.start_in(item.get("start_in"), location, problems.append)
    elif item.get("start_in") is not None:
        problems.append(f"{location} start_in must be blank")
    variables = None
    if "variables" in item:
        variables = _variables(item["variables"], f"{location}:variables", problems)
    needs = None
    if item.get("needs") is not None:
        needs = parse_needs(item["needs"], f"{location}:needs", line, lambda m, _l: problems.append(m))
    interruptible = item.get("interruptible")
    if interruptible is not None and not isinstance(interruptible, bool):
        problems.append(f"{location} interruptible should be a boolean value")
    auto_cancel = item.get("auto_cancel")
    if auto_cancel is not None and not isinstance(auto_cancel, dict):
        problems.append(f"{location}:auto_cancel config should be a hash")
    if len(problems) > before:
        return None
    return Rule(condition, changes, compare_to, exists, when, allow_failure, start_in,
                variables, needs, interruptible, auto_cancel, line, exists_in=exists_in)


def _patterns(raw: Any, location: str, problems: list[str]) -> tuple[str, ...] | None:
    if not values.is_string_list(raw):
        problems.append(f"{location} config should be an array of strings")
        return None
    if len(raw) > MAX_PATTERNS:
        problems.append(f"{location} config has too many entries (maximum {MAX_PATTERNS})")
        return None
    return tuple(raw)


def _changes(raw: Any, location: str, problems: list[str]) -> tuple[tuple[str, ...] | None, str | None]:
    if raw is None:
        return None, None
    if isinstance(raw, dict):
        if unknown := values.unknown_keys(raw, ("paths", "compare_to")):
            problems.append(f"{location} {unknown}")
            return None, None
        compare_to = raw.get("compare_to")
        if compare_to is not None and not isinstance(compare_to, str):
            problems.append(f"{location} compare_to should be a string")
        if "paths" not in raw:
            problems.append(f"{location} paths can't be blank")
            return None, None
        return _patterns(raw["paths"], f"{location}:paths", problems), compare_to
    return _patterns(raw, location, problems), None


def _exists(raw: Any, location: str, problems: list[str]) -> tuple[tuple[str, ...] | None, tuple[str, str | None] | None]:
    """The patterns, and ``(project, ref)`` when they are looked for in another project."""
    if raw is None:
        return None, None
    where = None
    if isinstance(raw, dict):
        if unknown := values.unknown_keys(raw, ("paths", "project", "ref")):
            problems.append(f"{location} {unknown}")
            return None, None
        project, ref = raw.get("project"), raw.get("ref")
        if project is not None and not isinstance(project, str) or ref is not None and not isinstance(ref, str):
            problems.append(f"{location} project and ref should be strings")
            return None, None
        if ref is not None and project is None:
            problems.append(f"{location} ref requires project")
            return None, None
        where = (project, ref) if project else None
        raw = raw.get("paths")
    return _patterns(raw, location, problems), where


def _variables(raw: Any, location: str, problems: list[str]) -> dict[str, str]:
    if not isinstance(raw, dict):
        problems.append(f"{location} config should be a hash of key value pairs")
        return {}
    parsed: dict[str, str] = {}
    for name, value in raw.items():
        if value is None and values.is_scalar(name):
            # GitLab turns `KEY: null` into the long form, which rules:variables refuse
            problems.append(f"{location}:{values.scalar_text(name).lower()} config must be a string")
            return {}
        if not values.is_scalar(value) or not values.is_scalar(name):
            problems.append(f"{location} config should be a hash of key value pairs")
            return {}
        parsed[values.scalar_text(name)] = values.scalar_text(value)
    return parsed


def first_match(
    rules: Sequence[Rule],
    variables: Mapping[str, str],
    context: PipelineContext,
    path_variables: Mapping[str, str] | None = None,
) -> Rule | None:
    """The first rule whose clauses all hold, or None (the job or file is not added)."""
    for rule in rules:
        if matches(rule, variables, context, path_variables or variables):
            return rule
    return None


def matches(
    rule: Rule, variables: Mapping[str, str], context: PipelineContext, path_variables: Mapping[str, str]
) -> bool:
    if rule.condition is not None and not expressions.evaluate(rule.condition, variables):
        return False
    if rule.changes is not None and not changed(rule.changes, rule.compare_to, context, path_variables):
        return False
    return rule.exists is None or exists(rule.exists, context, path_variables, rule.exists_in)


def changed(
    patterns: Sequence[str], compare_to: str | None, context: PipelineContext, variables: Mapping[str, str]
) -> bool:
    """Whether a changed file matches; true when the changes are unknown (GitLab)."""
    if compare_to is not None and context.compare_to is not None:
        files = context.compare_to(expand_existing(compare_to, variables))
    elif context.source not in CHANGES_PUSH_SOURCES or context.tag:
        return True
    else:
        files = context.changed_files
    if files is None:
        return True
    return _any_match(patterns, files, variables)


def exists(
    patterns: Sequence[str],
    context: PipelineContext,
    variables: Mapping[str, str],
    where: tuple[str, str | None] | None = None,
) -> bool:
    """Any file matches; in another project at a ref (its default branch) with ``where``."""
    if where is None:
        files = context.repository_files
    elif context.project_files is None:
        files = None
    else:
        project, ref = where
        files = context.project_files(expand_existing(project, variables), expand_existing(ref, variables) if ref else None)
    if files is None:
        return False
    expanded = [expand_existing(p, variables) for p in patterns]
    directories = [p for p in expanded if p.endswith("/")]
    if any(f.startswith(d.lstrip("/")) for d in directories for f in files):
        return True
    return _any_match([p for p in expanded if not p.endswith("/")], files, {})


def _any_match(patterns: Sequence[str], files: Sequence[str], variables: Mapping[str, str]) -> bool:
    checks = 0
    for pattern in patterns:
        regex = globs.fnmatch_regex(expand_existing(pattern, variables).lstrip("/"))
        for path in files:
            checks += 1
            if checks > MAX_GLOB_CHECKS:
                return True  # GitLab: past 50,000 checks, glob rules match
            if regex.match(path):
                return True
    return False
