"""``needs:`` entries (job and ``rules`` level): names or ``{job, optional, artifacts,
parallel: {matrix}}``. GitLab's entries ``Entry::Needs``/``Entry::Need``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from conveyor.ciconfig.model import Need
from conveyor.ciconfig.values import scalar_text
from conveyor.ciconfig.yamlsource import YamlList

NEED_KEYS = frozenset({"job", "optional", "artifacts", "parallel"})
MAX_NEEDS = 50


def parse_needs(
    value: Any, location: str, line: int | None, report: Callable[[str, int | None], None]
) -> list[Need] | None:
    """The needs, or None after reporting (``report(message, line)``)."""
    if not isinstance(value, list):
        report(f"{location} config can only be an array of job names or hashes", line)
        return None
    lines = value.lines if isinstance(value, YamlList) else [line] * len(value)
    needs: list[Need] = []
    valid = True
    for item, item_line in zip(value, lines, strict=True):
        problem, need = _need(item, location, item_line)
        if problem:
            report(problem, item_line)
            valid = False
        elif need is not None:
            needs.append(need)
    return needs if valid else None


def _need(item: Any, location: str, line: int | None) -> tuple[str | None, Need | None]:
    if isinstance(item, str):
        if item:
            return None, Need(job=item, line=line)
        return f"{location} entries cannot be empty", None
    if not isinstance(item, dict):
        return f"{location}:need config must be a string or a hash", None
    if "pipeline" in item or "project" in item:
        return f"{location}:need with pipeline: or project: is not supported yet", None
    extra = [str(key) for key in item if key not in NEED_KEYS]
    if extra:
        return f"{location}:need config contains unknown keys: {', '.join(extra)}", None
    if not isinstance(item.get("job"), str) or not item["job"]:
        return f"{location}:need job should be a non-empty string", None
    if not isinstance(item.get("optional", False), bool):
        return f"{location}:need optional should be a boolean value", None
    if not isinstance(item.get("artifacts", True), bool):
        return f"{location}:need artifacts should be a boolean value", None
    matrix = None
    parallel = item.get("parallel")
    if parallel is not None:
        matrix = _matrix(parallel)
        if matrix is None:
            return f"{location}:need:parallel config should be a hash with a matrix of arrays", None
    need = Need(
        job=item["job"],
        optional=item.get("optional", False),
        artifacts=item.get("artifacts", True),
        line=line,
        matrix=matrix,
    )
    return None, need


def _matrix(parallel: Any) -> tuple[tuple[tuple[str, tuple[str, ...]], ...], ...] | None:
    """``parallel: {matrix: [{A: x, B: [y, z]}, ...]}`` as tuples of (name, values)."""
    if not isinstance(parallel, dict) or set(parallel) != {"matrix"}:
        return None
    rows = parallel["matrix"]
    if not isinstance(rows, list) or not rows:
        return None
    parsed = []
    for row in rows:
        if not isinstance(row, dict) or not row:
            return None
        entries = []
        for name, raw in row.items():
            listed = raw if isinstance(raw, list) else [raw]
            if not all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in listed):
                return None
            entries.append((str(name), tuple(scalar_text(v) for v in listed)))
        parsed.append(tuple(entries))
    return tuple(parsed)
