"""Which projects a project runner serves and which group a group runner belongs to.

GitLab's ``ci_runner_projects`` (the first row, lowest id, is the runner's owner project) and
``ci_runner_namespaces``. Instance runners have no rows here and serve every project.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from conveyor.server.db.queries.projects import with_namespace
from conveyor.server.db.tables import namespaces, projects, runner_namespaces, runner_projects, runners


async def add_project(conn: AsyncConnection, runner_id: int, project_id: int) -> bool:
    """The runner now serves the project; False when it already did."""
    stmt = (
        pg_insert(runner_projects).values(runner_id=runner_id, project_id=project_id)
        .on_conflict_do_nothing(index_elements=["runner_id", "project_id"]).returning(runner_projects.c.id)
    )
    return (await conn.execute(stmt)).first() is not None


async def remove_project(conn: AsyncConnection, runner_id: int, project_id: int) -> bool:
    stmt = runner_projects.delete().where(runner_projects.c.runner_id == runner_id, runner_projects.c.project_id == project_id)
    return (await conn.execute(stmt.returning(runner_projects.c.id))).first() is not None


async def set_namespace(conn: AsyncConnection, runner_id: int, namespace_id: int) -> None:
    await conn.execute(runner_namespaces.insert().values(runner_id=runner_id, namespace_id=namespace_id))


async def lock_projects(conn: AsyncConnection, runner_id: int) -> list[int]:
    """The runner's project ids, owner first, row-locked (one enable/disable at a time)."""
    stmt = (
        sa.select(runner_projects.c.project_id).where(runner_projects.c.runner_id == runner_id)
        .order_by(runner_projects.c.id).with_for_update()
    )
    return [int(r[0]) for r in await conn.execute(stmt)]


async def projects_of(conn: AsyncConnection, runner_id: int) -> list[RowMapping]:
    """The projects the runner serves (with their namespace), owner first."""
    stmt = (
        with_namespace().add_columns(runner_projects.c.id.label("link_id"))
        .join(runner_projects, runner_projects.c.project_id == projects.c.id)
        .where(runner_projects.c.runner_id == runner_id).order_by(runner_projects.c.id)
    )
    return list((await conn.execute(stmt)).mappings())


async def groups_of(conn: AsyncConnection, runner_id: int) -> list[RowMapping]:
    stmt = (
        sa.select(namespaces).join(runner_namespaces, runner_namespaces.c.namespace_id == namespaces.c.id)
        .where(runner_namespaces.c.runner_id == runner_id)
    )
    return list((await conn.execute(stmt)).mappings())


def serving(project_ids: Iterable[int], namespace_ids: Iterable[int], *, instance: bool) -> sa.ColumnElement[bool]:
    """Runners serving one of ``project_ids`` (project runners) or owned by one of ``namespace_ids``
    (group runners); with ``instance``, every instance runner too."""
    served = sa.select(runner_projects.c.runner_id).where(runner_projects.c.project_id.in_(list(project_ids)))
    grouped = sa.select(runner_namespaces.c.runner_id).where(runner_namespaces.c.namespace_id.in_(list(namespace_ids)))
    either = sa.or_(runners.c.id.in_(served), runners.c.id.in_(grouped))
    return sa.or_(runners.c.runner_type == "instance_type", either) if instance else either
