"""Projects: a name and a git source (URL or local path)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from conveyor.server.db.tables import projects


async def insert(conn: AsyncConnection, name: str, source: str, default_branch: str | None) -> RowMapping | None:
    """The new project, or None when the name is taken."""
    stmt = (
        pg_insert(projects)
        .values(name=name, source=source, default_branch=default_branch)
        .on_conflict_do_nothing(index_elements=["name"])
        .returning(*projects.c)
    )
    return (await conn.execute(stmt)).mappings().first()


async def get(conn: AsyncConnection, id_or_name: int | str) -> RowMapping | None:
    column = projects.c.id if isinstance(id_or_name, int) else projects.c.name
    stmt = sa.select(projects).where(column == id_or_name)
    return (await conn.execute(stmt)).mappings().first()


async def list_all(conn: AsyncConnection) -> list[RowMapping]:
    return list((await conn.execute(sa.select(projects).order_by(projects.c.id))).mappings())


async def update(conn: AsyncConnection, project_id: int, values: dict[str, str]) -> RowMapping | None:
    """The changed project, or None when the new name is taken (or the project is gone)."""
    if "name" in values:
        taken = sa.select(projects.c.id).where(projects.c.name == values["name"], projects.c.id != project_id)
        if (await conn.execute(taken)).first() is not None:
            return None
    stmt = projects.update().where(projects.c.id == project_id).values(**values).returning(*projects.c)
    return (await conn.execute(stmt)).mappings().first()


async def delete(conn: AsyncConnection, project_id: int) -> None:
    """The project and, by cascade, its pipelines, jobs, variables, triggers, schedules and hooks."""
    await conn.execute(projects.delete().where(projects.c.id == project_id))
