"""Advance one pipeline: enqueue the jobs whose turn has come, skip the ones that never will."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from conveyor import pipeline
from conveyor.protocol import JobStatus, When
from conveyor.server.db import queries


async def advance(conn: AsyncConnection, pipeline_id: int) -> list[queries.jobs.Queued]:
    """Apply ``pipeline.progress`` under the pipeline's row lock; returns the jobs enqueued.

    Runs inside the caller's transaction. The row lock serialises concurrent job completions of
    the same pipeline, so each sees the other's result.
    """
    row = await queries.pipelines.lock(conn, pipeline_id)
    if row is None:
        return []
    jobs = await queries.jobs.for_pipeline(conn, pipeline_id)
    states = [
        pipeline.JobState(
            name=job["name"],
            stage_idx=job["stage_idx"],
            needs=job["spec"].get("needs"),
            when=When(job["spec"].get("when", "on_success")),
            allow_failure=bool(job["spec"].get("allow_failure")),
            status=JobStatus(job["status"]),
        )
        for job in jobs
    ]
    progress = pipeline.progress(states)
    ids = {job["name"]: job["id"] for job in jobs}
    enqueued = await queries.jobs.enqueue(conn, (ids[name] for name in progress.enqueue))
    await queries.jobs.set_status(conn, (ids[name] for name in progress.skip), JobStatus.SKIPPED)
    # manual jobs become playable when their turn comes, not at creation (GitLab)
    await queries.jobs.set_status(conn, (ids[name] for name in progress.manual), JobStatus.MANUAL)
    if progress.status != row["status"]:
        await queries.pipelines.set_status(conn, pipeline_id, str(progress.status))
    return enqueued
