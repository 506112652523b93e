"""JobRunner: one job's life cycle, from pickup to the final update.

1. Acknowledge (two-phase commit): ``PUT state=running`` with ``output {}``. An abort answer
   drops the job; ``Job-Status: canceling`` fails it as canceled without running anything.
2. Open the trace (spool + masker + limit) and start the sender.
3. ``prepare_executor`` -> ``get_sources`` -> ``step_<name>`` for each step -> ``after_script``
   (own shell, ``when: always``, own 5-minute timeout, failures ignored) ->
   ``cleanup_file_variables``; the job timeout (``runner_info.timeout``, 0 -> 7200 s) covers
   everything before after_script. Where stages run on the host, one with nothing but directory
   work starts no shell: ``get_sources`` with ``GIT_STRATEGY: none`` creates the project directory
   and logs what its script would print; ``cleanup_file_variables`` with no temporary directory
   to remove only logs its section (gitlab-runner skips no-op stages altogether).
4. Flush the trace and send the final state through the sender.

A graceful cancel (``Job-Status: canceling``) interrupts the running script stage and still
runs after_script. A hard abort (403, ``Job-Status: canceled``) or :meth:`JobRunner.abort` kills
everything at once, skipping after_script.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
from collections.abc import Iterator, Mapping
from pathlib import Path

import structlog

from conveyor.protocol.enums import FailureReason
from conveyor.protocol.models import JobPayload
from conveyor.runner import info, outcome, paths, predefined
from conveyor.runner.client import CoordinatorClient
from conveyor.runner.errors import ExecutorError
from conveyor.runner.files import artifacts, cache
from conveyor.runner.executors.base import Executor, ExecutorContext, ExecutorFactory, ExitResult
from conveyor.runner.outcome import SUCCESS, JobOutcome, Verdict, format_duration, map_failure_reason
from conveyor.runner.results import UpdateKind
from conveyor.runner.script import bash, git, variables
from conveyor.runner.settings import RunnerSettings
from conveyor.runner.trace import ansi
from conveyor.runner.trace.sender import FinalOutcome, SenderTiming, TraceSender
from conveyor.runner.trace.session import TraceSession

log = structlog.get_logger(__name__)

DEFAULT_JOB_TIMEOUT = 7200.0
AFTER_SCRIPT_TIMEOUT = 300.0
CLEANUP_TIMEOUT = 60.0
CANCELED_MESSAGE = "script canceled externally (UI, API)"


class JobRunner:
    """Runs one job. Create one per job; :meth:`run` once."""

    def __init__(
        self,
        job: JobPayload,
        *,
        client: CoordinatorClient,
        settings: RunnerSettings,
        executor: ExecutorFactory,
        executor_name: str | None = None,
        env: Mapping[str, str] | None = None,
        timing: SenderTiming | None = None,
        slot: int = 0,
    ) -> None:
        self.job = job
        self._client = client
        self._settings = settings
        self._executor_factory = executor
        self._executor_name = executor_name or settings.executor
        self._env = dict(env or {})
        self._timing = timing or SenderTiming(
            update=settings.update_interval,
            force_send=settings.force_send_interval,
            final_retries=settings.final_update_retries,
            final_backoff=settings.final_update_backoff,
        )
        self._cancel = asyncio.Event()  # graceful: stop script stages, run after_script
        self._abort = asyncio.Event()  # hard: kill everything now
        self._interrupted = False
        # <builds>/<short token>/<slot>/<project>: concurrent jobs of one project never share a
        # checkout (gitlab-runner's CI_CONCURRENT_PROJECT_ID directories)
        self.slot = slot
        self.slot_dir = settings.builds_dir / predefined.short_token(settings.token) / str(slot)
        self.project_dir = paths.project_dir(self.slot_dir, job)
        self.tmp_dir = paths.tmp_dir(self.project_dir)
        self._trace: TraceSession | None = None
        self._executor: Executor | None = None
        self._resolved: dict[tuple[str, Path, Path], list[variables.JobVariable]] = {}

    @property
    def settings(self) -> RunnerSettings:
        return self._settings

    def abort(self) -> None:
        """Stop the job at once (runner shutdown); it is reported as ``runner_interrupted``."""
        self._interrupted = True
        self._abort.set()

    def cancel(self) -> None:
        """Cancel gracefully, as ``Job-Status: canceling`` does."""
        self._cancel.set()

    async def run(self) -> JobOutcome:
        job = self.job
        ack = await self._client.update_job(job.id, job.token, "running")
        if ack.kind is UpdateKind.ABORT:
            log.warning("job dropped at acknowledgement", job_id=job.id, job_status=ack.job_status)
            return JobOutcome(job.id, "dropped", acknowledgement=ack.kind)
        if ack.cancel_requested:
            self._cancel.set()
        all_vars = self._variables("running")
        debug = variables.is_true(all_vars, "CI_DEBUG_TRACE")
        try:
            timestamps = variables.lookup(all_vars, "FF_TIMESTAMPS").strip()
            stamped = variables.is_true(all_vars, "FF_TIMESTAMPS") if timestamps else self._settings.timestamps
            trace = TraceSession.open(self._settings, job, timestamps=stamped)
        except OSError as exc:  # failure before start: report it instead of leaving the job hanging
            log.error("cannot open the trace spool", job_id=job.id, error=str(exc))
            reason = map_failure_reason(FailureReason.RUNNER_SYSTEM_FAILURE, job.features.failure_reasons)
            await self._client.update_job(job.id, job.token, "failed", failure_reason=reason)
            return JobOutcome(job.id, "failed", reason, acknowledgement=ack.kind)
        self._trace = trace
        sender = TraceSender(
            self._client,
            trace.spool,
            job_id=job.id,
            token=job.token,
            timing=self._timing,
            debug_trace=debug,
            on_cancel=self._cancel.set,
            on_abort=self._abort.set,
        )
        sender.start()
        final: FinalOutcome | None = None
        try:
            verdict = await self._supervise(debug)
            if verdict.succeeded:
                trace.write(ansi.success("Job succeeded"))
            else:
                trace.write(ansi.error(f"Job failed{verdict.message}"))
            trace.flush()
            reason = None
            if not verdict.succeeded:
                reason = map_failure_reason(verdict.failure_reason, job.features.failure_reasons)
            final = await sender.finish(verdict.state, failure_reason=reason, exit_code=verdict.exit_code)
            log.info("job finished", job_id=job.id, state=verdict.state, failure_reason=reason, final=final.value)
            return JobOutcome(
                job_id=job.id,
                state=verdict.state,
                failure_reason=reason,
                exit_code=verdict.exit_code,
                final=final,
                acknowledgement=ack.kind,
                checksum=trace.spool.checksum,
                bytesize=trace.spool.size,
                trace_path=trace.spool.path if self._settings.keep_traces else None,
            )
        finally:
            await sender.stop()
            # A trace the coordinator never fully received stays on disk for inspection.
            keep = self._settings.keep_traces or final is FinalOutcome.GAVE_UP
            if final is FinalOutcome.GAVE_UP:
                log.error("trace kept after the final update failed", job_id=job.id, path=str(trace.spool.path))
            trace.close(keep=keep)

    async def _supervise(self, debug: bool) -> Verdict:
        """Run the stages, racing them against a hard abort."""
        body = asyncio.create_task(self._execute(debug))
        aborted = asyncio.create_task(self._abort.wait())
        try:
            await asyncio.wait({body, aborted}, return_when=asyncio.FIRST_COMPLETED)
        finally:  # also when this task is cancelled: never leave the stages running unattended
            aborted.cancel()
            if not body.done():
                body.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await body
        if not body.cancelled():
            return body.result()
        if self._interrupted:
            self._write(ansi.warning("the runner is shutting down; job interrupted"))
            return Verdict(FailureReason.RUNNER_INTERRUPTED, message=": runner interrupted")
        self._write(ansi.warning("job aborted by the coordinator"))
        return Verdict(FailureReason.JOB_CANCELED, message=": aborted")

    async def _execute(self, debug: bool) -> Verdict:
        self._write(ansi.plain(f"Running with {info.NAME} {info.VERSION} ({info.REVISION})"))
        short = predefined.short_token(self._settings.token)
        self._write(ansi.plain(f"  on {self._settings.name} {short}, system ID: {self._settings.system_id}"))
        context = ExecutorContext(
            self.job, self.slot_dir, self.project_dir, self.tmp_dir, self._env,
            log=self._write, docker=self._settings.docker, keepalive=self._settings.keepalive,
        )  # fmt: skip
        try:
            executor = self._executor_factory(context)
        except Exception as exc:  # a broken factory is an infrastructure fault
            return self._system_failure(exc)
        self._executor = executor
        try:
            return await self._stages(executor, debug)
        except ExecutorError as exc:
            return self._system_failure(exc, exc.reason)
        except Exception as exc:  # noqa: BLE001 - any bug must still end the job cleanly
            log.exception("job crashed", job_id=self.job.id)
            return self._system_failure(exc)
        finally:
            with contextlib.suppress(Exception):
                await executor.cleanup()

    async def _stages(self, executor: Executor, debug: bool) -> Verdict:
        loop = asyncio.get_running_loop()
        timeout = float(self.job.runner_info.timeout or DEFAULT_JOB_TIMEOUT)
        deadline = loop.time() + timeout
        self._section_start("prepare_executor", f'Preparing the "{self._executor_name}" executor')
        try:
            await executor.prepare()
            self._write(ansi.plain(f"Running on {platform.node()}..."))
        finally:
            self._section_end("prepare_executor")
        ctx = self._script_context("running", debug)
        sources = await self._get_sources(executor, debug, deadline - loop.time())
        verdict = self._judge(sources, timeout)
        if verdict is None:
            verdict = await self._fetch_files()
        if verdict is None:
            verdict = await self._steps(executor, ctx, deadline, timeout)
            await self._after_script(executor, verdict, debug)
            verdict = await self._store_files(verdict)
        await self._cleanup(executor, debug)
        return verdict

    async def _get_sources(self, executor: Executor, debug: bool, timeout: float) -> ExitResult:
        """``get_sources``; with ``GIT_STRATEGY: none`` on the host, without starting a shell."""
        name, title = "get_sources", "Getting source from Git repository"
        ctx = self._script_context("running", debug, name)
        shown = git.without_shell(self.job, ctx) if executor.runs_on_host(name) else None
        if shown is not None:
            try:
                ctx.project_dir.mkdir(parents=True, exist_ok=True)
            except OSError:  # let bash run into the same problem and say so in the log
                shown = None
        if shown is None:
            return await self._stage(executor, name, title, git.get_sources_script(self.job, ctx), timeout,
                                     cancelable=True)  # fmt: skip
        with self._section(name, title):
            if self._cancel.is_set():
                return ExitResult(1, canceled=True)
            self._output(shown)
            return ExitResult(0)

    async def _cleanup(self, executor: Executor, debug: bool) -> None:
        """``cleanup_file_variables``: a shell only when the job's temporary directory exists."""
        name, title = "cleanup_file_variables", "Cleaning up project directory and file based variables"
        ctx = self._script_context("running", debug, name)
        if executor.runs_on_host(name) and not os.path.lexists(ctx.tmp_dir):
            with self._section(name, title):
                return
        await self._stage(executor, name, title, bash.cleanup_script(ctx), CLEANUP_TIMEOUT, cancelable=False)

    async def _steps(
        self, executor: Executor, ctx: bash.ScriptContext, deadline: float, timeout: float
    ) -> Verdict:
        loop = asyncio.get_running_loop()
        verdict = SUCCESS
        for step in self.job.steps:
            if step.name == "after_script" or not outcome.should_run(step, verdict.succeeded):
                continue
            remaining = deadline - loop.time()
            limit = min(remaining, float(step.timeout)) if step.timeout else remaining
            stage = f"step_{step.name}"
            title = f'Executing "{stage}" stage of the job script'
            script = bash.step_script(ctx, step.script)
            result = await self._stage(executor, stage, title, script, limit, cancelable=True)
            failed = self._judge(result, timeout)
            if failed is not None and (not step.allow_failure or result.canceled or result.timed_out):
                verdict = failed if verdict.succeeded else verdict
            if result.canceled or result.timed_out:
                break
        return verdict

    async def _after_script(self, executor: Executor, verdict: Verdict, debug: bool) -> None:
        step = self.job.step("after_script")
        if step is None or not step.script:
            return
        ctx = self._script_context(verdict.job_status, debug)
        script = bash.step_script(ctx, step.script)
        result = await self._stage(
            executor, "after_script", "Running after_script", script, AFTER_SCRIPT_TIMEOUT, cancelable=False
        )
        if result.timed_out:
            detail = f"execution took longer than {format_duration(AFTER_SCRIPT_TIMEOUT)} seconds"
        elif result.exit_code != 0:
            detail = f"exit code {result.exit_code}"
        else:
            return
        self._write(ansi.warning(f"after_script failed, but job will continue unaffected: {detail}"))

    async def _stage(
        self, executor: Executor, name: str, title: str, script: str, timeout: float, *, cancelable: bool
    ) -> ExitResult:
        """Run one stage inside its section; a cancelable stage stops on a graceful cancel."""
        self._section_start(name, title)
        try:
            if cancelable and self._cancel.is_set():
                return ExitResult(1, canceled=True)
            cancel = self._cancel if cancelable else None
            return await executor.run(script, stage=name, timeout=timeout, output=self._output, cancel=cancel)
        finally:
            self._section_end(name)

    async def _fetch_files(self) -> Verdict | None:
        """``restore_cache`` and ``download_artifacts``; a failed download fails the job."""
        if self.job.cache:
            with self._section("restore_cache", "Restoring cache"):
                await cache.restore(self.job, self._cache_root(), self.project_dir, self._write, self._shared_cache())
        if any((d.get("artifacts_file") or {}).get("filename") for d in self.job.dependencies):
            with self._section("download_artifacts", "Downloading artifacts"):
                if not await artifacts.download(self._client, self.job, self.project_dir, self._write):
                    return Verdict(FailureReason.SCRIPT_FAILURE, message=": downloading artifacts failed")
        return None

    async def _store_files(self, verdict: Verdict) -> Verdict:
        """``archive_cache`` and ``upload_artifacts_on_*``; a failed upload fails the job."""
        succeeded = verdict.succeeded
        suffix = "" if succeeded else "_on_failure"
        if self.job.cache and not self._abort.is_set():
            with self._section(f"archive_cache{suffix}", "Saving cache" + (" for failed job" if suffix else "")):
                await cache.save(self.job, self._cache_root(), self.project_dir, succeeded=succeeded,
                                 say=self._write, shared=self._shared_cache())  # fmt: skip
        if any(artifacts.applies(a.get("when"), succeeded) for a in self.job.artifacts):
            stage = "upload_artifacts_on_success" if succeeded else "upload_artifacts_on_failure"
            title = "Uploading artifacts for successful job" if succeeded else "Uploading artifacts for failed job"
            with self._section(stage, title):
                uploaded = await artifacts.upload(self._client, self.job, self.project_dir, succeeded=succeeded,
                                                  say=self._write)  # fmt: skip
            if not uploaded and succeeded:
                return Verdict(FailureReason.SCRIPT_FAILURE, message=": uploading artifacts failed")
        return verdict

    def _shared_cache(self) -> cache.Shared | None:
        settings = self._settings.cache
        if settings is None:
            return None
        return cache.Shared(settings, predefined.short_token(self._settings.token), self.job.job_info.project_id,
                            self.job.runner_info.timeout + 3600, self._settings.keepalive)  # fmt: skip

    def _cache_root(self) -> Path:
        assert self._settings.cache_dir is not None
        return self._settings.cache_dir / self.project_dir.relative_to(self.slot_dir)

    @contextlib.contextmanager
    def _section(self, name: str, title: str) -> Iterator[None]:
        self._section_start(name, title)
        try:
            yield
        finally:
            self._section_end(name)

    def _judge(self, result: ExitResult, job_timeout: float) -> Verdict | None:
        if result.canceled:
            self._write(ansi.warning(CANCELED_MESSAGE))
        return outcome.judge(result, job_timeout)

    def _system_failure(
        self, exc: BaseException, reason: FailureReason = FailureReason.RUNNER_SYSTEM_FAILURE
    ) -> Verdict:
        return Verdict(reason, message=f" (system failure): {exc}")

    def _variables(self, job_status: str, stage: str = "") -> list[variables.JobVariable]:
        """The job's variables, resolved once per job status and set of paths (not per stage)."""
        project, _, builds = self._paths(stage)
        key = (job_status, project, builds)
        resolved = self._resolved.get(key)
        if resolved is None:
            resolved = predefined.job_variables(self.job, self._settings, project, job_status, builds, self.slot)
            self._resolved[key] = resolved
        return resolved

    def _paths(self, stage: str) -> tuple[Path, Path, Path]:
        """Project, temporary and builds directories as the stage's scripts see them."""
        executor = self._executor
        paths = (self.project_dir, self.tmp_dir, self.slot_dir)
        if executor is None or stage in executor.host_stages:
            return paths
        return executor.job_path(paths[0]), executor.job_path(paths[1]), executor.job_path(paths[2])

    def _script_context(self, job_status: str, debug: bool, stage: str = "step_script") -> bash.ScriptContext:
        project, tmp, _ = self._paths(stage)
        return bash.ScriptContext(project, tmp, self._variables(job_status, stage), debug_trace=debug)

    def _write(self, text: str | bytes) -> None:
        if self._trace is not None:
            self._trace.write(text)

    def _output(self, data: bytes) -> None:
        if self._trace is not None:
            self._trace.output(data)

    def _section_start(self, name: str, title: str) -> None:
        if self.job.features.trace_sections:
            self._write(ansi.section_start(name))
        self._write(ansi.header(title))

    def _section_end(self, name: str) -> None:
        if self.job.features.trace_sections:
            self._write(ansi.section_end(name))
