"""Auto-cancel redundant pipelines when a newer one starts on the same ref (``interruptible``).

GitLab's ``Ci::PipelineCreation::CancelRedundantPipelinesService`` with the default
``workflow:auto_cancel:on_new_commit: conservative``: every older pipeline of the ref that is still
cancelable (created, waiting_for_resource, pending, running, scheduled) and was built for another
commit is canceled whole, unless one of its jobs has started (running, canceling, success,
failed) without being ``interruptible``. Jobs that have not started count as interruptible.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import structlog
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from conveyor.protocol import JobStatus
from conveyor.server.db import queries, transaction
from conveyor.server.queue.cancel import cancel_jobs_locked

log = structlog.get_logger(__name__)

STARTED = frozenset({JobStatus.RUNNING, JobStatus.CANCELING, JobStatus.SUCCESS, JobStatus.FAILED})


@dataclass(frozen=True)
class Redundant:
    canceled: list[int]  # the older pipelines canceled
    enqueued: list[queries.jobs.Queued]  # jobs that got a resource group the canceled ones held


async def cancel_redundant(
    engine: AsyncEngine, project_id: int, ref: str, sha: str, pipeline_id: int, older: Sequence[RowMapping] | None = None,
) -> Redundant:
    """Cancel the older pipelines of ``ref`` that ``pipeline_id`` makes redundant.

    One short transaction per older pipeline, each locking that pipeline before its jobs.
    ``older``: ``older_cancelable`` read already (in the transaction that created the pipeline).
    """
    if older is None:
        async with engine.connect() as conn:
            older = await older_cancelable(conn, project_id, ref, pipeline_id, sha)
    result = Redundant([], [])
    for row in older:
        if row["sha"] == sha:  # a rerun of the same commit is not redundant
            continue

        async def work(conn: AsyncConnection, old: int = row["id"]) -> list[queries.jobs.Queued] | None:
            return await _cancel_if_interruptible(conn, old, pipeline_id)

        enqueued = await transaction(engine, work)
        if enqueued is not None:
            result.canceled.append(row["id"])
            result.enqueued.extend(enqueued)
            log.info("pipeline_auto_canceled", pipeline_id=row["id"], canceled_by=pipeline_id, ref=ref)
    return result


async def older_cancelable(conn: AsyncConnection, project_id: int, ref: str, pipeline_id: int, sha: str) -> Sequence[RowMapping]:
    """The pipelines of ``ref`` older than ``pipeline_id``, built for another commit than ``sha``,
    that are still cancelable (id and sha)."""
    return await queries.pipelines.cancelable_on_ref(conn, project_id, ref, before_id=pipeline_id, other_than_sha=sha)


def interruptible(jobs) -> bool:  # noqa: ANN001
    """Conservative auto-cancel: no started job is non-interruptible."""
    return not any(
        JobStatus(job["status"]) in STARTED and not job["spec"].get("interruptible") for job in jobs
    )


async def _cancel_if_interruptible(conn: AsyncConnection, pipeline_id: int, by: int) -> list[queries.jobs.Queued] | None:
    """What canceling enqueued, or None when the pipeline is not (or no longer) cancelable."""
    row = await queries.pipelines.lock(conn, pipeline_id)
    if row is None or row["status"] not in queries.pipelines.CANCELABLE:
        return None
    jobs = await queries.jobs.for_pipeline(conn, pipeline_id)
    if not interruptible(jobs):
        return None
    enqueued = await cancel_jobs_locked(conn, row, jobs)  # locked and read already: not again
    await queries.pipelines.mark_auto_canceled(conn, pipeline_id, by)
    return enqueued
