"""Resource groups: one row per (project, key), the lock that hands the group from job to job."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from conveyor.server.db.tables import jobs, resource_groups

HOLDING = ("pending", "running", "canceling")  # a holder in one of these still has the group


async def lock(conn: AsyncConnection, project_id: int, key: str, *, wait: bool) -> RowMapping | None:
    """Create the group if new, then row-lock it; None when ``wait`` is False and another
    transaction holds the lock (it is handing the group over right now)."""
    await conn.execute(
        pg_insert(resource_groups).values(project_id=project_id, key=key).on_conflict_do_nothing()
    )
    stmt = sa.select(resource_groups).where(resource_groups.c.project_id == project_id, resource_groups.c.key == key)
    stmt = stmt.with_for_update() if wait else stmt.with_for_update(skip_locked=True)
    return (await conn.execute(stmt)).mappings().first()


async def busy(conn: AsyncConnection, group: RowMapping) -> bool:
    """Whether the group's holder (if any) still has it: it is pending, running or canceling."""
    if group["holder_job_id"] is None:
        return False
    stmt = sa.select(jobs.c.status).where(jobs.c.id == group["holder_job_id"])
    return (await conn.execute(stmt)).scalar() in HOLDING


async def oldest_waiting(conn: AsyncConnection, project_id: int, key: str) -> RowMapping | None:
    """The next job to get the group (GitLab's default process mode hands it out oldest first)."""
    stmt = (
        sa.select(jobs.c.id, jobs.c.pipeline_id)
        .where(jobs.c.project_id == project_id, jobs.c.resource_group == key, jobs.c.status == "waiting_for_resource")
        .order_by(jobs.c.id)
        .limit(1)
    )
    return (await conn.execute(stmt)).mappings().first()


async def set_holder(conn: AsyncConnection, project_id: int, key: str, job_id: int) -> None:
    stmt = (
        resource_groups.update()
        .where(resource_groups.c.project_id == project_id, resource_groups.c.key == key)
        .values(holder_job_id=job_id)
    )
    await conn.execute(stmt)


async def with_waiting_jobs(conn: AsyncConnection, limit: int = 100) -> list[tuple[int, str]]:
    """(project_id, key) of the groups someone waits for (ix_jobs_waiting_for_resource)."""
    stmt = (
        sa.select(jobs.c.project_id, jobs.c.resource_group)
        .where(jobs.c.status == "waiting_for_resource")
        .group_by(jobs.c.project_id, jobs.c.resource_group)
        .limit(limit)
    )
    return [(row.project_id, row.resource_group) for row in await conn.execute(stmt)]


async def holder(conn: AsyncConnection, project_id: int, key: str) -> int | None:
    stmt = sa.select(resource_groups.c.holder_job_id).where(
        resource_groups.c.project_id == project_id, resource_groups.c.key == key
    )
    return (await conn.execute(stmt)).scalar()
