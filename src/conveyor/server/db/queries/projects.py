"""Projects: a name and a git source (URL or local path), in a namespace (``path_with_namespace``)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from conveyor.server.db.tables import namespaces, projects

# every project read carries its namespace: path_with_namespace without a second query
_NAMESPACE = (
    namespaces.c.path.label("namespace_path"),
    namespaces.c.name.label("namespace_name"),
    namespaces.c.kind.label("namespace_kind"),
    namespaces.c.owner_id.label("namespace_owner_id"),
)


def with_namespace() -> sa.Select:
    """Projects joined with their namespace (``namespace_path``, ``namespace_name``...)."""
    return sa.select(projects, *_NAMESPACE).select_from(projects.join(namespaces, namespaces.c.id == projects.c.namespace_id))


async def insert(
    conn: AsyncConnection, name: str, source: str, default_branch: str | None, namespace_id: int = 1
) -> RowMapping | None:
    """The new project, or None when the name is taken."""
    stmt = (
        pg_insert(projects)
        .values(name=name, source=source, default_branch=default_branch, namespace_id=namespace_id)
        .on_conflict_do_nothing(index_elements=["name"])
        .returning(projects.c.id)
    )
    created = (await conn.execute(stmt)).first()
    return None if created is None else await get(conn, int(created[0]))


# ``get``'s three statements, built once: every project route reads its project, and building the
# select each time (and its cache key) cost more CPU than running it (issue 24)
_BY_ID = with_namespace().where(projects.c.id == sa.bindparam("id")).limit(1)
_BY_NAME = with_namespace().where(projects.c.name == sa.bindparam("name")).limit(1)
_BY_PATH = (
    with_namespace()
    .where(sa.or_(
        projects.c.name == sa.bindparam("full"),
        sa.and_(sa.func.lower(namespaces.c.path) == sa.bindparam("path", type_=sa.String),
                sa.func.lower(projects.c.name) == sa.bindparam("name", type_=sa.String)),
    ))
    .order_by((projects.c.name == sa.bindparam("full")).desc())
    .limit(1)
)  # fmt: skip


async def get(conn: AsyncConnection, id_or_name: int | str) -> RowMapping | None:
    """By id, by name, or by ``namespace/name`` (GitLab's full path, any case)."""
    if isinstance(id_or_name, int):
        stmt, values = _BY_ID, {"id": id_or_name}
    elif "/" in id_or_name:
        path, _, name = id_or_name.rpartition("/")
        stmt, values = _BY_PATH, {"full": id_or_name, "path": path.lower(), "name": name.lower()}
    else:
        stmt, values = _BY_NAME, {"name": id_or_name}
    return (await conn.execute(stmt, values)).mappings().first()


async def list_all(conn: AsyncConnection) -> list[RowMapping]:
    return list((await conn.execute(with_namespace().order_by(projects.c.id))).mappings())


async def update(conn: AsyncConnection, project_id: int, values: dict[str, str]) -> RowMapping | None:
    """The changed project, or None when the new name is taken (or the project is gone)."""
    if "name" in values:
        taken = sa.select(projects.c.id).where(projects.c.name == values["name"], projects.c.id != project_id)
        if (await conn.execute(taken)).first() is not None:
            return None
    stmt = projects.update().where(projects.c.id == project_id).values(**values).returning(projects.c.id)
    return None if (await conn.execute(stmt)).first() is None else await get(conn, project_id)


async def delete(conn: AsyncConnection, project_id: int) -> None:
    """The project and, by cascade, its pipelines, jobs, variables, triggers, schedules and hooks."""
    await conn.execute(projects.delete().where(projects.c.id == project_id))
