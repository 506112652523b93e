"""Jobs and the pending-job queue: insert, enqueue, claim (SKIP LOCKED), finish."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from conveyor.server.db import sql
from conveyor.server.db.tables import jobs, pending_jobs, runner_managers, runners


async def insert_many(
    conn: AsyncConnection,
    pipeline_id: int,
    project_id: int,
    specs: Sequence[dict[str, Any]],
    *,
    protected: bool = False,
) -> list[dict[str, Any]]:
    """Insert ``created`` jobs in one statement; each spec is a ``JobSpec.model_dump()``. Returns
    the rows as stored (what ``queue.progress`` reads of a job), in stage order."""
    rows = [
        {
            "pipeline_id": pipeline_id,
            "project_id": project_id,
            "name": spec["name"],
            "stage": spec["stage"],
            "stage_idx": spec["stage_idx"],
            "status": "created",
            "spec": spec,
            "tags": list(spec.get("tags") or []),
            "protected": protected,
            "resource_group": spec.get("resource_group"),
        }
        for spec in specs
    ]
    if not rows:
        return []
    # one INSERT ... VALUES (...), (...) RETURNING (SQLAlchemy's insertmanyvalues); names are
    # unique within a pipeline
    ids = {row.name: row.id for row in await conn.execute(jobs.insert().returning(jobs.c.id, jobs.c.name), rows)}
    stored = [{**row, "id": ids[row["name"]], "exit_code": None, "retried": False} for row in rows]
    return sorted(stored, key=lambda row: (row["stage_idx"], row["id"]))


# Hot statements built once (a statement object keeps its cache key: no building and hashing per
# call, issue 24); their values are bound by name.
_GET = sa.select(jobs).where(jobs.c.id == sa.bindparam("job_id"))
_TOUCH_ACTIVE = (
    jobs.update()
    .where(jobs.c.id == sa.bindparam("job_id"), jobs.c.token_hash == sa.bindparam("hash"), jobs.c.status.in_(("running", "canceling")))
    .values(updated_at=sa.func.now(), acked_at=sa.func.coalesce(jobs.c.acked_at, sa.func.now()))
    .returning(jobs.c.status)
)
_FINISH_ACTIVE = (
    jobs.update()
    .where(jobs.c.id == sa.bindparam("job_id"), jobs.c.status.in_(("running", "canceling")))
    .values(
        status=sa.case((jobs.c.status == "canceling", "canceled"), else_=sa.bindparam("final_status", type_=sa.Text)),
        failure_reason=sa.bindparam("reason", type_=sa.Text), exit_code=sa.bindparam("exit", type_=sa.Integer),
        trace_checksum=sa.bindparam("checksum", type_=sa.Text), finished_at=sa.func.now(), updated_at=sa.func.now(),
    )
    .returning(jobs.c.status, jobs.c.spec["coverage"].astext.label("coverage"), jobs.c.trace_size, jobs.c.trace_crc32, jobs.c.trace_checksum)
)


async def get(conn: AsyncConnection, job_id: int) -> RowMapping | None:
    return (await conn.execute(_GET, {"job_id": job_id})).mappings().first()


async def lock(conn: AsyncConnection, job_id: int) -> RowMapping | None:
    stmt = sa.select(jobs).where(jobs.c.id == job_id).with_for_update()
    return (await conn.execute(stmt)).mappings().first()


async def for_pipeline(conn: AsyncConnection, pipeline_id: int, *, include_retried: bool = False) -> list[RowMapping]:
    """The pipeline's jobs in stage order; only the latest attempt of each unless ``include_retried``."""
    stmt = _OF_PIPELINE_ALL if include_retried else _OF_PIPELINE
    return list((await conn.execute(stmt, {"pipeline_id": pipeline_id})).mappings())


# built once: every status transition of a pipeline reads its jobs (issue 24)
_OF_PIPELINE_ALL = sa.select(jobs).where(jobs.c.pipeline_id == sa.bindparam("pipeline_id")).order_by(jobs.c.stage_idx, jobs.c.id)
_OF_PIPELINE = _OF_PIPELINE_ALL.where(sa.not_(jobs.c.retried))


@dataclass(frozen=True)
class Queued:
    """A job that just became pending, with what decides which runners may take it."""

    job_id: int
    tags: tuple[str, ...]
    protected: bool


async def enqueue(conn: AsyncConnection, job_ids: Iterable[int]) -> list[Queued]:
    """created -> pending, and into the pending queue. Returns the jobs enqueued."""
    ids = list(job_ids)
    if not ids:
        return []
    rows = await conn.execute(sql.query("enqueue_jobs"), {"job_ids": ids})
    return [Queued(row.job_id, tuple(row.tags), row.protected) for row in rows]


async def set_status(conn: AsyncConnection, job_ids: Iterable[int], status: str) -> None:
    ids = list(job_ids)
    if ids:
        values = {"status": status, "updated_at": sa.func.now()}
        await conn.execute(jobs.update().where(jobs.c.id.in_(ids)).values(**values))


@dataclass(frozen=True)
class Claimant:
    """Who asks for a job, and what it may run."""

    runner_id: int
    runner_manager_id: int | None
    tags: Sequence[str]
    run_untagged: bool
    protected_only: bool
    scoped: bool = False  # a project or group runner: only the projects it serves


async def claim(conn: AsyncConnection, claimant: Claimant, token_hash: str) -> RowMapping | None:
    """Dequeue the next job ``claimant`` may run, fairly across projects (see sql/queue.sql)."""
    params = {
        "runner_id": claimant.runner_id,
        "runner_manager_id": claimant.runner_manager_id,
        "runner_tags": list(claimant.tags),
        "run_untagged": claimant.run_untagged,
        "protected_only": claimant.protected_only,
        "scoped": claimant.scoped,
        "token_hash": token_hash,
    }
    return (await conn.execute(sql.query("claim_job"), params)).mappings().first()


async def requeue_unacknowledged(conn: AsyncConnection, timeout: float) -> list[Queued]:
    rows = await conn.execute(sql.query("requeue_unacknowledged"), {"timeout": timeout})
    return [Queued(row.job_id, tuple(row.tags), row.protected) for row in rows]


async def stale(
    conn: AsyncConnection, *, pending_timeout: float, running_timeout: float, canceling_timeout: float, limit: int = 100
) -> list[RowMapping]:
    """Jobs to end now, row-locked for the caller's transaction."""
    params = {
        "pending_timeout": pending_timeout,
        "running_timeout": running_timeout,
        "canceling_timeout": canceling_timeout,
        "limit": limit,
    }
    return list((await conn.execute(sql.query("stale_jobs"), params)).mappings())


async def dequeue(conn: AsyncConnection, job_id: int) -> None:
    """Take a job out of the pending queue (it is being canceled or dropped)."""
    await conn.execute(pending_jobs.delete().where(pending_jobs.c.job_id == job_id))


async def touch_active(conn: AsyncConnection, job_id: int, token_hash: str) -> str | None:
    """``touch`` in one statement when the token is the job's and the job is running or canceling;
    returns its status, or None (then the caller finds out why)."""
    return (await conn.execute(_TOUCH_ACTIVE, {"job_id": job_id, "hash": token_hash})).scalar()


async def touch(conn: AsyncConnection, job_id: int) -> None:
    """The runner spoke about the job: it is alive, and it has the job (two-phase accept)."""
    values = {"updated_at": sa.func.now(), "acked_at": sa.func.coalesce(jobs.c.acked_at, sa.func.now())}
    await conn.execute(jobs.update().where(jobs.c.id == job_id).values(**values))


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
    values = _finished(status, failure_reason, exit_code, trace_checksum)
    await conn.execute(jobs.update().where(jobs.c.id == job_id).values(**values))


def _finished(
    status: str, failure_reason: str | None = None, exit_code: int | None = None, trace_checksum: str | None = None
) -> dict[str, Any]:
    """The columns a job's end sets (``finish``, ``cancel_queued``)."""
    return {
        "status": status,
        "failure_reason": failure_reason,
        "exit_code": exit_code,
        "trace_checksum": trace_checksum,
        "finished_at": sa.func.now(),
        "updated_at": sa.func.now(),
    }


async def finish_active(
    conn: AsyncConnection,
    job_id: int,
    status: str,
    *,
    failure_reason: str | None = None,
    exit_code: int | None = None,
    trace_checksum: str | None = None,
) -> RowMapping | None:
    """``finish`` a job still running or canceling (a canceling one ends ``canceled``) in one
    statement: its new ``status``, ``coverage`` regex and log (``trace_size``, ``trace_crc32``,
    ``trace_checksum``); None when it was not active."""
    params = {"job_id": job_id, "final_status": status, "reason": failure_reason, "exit": exit_code, "checksum": trace_checksum}
    return (await conn.execute(_FINISH_ACTIVE, params)).mappings().first()

async def cancel_queued(conn: AsyncConnection, job_id: int) -> None:
    """``dequeue`` and ``finish`` as canceled, in one statement: a job no runner has taken."""
    dequeued = pending_jobs.delete().where(pending_jobs.c.job_id == job_id).cte("dequeued")
    await conn.execute(jobs.update().add_cte(dequeued).where(jobs.c.id == job_id).values(**_finished("canceled")))


async def unarchived_finished(conn: AsyncConnection, limit: int = 100) -> list[int]:
    stmt = (
        sa.select(jobs.c.id)
        .where(jobs.c.finished_at.is_not(None), sa.not_(jobs.c.trace_archived))  # ix_jobs_unarchived
        .order_by(jobs.c.id)
        .limit(limit)
    )
    return list((await conn.execute(stmt)).scalars())


async def mark_archived(conn: AsyncConnection, job_id: int) -> None:
    await conn.execute(jobs.update().where(jobs.c.id == job_id).values(trace_archived=True))


async def cancels_gracefully(conn: AsyncConnection, job: RowMapping) -> bool:
    """Whether the runner (manager) holding ``job`` advertised ``cancel_gracefully``."""
    features = None
    if job["runner_manager_id"] is not None:
        stmt = sa.select(runner_managers.c.features).where(runner_managers.c.id == job["runner_manager_id"])
        features = (await conn.execute(stmt)).scalar()
    if features is None and job["runner_id"] is not None:
        features = (await conn.execute(sa.select(runners.c.features).where(runners.c.id == job["runner_id"]))).scalar()
    return bool((features or {}).get("cancel_gracefully"))


# --- state transitions beyond the claim (pipeline states) ----------------------------------------


async def enqueue_from(conn: AsyncConnection, job_ids: Iterable[int], statuses: Sequence[str]) -> list[Queued]:
    """``statuses`` -> pending, and into the pending queue: a manual job played, a scheduled job
    due, a job that got its resource group. Jobs in another status are left alone."""
    ids = list(job_ids)
    if not ids:
        return []
    stmt = (
        jobs.update()
        .where(jobs.c.id.in_(ids), jobs.c.status.in_(list(statuses)))
        .values(status="pending", queued_at=sa.func.now(), updated_at=sa.func.now())
        .returning(jobs.c.id, jobs.c.project_id, jobs.c.tags, jobs.c.protected, jobs.c.spec["trigger"].astext.label("trigger"))
    )
    # a bridge (trigger:) goes pending for the server (queue/bridges.py), never to a runner
    rows = [row for row in await conn.execute(stmt) if row.trigger is None]
    if not rows:
        return []
    values = [{"job_id": r.id, "project_id": r.project_id, "tags": r.tags, "protected": r.protected} for r in rows]
    await conn.execute(pg_insert(pending_jobs).values(values).on_conflict_do_nothing(index_elements=["job_id"]))
    return [Queued(r.id, tuple(r.tags), r.protected) for r in rows]


async def schedule(conn: AsyncConnection, job_ids: Iterable[int]) -> None:
    """created -> scheduled, due ``spec.start_in`` seconds from now (``when: delayed``)."""
    ids = list(job_ids)
    if ids:
        due = sa.text("now() + make_interval(secs => coalesce((jobs.spec->>'start_in')::float8, 0))")
        stmt = (
            jobs.update()
            .where(jobs.c.id.in_(ids), jobs.c.status == "created")
            .values(status="scheduled", scheduled_at=due, updated_at=sa.func.now())
        )
        await conn.execute(stmt)


async def due_pipelines(conn: AsyncConnection, limit: int = 100) -> list[int]:
    """Pipelines with a scheduled job whose time has come (ix_jobs_scheduled_at)."""
    stmt = (
        sa.select(jobs.c.pipeline_id)
        .where(jobs.c.status == "scheduled", jobs.c.scheduled_at <= sa.func.now())
        .group_by(jobs.c.pipeline_id)
        .order_by(sa.func.min(jobs.c.scheduled_at))
        .limit(limit)
    )
    return list((await conn.execute(stmt)).scalars())


async def due_in_pipeline(conn: AsyncConnection, pipeline_id: int) -> list[RowMapping]:
    stmt = sa.select(jobs.c.id, jobs.c.status, jobs.c.scheduled_at, jobs.c.resource_group).where(
        jobs.c.pipeline_id == pipeline_id, jobs.c.status == "scheduled", jobs.c.scheduled_at <= sa.func.now()
    )
    return list((await conn.execute(stmt)).mappings())


async def retry_count(conn: AsyncConnection, pipeline_id: int, name: str) -> int:
    """How many attempts of the job ``name`` were already replaced by a retry."""
    stmt = sa.select(sa.func.count()).where(jobs.c.pipeline_id == pipeline_id, jobs.c.name == name, jobs.c.retried)
    return (await conn.execute(stmt)).scalar_one()


async def clone_for_retry(conn: AsyncConnection, job_id: int) -> int:
    """Mark the job ``retried`` and insert its next attempt (same name, spec, stage; ``created``).
    Returns the new job's id."""
    await conn.execute(jobs.update().where(jobs.c.id == job_id).values(retried=True, updated_at=sa.func.now()))
    copied = ["pipeline_id", "project_id", "name", "stage", "stage_idx", "spec", "tags", "protected", "resource_group"]
    source = sa.select(*(jobs.c[name] for name in copied), sa.literal("created")).where(jobs.c.id == job_id)
    stmt = jobs.insert().from_select([*copied, "status"], source).returning(jobs.c.id)
    return (await conn.execute(stmt)).scalar_one()


async def lock_many(conn: AsyncConnection, job_ids: Iterable[int]) -> list[RowMapping]:
    """Row-lock jobs in id order (one statement, so concurrent callers never cross)."""
    ids = sorted(set(job_ids))
    if not ids:
        return []
    stmt = sa.select(jobs).where(jobs.c.id.in_(ids)).order_by(jobs.c.id).with_for_update()
    return list((await conn.execute(stmt)).mappings())


async def set_coverage(conn: AsyncConnection, job_id: int, coverage: float) -> None:
    await conn.execute(jobs.update().where(jobs.c.id == job_id).values(coverage=coverage))


async def add_variables(conn: AsyncConnection, job_id: int, variables: dict[str, str]) -> None:
    """Merge ``variables`` into the job's spec (a manual job played with variables)."""
    merged = sa.func.coalesce(jobs.c.spec["variables"], sa.cast({}, JSONB)).op("||")(sa.cast(variables, JSONB))
    stmt = jobs.update().where(jobs.c.id == job_id).values(spec=sa.func.jsonb_set(jobs.c.spec, sa.literal_column("'{variables}'::text[]"), merged))
    await conn.execute(stmt)


async def set_dotenv(conn: AsyncConnection, job_id: int, variables: dict[str, str]) -> None:
    """The variables of the job's dotenv report (a new upload replaces them)."""
    await conn.execute(jobs.update().where(jobs.c.id == job_id).values(dotenv_variables=variables))
