"""A job's user-defined variables, by GitLab's precedence, and the facts of how its pipeline
started (``CI_PIPELINE_SOURCE``, ``CI_COMMIT_BEFORE_SHA``, tag or branch).

GitLab's order, lowest first (doc/ci/variables, "CI/CD variable precedence"): predefined <
YAML (global, job, rules) < instance < group < project < pipeline variables (trigger, schedule,
manual run, API). The runner takes the last of several variables of one name, so the payload
lists them in that order and the later wins. Among project variables of one key, the job gets
the one whose ``environment_scope`` matches its environment most specifically (an exact name
beats a wildcard, a wildcard beats ``*``); ``protected`` ones reach only protected refs.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from conveyor.protocol import Variable
from conveyor.server.db import queries
from conveyor.server.variables.crypto import SecretBox

ZERO_SHA = "0" * 40


@dataclass(frozen=True)
class PipelineFacts:
    """What the job payload needs to know about its pipeline's origin."""

    source: str = "push"
    before_sha: str = ZERO_SHA
    tag: bool = False
    variables: list[Variable] = field(default_factory=list)  # instance, project, pipeline: in order

    @classmethod
    def of(cls, pipeline: Mapping[str, Any]) -> PipelineFacts:
        """A pipeline's own facts and variables, without instance or project variables."""
        source, before = pipeline.get("source") or "push", pipeline.get("before_sha") or ZERO_SHA
        tag = bool(pipeline.get("tag"))
        variables = user_variables(
            (), (), pipeline.get("variables") or {}, protected=False, environment=None,
            decrypt=str, file_keys=pipeline.get("file_variables") or (),
        )
        return cls(source=source, before_sha=before, tag=tag, variables=variables)


def _scope_rank(scope: str, environment: str | None) -> int | None:
    """How specifically ``scope`` matches ``environment``: None no match, higher is closer."""
    if scope == "*":
        return 0
    if environment is None:
        return None
    if scope == environment:
        return 2
    return 1 if fnmatch.fnmatchcase(environment, scope) else None


def user_variables(
    instance: Sequence[Mapping[str, Any]],
    project: Sequence[Mapping[str, Any]],
    pipeline: Mapping[str, str],
    *,
    protected: bool,
    environment: str | None,
    decrypt: Any,
    file_keys: Sequence[str] = (),
) -> list[Variable]:
    """Instance, then project, then pipeline variables (later wins), filtered for the job."""
    result = [_variable(row, decrypt) for row in instance if protected or not row["protected"]]
    best: dict[str, tuple[int, Mapping[str, Any]]] = {}
    for row in project:
        if row["protected"] and not protected:
            continue
        rank = _scope_rank(row["environment_scope"], environment)
        if rank is not None and (row["key"] not in best or rank > best[row["key"]][0]):
            best[row["key"]] = (rank, row)
    result += [_variable(row, decrypt) for _, row in best.values()]
    files = set(file_keys)
    result += [Variable(key=k, value=str(v), file=True if k in files else None) for k, v in pipeline.items()]
    return result


def _variable(row: Mapping[str, Any], decrypt: Any) -> Variable:
    return Variable(
        key=row["key"],
        value=decrypt(row["value"]),
        public=False,
        masked=bool(row["masked"]),
        file=True if row["variable_type"] == "file" else None,
        raw=True if row["raw"] else None,
    )


class JobVariables:
    """CI/CD variables as pipeline creation's rules see them, and as a claimed job gets them."""

    def __init__(self, engine: AsyncEngine, box: SecretBox) -> None:
        self._engine = engine
        self._box = box

    async def for_rules(self, project_id: int, protected: bool) -> dict[str, str]:
        """Instance and project variables (``*`` scope) as pipeline creation's rules see them."""
        async with self._engine.connect() as conn:
            instance, project = await queries.variables.for_job(conn, project_id)
        chosen = user_variables(instance, project, {}, protected=protected, environment=None, decrypt=self._box.decrypt)
        return {v.key: v.value for v in chosen}

    async def for_job(self, job: Mapping[str, Any]) -> PipelineFacts:
        """The facts of a claimed job: the claim's row carries its pipeline's columns and the
        CI/CD variables (``ci_variables``, sql/queue.sql), so this reads nothing more."""
        spec = job["spec"] or {}
        environment = (spec.get("predefined_variables") or {}).get("CI_ENVIRONMENT_NAME")
        stored = job["ci_variables"] or []
        pipeline = {
            "ref": job["pipeline_ref"], "source": job["pipeline_source"], "before_sha": job["pipeline_before_sha"],
            "tag": job["pipeline_tag"], "variables": job["pipeline_variables"],
            "file_variables": job["pipeline_file_variables"],
        }
        own = PipelineFacts.of(pipeline)
        variables = user_variables(
            [v for v in stored if v["level"] == 0], [v for v in stored if v["level"] == 1], pipeline["variables"] or {},
            protected=bool(job["protected"]), environment=environment,
            decrypt=self._box.decrypt, file_keys=pipeline["file_variables"] or (),
        )
        return PipelineFacts(
            source=own.source, before_sha=own.before_sha, tag=own.tag, variables=variables
        )
