"""GitLab's deep merge (``Hash#deep_merge``), used by ``include`` and ``extends``.

Mappings merge recursively at every depth; anything else (lists, scalars, null) in the later
mapping replaces the earlier value, so arrays are never concatenated. Key order is the earlier
mapping's, then the later one's new keys. The result remembers, per key, the file and line it
came from, so errors point at the file that wrote the value.
"""

from __future__ import annotations

from typing import Any

from conveyor.ciconfig.yamlsource import Reference, YamlList, YamlMap


def deep_merge(base: YamlMap, override: YamlMap) -> YamlMap:
    """A new mapping: ``override`` deep-merged over ``base`` (neither is modified)."""
    merged = YamlMap.empty(override.file or base.file, override.line or base.line)
    merged.files = {}
    for key, value in base.items():
        merged[key] = value
        merged.lines[key] = base.lines.get(key, base.line)
        merged.files[key] = base.file_of(key)
    for key, value in override.items():
        earlier = merged.get(key)
        if isinstance(earlier, YamlMap) and isinstance(value, YamlMap):
            value = deep_merge(earlier, value)
        merged[key] = value
        merged.lines[key] = override.lines.get(key, override.line)
        merged.files[key] = override.file_of(key)
    return merged


def copy(value: Any) -> Any:
    """A deep copy that keeps lines and files (mappings and lists are rebuilt, scalars shared)."""
    if isinstance(value, YamlMap):
        made = YamlMap.empty(value.file, value.line)
        made.lines = dict(value.lines)
        made.files = dict(value.files) if value.files else None
        for key, item in value.items():
            made[key] = copy(item)
        return made
    if isinstance(value, list):
        made_list = YamlList(copy(item) for item in value)
        made_list.line = getattr(value, "line", 0)
        made_list.lines = list(getattr(value, "lines", [made_list.line] * len(value)))
        return made_list
    return value


def depth(value: Any, limit: int) -> int:
    """Nesting levels of mappings and lists in ``value`` (iterative), counting stops past
    ``limit``."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if not isinstance(item, dict | list):
            continue
        deepest = max(deepest, level)
        if deepest > limit:
            return deepest
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, level + 1) for child in children if isinstance(child, dict | list))
    return deepest


def size(value: Any, limit: int) -> int:
    """Nodes in ``value`` (mappings count keys and values), counting stops past ``limit``."""
    total = 0
    stack = [value]
    while stack and total <= limit:
        item = stack.pop()
        total += 1
        if isinstance(item, dict):
            total += len(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, Reference):
            total += len(item.path)
    return total


MAX_WORK = 2_000_000
TOO_BIG = "The parsed YAML is too big: extends and !reference would build more than 2000000 nodes"


class TooBig(Exception):
    """Resolving ``extends``/``!reference`` would build an unreasonably large configuration."""


class Budget:
    """Counts the nodes built while resolving, so hostile input fails fast and small."""

    def __init__(self, limit: int = MAX_WORK) -> None:
        self.left = limit

    def charge(self, nodes: int) -> None:
        self.left -= nodes
        if self.left < 0:
            raise TooBig
