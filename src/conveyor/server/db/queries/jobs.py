"""Jobs and the pending-job queue: insert, enqueue, claim (SKIP LOCKED), finish."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from conveyor.server.db import sql
from conveyor.server.db.tables import jobs, pending_jobs


async def insert_many(conn: AsyncConnection, pipeline_id: int, project_id: int, specs: Sequence[dict[str, Any]]) -> None:
    """Insert ``created`` jobs; each spec is a ``JobSpec.model_dump()``."""
    rows = [
        {
            "pipeline_id": pipeline_id,
            "project_id": project_id,
            "name": spec["name"],
            "stage": spec["stage"],
            "stage_idx": spec["stage_idx"],
            "status": "created",
            "spec": spec,
        }
        for spec in specs
    ]
    if rows:
        await conn.execute(jobs.insert(), rows)


async def get(conn: AsyncConnection, job_id: int) -> RowMapping | None:
    return (await conn.execute(sa.select(jobs).where(jobs.c.id == job_id))).mappings().first()


async def lock(conn: AsyncConnection, job_id: int) -> RowMapping | None:
    stmt = sa.select(jobs).where(jobs.c.id == job_id).with_for_update()
    return (await conn.execute(stmt)).mappings().first()


async def for_pipeline(conn: AsyncConnection, pipeline_id: int) -> list[RowMapping]:
    stmt = sa.select(jobs).where(jobs.c.pipeline_id == pipeline_id).order_by(jobs.c.stage_idx, jobs.c.id)
    return list((await conn.execute(stmt)).mappings())


async def enqueue(conn: AsyncConnection, job_ids: Iterable[int], project_id: int) -> int:
    """created -> pending, and into the pending queue. Returns how many were enqueued."""
    ids = list(job_ids)
    if not ids:
        return 0
    stmt = (
        jobs.update()
        .where(jobs.c.id.in_(ids), jobs.c.status == "created")
        .values(status="pending", queued_at=sa.func.now(), updated_at=sa.func.now())
        .returning(jobs.c.id)
    )
    enqueued = list((await conn.execute(stmt)).scalars())
    if enqueued:
        queue_rows = [{"job_id": job_id, "project_id": project_id} for job_id in enqueued]
        await conn.execute(pg_insert(pending_jobs).on_conflict_do_nothing(), queue_rows)
    return len(enqueued)


async def set_status(conn: AsyncConnection, job_ids: Iterable[int], status: str) -> None:
    ids = list(job_ids)
    if ids:
        values = {"status": status, "updated_at": sa.func.now()}
        await conn.execute(jobs.update().where(jobs.c.id.in_(ids)).values(**values))


async def claim(conn: AsyncConnection, runner_id: int, token_hash: str) -> RowMapping | None:
    """Dequeue the oldest pending job for ``runner_id`` (see sql/queue.sql)."""
    params = {"runner_id": runner_id, "token_hash": token_hash}
    return (await conn.execute(sql.query("claim_job"), params)).mappings().first()


async def by_id_and_token(conn: AsyncConnection, job_id: int, token_hash: str) -> RowMapping | None:
    stmt = sa.select(jobs).where(jobs.c.id == job_id, jobs.c.token_hash == token_hash)
    return (await conn.execute(stmt)).mappings().first()


async def touch(conn: AsyncConnection, job_id: int) -> None:
    await conn.execute(jobs.update().where(jobs.c.id == job_id).values(updated_at=sa.func.now()))


async def record_final_request(conn: AsyncConnection, job_id: int, final_state: dict[str, Any]) -> RowMapping:
    """Remember the runner's final update while its log is incomplete; returns the job row."""
    stmt = (
        jobs.update()
        .where(jobs.c.id == job_id)
        .values(
            final_state=final_state,
            final_requested_at=sa.func.coalesce(jobs.c.final_requested_at, sa.func.now()),
            updated_at=sa.func.now(),
        )
        .returning(*jobs.c)
    )
    return (await conn.execute(stmt)).mappings().one()


async def finish(
    conn: AsyncConnection,
    job_id: int,
    status: str,
    *,
    failure_reason: str | None = None,
    exit_code: int | None = None,
    trace_checksum: str | None = None,
) -> None:
    values = {
        "status": status,
        "failure_reason": failure_reason,
        "exit_code": exit_code,
        "trace_checksum": trace_checksum,
        "finished_at": sa.func.now(),
        "updated_at": sa.func.now(),
    }
    await conn.execute(jobs.update().where(jobs.c.id == job_id).values(**values))


async def unarchived_finished(conn: AsyncConnection, limit: int = 100) -> list[int]:
    stmt = (
        sa.select(jobs.c.id)
        .where(jobs.c.finished_at.is_not(None), jobs.c.trace_archived.is_(False))
        .order_by(jobs.c.id)
        .limit(limit)
    )
    return list((await conn.execute(stmt)).scalars())


async def mark_archived(conn: AsyncConnection, job_id: int) -> None:
    await conn.execute(jobs.update().where(jobs.c.id == job_id).values(trace_archived=True))
