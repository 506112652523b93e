"""TraceSender: streams a job's spool to the coordinator and performs the final update.

While the job runs (gitlab-runner ``network/trace.go``, ``watch``): every update interval, PATCH
the unsent bytes (at most 1 MiB per request) from the ``sent`` offset; a 416 moves ``sent`` to
the server's offset; a network error keeps it, so the same bytes go again on the next tick and
a restarted server's 416 says where to resume. When nothing was sent for the force-send
interval, a keep-alive ``PUT state=running`` carries the checksum and size. ``Job-Status`` on
any answer reports a graceful cancel or a hard abort to the job through callbacks.

``finish`` then flushes all bytes and sends the final state until the coordinator answers 200
(or aborts), sleeping the server-given interval on 202 and backing off on failures.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import structlog

from conveyor.protocol.models import JobOutput
from conveyor.protocol.trace import PATCH_LIMIT
from conveyor.runner.client import CoordinatorClient
from conveyor.runner.results import PatchKind, PatchResult, UpdateKind, UpdateResult
from conveyor.runner.trace.spool import TraceSpool

log = structlog.get_logger(__name__)


class FinalOutcome(StrEnum):
    DONE = "done"  # the coordinator accepted the final state (200)
    ABORTED = "aborted"  # the coordinator ended the job otherwise (403, 404, Job-Status canceled)
    GAVE_UP = "gave_up"  # every retry failed


@dataclass(frozen=True)
class SenderTiming:
    """Intervals in seconds; ``update`` is the initial tick, the coordinator may change it."""

    update: float = 3.0
    force_send: float = 30.0
    final_retries: int = 10
    final_backoff: float = 1.0
    final_backoff_max: float = 60.0
    # The job header goes out soon, not after the 3 s update interval (gitlab-runner's first
    # PATCH): the log is live from the start. A job that ends sooner sends its whole log in the
    # final flush: one PATCH, as gitlab-runner does for any job shorter than 3 s.
    first_send: float = 0.5
    max_range_mismatches: int = 3
    max_accepted_rounds: int = 200


class TraceSender:
    """Sends one job's trace. Callbacks are invoked at most once each, from the event loop."""

    def __init__(
        self,
        client: CoordinatorClient,
        spool: TraceSpool,
        *,
        job_id: int,
        token: str,
        timing: SenderTiming | None = None,
        debug_trace: bool = False,
        on_cancel: Callable[[], None] | None = None,
        on_abort: Callable[[], None] | None = None,
    ) -> None:
        self._client = client
        self._spool = spool
        self._job_id = job_id
        self._token = token
        self._timing = timing or SenderTiming()
        self._interval = self._timing.update
        self._debug_trace = debug_trace
        self._on_cancel = on_cancel
        self._on_abort = on_abort
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._wake = asyncio.Event()
        self._last_sent = time.monotonic()
        self.sent = 0
        self.canceled = False
        self.aborted = False
        self.diverged = False  # the server claimed bytes we never produced; stop PATCHing
        self._not_found = False

    @property
    def interval(self) -> float:
        return self._interval

    def start(self) -> None:
        """Start the background PATCH loop."""
        self._last_sent = time.monotonic()
        self._stopping = False
        self._wake.clear()
        self._task = asyncio.create_task(self._watch(), name=f"trace-sender-{self._job_id}")

    async def stop(self, *, graceful: bool = False) -> None:
        """Stop the background loop.

        Args:
            graceful: let a request in flight complete instead of cancelling it (a cancelled
                PATCH is harmless, the server's 416 tells where to resume, but costs a round trip).
        """
        if self._task is None:
            return
        self._stopping = True
        self._wake.set()
        if not graceful:
            self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def _watch(self) -> None:
        wait = min(self._timing.first_send, self._interval)
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=wait)
            wait = self._interval
            if self._stopping:
                return
            await self._tick()

    async def _tick(self) -> None:
        mismatches = 0
        while self._sendable() and self.sent < self._spool.size:
            result = await self._patch()
            if result.kind is PatchKind.RANGE_MISMATCH:
                mismatches += 1
                if mismatches < self._timing.max_range_mismatches:
                    continue
            if result.kind is not PatchKind.ACCEPTED:
                break
        if not self.aborted and time.monotonic() - self._last_sent >= self._timing.force_send:
            await self._touch()

    def _sendable(self) -> bool:
        return not (self.aborted or self.diverged or self._not_found)

    async def _patch(self) -> PatchResult:
        offset = self.sent
        chunk = self._spool.read(offset, PATCH_LIMIT)
        result = await self._client.patch_trace(
            self._job_id, self._token, offset, chunk, debug_trace=self._debug_trace
        )
        self._observe(result.update_interval, result.cancel_requested)
        if result.kind is PatchKind.ACCEPTED:
            self.sent = offset + len(chunk)
            self._last_sent = time.monotonic()
        elif result.kind is PatchKind.RANGE_MISMATCH:
            server_offset = result.server_offset or 0
            if server_offset > self._spool.size:
                # We cannot send from an offset we never produced; the final update decides
                # (a 412 there resets the trace and we resend everything).
                log.error(
                    "server claims more trace than produced; no more PATCHes",
                    job_id=self._job_id,
                    server_offset=server_offset,
                    size=self._spool.size,
                )
                self.diverged = True
            else:
                self.sent = server_offset
        elif result.kind is PatchKind.ABORT:
            self._abort()
        elif result.kind is PatchKind.NOT_FOUND:
            log.warning("trace endpoint answered 404", job_id=self._job_id)
        return result

    async def _touch(self) -> None:
        result = await self._client.update_job(self._job_id, self._token, "running", self._output())
        self._observe(result.update_interval, result.cancel_requested)
        if result.kind in (UpdateKind.SUCCEEDED, UpdateKind.ACCEPTED):
            self._last_sent = time.monotonic()
        elif result.kind is UpdateKind.ABORT:
            self._abort()

    def _observe(self, interval: float | None, cancel_requested: bool) -> None:
        if interval:
            self._interval = interval
        if cancel_requested and not self.canceled:
            self.canceled = True
            log.info("cancel requested by the coordinator", job_id=self._job_id)
            if self._on_cancel:
                self._on_cancel()

    def _abort(self) -> None:
        if not self.aborted:
            self.aborted = True
            log.warning("job aborted by the coordinator", job_id=self._job_id)
            if self._on_abort:
                self._on_abort()

    def _output(self) -> JobOutput:
        return JobOutput(checksum=self._spool.checksum, bytesize=self._spool.size)

    async def finish(
        self, state: str, *, failure_reason: str | None = None, exit_code: int | None = None
    ) -> FinalOutcome:
        """Flush every byte and report the final state; stops the background loop first."""
        await self.stop(graceful=True)
        self._interval = self._timing.update
        for attempt in range(self._timing.final_retries):
            outcome = await self._final_attempt(state, failure_reason, exit_code)
            if outcome is not None:
                return outcome
            if attempt + 1 < self._timing.final_retries:
                delay = min(self._timing.final_backoff * 2**attempt, self._timing.final_backoff_max)
                log.warning("final update failed; retrying", job_id=self._job_id, wait=delay)
                await asyncio.sleep(delay)
        log.error("giving up on the final update", job_id=self._job_id)
        return FinalOutcome.GAVE_UP

    async def _final_attempt(
        self, state: str, failure_reason: str | None, exit_code: int | None
    ) -> FinalOutcome | None:
        """One flush-then-PUT round trip (repeated on 202/412); None means retry after a backoff."""
        for _ in range(self._timing.max_accepted_rounds):
            if self.aborted or not await self._flush_all():
                return FinalOutcome.ABORTED if self.aborted else None
            result: UpdateResult = await self._client.update_job(
                self._job_id, self._token, state, self._output(), failure_reason, exit_code
            )
            if result.update_interval:
                self._interval = result.update_interval
            if result.kind is UpdateKind.SUCCEEDED:
                return FinalOutcome.DONE
            if result.kind is UpdateKind.ABORT:
                # GitLab answers the final update with the job's new status; ``Job-Status: failed``
                # after we reported ``failed`` is the coordinator agreeing, not an abort.
                if result.job_status == state:
                    return FinalOutcome.DONE
                self.aborted = True
                return FinalOutcome.ABORTED
            if result.kind is UpdateKind.FAILED:
                return None
            if result.kind is UpdateKind.RESET:
                log.warning("coordinator reset the trace; resending all of it", job_id=self._job_id)
                self.sent, self.diverged, self._not_found = 0, False, False
            await asyncio.sleep(self._interval)  # 202 or 412: let the server settle
        return None

    async def _flush_all(self) -> bool:
        """PATCH until the server has every byte; False when this attempt should be retried."""
        mismatches = 0
        while self._sendable() and self.sent < self._spool.size:
            result = await self._patch()
            if result.kind is PatchKind.ACCEPTED:
                mismatches = 0
            elif result.kind is PatchKind.RANGE_MISMATCH:
                mismatches += 1
                if mismatches > self._timing.max_range_mismatches:
                    return False
            elif result.kind is PatchKind.NOT_FOUND:
                self._not_found = True  # during the final flush a 404 stops trace sending
            else:
                return False
        return not self.aborted
