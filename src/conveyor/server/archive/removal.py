"""Deleting a pipeline with everything it stored, and erasing a job's log and artifacts.

The rows go first, in one short transaction (the pipeline locked before its jobs, as every
transition); the bytes after the commit: live log chunks (Redis, segment files, chunk objects),
the archived log object and each artifact's object. A failure past the commit leaves an orphan
object and is logged, never a row that points at missing bytes.
"""

from __future__ import annotations

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from conveyor.protocol import JobStatus
from conveyor.server.db import queries
from conveyor.server.errors import Forbidden, NotFound
from conveyor.server.storage import ObjectStore
from conveyor.server.trace import TraceStore
from conveyor.server.trace.reader import archive_key

log = structlog.get_logger(__name__)


class Removal:
    def __init__(self, engine: AsyncEngine, objects: ObjectStore, traces: TraceStore) -> None:
        self._engine = engine
        self._objects = objects
        self._traces = traces

    async def delete_pipeline(self, project_id: int, pipeline_id: int) -> None:
        """``DELETE /projects/:id/pipelines/:pipeline_id``: 404 when it is not the project's."""
        async with self._engine.begin() as conn:
            removed = await queries.removal.delete_pipeline(conn, project_id, pipeline_id)
        if removed is None:
            raise NotFound("404 Not found")
        for job_id in removed.job_ids:
            await self._drop_log(job_id)
        for key in removed.object_keys:
            await self._drop(key)

    async def delete_project(self, project_id: int) -> None:
        """The project's pipelines one by one (each with its bytes), then the project and what
        else cascades from it (variables, triggers, schedules, hooks)."""
        async with self._engine.connect() as conn:
            found = await queries.removal.pipeline_ids(conn, project_id)
        for pipeline_id in found:
            try:
                await self.delete_pipeline(project_id, pipeline_id)
            except NotFound:  # deleted meanwhile
                continue
        async with self._engine.begin() as conn:
            await queries.projects.delete(conn, project_id)

    async def erase_job(self, job_id: int) -> None:
        """``POST .../jobs/:job_id/erase``: only a finished job (GitLab's 403 otherwise)."""
        async with self._engine.begin() as conn:
            job = await queries.jobs.lock(conn, job_id)
            if job is None:
                raise NotFound("404 Not found")
            if not JobStatus(job["status"]).is_complete:
                raise Forbidden("403 Forbidden - Job is not erasable!")
            keys = await queries.removal.erase_job(conn, job_id)
        await self._drop_log(job_id)
        for key in keys:
            await self._drop(key)

    async def delete_artifacts(self, job_id: int) -> None:
        """``DELETE .../jobs/:job_id/artifacts``: the rows, then the objects."""
        async with self._engine.begin() as conn:
            keys = await queries.removal.delete_artifacts(conn, job_id)
        for key in keys:
            await self._drop(key)

    async def _drop_log(self, job_id: int) -> None:
        try:
            await self._traces.delete(job_id)
        except Exception:  # the rows are gone: what is left is unreachable, not wrong
            log.warning("job_log_removal_failed", job_id=job_id, exc_info=True)
        await self._drop(archive_key(job_id))

    async def _drop(self, key: str) -> None:
        try:
            await self._objects.delete(key)
        except FileNotFoundError:
            pass
        except Exception:
            log.warning("object_removal_failed", key=key, exc_info=True)
