"""What the REST API lists and shows of pipelines and jobs: filtered pages with counts, the latest
pipeline of a ref, jobs with their pipeline, runner and artifacts. Reads go to a caught-up replica
when there is one (``db/replicas.py``); nothing here writes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from conveyor.server import auth
from conveyor.server.db import queries
from conveyor.server.db.queries.browse import PipelineFilter
from conveyor.server.db.replicas import Reads
from conveyor.server.errors import NotFound, Unauthorized

__all__ = ["Listings", "PipelineFilter", "Window"]


@dataclass(frozen=True)
class Window:
    """One page asked for: ``limit`` rows from ``offset``."""

    limit: int
    offset: int


class Listings:
    def __init__(self, engine: AsyncEngine, reads: Reads | None = None) -> None:
        self._engine = engine
        self._reads = reads or Reads(engine, [])

    async def pipelines(
        self, project_id: int, found: PipelineFilter, order_by: str, sort: str, window: Window
    ) -> tuple[list[RowMapping], int]:
        return await self._reads.run(lambda conn: queries.browse.pipelines_of(
            conn, project_id, found, order_by, sort, window.limit, window.offset
        ))

    async def latest_pipeline(self, project_id: int, ref: str) -> RowMapping | None:
        async with self._engine.connect() as conn:
            return await queries.browse.latest_pipeline(conn, project_id, ref)

    async def coverage(self, pipeline_id: int) -> float | None:
        async with self._engine.connect() as conn:
            return await queries.browse.pipeline_coverage(conn, pipeline_id)

    async def project_jobs(self, project_id: int, statuses: Sequence[str], window: Window) -> tuple[list[RowMapping], bool]:
        """A page of the project's jobs, newest first, and whether more follow (GitLab does not count them)."""
        rows = await self._reads.run(lambda conn: queries.browse.jobs_of_project(
            conn, project_id, statuses, window.limit, window.offset
        ))
        return rows[: window.limit], len(rows) > window.limit

    async def pipeline_jobs(
        self, pipeline_id: int, statuses: Sequence[str], include_retried: bool, window: Window, *, bridges: bool = False
    ) -> tuple[list[RowMapping], int]:
        return await self._reads.run(lambda conn: queries.browse.jobs_of_pipeline(
            conn, pipeline_id, statuses, include_retried, window.limit, window.offset, bridges=bridges
        ))

    async def runner_jobs(self, runner_id: int, statuses: Sequence[str], sort: str, window: Window) -> tuple[list[RowMapping], int]:
        return await self._reads.run(lambda conn: queries.browse.jobs_of_runner(
            conn, runner_id, statuses, sort, window.limit, window.offset
        ))

    async def job(self, project_id: int, job_id: int) -> RowMapping:
        """A job of the project with its pipeline and runner; GitLab's 404 otherwise."""
        async with self._engine.connect() as conn:
            row = await queries.browse.job(conn, job_id)
        if row is None or row["project_id"] != project_id:
            raise NotFound("404 Not found")
        return row

    async def job_of_token(self, token: str) -> RowMapping:
        """The running job a job token belongs to; 401 for any other token (a finished job's too)."""
        async with self._engine.connect() as conn:  # the primary: a job just handed out is there
            row = await queries.browse.running_job_of_token(conn, auth.digest(token))
        if row is None:
            raise Unauthorized("401 Unauthorized")
        return row

    async def artifacts(self, job_ids: Sequence[int]) -> dict[int, list[RowMapping]]:
        async with self._engine.connect() as conn:
            return await queries.browse.artifacts_of(conn, job_ids)

    async def last_successful_job(self, project_id: int, ref: str, name: str) -> RowMapping:
        """The job ``name`` of the ref's newest successful pipeline (GitLab's artifacts by ref)."""
        async with self._engine.connect() as conn:
            row = await queries.browse.last_successful_job(conn, project_id, ref, name)
        if row is None:
            raise NotFound("404 Not Found")
        return row
