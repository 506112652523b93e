"""Pipeline trigger tokens: stored as SHA-256 digests, looked up by digest."""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from conveyor.server.db.queries import paging
from conveyor.server.db.tables import jobs, pipeline_triggers


async def insert(conn: AsyncConnection, project_id: int, token_hash: str, head: str, values: dict[str, Any]) -> RowMapping:
    stmt = (
        pipeline_triggers.insert()
        .values(project_id=project_id, token_hash=token_hash, token_head=head, **values)
        .returning(*pipeline_triggers.c)
    )
    return (await conn.execute(stmt)).mappings().one()


async def list_for(conn: AsyncConnection, project_id: int, limit: int, offset: int) -> tuple[list[RowMapping], int]:
    stmt = sa.select(pipeline_triggers).where(pipeline_triggers.c.project_id == project_id).order_by(pipeline_triggers.c.id)
    return await paging.page(conn, stmt, limit, offset)


async def get(conn: AsyncConnection, project_id: int, trigger_id: int) -> RowMapping | None:
    stmt = sa.select(pipeline_triggers).where(
        pipeline_triggers.c.project_id == project_id, pipeline_triggers.c.id == trigger_id
    )
    return (await conn.execute(stmt)).mappings().first()


async def update(conn: AsyncConnection, trigger_id: int, values: dict[str, Any]) -> RowMapping | None:
    stmt = (
        pipeline_triggers.update()
        .where(pipeline_triggers.c.id == trigger_id)
        .values(**values, updated_at=sa.func.now())
        .returning(*pipeline_triggers.c)
    )
    return (await conn.execute(stmt)).mappings().first()


async def delete(conn: AsyncConnection, trigger_id: int) -> None:
    await conn.execute(pipeline_triggers.delete().where(pipeline_triggers.c.id == trigger_id))


async def use(conn: AsyncConnection, project_id: int, token_hash: str, today: date) -> RowMapping | None:
    """The project's unexpired trigger with this digest, marked used now; None if there is none."""
    stmt = (
        pipeline_triggers.update()
        .where(
            pipeline_triggers.c.project_id == project_id,
            pipeline_triggers.c.token_hash == token_hash,
            sa.or_(pipeline_triggers.c.expires_at.is_(None), pipeline_triggers.c.expires_at >= today),
        )
        .values(last_used=sa.func.now())
        .returning(*pipeline_triggers.c)
    )
    return (await conn.execute(stmt)).mappings().first()


async def running_job(conn: AsyncConnection, token_hash: str) -> RowMapping | None:
    """The running job whose ``CI_JOB_TOKEN`` has this digest (the trigger endpoint accepts it)."""
    stmt = sa.select(jobs.c.id, jobs.c.project_id, jobs.c.pipeline_id).where(
        jobs.c.token_hash == token_hash, jobs.c.status == "running"
    )
    return (await conn.execute(stmt)).mappings().first()
