"""The scheduler: start delayed jobs when their time comes, and hand over free resource groups.

GitLab runs ``Ci::BuildScheduleWorker`` at each job's ``scheduled_at`` and
``AssignResourceFromResourceGroupWorker`` when a group frees up; here one background task per
server does both every ``interval`` seconds, in short transactions: each due pipeline is locked
with ``FOR UPDATE SKIP LOCKED`` (another server process is already on it: skip it this pass), its
due jobs become pending (or wait for their resource group), and ``advance`` recomputes it. Runners
are woken through the queue notifier.

A job whose time passed more than ``STALE_AFTER`` ago (the server was down) is not started late
but failed with ``stale_schedule``, as GitLab's ``Ci::StuckBuilds::DropScheduledService`` does;
``retry: when: stale_schedule`` then schedules a new attempt.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from conveyor.protocol import JobStatus
from conveyor.server import periodic
from conveyor.server.db import queries
from conveyor.server.queue import resources, retry, states
from conveyor.server.queue.notify import QueueNotifier
from conveyor.server.queue.progress import advance

log = structlog.get_logger(__name__)

STALE_AFTER = timedelta(hours=1)


@dataclass(frozen=True)
class ScheduleResult:
    started: int = 0  # delayed jobs whose time came
    handed_over: int = 0  # jobs that got their resource group


class Scheduler:
    def __init__(self, engine: AsyncEngine, notifier: QueueNotifier, *, interval: float, pulse: periodic.Pulse | None = None) -> None:
        self._engine = engine
        self._notifier = notifier
        self._interval = interval
        self._pulse = pulse  # passes only when it says a delayed job is due or a job waits for a group

    async def run(self) -> None:
        await periodic.every(self._interval, self.tick, log, "scheduler_pass_failed", pulse=self._pulse, name="scheduler")

    async def tick(self) -> ScheduleResult:
        """One pass; safe to run from any number of server processes at once."""
        async with self._engine.connect() as conn:  # both work lists: one read transaction a pass
            pipeline_ids = await queries.jobs.due_pipelines(conn)
            groups = await queries.resource_groups.with_waiting_jobs(conn)
        started = await self._start_due(pipeline_ids)
        handed = await resources.pass_over(self._engine, groups)
        if started or handed:
            await self._notifier.tick([*started, *handed])
        return ScheduleResult(len(started), len(handed))

    async def _start_due(self, pipeline_ids: list[int]) -> list[queries.jobs.Queued]:
        enqueued: list[queries.jobs.Queued] = []
        for pipeline_id in pipeline_ids:
            async with self._engine.begin() as conn:
                if await queries.pipelines.lock_unless_busy(conn, pipeline_id) is None:
                    continue
                due = await queries.jobs.due_in_pipeline(conn, pipeline_id)
                stale_before = datetime.now(UTC) - STALE_AFTER
                stale = [job for job in due if job["scheduled_at"] < stale_before]
                for job in stale:
                    await queries.jobs.finish(conn, job["id"], JobStatus.FAILED, failure_reason="stale_schedule")
                    enqueued += await retry.after_failure(conn, job["id"])
                due = [job for job in due if job not in stale]
                enqueued += await states.start_now(conn, due, [JobStatus.SCHEDULED])
                enqueued += await advance(conn, pipeline_id)
            if due:
                log.info("delayed_jobs_started", pipeline_id=pipeline_id, job_ids=[job["id"] for job in due])
        return enqueued
