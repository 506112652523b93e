"""Pipelines: one per (project, ref, sha) run, with a composite status."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from conveyor.server.db.tables import pipelines, projects

FINISHED = ("success", "failed", "canceled", "skipped")
# every job's final update locks its pipeline: built once (it keeps its cache key; issue 24)
_LOCK = sa.select(pipelines).where(pipelines.c.id == sa.bindparam("pipeline_id")).with_for_update()


async def insert(
    conn: AsyncConnection, project_id: int, ref: str, sha: str, variables: dict[str, str], **facts: Any
) -> int:
    """``insert_row``'s pipeline id."""
    return int((await insert_row(conn, project_id, ref, sha, variables, **facts))["id"])


async def insert_row(
    conn: AsyncConnection, project_id: int, ref: str, sha: str, variables: dict[str, str], **facts: Any
) -> RowMapping:
    """A new pipeline (``created`` unless ``facts`` give a status) with the next iid of its
    project, in one statement (the project row is locked until commit, so iids are unique and
    dense); returns its row. ``facts``: the optional columns (status, source, before_sha, tag,
    commit, user, parent_pipeline_id, source_job_id)."""
    values = {"status": "created", **{key: value for key, value in facts.items() if value is not None},
              "project_id": project_id, "ref": ref, "sha": sha, "variables": variables}  # fmt: skip
    bound = {f"v_{column}": value for column, value in values.items()}
    return (await conn.execute(_insert_row(frozenset(values)), bound)).mappings().one()


_INSERT_ROWS: dict[frozenset[str], sa.Insert] = {}


def _insert_row(columns: frozenset[str]) -> sa.Insert:
    """``insert_row``'s statement for these columns, built once per set (a handful: the facts an
    API, push, trigger or schedule pipeline has), its values bound by name: building it for every
    pipeline cost ~0.3 ms of CPU (issue 24)."""
    stmt = _INSERT_ROWS.get(columns)
    if stmt is None:
        bump = (
            projects.update()
            .where(projects.c.id == sa.bindparam("v_project_id", type_=projects.c.id.type))
            .values(last_pipeline_iid=projects.c.last_pipeline_iid + 1)
            .returning(projects.c.last_pipeline_iid)
            .cte("bump")
        )
        # no such project: the iid is NULL and the insert fails on the project's key
        stmt = _INSERT_ROWS[columns] = (
            pipelines.insert()
            .add_cte(bump)
            .values(**{column: sa.bindparam(f"v_{column}", type_=pipelines.c[column].type) for column in sorted(columns)},
                    iid=sa.select(bump.c.last_pipeline_iid).scalar_subquery())
            .returning(*pipelines.c)
        )
    return stmt


async def get(conn: AsyncConnection, pipeline_id: int) -> RowMapping | None:
    stmt = sa.select(pipelines).where(pipelines.c.id == pipeline_id)
    return (await conn.execute(stmt)).mappings().first()


async def lock(conn: AsyncConnection, pipeline_id: int) -> RowMapping | None:
    """Row-lock the pipeline: progression of one pipeline is serialised across processes."""
    return (await conn.execute(_LOCK, {"pipeline_id": pipeline_id})).mappings().first()


async def set_status(conn: AsyncConnection, pipeline_id: int, status: str) -> RowMapping | None:
    """The pipeline's new status (and start or finish time); its row after, None if it is gone."""
    stmt = _SET_FINISHED if status in FINISHED else _SET_STARTED if status == "running" else _SET_STATUS
    return (await conn.execute(stmt, {"pipeline_id": pipeline_id, "new_status": status})).mappings().first()


# ``set_status``'s three statements, built once: every pipeline changes status a few times (issue 24)
_SET_STATUS = (
    pipelines.update()
    .where(pipelines.c.id == sa.bindparam("pipeline_id"))
    .values(status=sa.bindparam("new_status", type_=pipelines.c.status.type))
    .returning(*pipelines.c)
)
_SET_STARTED = _SET_STATUS.values(started_at=sa.func.coalesce(pipelines.c.started_at, sa.func.now()))
_SET_FINISHED = _SET_STARTED.values(finished_at=sa.func.now())


async def list_for_project(conn: AsyncConnection, project_id: int, limit: int = 20) -> list[RowMapping]:
    stmt = (
        sa.select(pipelines)
        .where(pipelines.c.project_id == project_id)
        .order_by(pipelines.c.id.desc())
        .limit(limit)
    )
    return list((await conn.execute(stmt)).mappings())


CANCELABLE = ("created", "waiting_for_resource", "pending", "running", "scheduled")  # GitLab's


async def cancelable_on_ref(
    conn: AsyncConnection, project_id: int, ref: str, before_id: int, other_than_sha: str | None = None
) -> list[RowMapping]:
    """Older pipelines of the same ref that are still cancelable, oldest first: their id and sha
    (ix_pipelines_project_id_ref_id); with ``other_than_sha``, only those built for another commit
    (a ref with many running pipelines of one commit then costs no rows)."""
    values = {"project_id": project_id, "ref": ref, "before_id": before_id}
    if other_than_sha is None:
        return list((await conn.execute(_CANCELABLE_ON_REF, values)).mappings())
    return list((await conn.execute(_CANCELABLE_ON_REF_ELSEWHERE, {**values, "sha": other_than_sha})).mappings())


# built once: every pipeline creation asks (issue 24)
_CANCELABLE_ON_REF = (
    sa.select(pipelines.c.id, pipelines.c.sha)
    .where(
        pipelines.c.project_id == sa.bindparam("project_id"),
        pipelines.c.ref == sa.bindparam("ref"),
        pipelines.c.id < sa.bindparam("before_id"),
        pipelines.c.status.in_(CANCELABLE),
    )
    .order_by(pipelines.c.id)
)
_CANCELABLE_ON_REF_ELSEWHERE = _CANCELABLE_ON_REF.where(pipelines.c.sha != sa.bindparam("sha"))


async def lock_unless_busy(conn: AsyncConnection, pipeline_id: int) -> RowMapping | None:
    """Row-lock the pipeline unless another transaction holds it (then None): never waits."""
    stmt = sa.select(pipelines).where(pipelines.c.id == pipeline_id).with_for_update(skip_locked=True)
    return (await conn.execute(stmt)).mappings().first()


async def mark_auto_canceled(conn: AsyncConnection, pipeline_id: int, by_pipeline_id: int) -> None:
    await conn.execute(pipelines.update().where(pipelines.c.id == pipeline_id).values(auto_canceled_by_id=by_pipeline_id))
