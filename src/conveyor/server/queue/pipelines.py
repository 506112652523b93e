"""Create a pipeline: read ``.gitlab-ci.yml`` at a commit, expand it, store its jobs, start it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from conveyor import ciconfig, pipeline
from conveyor.protocol import JobSpec
from conveyor.server.db import queries
from conveyor.server.errors import BadRequest, NotFound
from conveyor.server.queue import interrupt
from conveyor.server.queue.progress import advance
from conveyor.server.sources import GitIncludeResolver, GitSources

CONFIG_PATH = ".gitlab-ci.yml"


@dataclass(frozen=True)
class CreatedPipeline:
    id: int
    sha: str
    ref: str
    enqueued: list[queries.jobs.Queued]
    auto_canceled: list[int] = field(default_factory=list)  # older pipelines this one made redundant


class Pipelines:
    def __init__(self, engine: AsyncEngine, sources: GitSources) -> None:
        self._engine = engine
        self._sources = sources

    async def create(
        self, project: RowMapping, ref: str | None = None, variables: dict[str, str] | None = None
    ) -> CreatedPipeline:
        """Expand the project's CI config at ``ref`` (default branch if None) and queue stage one.

        Raises ``ciconfig.ConfigError`` with every problem found, or ``BadRequest`` for git errors.
        """
        source = project["source"]
        ref = ref or project["default_branch"] or await self._sources.default_branch(source)
        sha = await self._sources.resolve(source, ref)
        if not sha:
            raise BadRequest(f"Reference not found: {ref}")
        text = await self._sources.read_file(source, sha, CONFIG_PATH)
        if text is None:
            raise BadRequest(f"Missing {CONFIG_PATH} file at {ref} ({sha[:8]})")
        specs = pipeline.build(await self._load(project, ref, sha, text, variables or {}))
        return await self.store(project, ref, sha, specs, variables)

    async def _load(
        self, project: RowMapping, ref: str, sha: str, text: str, variables: dict[str, str]
    ) -> ciconfig.PipelineConfig:
        """``ciconfig.load`` in a worker thread (it reads includes through git and HTTP)."""
        source = project["source"]
        parent = await self._sources.parent(source, sha)
        context = ciconfig.PipelineContext(
            source="push",
            ref=ref,
            sha=sha,
            before_sha=parent or "0" * 40,
            tag=await self._sources.is_tag(source, ref),
            default_branch=project["default_branch"] or ref,
            protected=ref == project["default_branch"] or ref in (project["protected_refs"] or []),
            variables=variables,
            changed_files=await self._sources.changed_files(source, parent, sha),
            repository_files=await self._sources.list_files(source, sha),
            project_path=project["name"],
        )

        async def project_source(name: str) -> str | None:
            async with self._engine.connect() as conn:
                row = await queries.projects.get(conn, name)
            return row["source"] if row is not None else None

        resolver = GitIncludeResolver(self._sources, source, sha, asyncio.get_running_loop(), project_source)
        return await asyncio.to_thread(
            ciconfig.load, text, filename=CONFIG_PATH, context=context, resolver=resolver
        )

    async def store(
        self,
        project: RowMapping,
        ref: str,
        sha: str,
        specs: Sequence[JobSpec],
        variables: dict[str, str] | None = None,
    ) -> CreatedPipeline:
        """Store an expanded pipeline, start it, and auto-cancel the older pipelines of ``ref`` it
        makes redundant (``interruptible``, after the new one is committed, as GitLab does)."""
        dumped: list[dict[str, Any]] = [spec.model_dump(mode="json") for spec in specs]
        protected = ref == project["default_branch"] or ref in (project["protected_refs"] or [])
        async with self._engine.begin() as conn:
            pipeline_id = await queries.pipelines.insert(conn, project["id"], ref, sha, variables or {})
            await queries.jobs.insert_many(conn, pipeline_id, project["id"], dumped, protected=protected)
            enqueued = await advance(conn, pipeline_id)
        redundant = await interrupt.cancel_redundant(self._engine, project["id"], ref, sha, pipeline_id)
        return CreatedPipeline(
            id=pipeline_id, sha=sha, ref=ref, enqueued=enqueued + redundant.enqueued, auto_canceled=redundant.canceled
        )

    async def get(self, project_id: int, pipeline_id: int) -> RowMapping:
        async with self._engine.connect() as conn:
            row = await queries.pipelines.get(conn, pipeline_id)
        if row is None or row["project_id"] != project_id:
            raise NotFound("404 Pipeline Not Found")
        return row

    async def jobs(self, pipeline_id: int, *, include_retried: bool = False) -> list[RowMapping]:
        async with self._engine.connect() as conn:
            return await queries.jobs.for_pipeline(conn, pipeline_id, include_retried=include_retried)

    async def job(self, project_id: int, job_id: int) -> RowMapping:
        async with self._engine.connect() as conn:
            row = await queries.jobs.get(conn, job_id)
        if row is None or row["project_id"] != project_id:
            raise NotFound("404 Job Not Found")
        return row

    async def list(self, project_id: int) -> list[RowMapping]:
        async with self._engine.connect() as conn:
            return await queries.pipelines.list_for_project(conn, project_id)

    async def page(
        self, project_id: int, *, before_id: int | None = None, ref: str | None = None, status: str | None = None,
        limit: int = 50,
    ) -> tuple[list[RowMapping], int | None]:
        """One page of the project's pipelines, newest first, and the keyset of the next (or None)."""
        async with self._engine.connect() as conn:
            rows = await queries.overview.pipelines_page(
                conn, project_id, before_id=before_id, ref=ref, status=status, limit=limit
            )
        return rows[:limit], (rows[limit - 1]["id"] if len(rows) > limit else None)

    async def latest(self) -> dict[int, RowMapping]:
        """Each project's newest pipeline, by project id."""
        async with self._engine.connect() as conn:
            return await queries.overview.latest_pipelines(conn)
