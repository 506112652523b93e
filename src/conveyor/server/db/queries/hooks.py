"""Project hooks (webhooks out) and their deliveries. Deliveries are inserted by the database
triggers of migration 0009 when a pipeline's or job's status changes (``DELIVERY_TRIGGERS``),
inside that transition's transaction, and sent later by any server process."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from conveyor.server.db.queries import paging
from conveyor.server.db.tables import hook_deliveries, project_hooks

LEASE_SECONDS = 60  # a delivery being sent is invisible to other processes this long
FAILURES_BEFORE_DISABLING = 4  # GitLab's


async def insert(conn: AsyncConnection, project_id: int, values: dict[str, Any]) -> RowMapping:
    stmt = project_hooks.insert().values(project_id=project_id, **values).returning(*project_hooks.c)
    return (await conn.execute(stmt)).mappings().one()


async def list_for(conn: AsyncConnection, project_id: int, limit: int, offset: int) -> tuple[list[RowMapping], int]:
    stmt = sa.select(project_hooks).where(project_hooks.c.project_id == project_id).order_by(project_hooks.c.id)
    return await paging.page(conn, stmt, limit, offset)


async def get(conn: AsyncConnection, project_id: int, hook_id: int) -> RowMapping | None:
    stmt = sa.select(project_hooks).where(project_hooks.c.project_id == project_id, project_hooks.c.id == hook_id)
    return (await conn.execute(stmt)).mappings().first()


async def update(conn: AsyncConnection, hook_id: int, values: dict[str, Any]) -> RowMapping:
    stmt = project_hooks.update().where(project_hooks.c.id == hook_id).values(**values).returning(*project_hooks.c)
    return (await conn.execute(stmt)).mappings().one()


async def delete(conn: AsyncConnection, hook_id: int) -> None:
    await conn.execute(project_hooks.delete().where(project_hooks.c.id == hook_id))


async def enqueue(conn: AsyncConnection, hook_id: int, event: str, event_uuid: str, payload: dict[str, Any]) -> None:
    await conn.execute(
        hook_deliveries.insert().values(
            hook_id=hook_id, event=event, event_uuid=event_uuid, payload=payload, next_attempt_at=sa.func.now()
        )
    )


async def claim_due(conn: AsyncConnection, limit: int) -> list[RowMapping]:
    """Due deliveries, oldest first, each leased to this process (SKIP LOCKED, then pushed
    ``LEASE_SECONDS`` on and counted as an attempt before commit), with their hook's row."""
    due = (
        sa.select(hook_deliveries.c.id)
        .join(project_hooks, project_hooks.c.id == hook_deliveries.c.hook_id)
        .where(
            hook_deliveries.c.next_attempt_at <= sa.func.now(),
            sa.or_(project_hooks.c.disabled_until.is_(None), project_hooks.c.disabled_until <= sa.func.now()),
        )
        .order_by(hook_deliveries.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=hook_deliveries)
        .cte("due")
    )
    leased = (
        hook_deliveries.update()
        .where(hook_deliveries.c.id == due.c.id)
        .values(
            next_attempt_at=sa.func.now() + sa.text(f"interval '{LEASE_SECONDS} seconds'"),
            attempts=hook_deliveries.c.attempts + 1,
        )
        .returning(*hook_deliveries.c)
        .cte("leased")
    )
    stmt = (
        sa.select(leased, project_hooks.c.url, project_hooks.c.token, project_hooks.c.project_id,
                  project_hooks.c.uuid.label("hook_uuid"))
        .join(project_hooks, project_hooks.c.id == leased.c.hook_id)
        .order_by(leased.c.id)
    )
    return list((await conn.execute(stmt)).mappings())


async def finish(conn: AsyncConnection, delivery_id: int, values: dict[str, Any]) -> None:
    """Record an attempt: ``next_attempt_at`` None when delivered or given up."""
    await conn.execute(hook_deliveries.update().where(hook_deliveries.c.id == delivery_id).values(**values))


async def record_outcome(conn: AsyncConnection, hook_id: int, ok: bool) -> None:
    """Count a failed attempt (a 4th in a row disables the hook for a minute, doubling after
    each further one, at most a day), or reset the count after a success."""
    failures = project_hooks.c.recent_failures + 1
    pause = sa.func.least(
        sa.text("interval '1 minute'") * sa.func.power(2, failures - FAILURES_BEFORE_DISABLING),
        sa.text("interval '24 hours'"),
    )
    values: dict[str, Any] = {"recent_failures": 0, "disabled_until": None} if ok else {
        "recent_failures": failures,
        "disabled_until": sa.case(
            (failures >= FAILURES_BEFORE_DISABLING, sa.func.now() + pause), else_=project_hooks.c.disabled_until
        ),
    }
    await conn.execute(project_hooks.update().where(project_hooks.c.id == hook_id).values(**values))


async def deliveries(conn: AsyncConnection, hook_id: int, limit: int = 50) -> list[RowMapping]:
    stmt = (
        sa.select(hook_deliveries)
        .where(hook_deliveries.c.hook_id == hook_id)
        .order_by(hook_deliveries.c.id.desc())
        .limit(limit)
    )
    return list((await conn.execute(stmt)).mappings())
