"""Nested lists spliced into one, as GitLab's composable arrays do (``[config].flatten``).

A YAML alias or a resolved ``!reference`` that yields a list is one item of the list it sits in,
so ``rules: [!reference [.r, rules], {when: never}]`` holds a list inside a list. GitLab
flattens such lists for ``rules`` (job rules up to 10 levels), ``workflow:rules``, ``needs``,
``cache`` and the scripts; every item keeps the line it was written on.
"""

from __future__ import annotations

from typing import Any

from conveyor.ciconfig.yamlsource import YamlList

MAX_RULE_LEVELS = 10


def is_nested(value: list[Any]) -> bool:
    return any(isinstance(item, list) for item in value)


def flatten(value: list[Any], max_levels: int | None = None) -> YamlList | None:
    """``value`` with its nested lists spliced in, in order; None when nested deeper than
    ``max_levels`` (the outer list is level 1)."""
    flat = YamlList()
    flat.line = getattr(value, "line", 0)
    flat.lines = []
    if not _splice(value, 1, max_levels, flat, flat.line):
        return None
    return flat


def _splice(items: list[Any], level: int, max_levels: int | None, into: YamlList, line: int) -> bool:
    if max_levels is not None and level > max_levels:
        return False
    lines = list(getattr(items, "lines", []))
    for index, item in enumerate(items):
        at = lines[index] if index < len(lines) else line
        if isinstance(item, list):
            if not _splice(item, level + 1, max_levels, into, getattr(item, "line", 0) or at):
                return False
        else:
            into.append(item)
            into.lines.append(at)
    return True
