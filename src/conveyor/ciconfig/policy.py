"""``only:`` / ``except:`` (deprecated, still common; GitLab's ``Entry::Policy`` and
``Build::Policy``).

A plain list means ``refs``. ``refs`` holds branch or tag names, ``/regex/`` and keywords
(``branches``, ``tags``, ``api``, ``pushes``, ``schedules``, ``triggers``, ``web``, ...).
``variables`` is a list of expressions (ORed). ``changes`` uses the ``rules:changes`` globs and
is always true outside push pipelines. ``only`` keeps the job when every key matches;
``except`` drops it when any key matches. A job without ``rules``, ``only`` and ``except``
behaves as ``only: [branches, tags]``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from conveyor.ciconfig import expressions, values
from conveyor.ciconfig.context import PipelineContext

POLICY_KEYS = frozenset({"refs", "variables", "changes", "kubernetes"})
SOURCE_KEYWORDS = {
    "api": {"api"},
    "chat": {"chat"},
    "external": {"external"},
    "external_pull_requests": {"external_pull_request_event"},
    "merge_requests": {"merge_request_event"},
    "pipelines": {"pipeline", "parent_pipeline"},
    "pushes": {"push"},
    "schedules": {"schedule"},
    "triggers": {"trigger"},
    "web": {"web"},
}
_REGEX = re.compile(r"^/(.+)/([a-z]*)$", re.S)
NOT_BRANCH_SOURCES = frozenset({"merge_request_event", "external_pull_request_event"})


@dataclass(frozen=True)
class Policy:
    refs: tuple[str, ...] | None = None
    variables: tuple[expressions.Node, ...] | None = None
    changes: tuple[str, ...] | None = None
    kubernetes: str | None = None


DEFAULT_ONLY = Policy(refs=("branches", "tags"))


def parse_policy(raw: Any, location: str, problems: list[str]) -> Policy | None:
    if isinstance(raw, str):
        raw = [raw]
    if isinstance(raw, list):
        refs = _refs(raw, location, problems)
        return None if refs is None else Policy(refs=refs)
    if not isinstance(raw, dict):
        problems.append(f"{location} has to be either an array of conditions or a hash")
        return None
    if unknown := values.unknown_keys(raw, POLICY_KEYS):
        problems.append(f"{location} {unknown}")
        return None
    refs = _refs(raw["refs"], f"{location}:refs", problems) if "refs" in raw else None
    parsed_variables = None
    if "variables" in raw:
        listed = raw["variables"] if isinstance(raw["variables"], list) else None
        if listed is None or not all(expressions.is_valid(item) for item in listed):
            problems.append(f"{location}:variables config should be an array of valid expressions")
        else:
            parsed_variables = tuple(expressions.parse(item) for item in listed)
    changes = None
    if "changes" in raw:
        listed = raw["changes"]
        if isinstance(listed, dict):
            listed = listed.get("paths")
        if not values.is_string_list(listed):
            problems.append(f"{location}:changes config should be an array of strings")
        else:
            changes = tuple(listed)
    kubernetes = raw.get("kubernetes")
    if kubernetes is not None and kubernetes != "active":
        problems.append(f"{location}:kubernetes config should be one of: active")
    return Policy(refs, parsed_variables, changes, kubernetes)


def _refs(raw: Any, location: str, problems: list[str]) -> tuple[str, ...] | None:
    if not values.is_string_list(raw):
        problems.append(f"{location} config should be an array of strings or regular expressions")
        return None
    for ref in raw:
        match = _REGEX.match(ref)
        if match:
            try:
                re.compile(match.group(1))
            except re.error:
                problems.append(f"{location} config should be an array of strings or regular expressions using valid syntax")
                return None
    return tuple(raw)


def satisfied(
    policy: Policy, context: PipelineContext, variables: Mapping[str, str], *, only: bool
) -> bool:
    """``only``: every key matches. ``except`` (only=False): any key matches."""
    from conveyor.ciconfig import rules  # changes share rules' globs

    checks = []
    if policy.refs is not None:
        checks.append(any(_ref_matches(ref, context) for ref in policy.refs))
    if policy.variables is not None:
        checks.append(any(expressions.evaluate(node, variables) for node in policy.variables))
    if policy.changes is not None:
        if context.source in rules.CHANGES_PUSH_SOURCES and not context.tag:
            checks.append(rules.changed(policy.changes, None, context, variables))
        else:
            checks.append(only)  # GitLab: only:changes true, except:changes false elsewhere
    if policy.kubernetes is not None:
        checks.append(False)  # no Kubernetes integration
    if not checks:
        return only
    return all(checks) if only else any(checks)


def _ref_matches(ref: str, context: PipelineContext) -> bool:
    name, _, project = ref.partition("@")
    if project and project != context.project_path:
        return False
    if name == "branches":
        return not context.tag and context.source not in NOT_BRANCH_SOURCES
    if name == "tags":
        return context.tag
    if name in SOURCE_KEYWORDS:
        return context.source in SOURCE_KEYWORDS[name]
    match = _REGEX.match(name)
    if match:
        flags = re.I if "i" in match.group(2) else 0
        try:
            return re.search(match.group(1), context.ref, flags) is not None
        except re.error:
            return False
    return name == context.ref
