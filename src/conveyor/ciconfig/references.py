"""``!reference [key, subkey, ...]`` tags, resolved after ``extends`` (GitLab's
``Yaml::Tags::Resolver``): each is replaced by a copy of the value at that path of the merged
configuration, itself resolved first. A reference inside a list keeps the referenced list as
one nested item (script lists flatten it later). Chains of references are at most 10 deep.
"""

from __future__ import annotations

import json
from typing import Any

from conveyor.ciconfig.errors import IssueCollector
from conveyor.ciconfig.merge import Budget, copy, size
from conveyor.ciconfig.yamlsource import Reference, YamlList, YamlMap

MAX_DEPTH = 10


class _Failed(Exception):
    pass


def resolve(body: YamlMap, issues: IssueCollector, budget: Budget) -> YamlMap:
    """``body`` with every ``Reference`` replaced (mappings and lists rebuilt).

    Raises:
        TooBig: past the budget.
    """
    resolver = _Resolver(body, issues, budget)
    return resolver.walk(body, ())


def _shown(reference: Reference) -> str:
    return f"!reference {json.dumps(list(reference.path), ensure_ascii=False)}"


class _Resolver:
    def __init__(self, body: YamlMap, issues: IssueCollector, budget: Budget) -> None:
        self.body, self.issues, self.budget = body, issues, budget
        self.cache: dict[tuple[str, ...], Any] = {}
        self.reported: set[tuple[str, ...]] = set()

    def walk(self, value: Any, chain: tuple[tuple[str, ...], ...]) -> Any:
        if isinstance(value, Reference):
            try:
                return self.target(value, chain)
            except _Failed:
                return None
        if isinstance(value, YamlMap):
            self.budget.charge(len(value))
            made = YamlMap.empty(value.file, value.line)
            made.lines, made.files = value.lines, value.files
            for key, item in value.items():
                made[key] = self.walk(item, chain)
            return made
        if isinstance(value, list) and _has_reference(value):
            made_list = YamlList(self.walk(item, chain) for item in value)
            made_list.line = getattr(value, "line", 0)
            made_list.lines = list(getattr(value, "lines", []))
            return made_list
        return value

    def fail(self, reference: Reference, message: str) -> None:
        if reference.path not in self.reported:
            self.reported.add(reference.path)
            self.issues.add(f"{_shown(reference)} {message}", reference.line, file=reference.file)
        raise _Failed

    def target(self, reference: Reference, chain: tuple[tuple[str, ...], ...]) -> Any:
        path = reference.path
        if path in chain:
            self.fail(reference, "is part of a circular chain")
        if len(chain) >= MAX_DEPTH:
            self.fail(reference, f"is nested more than {MAX_DEPTH} levels deep")
        if path in self.cache:
            self.budget.charge(size(self.cache[path], self.budget.left + 1))
            return copy(self.cache[path])
        value: Any = self.body
        for part in path:
            if not isinstance(value, dict) or part not in value:
                self.fail(reference, "could not be found")
            value = value[part]
        resolved = self.walk(value, (*chain, path))
        self.cache[path] = resolved
        self.budget.charge(size(resolved, self.budget.left + 1))
        return copy(resolved)


def _has_reference(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, Reference):
            return True
        if isinstance(item, list | dict):
            stack.extend(item.values() if isinstance(item, dict) else item)
    return False
