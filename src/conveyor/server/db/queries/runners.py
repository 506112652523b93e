"""Runners: authentication tokens (hashed), contact time, reported version and features."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from conveyor.server.db.tables import runners


async def insert(conn: AsyncConnection, token_hash: str, description: str) -> int:
    stmt = runners.insert().values(token_hash=token_hash, description=description).returning(runners.c.id)
    return (await conn.execute(stmt)).scalar_one()


async def by_token(conn: AsyncConnection, token_hash: str) -> RowMapping | None:
    stmt = sa.select(runners).where(runners.c.token_hash == token_hash)
    return (await conn.execute(stmt)).mappings().first()


async def touch(conn: AsyncConnection, runner_id: int, system_id: str | None, info: dict[str, Any] | None) -> None:
    values: dict[str, Any] = {"contacted_at": sa.func.now()}
    if system_id:
        values["system_id"] = system_id
    if info:
        values.update(version=info.get("version"), executor=info.get("executor"), features=info.get("features"))
    await conn.execute(runners.update().where(runners.c.id == runner_id).values(**values))
