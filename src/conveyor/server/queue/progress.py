"""Advance one pipeline: enqueue the jobs whose turn has come, skip the ones that never will.

Locks, in this order and no other, so that concurrent transactions never wait on each other in a
cycle: the pipeline row first (``advance`` takes it; callers that lock one of its jobs take the
pipeline first), then its job rows. Anything else ``advance`` touches on the way (a resource
group, another pipeline that gets the group) is locked with ``SKIP LOCKED`` and left to the
scheduler's next pass when busy, so it never waits while holding a pipeline.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from conveyor import pipeline
from conveyor.protocol import JobStatus
from conveyor.server.db import queries
from conveyor.server.queue import resources, states


async def advance(conn: AsyncConnection, pipeline_id: int, *, locked: RowMapping | None = None) -> list[queries.jobs.Queued]:
    """Apply ``pipeline.progress`` under the pipeline's row lock; returns the jobs enqueued.

    Runs inside the caller's transaction. The row lock serialises concurrent job completions of
    the same pipeline, so each sees the other's result. A job whose turn has come but that has a
    ``resource_group`` waits for it (``waiting_for_resource``) and is handed the group here when it
    is free; the pipeline's status is recomputed after all of that. ``locked``: the pipeline's
    row when the caller's transaction locked it already (not read and locked again).
    """
    row = locked if locked is not None else await queries.pipelines.lock(conn, pipeline_id)
    if row is None:
        return []
    enqueued, _ = await apply(conn, row, await queries.jobs.for_pipeline(conn, pipeline_id))
    return enqueued


async def apply(
    conn: AsyncConnection, row: Mapping[str, Any], jobs: Sequence[Mapping[str, Any]]
) -> tuple[list[queries.jobs.Queued], Mapping[str, Any]]:
    """``advance`` of the pipeline ``row`` with its current ``jobs`` (stage order), read by the
    caller under the row's lock, or just inserted by it (a pipeline being created is seen by no
    one else until its commit). Returns the jobs enqueued and the pipeline's row after."""
    pipeline_id = row["id"]
    progress = pipeline.progress([states.job_state(job) for job in jobs])
    by_name = {job["name"]: job for job in jobs}
    grouped = [name for name in progress.enqueue if by_name[name]["resource_group"]]
    plain = [by_name[name]["id"] for name in progress.enqueue if name not in grouped]
    enqueued = await queries.jobs.enqueue(conn, plain)
    await queries.jobs.set_status(conn, (by_name[name]["id"] for name in grouped), JobStatus.WAITING_FOR_RESOURCE)
    await queries.jobs.set_status(conn, (by_name[name]["id"] for name in progress.skip), JobStatus.SKIPPED)
    # manual jobs become playable when their turn comes, not at creation (GitLab)
    await queries.jobs.set_status(conn, (by_name[name]["id"] for name in progress.manual), JobStatus.MANUAL)
    await queries.jobs.schedule(conn, (by_name[name]["id"] for name in progress.schedule))
    status = progress.status
    groups = sorted({job["resource_group"] for job in jobs if job["resource_group"]})
    if groups:
        for key in groups:
            enqueued += await resources.hand_over(conn, row["project_id"], key, held=pipeline_id)
        status = states.status_of(await queries.jobs.for_pipeline(conn, pipeline_id))
    if status != row["status"]:
        row = await queries.pipelines.set_status(conn, pipeline_id, str(status)) or row
    return enqueued, row
