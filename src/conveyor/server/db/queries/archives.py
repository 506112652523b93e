"""Log archiving bookkeeping: which finished jobs are due, failed attempts and their backoff."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from conveyor.server.db.tables import jobs, trace_archives, trace_chunks


async def due(conn: AsyncConnection, limit: int = 100) -> list[int]:
    """Finished jobs whose log is still live, not waiting out a backoff, not held for a mismatch."""
    a = trace_archives
    stmt = (
        sa.select(jobs.c.id)
        .select_from(jobs.outerjoin(a, a.c.job_id == jobs.c.id))
        .where(
            jobs.c.finished_at.is_not(None),
            sa.not_(jobs.c.trace_archived),  # ix_jobs_unarchived
            sa.or_(a.c.job_id.is_(None), sa.and_(sa.not_(a.c.checksum_mismatch), a.c.next_attempt_at <= sa.func.now())),
        )
        .order_by(jobs.c.id)
        .limit(limit)
    )
    return list((await conn.execute(stmt)).scalars())


async def record_failure(
    conn: AsyncConnection, job_id: int, error: str, *, base_delay: float, max_delay: float, jitter: float
) -> int:
    """Count a failed attempt; the next waits ``min(max, base * 2**(attempts-1)) * jitter`` seconds.

    Returns the number of attempts so far.
    """
    a = trace_archives
    def delay(previous: sa.ColumnElement | int) -> sa.ColumnElement:
        seconds = sa.func.least(max_delay, base_delay * sa.func.power(2, previous)) * jitter
        return sa.func.now() + sa.func.make_interval(0, 0, 0, 0, 0, 0, seconds)

    stmt = insert(a).values(job_id=job_id, attempts=1, next_attempt_at=delay(0), last_error=error[:2000])
    stmt = stmt.on_conflict_do_update(
        index_elements=[a.c.job_id],
        set_={
            "attempts": a.c.attempts + 1,
            "next_attempt_at": delay(a.c.attempts),
            "last_error": stmt.excluded.last_error,
            "updated_at": sa.func.now(),
        },
    ).returning(a.c.attempts)
    return (await conn.execute(stmt)).scalar_one()


async def hold_mismatch(conn: AsyncConnection, job_id: int, error: str) -> None:
    """Keep the job's chunks and stop retrying: the runner's checksum disagrees with our bytes."""
    a = trace_archives
    stmt = insert(a).values(job_id=job_id, checksum_mismatch=True, last_error=error[:2000])
    stmt = stmt.on_conflict_do_update(
        index_elements=[a.c.job_id],
        set_={"checksum_mismatch": True, "last_error": stmt.excluded.last_error, "updated_at": sa.func.now()},
    )
    await conn.execute(stmt)


async def get(conn: AsyncConnection, job_id: int) -> RowMapping | None:
    return (await conn.execute(sa.select(trace_archives).where(trace_archives.c.job_id == job_id))).mappings().first()


async def mark_archived(conn: AsyncConnection, job_id: int) -> None:
    """A log archived and verified, in one statement: the job flagged, its durable chunk rows
    deleted, its failed attempts forgotten."""
    chunks = trace_chunks.delete().where(trace_chunks.c.job_id == job_id).cte("chunks")
    attempts = trace_archives.delete().where(trace_archives.c.job_id == job_id).cte("attempts")
    stmt = jobs.update().add_cte(chunks).add_cte(attempts).where(jobs.c.id == job_id).values(trace_archived=True)
    await conn.execute(stmt)
