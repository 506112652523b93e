"""Cancel a job or a whole pipeline (runner-api.md section 6).

A job not yet handed out is canceled at once. A running job whose runner advertised
``cancel_gracefully`` goes to ``canceling``: its next PATCH or PUT answer carries
``Job-Status: canceling``, the runner stops the script, runs ``after_script`` and reports, and
the job ends ``canceled``. Other runners get the hard path: the job is ``canceled`` now and the
runner's next request is answered 403 with ``Job-Status: canceled``, which makes it abort.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from conveyor.protocol import JobStatus
from conveyor.server.db import queries, transaction
from conveyor.server.errors import NotFound
from conveyor.server.queue.progress import advance, apply

# not handed to a runner yet: canceled at once (a scheduled job is unscheduled)
NOT_STARTED = {
    JobStatus.CREATED,
    JobStatus.WAITING_FOR_RESOURCE,
    JobStatus.PENDING,
    JobStatus.MANUAL,
    JobStatus.SCHEDULED,
}


class Cancellation:
    """Locks the pipeline, then its jobs (the project's lock order), in one short transaction."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def cancel_job(self, job_id: int) -> str:
        """Cancel one job; returns its status afterwards (finished jobs are left as they are)."""

        async def work(conn: AsyncConnection) -> str:
            job = await queries.jobs.get(conn, job_id)
            if job is None:
                raise NotFound("404 Job Not Found")
            await queries.pipelines.lock(conn, job["pipeline_id"])
            status = await _cancel_locked(conn, await queries.jobs.lock(conn, job_id))
            await advance(conn, job["pipeline_id"])
            return status

        return await transaction(self._engine, work)

    async def cancel_pipeline(self, pipeline_id: int) -> None:
        await transaction(self._engine, lambda conn: cancel_pipeline_locked(conn, pipeline_id))


async def cancel_pipeline_locked(conn: AsyncConnection, pipeline_id: int) -> list[queries.jobs.Queued]:
    """Cancel every unfinished job of the pipeline, in the caller's transaction; returns what that
    enqueued (jobs of other pipelines that got a resource group the canceled jobs held)."""
    row = await queries.pipelines.lock(conn, pipeline_id)
    if row is None:
        return []
    return await cancel_jobs_locked(conn, row, await queries.jobs.for_pipeline(conn, pipeline_id))


async def cancel_jobs_locked(
    conn: AsyncConnection, row: Mapping[str, Any], jobs: Sequence[Mapping[str, Any]]
) -> list[queries.jobs.Queued]:
    """``cancel_pipeline_locked`` of the pipeline ``row`` the caller has locked, whose current
    ``jobs`` it has read under that lock."""
    unfinished = [j["id"] for j in jobs if not JobStatus(j["status"]).is_complete]
    now: dict[int, Mapping[str, Any]] = {}
    for job in await queries.jobs.lock_many(conn, unfinished):
        now[job["id"]] = {**job, "status": await _cancel_locked(conn, job)}
    # the jobs as they are now, without reading them again: the locked ones as just changed, the
    # others finished already (nothing changes a finished job under the pipeline's lock)
    enqueued, _ = await apply(conn, row, [now.get(j["id"], j) for j in jobs])
    return enqueued


async def _cancel_locked(conn: AsyncConnection, job) -> str:  # noqa: ANN001
    status = JobStatus(job["status"])
    if status in NOT_STARTED:
        await queries.jobs.cancel_queued(conn, job["id"])
        return JobStatus.CANCELED
    if status == JobStatus.RUNNING:
        if await queries.jobs.cancels_gracefully(conn, job):
            await queries.jobs.set_status(conn, [job["id"]], JobStatus.CANCELING)
            return JobStatus.CANCELING
        await queries.jobs.finish(conn, job["id"], JobStatus.CANCELED)
        return JobStatus.CANCELED
    return status
