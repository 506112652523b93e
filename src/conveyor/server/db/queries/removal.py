"""Deleting what people ask to delete: a pipeline with its jobs, a job's log and artifacts
(GitLab's erase). Each returns the object-store keys the caller removes after the commit, so a
failed removal leaves an orphan object, never a row pointing at nothing."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from conveyor.server.db.tables import artifacts, jobs, pipelines


@dataclass(frozen=True)
class Removed:
    job_ids: list[int]
    object_keys: list[str]  # the artifacts' objects


async def delete_pipeline(conn: AsyncConnection, project_id: int, pipeline_id: int) -> Removed | None:
    """Delete the pipeline (its jobs, artifacts and log rows cascade); None when not the project's.

    Locks the pipeline first, as every transition does, so a job update waits and then finds
    nothing."""
    stmt = sa.select(pipelines.c.id).where(pipelines.c.id == pipeline_id, pipelines.c.project_id == project_id)
    if (await conn.execute(stmt.with_for_update())).first() is None:
        return None
    job_ids = list((await conn.execute(sa.select(jobs.c.id).where(jobs.c.pipeline_id == pipeline_id))).scalars())
    keys = (await conn.execute(sa.select(artifacts.c.object_key).where(artifacts.c.job_id.in_(job_ids)))).scalars()
    removed = Removed(job_ids, list(keys))
    await conn.execute(pipelines.delete().where(pipelines.c.id == pipeline_id))
    return removed


async def erase_job(conn: AsyncConnection, job_id: int) -> list[str]:
    """Forget the job's artifacts and log (GitLab's erase): the artifacts' object keys."""
    keys = await delete_artifacts(conn, job_id)
    await conn.execute(
        jobs.update()
        .where(jobs.c.id == job_id)
        .values(erased_at=sa.func.now(), trace_size=0, trace_crc32=0, trace_archived=False, trace_checksum=None)
    )
    return keys


async def pipeline_ids(conn: AsyncConnection, project_id: int) -> list[int]:
    stmt = sa.select(pipelines.c.id).where(pipelines.c.project_id == project_id).order_by(pipelines.c.id)
    return list((await conn.execute(stmt)).scalars())


async def delete_artifacts(conn: AsyncConnection, job_id: int) -> list[str]:
    """Forget the job's artifacts: their object keys."""
    deleted = artifacts.delete().where(artifacts.c.job_id == job_id).returning(artifacts.c.object_key)
    return list((await conn.execute(deleted)).scalars())
