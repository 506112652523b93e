"""Runner wiring: the polling loop and the process entry point with signal handling.

``run`` polls ``POST jobs/request`` every ``check_interval`` (at once again after a job), echoing
``X-GitLab-Last-Update`` back as ``last_update``, and runs each job with a ``JobRunner``. After
``unhealthy_requests_limit`` consecutive 403s it pauses for ``unhealthy_interval``
(runner-api.md section 1.4). ``main`` runs it under asyncio: the first SIGTERM/SIGINT stops
polling and lets the running job finish, the second aborts that job.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Mapping
from typing import TypeVar

import structlog

from conveyor.protocol.enums import FailureReason
from conveyor.runner.client import CoordinatorClient
from conveyor.runner.errors import SettingsError
from conveyor.runner.executors import ExecutorFactory, default_executors
from conveyor.runner.job import JobRunner
from conveyor.runner.outcome import JobOutcome
from conveyor.runner.results import RejectedJob
from conveyor.runner.settings import RunnerSettings, job_environment

log = structlog.get_logger(__name__)
T = TypeVar("T")


async def run(
    settings: RunnerSettings,
    *,
    stop: asyncio.Event | None = None,
    max_jobs: int | None = None,
    executors: Mapping[str, ExecutorFactory] | None = None,
    abort: asyncio.Event | None = None,
    env: Mapping[str, str] | None = None,
) -> None:
    """Poll for jobs and run them one at a time until ``stop`` is set or ``max_jobs`` ran.

    Args:
        stop: set to stop polling; a running job is finished first.
        max_jobs: return after this many jobs (tests, one-shot runners).
        executors: name -> factory; ``settings.executor`` picks one. Default: ``shell``.
        abort: set to abort the running job (reported as ``runner_interrupted``) and return.
        env: base environment of jobs; default: this process's minus ``CONVEYOR_*``.

    Raises:
        SettingsError: unknown executor, or the coordinator rejected the runner token.
    """
    executors = default_executors() if executors is None else executors
    factory = executors.get(settings.executor)
    if factory is None:
        raise SettingsError(f"unknown executor {settings.executor!r}; available: {', '.join(sorted(executors))}")
    stop = stop or asyncio.Event()
    abort = abort or asyncio.Event()
    env = job_environment() if env is None else env
    async with CoordinatorClient(settings) as client:
        verified = await client.verify()
        if not verified.valid:
            raise SettingsError(f"the coordinator at {settings.url} rejected the runner token: {verified.error}")
        if verified.error:
            log.warning("could not verify the runner token; polling anyway", error=verified.error)
        log.info("runner started", url=settings.url, system_id=settings.system_id, executor=settings.executor)
        last_update: str | None = None
        unhealthy = jobs = 0
        while not (stop.is_set() or abort.is_set()) and (max_jobs is None or jobs < max_jobs):
            result = await _unless(stop, client.request_job(last_update))
            if result is None:
                break
            last_update = result.last_update
            if result.rejected is not None:
                await _report_rejected(client, result.rejected)
            if result.job is not None:
                unhealthy = 0
                log.info("job received", job_id=result.job.id)
                runner = JobRunner(result.job, client=client, settings=settings, executor=factory, env=env)
                try:
                    await _run_job(runner, abort)
                except Exception:  # a runner bug must not stop the polling loop
                    log.exception("job runner crashed", job_id=result.job.id)
                jobs += 1
                continue  # ask again at once: there may be more work queued
            if result.healthy:
                unhealthy = 0
                if result.error:
                    log.warning("checking for jobs failed", error=result.error)
            else:
                unhealthy += 1
                log.error("checking for jobs forbidden", error=result.error, consecutive=unhealthy)
                if unhealthy >= settings.unhealthy_requests_limit:
                    log.error("runner is unhealthy; pausing", seconds=settings.unhealthy_interval)
                    await _unless(stop, asyncio.sleep(settings.unhealthy_interval))
                    unhealthy = 0
                    continue
            await _unless(stop, asyncio.sleep(settings.check_interval))
    log.info("runner stopped", jobs=jobs)


async def _run_job(runner: JobRunner, abort: asyncio.Event) -> JobOutcome:
    job = asyncio.create_task(runner.run())
    aborted = asyncio.create_task(abort.wait())
    try:
        await asyncio.wait({job, aborted}, return_when=asyncio.FIRST_COMPLETED)
        if not job.done():
            runner.abort()
        return await job
    finally:
        aborted.cancel()
        if not job.done():  # we were cancelled ourselves: take the job down with us
            job.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await job


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


def main(settings: RunnerSettings, *, executors: Mapping[str, ExecutorFactory] | None = None) -> int:
    """Run the runner until signalled; returns the process exit code."""
    return asyncio.run(_main(settings, executors))


async def _main(settings: RunnerSettings, executors: Mapping[str, ExecutorFactory] | None) -> int:
    stop, abort = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(name: str) -> None:
        if not stop.is_set():
            log.warning("signal received: finishing the running job; send it again to abort", signal=name)
            stop.set()
        else:
            log.warning("second signal: aborting the running job", signal=name)
            abort.set()

    signals = (signal.SIGTERM, signal.SIGINT)
    for sig in signals:
        loop.add_signal_handler(sig, on_signal, sig.name)
    try:
        await run(settings, stop=stop, abort=abort, executors=executors)
    except SettingsError as exc:
        log.error(str(exc))
        return 1
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
    return 0
