"""Manager: serves several runner entries at once, within ``concurrent`` and each entry's ``limit``.

Like gitlab-runner ``commands/multi.go``: each ``[[runners]]`` entry polls ``POST jobs/request``
every ``check_interval`` (at once again after it got a job) while it holds a free slot, both its
own (``limit``) and a global one (``concurrent``); a job keeps its slots until its final update.
Each entry echoes ``X-GitLab-Last-Update`` back as ``last_update`` and, after
``unhealthy_requests_limit`` consecutive 403s, pauses for ``unhealthy_interval`` (runner-api.md
1.4). ``stop`` ends polling and waits for running jobs; ``abort`` interrupts them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Mapping, Sequence
from typing import TypeVar

import structlog

from conveyor.protocol.enums import FailureReason
from conveyor.protocol.models import JobPayload
from conveyor.runner import paths
from conveyor.runner.client import CoordinatorClient
from conveyor.runner.errors import SettingsError
from conveyor.runner.executors.base import ExecutorFactory
from conveyor.runner.job import JobRunner
from conveyor.runner.metrics import Metrics
from conveyor.runner.results import RejectedJob
from conveyor.runner.settings import RunnerSettings

log = structlog.get_logger(__name__)
T = TypeVar("T")


class Manager:
    """Runs the polling loops of all entries and the jobs they receive."""

    def __init__(
        self,
        entries: Sequence[RunnerSettings],
        *,
        executors: Mapping[str, ExecutorFactory],
        env: Mapping[str, str],
        concurrent: int = 1,
        metrics: Metrics | None = None,
    ) -> None:
        if not entries:
            raise SettingsError("no runner entries configured: run `conveyor runner register` first")
        for settings in entries:
            if settings.executor not in executors:
                available = ", ".join(sorted(executors))
                raise SettingsError(f"unknown executor {settings.executor!r}; available: {available}")
        self._entries = list(entries)
        self._executors = executors
        self._env = env
        self._slots = asyncio.Semaphore(max(concurrent, 1))
        self.metrics = metrics or Metrics()
        self._running: set[JobRunner] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._started = 0
        self._slots_in_use: dict[str, set[int]] = {}

    async def serve(
        self, stop: asyncio.Event, abort: asyncio.Event | None = None, *, max_jobs: int | None = None
    ) -> None:
        """Poll and run jobs until ``stop`` (then finish running jobs) or ``max_jobs`` started.

        Raises:
            SettingsError: a coordinator rejected an entry's token at startup.
        """
        abort = abort or asyncio.Event()
        clients = [CoordinatorClient(settings, metrics=self.metrics) for settings in self._entries]
        watcher = asyncio.create_task(self._abort_on(abort, stop))
        try:
            for client, settings in zip(clients, self._entries):
                await self._verify(client, settings)
            pollers = [
                asyncio.create_task(self._poll(client, settings, stop, abort, max_jobs))
                for client, settings in zip(clients, self._entries)
            ]
            try:
                await asyncio.gather(*pollers)
            finally:
                for poller in pollers:
                    poller.cancel()
                await asyncio.gather(*pollers, return_exceptions=True)
            if self._tasks:
                log.info("waiting for running jobs", jobs=len(self._tasks))
                await asyncio.gather(*self._tasks, return_exceptions=True)
        finally:
            watcher.cancel()
            for task in self._tasks:  # only when we are cancelled ourselves
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            for client in clients:
                await client.aclose()
        log.info("runner stopped", jobs=self._started)

    async def _abort_on(self, abort: asyncio.Event, stop: asyncio.Event) -> None:
        await abort.wait()
        stop.set()  # an abort also ends polling
        for runner in list(self._running):
            runner.abort()

    async def _verify(self, client: CoordinatorClient, settings: RunnerSettings) -> None:
        verified = await client.verify()
        if not verified.valid:
            raise SettingsError(f"the coordinator at {settings.url} rejected the runner token: {verified.error}")
        if verified.error:
            log.warning("could not verify the runner token; polling anyway", error=verified.error)
        log.info("runner started", runner=settings.name, url=settings.url, executor=settings.executor,
                 system_id=settings.system_id, limit=settings.limit)  # fmt: skip

    async def _poll(
        self,
        client: CoordinatorClient,
        settings: RunnerSettings,
        stop: asyncio.Event,
        abort: asyncio.Event,
        max_jobs: int | None,
    ) -> None:
        own = asyncio.Semaphore(settings.limit) if settings.limit else None
        last_update: str | None = None
        unhealthy = 0
        while not (stop.is_set() or abort.is_set()):
            if max_jobs is not None and self._started >= max_jobs:
                return
            if not await _unless(stop, self._acquire(own)):
                return
            released = False
            try:
                if max_jobs is not None and self._started >= max_jobs:
                    return
                result = await _unless(stop, client.request_job(last_update))
                if result is None:
                    return
                last_update = result.last_update
                if result.rejected is not None:
                    await _report_rejected(client, result.rejected)
                if result.job is not None:
                    unhealthy = 0
                    self._started += 1
                    slot = self._take_slot(settings, result.job)
                    self._start_job(JobRunner(
                        result.job, client=client, settings=settings,
                        executor=self._executors[settings.executor], env=self._env, slot=slot[1],
                    ), own, slot)  # fmt: skip
                    released = True  # the job task owns the slots now
                    continue  # ask again at once: there may be more work queued
            finally:
                if not released:
                    self._release(own)
            if result.healthy:
                unhealthy = 0
                if result.error:
                    log.warning("checking for jobs failed", runner=settings.name, error=result.error)
            else:
                unhealthy += 1
                log.error("checking for jobs forbidden", runner=settings.name, error=result.error,
                          consecutive=unhealthy)  # fmt: skip
                if unhealthy >= settings.unhealthy_requests_limit:
                    log.error("runner is unhealthy; pausing", runner=settings.name, seconds=settings.unhealthy_interval)
                    await _unless(stop, asyncio.sleep(settings.unhealthy_interval))
                    unhealthy = 0
                    continue
            await _unless(stop, asyncio.sleep(settings.check_interval))

    async def _acquire(self, own: asyncio.Semaphore | None) -> bool:
        if own is not None:
            await own.acquire()
        try:
            await self._slots.acquire()
        except BaseException:
            if own is not None:
                own.release()
            raise
        return True

    def _release(self, own: asyncio.Semaphore | None) -> None:
        self._slots.release()
        if own is not None:
            own.release()

    def _take_slot(self, settings: RunnerSettings, job: JobPayload) -> tuple[str, int]:
        """The lowest slot no running job of the same project on this entry holds."""
        project = f"{settings.token}:{paths.project_slug(job.git_info.repo_url) or job.job_info.project_id}"
        busy = self._slots_in_use.setdefault(project, set())
        slot = next(n for n in range(len(busy) + 1) if n not in busy)
        busy.add(slot)
        return project, slot

    def _start_job(self, runner: JobRunner, own: asyncio.Semaphore | None, slot: tuple[str, int]) -> None:
        name = runner.settings.name
        log.info("job received", runner=name, job_id=runner.job.id)
        self.metrics.job_started(name)
        self._running.add(runner)

        async def job() -> None:
            state, reason = "failed", FailureReason.RUNNER_SYSTEM_FAILURE.value
            try:
                outcome = await runner.run()
                state, reason = outcome.state, outcome.failure_reason
            except Exception:  # a runner bug must not stop the other jobs or the polling
                log.exception("job runner crashed", job_id=runner.job.id)
            finally:
                self._running.discard(runner)
                self._slots_in_use[slot[0]].discard(slot[1])
                self.metrics.job_finished(name, state, reason)
                self._release(own)

        task = asyncio.create_task(job(), name=f"job-{runner.job.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


async def _unless(stop: asyncio.Event, work: Awaitable[T]) -> T | None:
    """Await ``work`` unless ``stop`` is set first (then cancel it and return None)."""
    task = asyncio.ensure_future(work)
    stopped = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    return None if task.cancelled() else task.result()


async def _report_rejected(client: CoordinatorClient, rejected: RejectedJob) -> None:
    """A job we could not decode is failed at once instead of timing out on the server."""
    log.error("received a job that cannot be decoded", job_id=rejected.job_id, error=rejected.error)
    if rejected.job_id is not None and rejected.token:
        await client.update_job(
            rejected.job_id, rejected.token, "failed", failure_reason=FailureReason.RUNNER_SYSTEM_FAILURE.value
        )
