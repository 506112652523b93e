"""``needs:`` entries (job and ``rules`` level): names or ``{job, optional, artifacts,
parallel: {matrix}}``. GitLab's entries ``Entry::Needs``/``Entry::Need``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from conveyor.ciconfig import flatten
from conveyor.ciconfig.model import Need
from conveyor.ciconfig.values import scalar_text
from conveyor.ciconfig.yamlsource import YamlList

NEED_KEYS = frozenset({"job", "optional", "artifacts", "parallel"})
PIPELINE_NEED_KEYS = ("pipeline", "job", "artifacts")
PROJECT_NEED_KEYS = ("project", "job", "ref", "artifacts")
MAX_NEEDS = 50
MAX_CROSS_NEEDS = 5  # GitLab's ci_cross_dependencies limit (needs:pipeline and needs:project)


def parse_needs(
    value: Any, location: str, line: int | None, report: Callable[[str, int | None], None]
) -> list[Need] | None:
    """The needs, or None after reporting (``report(message, line)``)."""
    if not isinstance(value, list):
        report(f"{location} config can only be an array of job names or hashes", line)
        return None
    if flatten.is_nested(value):  # aliases and !reference: GitLab flattens needs at any depth
        value = flatten.flatten(value)
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
    if valid and sum(need.cross for need in needs) > MAX_CROSS_NEEDS:
        report(f"{location} config must be less than or equal to {MAX_CROSS_NEEDS}", line)
        return None
    return needs if valid else None


def _need(item: Any, location: str, line: int | None) -> tuple[str | None, Need | None]:
    if isinstance(item, str):
        if item:
            return None, Need(job=item, line=line)
        return f"{location} entries cannot be empty", None
    if not isinstance(item, dict):
        return f"{location}:need has an unsupported type", None
    if "job" not in item:
        # {pipeline: x} alone is GitLab Premium's upstream-status bridge, for trigger jobs only
        kind = "bridge" if "pipeline" in item else None
        if kind:
            return f"{location} config uses invalid types: {kind}", None
        return f"{location}:need has an unsupported type", None
    if "project" in item:
        return _cross(item, location, line, PROJECT_NEED_KEYS)
    if "pipeline" in item:
        return _cross(item, location, line, PIPELINE_NEED_KEYS)
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
        if isinstance(parallel, int) and not isinstance(parallel, bool):
            return f'{location} config cannot use "parallel: <number>".', None
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


def _cross(item: dict[Any, Any], location: str, line: int | None, keys: tuple[str, ...]) -> tuple[str | None, Need | None]:
    """``{pipeline, job, artifacts}`` (GitLab's ``CrossPipelineDependency``) or ``{project, job,
    ref, artifacts}`` (its ``CrossProjectDependency``), with their validators' texts."""
    extra = [str(key) for key in item if key not in keys]
    if extra:
        return f"{location}:need config contains unknown keys: {', '.join(extra)}", None
    for key in keys:
        if key == "artifacts":
            continue
        value = item.get(key)
        if value is None or value == "":
            return f"{location}:need {key} can't be blank", None
        if not isinstance(value, str):
            return f"{location}:need {key} should be a string", None
    if not isinstance(item.get("artifacts", True), bool):
        return f"{location}:need artifacts should be a boolean value", None
    need = Need(
        job=item["job"], artifacts=item.get("artifacts", True), line=line,
        pipeline=item.get("pipeline"), project=item.get("project"), ref=item.get("ref"),
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
