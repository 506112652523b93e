"""``extends:`` (GitLab's ``Config::Extendable``), resolved on the merged configuration.

Each parent, in list order, is resolved first and deep-merged into an empty mapping, then the
job's own keys are merged over them: mappings merge at every depth, arrays and scalars are
replaced, ``key: null`` overrides. At most 10 ancestors along one chain (11 levels).
"""

from __future__ import annotations

from typing import Any

from conveyor.ciconfig.errors import IssueCollector
from conveyor.ciconfig.merge import Budget, deep_merge
from conveyor.ciconfig.yamlsource import YamlMap

MAX_NESTING_LEVELS = 10


class _Failed(Exception):
    pass


def resolve(body: YamlMap, issues: IssueCollector, budget: Budget) -> YamlMap:
    """A copy of ``body`` whose entries with ``extends`` hold the merged result.

    Raises:
        TooBig: past the budget.
    """
    resolver = _Resolver(body, issues, budget)
    result = YamlMap.empty(body.file, body.line)
    result.lines, result.files = dict(body.lines), dict(body.files or {}) or None
    for key, value in body.items():
        if isinstance(value, YamlMap) and "extends" in value and key not in ("default", "workflow", "variables"):
            try:
                value = resolver.resolved(key, ())
            except _Failed:
                pass
        result[key] = value
    return result


class _Resolver:
    def __init__(self, body: YamlMap, issues: IssueCollector, budget: Budget) -> None:
        self.body, self.issues, self.budget = body, issues, budget
        self.done: dict[Any, YamlMap] = {}
        self.height: dict[Any, int] = {}  # ancestors along the longest chain
        self.failed: set[Any] = set()

    def fail(self, key: Any, message: str) -> None:
        self.issues.add(f"{key}: {message}", self.body.lines.get(key), job=str(key), key="extends",
                        file=self.body.file_of(key))
        raise _Failed

    def resolved(self, key: Any, chain: tuple[Any, ...]) -> YamlMap:
        if key in self.done:
            return self.done[key]
        if key in self.failed:
            raise _Failed
        try:
            value = self._resolve(key, chain)
        except _Failed:
            self.failed.add(key)
            raise
        self.done[key] = value
        return value

    def _resolve(self, key: Any, chain: tuple[Any, ...]) -> YamlMap:
        value = self.body[key]
        parents = value.get("extends")
        if parents is None:
            return value
        if isinstance(parents, str):
            parents = [parents]
        if not isinstance(parents, list) or not all(isinstance(p, str) for p in parents):
            self.fail(key, "invalid extends, it should be a string or an array of strings")
        unknown = [p for p in parents if p not in self.body]
        if unknown:
            self.fail(key, f"unknown keys in `extends` ({', '.join(unknown)})")
        invalid = [p for p in parents if not isinstance(self.body[p], YamlMap)]
        if invalid:
            self.fail(key, f"invalid base hashes in `extends` ({', '.join(invalid)})")
        merged = YamlMap.empty(value.file, value.line)
        height = 0
        for parent in parents:
            if parent in chain or parent == key:
                self.fail(chain[0] if chain else key, "circular dependency detected in `extends`")
            merged = deep_merge(merged, self.resolved(parent, (*chain, key)))
            height = max(height, 1 + self.height.get(parent, 0))
            self.budget.charge(len(merged))
        if height > MAX_NESTING_LEVELS:
            self.fail(key, "nesting too deep in `extends`")
        self.height[key] = height
        self.budget.charge(len(merged) + len(value))
        return deep_merge(merged, value)
