"""CI/CD variables: instance-wide (``project_id`` None) and per project. Values arrive and leave
as ciphertext; encryption is the caller's (server/variables/crypto.py)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from conveyor.server.db.queries import paging
from conveyor.server.db.tables import (
    instance_variables,
    pipeline_schedule_variables,
    project_hooks,
    project_sources,
    project_variables,
)


def _table(project_id: int | None) -> sa.Table:
    return instance_variables if project_id is None else project_variables


def _scoped(project_id: int | None, key: str | None = None, scope: str | None = None) -> list[Any]:
    table = _table(project_id)
    where: list[Any] = [] if project_id is None else [table.c.project_id == project_id]
    if key is not None:
        where.append(table.c.key == key)
    if scope is not None and project_id is not None:
        where.append(table.c.environment_scope == scope)
    return where


async def list_for(conn: AsyncConnection, project_id: int | None, limit: int, offset: int) -> tuple[list[RowMapping], int]:
    """One page of the project's (or the instance's) variables and how many there are."""
    table = _table(project_id)
    return await paging.page(conn, sa.select(table).where(*_scoped(project_id)).order_by(table.c.id), limit, offset)


async def find(conn: AsyncConnection, project_id: int | None, key: str, scope: str | None) -> list[RowMapping]:
    """Every variable named ``key`` (in ``scope`` when given): several means ambiguous."""
    table = _table(project_id)
    stmt = sa.select(table).where(*_scoped(project_id, key, scope)).order_by(table.c.id)
    return list((await conn.execute(stmt)).mappings())


async def insert(conn: AsyncConnection, project_id: int | None, values: dict[str, Any]) -> RowMapping | None:
    """The new variable, or None when its key (and scope) is taken."""
    table = _table(project_id)
    row = dict(values) if project_id is None else {**values, "project_id": project_id}
    if project_id is None:
        row.pop("hidden", None)
        row.pop("environment_scope", None)
    stmt = pg_insert(table).values(**row).on_conflict_do_nothing().returning(*table.c)
    return (await conn.execute(stmt)).mappings().first()


async def update(conn: AsyncConnection, project_id: int | None, variable_id: int, values: dict[str, Any]) -> RowMapping | None:
    table = _table(project_id)
    if project_id is None:
        values = {k: v for k, v in values.items() if k not in ("hidden", "environment_scope")}
    stmt = table.update().where(table.c.id == variable_id).values(**values).returning(*table.c)
    try:
        return (await conn.execute(stmt)).mappings().first()
    except sa.exc.IntegrityError:  # moved onto a taken key or scope
        return None


async def delete(conn: AsyncConnection, project_id: int | None, variable_id: int) -> None:
    table = _table(project_id)
    await conn.execute(table.delete().where(table.c.id == variable_id))


async def for_job(conn: AsyncConnection, project_id: int) -> tuple[list[RowMapping], list[RowMapping]]:
    """The instance variables and the project's, in one round trip each, oldest first."""
    instance = list((await conn.execute(_INSTANCE)).mappings())
    project = list((await conn.execute(_OF_PROJECT, {"project_id": project_id})).mappings())
    return instance, project


# built once: every pipeline creation reads both (issue 24)
_INSTANCE = sa.select(instance_variables).order_by(instance_variables.c.id)
_OF_PROJECT = sa.select(project_variables).where(project_variables.c.project_id == sa.bindparam("project_id")).order_by(project_variables.c.id)


async def any_stored(conn: AsyncConnection) -> bool:
    """Whether any encrypted secret exists (start-up refuses to run without the key then)."""
    checks = [
        sa.select(instance_variables.c.id).limit(1),
        sa.select(project_variables.c.id).limit(1),
        sa.select(pipeline_schedule_variables.c.schedule_id).limit(1),
        sa.select(project_hooks.c.id).where(project_hooks.c.token.is_not(None)).limit(1),
        sa.select(project_sources.c.project_id).where(project_sources.c.webhook_secret.is_not(None)).limit(1),
    ]
    for check in checks:
        if (await conn.execute(check)).first() is not None:
            return True
    return False
