"""How projects' pipelines start besides the API: push-webhook secrets, polling state, and the
push events seen (one row per delivery and per ref+sha, for deduplication)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from conveyor.server.db.tables import project_sources, push_events


async def get(conn: AsyncConnection, project_id: int) -> RowMapping | None:
    stmt = sa.select(project_sources).where(project_sources.c.project_id == project_id)
    return (await conn.execute(stmt)).mappings().first()


async def configure(conn: AsyncConnection, project_id: int, values: dict[str, Any]) -> RowMapping:
    """Set the webhook secret and/or polling interval (a new interval polls at once)."""
    if "poll_interval" in values:
        values = {**values, "next_poll_at": sa.func.now()}
    stmt = (
        pg_insert(project_sources)
        .values(project_id=project_id, **values)
        .on_conflict_do_update(index_elements=["project_id"], set_=values)
        .returning(*project_sources.c)
    )
    return (await conn.execute(stmt)).mappings().one()


async def claim_due_polls(conn: AsyncConnection, limit: int) -> list[RowMapping]:
    """Projects due to be polled, each taken by one process (SKIP LOCKED) and pushed one interval
    on before the transaction commits, so no other process polls it meanwhile."""
    due = (
        sa.select(project_sources.c.project_id)
        .where(project_sources.c.poll_interval > 0, project_sources.c.next_poll_at <= sa.func.now())
        .order_by(project_sources.c.next_poll_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .cte("due")
    )
    stmt = (
        project_sources.update()
        .where(project_sources.c.project_id == due.c.project_id)
        .values(next_poll_at=sa.func.now() + sa.func.make_interval(0, 0, 0, 0, 0, 0, project_sources.c.poll_interval))
        .returning(*project_sources.c)
    )
    return list((await conn.execute(stmt)).mappings())


async def set_heads(conn: AsyncConnection, project_id: int, heads: dict[str, str]) -> None:
    await conn.execute(project_sources.update().where(project_sources.c.project_id == project_id).values(heads=heads))


async def record_push(conn: AsyncConnection, project_id: int, values: dict[str, Any]) -> int | None:
    """The new push event's id, or None when this delivery or this ref+sha was seen before."""
    stmt = pg_insert(push_events).values(project_id=project_id, **values).on_conflict_do_nothing().returning(push_events.c.id)
    return (await conn.execute(stmt)).scalar_one_or_none()


async def forget_push(conn: AsyncConnection, push_id: int) -> None:
    await conn.execute(push_events.delete().where(push_events.c.id == push_id))


async def link_push(conn: AsyncConnection, push_id: int, pipeline_id: int) -> None:
    await conn.execute(push_events.update().where(push_events.c.id == push_id).values(pipeline_id=pipeline_id))


async def push_pipeline(conn: AsyncConnection, project_id: int, delivery_id: str | None, ref: str, sha: str) -> int | None:
    """The pipeline an earlier push event of this delivery or ref+sha made, if any."""
    match = sa.and_(push_events.c.ref == ref, push_events.c.sha == sha)
    if delivery_id:
        match = sa.or_(match, push_events.c.delivery_id == delivery_id)
    stmt = sa.select(push_events.c.pipeline_id).where(push_events.c.project_id == project_id, match).limit(1)
    return (await conn.execute(stmt)).scalar_one_or_none()
