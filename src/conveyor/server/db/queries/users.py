"""Users: people who call the API, each with a user namespace (created in the same transaction)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from conveyor.server.db.tables import group_members, namespaces, users


async def insert(conn: AsyncConnection, username: str, name: str, email: str | None, admin: bool) -> RowMapping | None:
    """The new user, or None when the username or the email is taken."""
    stmt = pg_insert(users).values(username=username, name=name, email=email, admin=admin).on_conflict_do_nothing()
    return (await conn.execute(stmt.returning(*users.c))).mappings().first()


async def taken(conn: AsyncConnection, username: str, email: str | None) -> str | None:
    """Which of ``username`` and ``email`` another user already has (GitLab's 409 wording)."""
    if email and (await conn.execute(sa.select(users.c.id).where(sa.func.lower(users.c.email) == email.lower()))).first():
        return "Email has already been taken"
    if (await conn.execute(sa.select(users.c.id).where(sa.func.lower(users.c.username) == username.lower()))).first():
        return "Username has already been taken"
    return None


async def get(conn: AsyncConnection, user_id: int) -> RowMapping | None:
    return (await conn.execute(sa.select(users).where(users.c.id == user_id))).mappings().first()


async def by_username(conn: AsyncConnection, username: str) -> RowMapping | None:
    stmt = sa.select(users).where(sa.func.lower(users.c.username) == username.lower())
    return (await conn.execute(stmt)).mappings().first()


async def search(
    conn: AsyncConnection, *, username: str | None = None, text: str | None = None, state: str | None = None
) -> list[RowMapping]:
    stmt = sa.select(users).order_by(users.c.id)
    if username:
        stmt = stmt.where(sa.func.lower(users.c.username) == username.lower())
    if text:
        pattern = f"%{text.lower()}%"
        stmt = stmt.where(sa.or_(sa.func.lower(users.c.username).like(pattern), sa.func.lower(users.c.name).like(pattern),
                                 sa.func.lower(users.c.email) == text.lower()))  # fmt: skip
    if state:
        stmt = stmt.where(users.c.state == state)
    return list((await conn.execute(stmt)).mappings())


async def set_state(conn: AsyncConnection, user_id: int, state: str) -> RowMapping | None:
    stmt = sa.update(users).where(users.c.id == user_id).values(state=state).returning(*users.c)
    return (await conn.execute(stmt)).mappings().first()


async def update(conn: AsyncConnection, user_id: int, changes: dict[str, object]) -> RowMapping | None:
    """Change ``name``, ``email`` or ``admin``; None when no such user (or the email is taken:
    the caller checks that first)."""
    stmt = sa.update(users).where(users.c.id == user_id).values(**changes).returning(*users.c)
    return (await conn.execute(stmt)).mappings().first()


async def insert_namespace(conn: AsyncConnection, name: str, path: str, kind: str, owner_id: int | None) -> RowMapping | None:
    """A user namespace or a group; None when the path is taken."""
    stmt = pg_insert(namespaces).values(name=name, path=path, kind=kind, owner_id=owner_id).on_conflict_do_nothing()
    return (await conn.execute(stmt.returning(*namespaces.c))).mappings().first()


async def namespace(conn: AsyncConnection, id_or_path: int | str) -> RowMapping | None:
    column = namespaces.c.id if isinstance(id_or_path, int) else sa.func.lower(namespaces.c.path)
    key = id_or_path if isinstance(id_or_path, int) else id_or_path.lower()
    return (await conn.execute(sa.select(namespaces).where(column == key))).mappings().first()


async def namespaces_of(conn: AsyncConnection, kind: str | None, user_id: int | None, search: str | None) -> list[RowMapping]:
    """Namespaces (``kind`` user or group); with ``user_id``, only its own and its groups'."""
    stmt = sa.select(namespaces).order_by(namespaces.c.id)
    if kind:
        stmt = stmt.where(namespaces.c.kind == kind)
    if user_id is not None:
        groups = sa.select(group_members.c.namespace_id).where(group_members.c.user_id == user_id)
        stmt = stmt.where(sa.or_(namespaces.c.owner_id == user_id, namespaces.c.id.in_(groups)))
    if search:
        pattern = f"%{search.lower()}%"
        stmt = stmt.where(sa.or_(sa.func.lower(namespaces.c.path).like(pattern), sa.func.lower(namespaces.c.name).like(pattern)))
    return list((await conn.execute(stmt)).mappings())
