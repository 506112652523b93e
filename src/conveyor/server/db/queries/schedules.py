"""Pipeline schedules and their variables (values arrive and leave as ciphertext)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from conveyor.server.db.queries import paging
from conveyor.server.db.tables import pipeline_schedule_variables, pipeline_schedules, pipelines


async def insert(conn: AsyncConnection, project_id: int, values: dict[str, Any]) -> RowMapping:
    stmt = pipeline_schedules.insert().values(project_id=project_id, **values).returning(*pipeline_schedules.c)
    return (await conn.execute(stmt)).mappings().one()


async def list_for(
    conn: AsyncConnection, project_id: int, active: bool | None, limit: int, offset: int
) -> tuple[list[RowMapping], int]:
    stmt = sa.select(pipeline_schedules).where(pipeline_schedules.c.project_id == project_id)
    if active is not None:
        stmt = stmt.where(pipeline_schedules.c.active == active)
    return await paging.page(conn, stmt.order_by(pipeline_schedules.c.id), limit, offset)


async def get(conn: AsyncConnection, project_id: int, schedule_id: int) -> RowMapping | None:
    stmt = sa.select(pipeline_schedules).where(
        pipeline_schedules.c.project_id == project_id, pipeline_schedules.c.id == schedule_id
    )
    return (await conn.execute(stmt)).mappings().first()


async def update(conn: AsyncConnection, schedule_id: int, values: dict[str, Any]) -> RowMapping:
    stmt = (
        pipeline_schedules.update()
        .where(pipeline_schedules.c.id == schedule_id)
        .values(**values, updated_at=sa.func.now())
        .returning(*pipeline_schedules.c)
    )
    return (await conn.execute(stmt)).mappings().one()


async def delete(conn: AsyncConnection, schedule_id: int) -> None:
    await conn.execute(pipeline_schedules.delete().where(pipeline_schedules.c.id == schedule_id))


async def claim_due(conn: AsyncConnection, limit: int) -> list[RowMapping]:
    """Active schedules whose next run is due, locked (SKIP LOCKED: another process's are not
    waited for). The caller moves each one's ``next_run_at`` on in the same transaction."""
    stmt = (
        sa.select(pipeline_schedules)
        .where(pipeline_schedules.c.active, pipeline_schedules.c.next_run_at <= sa.func.now())
        .order_by(pipeline_schedules.c.next_run_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await conn.execute(stmt)).mappings())


async def set_next_run(conn: AsyncConnection, schedule_id: int, next_run_at: datetime) -> None:
    await conn.execute(
        pipeline_schedules.update().where(pipeline_schedules.c.id == schedule_id).values(next_run_at=next_run_at)
    )


async def variables(conn: AsyncConnection, schedule_id: int) -> list[RowMapping]:
    stmt = (
        sa.select(pipeline_schedule_variables)
        .where(pipeline_schedule_variables.c.schedule_id == schedule_id)
        .order_by(pipeline_schedule_variables.c.key)
    )
    return list((await conn.execute(stmt)).mappings())


async def put_variable(conn: AsyncConnection, schedule_id: int, key: str, values: dict[str, Any], *, create: bool) -> RowMapping | None:
    """Create (None when the key exists) or update (None when it does not) a schedule variable."""
    if create:
        stmt = (
            pg_insert(pipeline_schedule_variables)
            .values(schedule_id=schedule_id, key=key, **values)
            .on_conflict_do_nothing()
            .returning(*pipeline_schedule_variables.c)
        )
    else:
        stmt = (
            pipeline_schedule_variables.update()
            .where(pipeline_schedule_variables.c.schedule_id == schedule_id, pipeline_schedule_variables.c.key == key)
            .values(**values)
            .returning(*pipeline_schedule_variables.c)
        )
    return (await conn.execute(stmt)).mappings().first()


async def delete_variable(conn: AsyncConnection, schedule_id: int, key: str) -> RowMapping | None:
    stmt = (
        pipeline_schedule_variables.delete()
        .where(pipeline_schedule_variables.c.schedule_id == schedule_id, pipeline_schedule_variables.c.key == key)
        .returning(*pipeline_schedule_variables.c)
    )
    return (await conn.execute(stmt)).mappings().first()


def _of_schedule(schedule_id: int) -> sa.Select:
    return sa.select(pipelines).where(pipelines.c.schedule_id == schedule_id).order_by(pipelines.c.id)


async def pipelines_of(conn: AsyncConnection, schedule_id: int) -> list[RowMapping]:
    return list((await conn.execute(_of_schedule(schedule_id))).mappings())


async def pipelines_page(conn: AsyncConnection, schedule_id: int, limit: int, offset: int) -> tuple[list[RowMapping], int]:
    return await paging.page(conn, _of_schedule(schedule_id), limit, offset)
