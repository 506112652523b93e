"""Members: a user's access level in a project, directly or through the project's group.

A user's own namespace makes it the owner of the projects in it (GitLab's personal projects).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from conveyor.server.db.tables import group_members, namespaces, project_members, projects, users

OWNER = 50
_USER = (users.c.id, users.c.username, users.c.name, users.c.state, users.c.email)


def _current(table: sa.Table) -> sa.ColumnElement[bool]:
    return sa.or_(table.c.expires_at.is_(None), table.c.expires_at >= sa.func.current_date())


async def level(conn: AsyncConnection, project_id: int, user_id: int) -> int:
    """The user's highest access level in the project (0: none); expired memberships do not count."""
    direct = sa.select(project_members.c.access_level).where(
        project_members.c.project_id == project_id, project_members.c.user_id == user_id, _current(project_members)
    )
    inherited = (
        sa.select(group_members.c.access_level)
        .join(projects, projects.c.namespace_id == group_members.c.namespace_id)
        .where(projects.c.id == project_id, group_members.c.user_id == user_id, _current(group_members))
    )
    personal = (
        sa.select(sa.literal(OWNER))
        .select_from(projects.join(namespaces, namespaces.c.id == projects.c.namespace_id))
        .where(projects.c.id == project_id, namespaces.c.owner_id == user_id)
    )
    union = sa.union_all(direct, inherited, personal).subquery()
    found = (await conn.execute(sa.select(sa.func.max(union.c[0])))).scalar()
    return int(found or 0)


async def upsert_project(conn: AsyncConnection, project_id: int, user_id: int, access_level: int, expires_at: object, *, update: bool) -> bool:
    """Add (``update=False``: False when already a member) or change (False when not one)."""
    return await _upsert(project_members, project_members.c.project_id, conn, project_id, user_id, access_level, expires_at, update)


async def upsert_group(conn: AsyncConnection, namespace_id: int, user_id: int, access_level: int, expires_at: object, *, update: bool) -> bool:
    """``upsert_project`` for a group's members."""
    return await _upsert(group_members, group_members.c.namespace_id, conn, namespace_id, user_id, access_level, expires_at, update)


async def remove_project(conn: AsyncConnection, project_id: int, user_id: int) -> bool:
    return await _remove(project_members, project_members.c.project_id, conn, project_id, user_id)


async def remove_group(conn: AsyncConnection, namespace_id: int, user_id: int) -> bool:
    return await _remove(group_members, group_members.c.namespace_id, conn, namespace_id, user_id)


async def _upsert(
    table: sa.Table, key: sa.Column, conn: AsyncConnection, key_value: int, user_id: int, access_level: int, expires_at: object,
    update: bool,
) -> bool:
    """One membership row of ``table`` (project or group members, keyed by ``key``)."""
    values = {"access_level": access_level, "expires_at": expires_at}
    if update:
        stmt = sa.update(table).where(key == key_value, table.c.user_id == user_id).values(**values)
    else:
        stmt = pg_insert(table).values({key.name: key_value, "user_id": user_id, **values}).on_conflict_do_nothing()
    return (await conn.execute(stmt.returning(table.c.user_id))).first() is not None


async def _remove(table: sa.Table, key: sa.Column, conn: AsyncConnection, key_value: int, user_id: int) -> bool:
    stmt = sa.delete(table).where(key == key_value, table.c.user_id == user_id)
    return (await conn.execute(stmt.returning(table.c.user_id))).first() is not None


async def of_project(conn: AsyncConnection, project_id: int) -> list[RowMapping]:
    stmt = (
        sa.select(*_USER, project_members.c.access_level, project_members.c.expires_at, project_members.c.created_at)
        .join(users, users.c.id == project_members.c.user_id)
        .where(project_members.c.project_id == project_id)
        .order_by(users.c.id)
    )
    return list((await conn.execute(stmt)).mappings())


async def of_group(conn: AsyncConnection, namespace_id: int) -> list[RowMapping]:
    stmt = (
        sa.select(*_USER, group_members.c.access_level, group_members.c.expires_at, group_members.c.created_at)
        .join(users, users.c.id == group_members.c.user_id)
        .where(group_members.c.namespace_id == namespace_id)
        .order_by(users.c.id)
    )
    return list((await conn.execute(stmt)).mappings())


async def group_owner_of_namespace(conn: AsyncConnection, namespace_id: int, user_id: int) -> int:
    """The user's level in a group (its own user namespace counts as owner)."""
    stmt = sa.select(group_members.c.access_level).where(
        group_members.c.namespace_id == namespace_id, group_members.c.user_id == user_id
    )
    found = (await conn.execute(stmt)).scalar()
    if found is None:
        owner = (await conn.execute(sa.select(namespaces.c.owner_id).where(namespaces.c.id == namespace_id))).scalar()
        return OWNER if owner == user_id else 0
    return int(found)


async def project_ids(conn: AsyncConnection, user_id: int) -> set[int]:
    """Projects the user is a member of, directly, through a group, or in its own namespace."""
    direct = sa.select(project_members.c.project_id).where(project_members.c.user_id == user_id, _current(project_members))
    groups = sa.select(group_members.c.namespace_id).where(group_members.c.user_id == user_id, _current(group_members))
    own = sa.select(namespaces.c.id).where(namespaces.c.owner_id == user_id)
    stmt = sa.select(projects.c.id).where(
        sa.or_(projects.c.id.in_(direct), projects.c.namespace_id.in_(groups), projects.c.namespace_id.in_(own))
    )
    return {int(r[0]) for r in await conn.execute(stmt)}


async def personal_namespace(conn: AsyncConnection, user_id: int) -> int | None:
    return (await conn.execute(sa.select(namespaces.c.id).where(namespaces.c.owner_id == user_id))).scalar()


async def maintained(conn: AsyncConnection, user_id: int) -> tuple[set[int], set[int]]:
    """Projects the user maintains (or owns) and groups it owns, by membership (an administrator's
    flag does not count: GitLab's ``ci_owned_runners``)."""
    maintainer = 40
    direct = sa.select(project_members.c.project_id).where(
        project_members.c.user_id == user_id, project_members.c.access_level >= maintainer, _current(project_members))
    groups = sa.select(group_members.c.namespace_id).where(
        group_members.c.user_id == user_id, group_members.c.access_level >= maintainer, _current(group_members))
    owned = sa.select(group_members.c.namespace_id).where(
        group_members.c.user_id == user_id, group_members.c.access_level >= OWNER, _current(group_members))
    own = sa.select(namespaces.c.id).where(namespaces.c.owner_id == user_id)
    stmt = sa.select(projects.c.id).where(
        sa.or_(projects.c.id.in_(direct), projects.c.namespace_id.in_(groups), projects.c.namespace_id.in_(own)))
    return {int(r[0]) for r in await conn.execute(stmt)}, {int(r[0]) for r in await conn.execute(owned)}
