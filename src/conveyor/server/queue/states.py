"""Stored jobs as ``pipeline.progress`` sees them, a locked pipeline's status recomputed, and
jobs started by hand or by the clock (played, due, retried actions)."""

from __future__ import annotations

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from conveyor import pipeline
from conveyor.protocol import JobStatus, When
from conveyor.server.db import queries


def job_state(job: RowMapping) -> pipeline.JobState:
    """What ``pipeline.progress`` needs of a stored job (``allow_failure`` after its exit code)."""
    spec = job["spec"]
    return pipeline.JobState(
        name=job["name"],
        stage_idx=job["stage_idx"],
        needs=spec.get("needs"),
        when=when_of(spec),
        allow_failure=allowed_to_fail(job),
        status=JobStatus(job["status"]),
    )


def when_of(spec: dict) -> When:
    """The job's ``when``; a job with ``start_in`` is delayed even if its spec says on_success
    (the YAML loader may store ``when: delayed`` as an on_success job with a timer)."""
    when = When(spec.get("when", "on_success"))
    if when is When.ON_SUCCESS and spec.get("start_in") is not None:
        return When.DELAYED
    return when


def allowed_to_fail(job: RowMapping) -> bool:
    """The job's effective ``allow_failure``: ``allow_failure: exit_codes`` decides on its exit code."""
    spec = job["spec"]
    codes = spec.get("allow_failure_exit_codes") or []
    return pipeline.allowed_to_fail(bool(spec.get("allow_failure")), codes, job["exit_code"])


def status_of(jobs: list[RowMapping]) -> JobStatus:
    """The pipeline's composite status over its current (not retried) jobs."""
    return pipeline.composite((JobStatus(j["status"]), allowed_to_fail(j)) for j in jobs) or JobStatus.SKIPPED


async def refresh_status(conn: AsyncConnection, pipeline_id: int) -> JobStatus | None:
    """Recompute and store the status of a pipeline the caller has locked (no progression)."""
    row = await queries.pipelines.get(conn, pipeline_id)
    if row is None:
        return None
    status = status_of(await queries.jobs.for_pipeline(conn, pipeline_id))
    if status != row["status"]:
        await queries.pipelines.set_status(conn, pipeline_id, str(status))
    return status


async def start_now(conn: AsyncConnection, jobs: list[RowMapping], statuses: list[str]) -> list[queries.jobs.Queued]:
    """Start jobs now (from one of ``statuses``): pending, or ``waiting_for_resource`` when the job
    has a resource group (``advance`` hands the group over). The pipeline is locked by the caller."""
    plain = [job["id"] for job in jobs if not job["resource_group"]]
    grouped = [job["id"] for job in jobs if job["resource_group"] and job["status"] in statuses]
    await queries.jobs.set_status(conn, grouped, JobStatus.WAITING_FOR_RESOURCE)
    return await queries.jobs.enqueue_from(conn, plain, statuses)
