"""Validation against GitLab's JSON schema for ``.gitlab-ci.yml`` (the editor's ``ci.json``, as
vendored by the ``check-jsonschema`` package), after ``include``/``extends``/``!reference``.

The semantic checks run first and speak GitLab's own texts; the schema covers the keywords they
do not validate themselves (``release``, ``pages``, ``hooks``, ``id_tokens``, ``secrets``,
``artifacts``/``environment`` details...). Where the semantic checks implement GitLab's own
processing, they decide: the editor's schema is stricter than GitLab in places (numbers as
tags, 10 levels of script nesting, nested ``stages``, ``artifacts:reports:annotations`` as a
list, an empty ``artifacts:paths``). A schema error is reported only for a
top-level entry that has no other issue, with the JSON path in GitLab's ``jobs:name:key``
style and the line of the deepest key found. ``key: null`` means
"unset" in GitLab's processing (``variables: null`` over ``extends``), so null values are left
out of what the schema sees.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
from collections.abc import Iterator
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError, best_match

from conveyor.ciconfig.errors import IssueCollector
from conveyor.ciconfig.yamlsource import YamlList, YamlMap

SCHEMA_PACKAGE = "check_jsonschema.builtin_schemas.vendor"
SCHEMA_FILE = "gitlab-ci.json"
GLOBAL_KEYWORDS = frozenset(
    "default include stages variables workflow spec image services cache before_script "
    "after_script pages".split()
)
MAX_SCHEMA_ISSUES = 50
# Keys whose whole value the semantic checks validate with GitLab's processing rules.
SEMANTIC_KEYS = frozenset(
    "stage script before_script after_script variables needs when allow_failure timeout tags "
    "start_in extends rules only except inherit parallel retry interruptible resource_group "
    "coverage dependencies cache image services artifacts trigger".split()
)
SEMANTIC_GLOBALS = frozenset({"stages", "variables", "include", "spec"})


@functools.lru_cache(maxsize=1)
def validator() -> Any:
    """GitLab's schema, loaded once from check-jsonschema's package data."""
    text = importlib.resources.files(SCHEMA_PACKAGE).joinpath(SCHEMA_FILE).read_text("utf-8")
    schema = json.loads(text)
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=None)


def check(body: YamlMap, issues: IssueCollector) -> None:
    """Add one issue per schema problem of an entry that has no issue yet."""
    flagged = {issue.job or issue.key for issue in issues.issues}
    document = _plain(body)
    reported = 0
    for error in validator().iter_errors(document):
        best = best_match([error]) or error
        path = list(best.absolute_path)
        top = str(path[0]) if path else None
        if top in flagged or _semantic(path):
            continue
        flagged.add(top)
        issues.add(
            f"{_location(path)} config does not match GitLab's schema: {_message(best)}",
            _line(body, path),
            job=top if top not in GLOBAL_KEYWORDS else None,
            key=str(path[1]) if len(path) > 1 and top not in GLOBAL_KEYWORDS else top,
            file=_file(body, path),
        )
        reported += 1
        if reported >= MAX_SCHEMA_ISSUES:
            break


SCRIPT_KEYS = frozenset({"script", "before_script", "after_script"})


def _semantic(path: list[Any]) -> bool:
    """Whether the semantic checks own the value at ``path``."""
    if not path:
        return False
    head = str(path[0])
    if head in SEMANTIC_GLOBALS or head in SEMANTIC_KEYS:
        return True
    if head == "workflow":
        return len(path) > 1 and path[1] == "rules"
    return len(path) > 1 and str(path[1]) in SEMANTIC_KEYS


def _plain(value: Any) -> Any:
    """JSON-shaped data: string keys, no nulls in mappings, and scripts flattened (GitLab
    accepts 10 levels of nesting where the schema accepts one)."""
    if isinstance(value, dict):
        return {
            _key(k): _flat(v) if k in SCRIPT_KEYS and isinstance(v, list) else _plain(v)
            for k, v in value.items()
            if v is not None
        }
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _flat(items: list[Any]) -> list[Any]:
    flat: list[Any] = []
    stack = list(reversed(items))
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(reversed(item))
        else:
            flat.append(_plain(item))
    return flat


def _key(key: Any) -> str:
    if isinstance(key, bool):
        return "true" if key else "false"
    return "null" if key is None else str(key)


def _location(path: list[Any]) -> str:
    if not path:
        return "root"
    head, *rest = [str(part) for part in path]
    parts = [head] if head in GLOBAL_KEYWORDS else ["jobs", head]
    return ":".join(parts + rest)


def _message(error: ValidationError) -> str:
    message = error.message
    return message if len(message) <= 300 else message[:297] + "..."


def _walk(body: YamlMap, path: list[Any]) -> Iterator[tuple[Any, Any]]:
    """(container, key) pairs down ``path`` while the containers are YAML nodes."""
    node: Any = body
    for part in path:
        if isinstance(node, YamlMap):
            match = next((k for k in node if _key(k) == part), None)
            if match is None:
                return
            yield node, match
            node = node[match]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            yield node, part
            node = node[part]
        else:
            return


def _line(body: YamlMap, path: list[Any]) -> int | None:
    line = None
    for container, key in _walk(body, path):
        if isinstance(container, YamlMap):
            line = container.lines.get(key, line)
        elif isinstance(container, YamlList) and key < len(container.lines):
            line = container.lines[key]
    return line


def _file(body: YamlMap, path: list[Any]) -> str | None:
    file = None
    for container, key in _walk(body, path):
        if isinstance(container, YamlMap):
            file = container.file_of(key) or file
    return file
