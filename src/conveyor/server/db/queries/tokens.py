"""Personal access tokens (``glpat-``), stored as SHA-256 hashes only, each owned by a user."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from conveyor.server.db.tables import tokens, users


async def insert(
    conn: AsyncConnection, name: str, token_hash: str, *, user_id: int = 1, scopes: str = "api",
    expires_at: date | None = None, description: str | None = None,
) -> RowMapping | None:
    """Store a token hash; None if it was already there."""
    stmt = (
        sa.dialects.postgresql.insert(tokens)
        .values(name=name, token_hash=token_hash, user_id=user_id, scopes=scopes, expires_at=expires_at, description=description)
        .on_conflict_do_nothing(index_elements=["token_hash"])
        .returning(*tokens.c)
    )
    return (await conn.execute(stmt)).mappings().first()


async def count(conn: AsyncConnection) -> int:
    return (await conn.execute(sa.select(sa.func.count()).select_from(tokens))).scalar_one()


async def lookup(conn: AsyncConnection, token_hash: str) -> RowMapping | None:
    """The token and its owner (``username``, ``name``, ``email``, ``admin``, ``state``), whatever their state."""
    stmt = (
        sa.select(tokens, users.c.username, users.c.name.label("user_name"), users.c.email, users.c.admin, users.c.state)
        .join(users, users.c.id == tokens.c.user_id)
        .where(tokens.c.token_hash == token_hash)
    )
    return (await conn.execute(stmt)).mappings().first()


async def get(conn: AsyncConnection, token_id: int) -> RowMapping | None:
    return (await conn.execute(sa.select(tokens).where(tokens.c.id == token_id))).mappings().first()


async def of_user(conn: AsyncConnection, user_id: int | None, revoked: bool | None = None) -> list[RowMapping]:
    stmt = sa.select(tokens).order_by(tokens.c.id)
    if user_id is not None:
        stmt = stmt.where(tokens.c.user_id == user_id)
    if revoked is not None:
        stmt = stmt.where(tokens.c.revoked == revoked)
    return list((await conn.execute(stmt)).mappings())


async def revoke(conn: AsyncConnection, token_id: int) -> RowMapping | None:
    """Revoke an active token; None when it was already revoked or does not exist."""
    stmt = sa.update(tokens).where(tokens.c.id == token_id, tokens.c.revoked.is_(False)).values(revoked=True)
    return (await conn.execute(stmt.returning(*tokens.c))).mappings().first()


async def touch(conn: AsyncConnection, token_id: int) -> None:
    await conn.execute(sa.update(tokens).where(tokens.c.id == token_id).values(last_used_at=sa.func.now()))
