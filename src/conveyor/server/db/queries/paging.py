"""One page of any listing statement (LIMIT/OFFSET) and its count: GitLab's offset pagination."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection


async def rows(conn: AsyncConnection, stmt: sa.Select, limit: int, offset: int) -> list[RowMapping]:
    return list((await conn.execute(stmt.limit(limit).offset(offset))).mappings())


async def count(conn: AsyncConnection, stmt: sa.Select) -> int:
    """How many rows ``stmt`` (its ORDER BY dropped) selects."""
    return (await conn.execute(sa.select(sa.func.count()).select_from(stmt.order_by(None).subquery()))).scalar_one()


async def page(conn: AsyncConnection, stmt: sa.Select, limit: int, offset: int) -> tuple[list[RowMapping], int]:
    """``limit`` rows of the ordered ``stmt`` from ``offset``, and how many it selects in all."""
    return await rows(conn, stmt, limit, offset), await count(conn, stmt)
