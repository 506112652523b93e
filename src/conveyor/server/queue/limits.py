"""The per-job log size limit: keep everything up to the limit, add a visible marker, fail the job.

GitLab drops such a job with ``trace_size_exceeded`` and answers 403; so do we, but the log keeps
its head intact up to the limit and ends with a marker saying what happened.
"""

from __future__ import annotations

from sqlalchemy.engine import RowMapping

from conveyor.server.errors import RangeMismatch
from conveyor.server.queue.jobs import JobUpdates
from conveyor.server.trace.base import TraceStore


def marker(limit: int) -> bytes:
    return (
        f"\n\x1b[31;1mERROR: Job's log exceeded limit of {limit} bytes.\n"
        f"Output after that point was not stored.\x1b[0;m\n"
    ).encode()


class TraceLimit:
    def __init__(self, traces: TraceStore, job_updates: JobUpdates, limit: int) -> None:
        self._traces = traces
        self._job_updates = job_updates
        self.limit = limit

    async def exceed(self, job: RowMapping, start: int, body: bytes) -> None:
        """Store the part of ``body`` that fits, then the marker; then fail the job."""
        size = await self._traces.size(job["id"])
        try:
            if start == size and size < self.limit:
                size = await self._traces.append(job["id"], start, body[: self.limit - start])
            await self._traces.append(job["id"], size, marker(self.limit))
        except RangeMismatch:
            pass  # a concurrent PATCH won; the marker goes in with whichever append comes last
        await self._job_updates.drop(job, "trace_size_exceeded")
