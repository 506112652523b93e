"""What a person does through the API: play a job, retry a job or a pipeline (GitLab's
``PlayBuildService``, ``RetryJobService`` and ``RetryPipelineService``).

Each action is one short transaction that locks the job's pipeline first, then the job, then
runs ``advance``; deadlocks with other orders (a claim) are retried by ``db.transaction``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from conveyor.protocol import JobStatus
from conveyor.server.db import queries, transaction
from conveyor.server.errors import BadRequest, Forbidden, NotFound
from conveyor.server.queue import retry, states
from conveyor.server.queue.progress import advance

UNPLAYABLE = "400 Bad request - Unplayable Job"
NOT_RETRYABLE = "403 Forbidden - Job is not retryable"
NOT_RETRYABLE_PIPELINE = "403 Forbidden - Pipeline has no failed or canceled jobs to retry"


@dataclass(frozen=True)
class ActionResult:
    job_id: int  # the job played, or the new attempt of a retried one
    enqueued: list[queries.jobs.Queued]


class JobActions:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def play(self, project_id: int, job_id: int, variables: dict[str, str] | None = None) -> ActionResult:
        """Run a manual job, or a scheduled (delayed) one now; a finished manual job is retried.

        ``variables`` (GitLab's ``job_variables_attributes``) are added to a manual job's own.
        Raises ``BadRequest`` ("Unplayable Job") for any other job, as GitLab's API does.
        """

        async def work(conn: AsyncConnection) -> ActionResult:
            job = await _lock(conn, project_id, job_id)
            status = JobStatus(job["status"])
            if status in (JobStatus.MANUAL, JobStatus.SCHEDULED):
                if variables and status is JobStatus.MANUAL:
                    await queries.jobs.add_variables(conn, job_id, variables)
                enqueued = await states.start_now(conn, [job], [status])
                if status is JobStatus.MANUAL:
                    await retry.reset_skipped(conn, job["pipeline_id"], job["name"])
                enqueued += await advance(conn, job["pipeline_id"])
                return ActionResult(job_id, enqueued)
            if status in retry.RETRYABLE and not job["retried"] and _action(job):
                return await _retry(conn, job)
            raise BadRequest(UNPLAYABLE)

        return await transaction(self._engine, work)

    async def retry(self, project_id: int, job_id: int) -> ActionResult:
        """A new attempt of a finished (success, failed, canceled) job; 403 for any other."""

        async def work(conn: AsyncConnection) -> ActionResult:
            job = await _lock(conn, project_id, job_id)
            if JobStatus(job["status"]) not in retry.RETRYABLE or job["retried"]:
                raise Forbidden(NOT_RETRYABLE)
            return await _retry(conn, job)

        return await transaction(self._engine, work)

    async def retry_pipeline(self, project_id: int, pipeline_id: int) -> list[queries.jobs.Queued]:
        """A new attempt of every failed or canceled job (GitLab's ``RetryPipelineService``); the
        jobs skipped because of them decide again. Returns what was enqueued."""

        async def work(conn: AsyncConnection) -> list[queries.jobs.Queued]:
            row = await queries.pipelines.lock(conn, pipeline_id)
            if row is None or row["project_id"] != project_id:
                raise NotFound("404 Pipeline Not Found")
            jobs = await queries.jobs.for_pipeline(conn, pipeline_id)
            failed = [j for j in jobs if j["status"] in (JobStatus.FAILED, JobStatus.CANCELED)]
            if not failed:
                raise Forbidden(NOT_RETRYABLE_PIPELINE)
            for job in await queries.jobs.lock_many(conn, (j["id"] for j in failed)):
                await queries.jobs.clone_for_retry(conn, job["id"])  # created: advance decides, manual stays manual
            for job in failed:
                await retry.reset_skipped(conn, pipeline_id, job["name"])
            return await advance(conn, pipeline_id)

        return await transaction(self._engine, work)


async def _lock(conn: AsyncConnection, project_id: int, job_id: int) -> RowMapping:
    """Lock the job's pipeline, then the job (the project's lock order)."""
    job = await queries.jobs.get(conn, job_id)
    if job is None or job["project_id"] != project_id:
        raise NotFound("404 Job Not Found")
    await queries.pipelines.lock(conn, job["pipeline_id"])
    locked = await queries.jobs.lock(conn, job_id)
    assert locked is not None  # jobs are deleted only with their pipeline, which we hold
    return locked


async def _retry(conn: AsyncConnection, job: RowMapping) -> ActionResult:
    new_id, enqueued = await retry.retry_locked(conn, job)
    enqueued += await advance(conn, job["pipeline_id"])
    return ActionResult(new_id, enqueued)


def _action(job: RowMapping) -> bool:
    return states.when_of(job["spec"]) in retry.ACTIONS
