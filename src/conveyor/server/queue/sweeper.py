"""Periodic queue hygiene: unconfirmed hand-outs go back to pending, stuck jobs are ended.

Each pass is one short transaction whose statements lock ``FOR UPDATE SKIP LOCKED``, so any
number of server processes may sweep at once without ending the same job twice. GitLab's reasons are used:
``stuck_or_timeout_failure`` for a job pending too long, ``runner_system_failure`` for a running
job whose runner stopped talking (it died), and a canceling job that never confirmed ends
``canceled``. The log so far is kept: ending a job archives what it has.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from conveyor.protocol import FailureReason, JobStatus
from conveyor.server import periodic
from conveyor.server.db import queries, transaction
from conveyor.server.queue.notify import QueueNotifier
from conveyor.server.queue import retry
from conveyor.server.queue.progress import advance

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class SweepTimeouts:
    ack: float = 120
    pending: float = 86400
    running_no_update: float = 3600
    canceling: float = 1800


@dataclass(frozen=True)
class SweepResult:
    requeued: int = 0
    ended: int = 0


class Sweeper:
    def __init__(
        self, engine: AsyncEngine, notifier: QueueNotifier, timeouts: SweepTimeouts, *, interval: float, on_ended=None  # noqa: ANN001
    ) -> None:
        self._engine = engine
        self._notifier = notifier
        self._timeouts = timeouts
        self._interval = interval
        self._on_ended = on_ended  # e.g. wake the trace archiver

    async def run(self) -> None:
        await periodic.every(self._interval, self.sweep, log, "queue_sweep_failed")

    async def sweep(self) -> SweepResult:
        """One pass, one transaction: unconfirmed hand-outs back to pending, stale jobs ended."""
        async def work(conn: AsyncConnection) -> tuple[list[queries.jobs.Queued], int, list[queries.jobs.Queued]]:
            requeued = await queries.jobs.requeue_unacknowledged(conn, self._timeouts.ack)
            return requeued, *await self._end_stale(conn)

        # run again if PostgreSQL breaks a deadlock with it (a stale job locks its pipeline second)
        requeued, ended, enqueued = await transaction(self._engine, work)
        if requeued:
            log.warning("jobs_requeued_unacknowledged", job_ids=requeued)
        if requeued or enqueued:
            await self._notifier.tick([*requeued, *enqueued])
        if ended and self._on_ended:
            self._on_ended()
        return SweepResult(len(requeued), ended)

    async def _end_stale(self, conn: AsyncConnection) -> tuple[int, list[queries.jobs.Queued]]:
        """End stale jobs; returns how many, and the jobs their pipelines' progression queued."""
        ended = 0
        enqueued: list[queries.jobs.Queued] = []
        stale = await queries.jobs.stale(
            conn,
            pending_timeout=self._timeouts.pending,
            running_timeout=self._timeouts.running_no_update,
            canceling_timeout=self._timeouts.canceling,
        )
        pipelines = set()
        for job in stale:
            status, reason = _ending(job["status"])
            await queries.jobs.dequeue(conn, job["id"])
            await queries.jobs.finish(conn, job["id"], status, failure_reason=reason)
            enqueued += await retry.after_failure(conn, job["id"])  # retry: when: stuck_or_timeout_failure...
            pipelines.add(job["pipeline_id"])
            log.warning("job_ended_by_sweep", job_id=job["id"], was=job["status"], reason=reason)
            ended += 1
        for pipeline_id in sorted(pipelines):
            enqueued += await advance(conn, pipeline_id)
        return ended, enqueued


def _ending(status: str) -> tuple[str, str | None]:
    if status == JobStatus.PENDING:
        return JobStatus.FAILED, FailureReason.STUCK_OR_TIMEOUT_FAILURE
    if status == JobStatus.CANCELING:
        return JobStatus.CANCELED, None
    return JobStatus.FAILED, FailureReason.RUNNER_SYSTEM_FAILURE
