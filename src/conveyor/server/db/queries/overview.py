"""Read-only queries for people's pages: pipeline lists by keyset, latest pipelines, runners and
what they run, a job's artifacts. Nothing here writes."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from conveyor.server.db.tables import artifacts, jobs, pipelines, runners


async def pipelines_page(
    conn: AsyncConnection,
    project_id: int,
    *,
    before_id: int | None = None,
    ref: str | None = None,
    status: str | None = None,
    limit: int = 50,
) -> list[RowMapping]:
    """Newest first, ``limit`` + 1 rows (the extra one says a next page exists)."""
    stmt = sa.select(pipelines).where(pipelines.c.project_id == project_id)
    if before_id is not None:
        stmt = stmt.where(pipelines.c.id < before_id)
    if ref:
        stmt = stmt.where(pipelines.c.ref == ref)
    if status:
        stmt = stmt.where(pipelines.c.status == status)
    stmt = stmt.order_by(pipelines.c.id.desc()).limit(limit + 1)
    return list((await conn.execute(stmt)).mappings())


async def latest_pipelines(conn: AsyncConnection) -> dict[int, RowMapping]:
    """Each project's newest pipeline, by project id."""
    stmt = (
        sa.select(pipelines)
        .ext(distinct_on(pipelines.c.project_id))  # ``.distinct(expr)`` is deprecated in SQLAlchemy 2.1
        .order_by(pipelines.c.project_id, pipelines.c.id.desc())
    )
    return {row["project_id"]: row for row in (await conn.execute(stmt)).mappings()}


async def runners_with_jobs(conn: AsyncConnection) -> list[tuple[RowMapping, list[RowMapping]]]:
    """Every runner with the jobs it runs now."""
    listed = list((await conn.execute(sa.select(runners).order_by(runners.c.id))).mappings())
    active = sa.select(jobs.c.id, jobs.c.name, jobs.c.project_id, jobs.c.runner_id, jobs.c.status).where(
        jobs.c.status.in_(("running", "canceling")), jobs.c.runner_id.is_not(None)
    )
    by_runner: dict[int, list[RowMapping]] = {}
    for job in (await conn.execute(active)).mappings():
        by_runner.setdefault(job["runner_id"], []).append(job)
    return [(runner, by_runner.get(runner["id"], [])) for runner in listed]


async def job_artifacts(conn: AsyncConnection, job_id: int) -> list[RowMapping]:
    """A job's artifacts that have not expired."""
    live = sa.or_(artifacts.c.expire_at.is_(None), artifacts.c.expire_at > sa.func.now())
    stmt = sa.select(artifacts).where(artifacts.c.job_id == job_id, live).order_by(artifacts.c.id)
    return list((await conn.execute(stmt)).mappings())
