"""Admin (personal access) tokens, stored as SHA-256 hashes only."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from conveyor.server.db.tables import tokens


async def insert(conn: AsyncConnection, name: str, token_hash: str) -> bool:
    """Store a token hash; False if it was already there."""
    stmt = (
        sa.dialects.postgresql.insert(tokens)
        .values(name=name, token_hash=token_hash)
        .on_conflict_do_nothing(index_elements=["token_hash"])
        .returning(tokens.c.id)
    )
    return (await conn.execute(stmt)).first() is not None


async def count(conn: AsyncConnection) -> int:
    return (await conn.execute(sa.select(sa.func.count()).select_from(tokens))).scalar_one()


async def exists(conn: AsyncConnection, token_hash: str) -> bool:
    stmt = sa.select(tokens.c.id).where(tokens.c.token_hash == token_hash)
    return (await conn.execute(stmt)).first() is not None
