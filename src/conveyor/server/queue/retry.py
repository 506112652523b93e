"""Retried jobs (GitLab's ``Ci::RetryJobService`` and ``Gitlab::Ci::Build::AutoRetry``).

A retry never edits the finished job: it is marked ``retried`` and a new job with the same name,
stage and spec is inserted as its next attempt. Progression, the pipeline's status and the jobs
list ignore retried jobs, so a job that failed and then passed on retry leaves a green pipeline.
The caller holds the pipeline's row lock and calls ``advance`` afterwards, in the same
transaction.
"""

from __future__ import annotations

import structlog
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from conveyor import pipeline
from conveyor.protocol import JobStatus, When
from conveyor.server.db import queries
from conveyor.server.queue import states

log = structlog.get_logger(__name__)

RETRYABLE = frozenset({JobStatus.SUCCESS, JobStatus.FAILED, JobStatus.CANCELED})  # Ci::Build#retryable?
ACTIONS = frozenset({When.MANUAL, When.DELAYED})  # retried, they run at once (enqueue_if_actionable)


async def retry_locked(
    conn: AsyncConnection, job: RowMapping, *, reset: bool = True
) -> tuple[int, list[queries.jobs.Queued]]:
    """Insert the next attempt of the finished ``job``; returns its id and what was enqueued.

    As ``ResetSkippedJobsService`` (unless ``reset`` is False): jobs skipped because of this one
    (later stages, and jobs that need it) go back to ``created`` for ``advance`` to decide again.
    A manual or delayed job's new attempt is started at once, as GitLab does when someone
    retries an action.
    """
    new_id = await queries.jobs.clone_for_retry(conn, job["id"])
    if reset:
        await reset_skipped(conn, job["pipeline_id"], job["name"])
    enqueued: list[queries.jobs.Queued] = []
    if states.when_of(job["spec"]) in ACTIONS:
        new = await queries.jobs.get(conn, new_id)
        enqueued = await states.start_now(conn, [new], [JobStatus.CREATED])
    return new_id, enqueued


async def reset_skipped(conn: AsyncConnection, pipeline_id: int, name: str) -> None:
    """Jobs skipped because ``name`` had not run (or failed) go back to ``created``."""
    current = await queries.jobs.for_pipeline(conn, pipeline_id)
    reset = pipeline.reset_after_play([states.job_state(j) for j in current], name)
    ids = {j["name"]: j["id"] for j in current}
    await queries.jobs.set_status(conn, (ids[n] for n in reset), JobStatus.CREATED)


async def after_failure(conn: AsyncConnection, job_id: int) -> list[queries.jobs.Queued]:
    """Retry a job that has just failed if ``retry:`` allows it; returns what that enqueued (a
    manual job's new attempt starts at once; any other is left ``created`` for ``advance``).

    Called in the transaction that failed it, after the pipeline's lock, so the pipeline never
    shows the failure that is being retried.
    """
    job = await queries.jobs.get(conn, job_id)
    if job is None or job["retried"]:
        return []
    spec = job["spec"]
    retries = await queries.jobs.retry_count(conn, job["pipeline_id"], job["name"])
    if not pipeline.should_retry(
        JobStatus(job["status"]),
        job["failure_reason"],
        retry_max=int(spec.get("retry_max") or 0),
        retry_when=spec.get("retry_when") or [],
        retries=retries,
        exit_codes=spec.get("retry_exit_codes") or [],
        exit_code=job["exit_code"],
    ):
        return []
    # no reset: the failure is retried in the transaction that records it, so no job was ever
    # skipped because of it (GitLab resets here; the outcome after advance is the same)
    new_id, enqueued = await retry_locked(conn, job, reset=False)
    log.info("job_retried", job_id=job_id, new_job_id=new_id, failure_reason=job["failure_reason"], attempt=retries + 2)
    return enqueued
