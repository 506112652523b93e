"""Bridge jobs (``trigger:``) and their downstream pipelines: which bridges wait to trigger,
which follow a downstream that finished, which children lost their bridge, the artifact a
dynamic child's config comes from."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from conveyor.server.db.tables import ACTIVE_BRIDGE, ACTIVE_DOWNSTREAM, BRIDGE, artifacts, jobs, pipelines

FINISHED = ("success", "failed", "canceled", "skipped")
IS_BRIDGE = sa.text(BRIDGE.replace("spec", "jobs.spec"))  # JobSpec.trigger is null for other jobs
# the partial indexes' predicates, word for word, so the planner uses them
IS_ACTIVE_BRIDGE = sa.text(ACTIVE_BRIDGE.replace("spec", "jobs.spec").replace("status", "jobs.status"))
IS_ACTIVE_DOWNSTREAM = sa.text(ACTIVE_DOWNSTREAM.replace("source_job_id", "pipelines.source_job_id").replace("status", "pipelines.status"))


async def pending(conn: AsyncConnection, limit: int = 20) -> list[RowMapping]:
    """Bridges whose turn came (``pending``): their downstream pipeline is to be created."""
    stmt = (
        sa.select(jobs.c.id, jobs.c.pipeline_id)
        .where(jobs.c.status == "pending", IS_ACTIVE_BRIDGE)
        .order_by(jobs.c.id)
        .limit(limit)
    )
    return list((await conn.execute(stmt)).mappings())


async def start(conn: AsyncConnection, job_id: int) -> RowMapping | None:
    """pending -> running (the downstream is being created); None when it is no longer pending.
    ``offered_at``/``acked_at`` stay NULL: no runner holds it, so the sweeps leave it alone."""
    stmt = (
        jobs.update()
        .where(jobs.c.id == job_id, jobs.c.status == "pending")
        .values(status="running", started_at=sa.func.now(), updated_at=sa.func.now())
        .returning(*jobs.c)
    )
    return (await conn.execute(stmt)).mappings().first()


def _latest_downstream() -> Any:
    return (
        sa.select(pipelines.c.id, pipelines.c.status)
        .where(pipelines.c.source_job_id == jobs.c.id)
        .order_by(pipelines.c.id.desc())
        .limit(1)
        .lateral("downstream")
    )


async def following(conn: AsyncConnection, limit: int = 50) -> list[RowMapping]:
    """Running (``strategy``) bridges and the status of their latest downstream pipeline."""
    downstream = _latest_downstream()
    stmt = (
        sa.select(jobs.c.id, jobs.c.pipeline_id, jobs.c.spec, downstream.c.status.label("downstream_status"))
        .join(downstream, sa.true())
        .where(jobs.c.status.in_(("running", "manual")), IS_ACTIVE_BRIDGE)
        .order_by(jobs.c.id)
        .limit(limit)
    )
    return list((await conn.execute(stmt)).mappings())


async def stranded(conn: AsyncConnection, older_than: float, limit: int = 50) -> list[RowMapping]:
    """Bridges running for ``older_than`` seconds with no downstream pipeline at all: the server
    that was creating it stopped halfway."""
    has_downstream = sa.exists().where(pipelines.c.source_job_id == jobs.c.id)
    stmt = (
        sa.select(jobs.c.id, jobs.c.pipeline_id)
        .where(
            jobs.c.status == "running", IS_ACTIVE_BRIDGE, sa.not_(has_downstream),
            jobs.c.started_at < sa.func.now() - sa.func.make_interval(0, 0, 0, 0, 0, 0, older_than),
        )
        .order_by(jobs.c.id)
        .limit(limit)
    )
    return list((await conn.execute(stmt)).mappings())


async def reopened(conn: AsyncConnection, limit: int = 50) -> list[RowMapping]:
    """Finished ``strategy`` bridges whose latest downstream runs again (a job of it was
    retried): GitLab's ``reset_source_bridge!`` puts them back to running. Found from the
    running downstream pipelines (few), not from the finished bridges (all of history)."""
    newer = pipelines.alias("newer")
    latest = sa.select(sa.func.max(newer.c.id)).where(newer.c.source_job_id == jobs.c.id).correlate(jobs).scalar_subquery()
    stmt = (
        sa.select(jobs.c.id, jobs.c.pipeline_id, jobs.c.name)
        .select_from(pipelines)
        .join(jobs, jobs.c.id == pipelines.c.source_job_id)
        .where(
            IS_ACTIVE_DOWNSTREAM,
            jobs.c.status.in_(FINISHED),
            sa.not_(jobs.c.retried),
            jobs.c.spec["trigger"]["strategy"].astext.is_not(None),
            pipelines.c.id == latest,
        )
        .order_by(jobs.c.id)
        .limit(limit)
    )
    return list((await conn.execute(stmt)).mappings())


async def set_errors(conn: AsyncConnection, job_id: int, errors: list[str]) -> None:
    await conn.execute(jobs.update().where(jobs.c.id == job_id).values(downstream_errors=errors))


async def reopen(conn: AsyncConnection, job_id: int) -> None:
    stmt = jobs.update().where(jobs.c.id == job_id).values(status="running", finished_at=None, updated_at=sa.func.now())
    await conn.execute(stmt)


async def orphaned_children(conn: AsyncConnection, limit: int = 50) -> list[int]:
    """Unfinished child pipelines whose bridge was canceled (cancel cascades to children only)."""
    stmt = (
        sa.select(pipelines.c.id)
        .join(jobs, jobs.c.id == pipelines.c.source_job_id)
        .where(IS_ACTIVE_DOWNSTREAM, pipelines.c.parent_pipeline_id.is_not(None), jobs.c.status == "canceled")
        .order_by(pipelines.c.id)
        .limit(limit)
    )
    return list((await conn.execute(stmt)).scalars())


async def depth(conn: AsyncConnection, pipeline_id: int) -> int:
    """How many pipelines the parent-child chain ending at ``pipeline_id`` holds (1: a root)."""
    chain = (
        sa.select(pipelines.c.id, pipelines.c.parent_pipeline_id, sa.literal(1).label("level"))
        .where(pipelines.c.id == pipeline_id)
        .cte("chain", recursive=True)
    )
    parent = pipelines.alias("parent")
    chain = chain.union_all(
        sa.select(parent.c.id, parent.c.parent_pipeline_id, chain.c.level + 1).where(parent.c.id == chain.c.parent_pipeline_id)
    )
    return int((await conn.execute(sa.select(sa.func.max(chain.c.level)))).scalar() or 1)


async def artifact_of(conn: AsyncConnection, pipeline_id: int, job_name: str) -> RowMapping | None:
    """The live ``archive`` artifact of the pipeline's latest job ``job_name`` that has one."""
    stmt = (
        sa.select(jobs.c.id, artifacts.c.object_key, artifacts.c.size)
        .join(artifacts, artifacts.c.job_id == jobs.c.id)
        .where(
            jobs.c.pipeline_id == pipeline_id,
            jobs.c.name == job_name,
            artifacts.c.file_type == "archive",
            sa.or_(artifacts.c.expire_at.is_(None), artifacts.c.expire_at > sa.func.now()),
        )
        .order_by(jobs.c.id.desc())
        .limit(1)
    )
    return (await conn.execute(stmt)).mappings().first()


async def for_pipeline(conn: AsyncConnection, pipeline_id: int) -> list[RowMapping]:
    """The pipeline's bridges (latest attempts) with their latest downstream pipeline's row."""
    downstream, newer = pipelines.alias("downstream"), pipelines.alias("newer")
    latest = (
        sa.select(sa.func.max(newer.c.id)).where(newer.c.source_job_id == jobs.c.id).correlate(jobs).scalar_subquery()
    )
    stmt = (
        sa.select(jobs, *[column.label(f"downstream_{column.name}") for column in downstream.c])
        .select_from(jobs)
        .outerjoin(downstream, downstream.c.id == latest)
        .where(jobs.c.pipeline_id == pipeline_id, sa.not_(jobs.c.retried), IS_BRIDGE)
        .order_by(jobs.c.stage_idx, jobs.c.id)
    )
    return list((await conn.execute(stmt)).mappings())
