"""Apply a runner's ``PUT /jobs/:id``: keep-alives, and final states once the whole log is here.

The final-update dance (runner-api.md 4.4): a final state is applied only when the stored log
has every byte the runner reports (``output.bytesize``). Until then the server answers 202 with
a growing backoff and the runner PATCHes what is missing and asks again; after
``accept_timeout`` the server stops waiting and applies the state with the log it has.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from conveyor.protocol import JobStatus, UpdateJobRequest
from conveyor.server import auth
from conveyor.server.db import queries, single_statements
from conveyor.server.errors import BadRequest, Forbidden, NotFound
from conveyor.server.queue import retry
from conveyor.server.queue.progress import advance
from conveyor.server.trace.base import Recorder

log = structlog.get_logger(__name__)

FORBIDDEN_NOT_RUNNING = "403 Forbidden - Job is not processing on runner"
AUTHENTICATED_COLUMNS = ("id", "pipeline_id", "status", "token_hash", "acked_at", "updated_at")


class TokenCache(Protocol):
    """What ``authenticate`` needs of ``accounts.JobTokenCache`` (wired in ``app.py``)."""

    generation: int

    def get(self, job_id: int, token_hash: str) -> Mapping[str, Any] | None: ...
    def put(self, row: Mapping[str, Any], generation: int) -> None: ...
    def touched(self, job_id: int) -> None: ...
    def revoke(self, job_id: int) -> None: ...


@dataclass(frozen=True)
class UpdateOutcome:
    status_code: int  # 200 or 202
    job_status: str
    retry_after: int | None = None  # seconds, for 202
    finished: bool = False
    enqueued: tuple = ()  # queries.jobs.Queued of the jobs this update made pending
    coverage: str | None = None  # a finished job's coverage regex (its spec's), to read its log with
    log: tuple[int, int, str | None] | None = None  # a finished job's log as recorded: size, CRC-32, the runner's checksum


def backoff(elapsed: float) -> int:
    """GitLab's Runner::Backoff: 1 s for the first 4 s, then doubling, capped at 64 s."""
    if elapsed < 4:
        return 1
    return min(64, 2 ** (int(math.log2(elapsed)) - 1))


class JobUpdates:
    def __init__(
        self, engine: AsyncEngine, *, accept_timeout: int, touch_interval: float = 60.0, tokens: TokenCache | None = None
    ) -> None:
        self._engine = engine
        self._tokens = tokens  # checked job rows, dropped when PostgreSQL says a token was revoked
        self._reads = single_statements(engine)  # one-statement lookups: no BEGIN/ROLLBACK round trips
        self._accept_timeout = accept_timeout
        self._touch_interval = touch_interval

    async def touch_if_stale(self, job: RowMapping) -> None:
        """A PATCH: the runner has the job (two-phase accept) and is alive. Written only when the
        hand-out is unconfirmed or ``updated_at`` is older than ``touch_interval`` (GitLab's
        ``needs_touch?``), so a stream of PATCHes costs no database write each."""
        updated = job["updated_at"]
        stale = updated is None or (datetime.now(UTC) - updated).total_seconds() >= self._touch_interval
        if job["acked_at"] is None or stale:
            async with self._engine.begin() as conn:
                await queries.jobs.touch(conn, job["id"])
            if self._tokens is not None:
                self._tokens.touched(job["id"])

    async def authenticate(self, job_id: int, token: str | None) -> Mapping[str, Any]:
        """The job whose token this is, if it is running; 403 (+ Job-Status) otherwise.

        Only ``AUTHENTICATED_COLUMNS`` of its row, remembered per process until PostgreSQL
        announces the token revoked (``accounts.JobTokenCache``)."""
        if not token:
            raise Forbidden("403 Forbidden")
        digest = auth.digest(token)
        if self._tokens is not None and (cached := self._tokens.get(job_id, digest)) is not None:
            return cached  # no pooled connection
        generation = self._tokens.generation if self._tokens is not None else 0
        async with self._reads.connect() as conn:
            row = await queries.jobs.get(conn, job_id)
        if row is None:
            raise NotFound("404 Job Not Found")
        job = {column: row[column] for column in AUTHENTICATED_COLUMNS}  # the same columns, hit or miss
        if job["token_hash"] != digest:
            raise Forbidden("403 Forbidden")
        if not JobStatus(job["status"]).is_active:
            raise Forbidden(FORBIDDEN_NOT_RUNNING, job_status=job["status"])
        if self._tokens is not None:
            self._tokens.put(job, generation)
        return job

    async def keepalive(self, job_id: int, token: str | None) -> str:
        """A ``running``/``pending`` PUT (acknowledgement or keep-alive): one statement when all is
        well; the job's status, or the same errors as ``authenticate``."""
        if token:
            async with self._reads.begin() as conn:  # one atomic UPDATE: no BEGIN/COMMIT round trips
                status = await queries.jobs.touch_active(conn, job_id, auth.digest(token))
            if status is not None:
                if self._tokens is not None:  # acknowledged: the next PATCH need not touch it
                    self._tokens.touched(job_id)
                return status
        return (await self.authenticate(job_id, token))["status"]  # raises the precise error

    async def update(
        self, job: RowMapping, request: UpdateJobRequest, stored_size: int, record: Recorder | None = None
    ) -> UpdateOutcome:
        """A ``PUT``. ``record``: what makes the log durable (``trace.FinalLog.record``), run in
        the transaction that finishes the job, so the final seal and the finish commit as one."""
        state = request.state
        if state in ("running", "pending"):
            async with self._engine.begin() as conn:
                await queries.jobs.touch(conn, job["id"])
            return UpdateOutcome(200, job["status"])
        if state not in ("success", "failed"):
            raise BadRequest(f"400 Bad request - state {state!r} is not valid")
        expected = request.output.bytesize
        if expected is not None and stored_size < expected:
            async with self._engine.begin() as conn:
                row = await queries.jobs.record_final_request(conn, job["id"], request.model_dump(mode="json"))
            waited = (datetime.now(UTC) - row["final_requested_at"]).total_seconds()
            if waited < self._accept_timeout:
                return UpdateOutcome(202, job["status"], retry_after=backoff(waited))
            log.warning("final_update_incomplete_log", job_id=job["id"], stored=stored_size, expected=expected)
        return await self._apply(job, request, record)

    async def drop(self, job: RowMapping, failure_reason: str) -> UpdateOutcome:
        """Fail a running job from the server side (e.g. ``trace_size_exceeded``)."""
        return await self._finish(job, JobStatus.FAILED, failure_reason=failure_reason)

    async def _apply(self, job: RowMapping, request: UpdateJobRequest, record: Recorder | None) -> UpdateOutcome:
        status = JobStatus.SUCCESS if request.state == "success" else JobStatus.FAILED
        return await self._finish(
            job,
            status,
            failure_reason=(request.failure_reason or "script_failure") if status == JobStatus.FAILED else None,
            exit_code=request.exit_code,
            checksum=request.output.checksum or request.checksum,
            record=record,
        )

    async def _finish(
        self,
        job: RowMapping,
        status: JobStatus,
        *,
        failure_reason: str | None = None,
        exit_code: int | None = None,
        checksum: str | None = None,
        record: Recorder | None = None,
    ) -> UpdateOutcome:
        async with self._engine.begin() as conn:
            pipeline = await queries.pipelines.lock(conn, job["pipeline_id"])  # lock order: pipeline, then its jobs
            if record is not None:  # the log's rows: chunks, then the job's row (a seal's own order)
                await record(conn)
            finished = await queries.jobs.finish_active(
                conn, job["id"], str(status), failure_reason=failure_reason, exit_code=exit_code, trace_checksum=checksum
            )
            if finished is None:  # no longer running or canceling: say what it is
                current = await queries.jobs.get(conn, job["id"])
                raise Forbidden(FORBIDDEN_NOT_RUNNING, job_status=current["status"] if current else None)
            status = JobStatus(finished["status"])  # canceled when it was canceling
            enqueued = await retry.after_failure(conn, job["id"]) if status == JobStatus.FAILED else []
            enqueued += await advance(conn, job["pipeline_id"], locked=pipeline)
        if self._tokens is not None:  # this process at once; the others at the trigger's NOTIFY
            self._tokens.revoke(job["id"])
        log.info("job_finished", job_id=job["id"], status=str(status), failure_reason=failure_reason)
        recorded = (finished["trace_size"], finished["trace_crc32"], finished["trace_checksum"])
        return UpdateOutcome(200, str(status), finished=True, enqueued=tuple(enqueued), coverage=finished["coverage"], log=recorded)
