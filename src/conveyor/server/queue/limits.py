"""The per-job log size limit: the head and the last part are kept, with a marker between them.

GitLab drops a job whose log passes ``ci_jobs_trace_size_limit`` (``trace_size_exceeded``, 403),
and the end of the log, where the error usually is, is lost. Conveyor keeps the job running:

* the first ``limit - tail`` bytes (the head) are stored as usual;
* past the head, PATCHes are still accepted at the runner's offsets (the *logical* size, which
  ``Range`` reports), but only their last ``tail`` bytes are kept, in a Redis hash with one
  offset-checked Lua script (``overflow.lua``);
* when the job finishes (``seal``), the stored log gets a marker saying how many bytes were left
  out, then the tail: at most ``limit`` bytes plus the marker, never silently cut.

The stored log then differs from what the runner printed, so its CRC-32 does; ``seal`` returns
the stored size and CRC so the final update records the checksum of the log that is kept.
If Redis loses the hash mid-job, the size falls back to the head and the runner resends.
"""

from __future__ import annotations

from importlib import resources

import structlog
from redis.asyncio import Redis

from conveyor.server import keys
from conveyor.server.errors import RangeMismatch
from conveyor.server.trace.base import TraceStore

log = structlog.get_logger(__name__)

TTL_SECONDS = 7 * 86400


def marker(omitted: int, limit: int) -> bytes:
    return (
        f"\n\x1b[31;1mWARNING: Job's log exceeded limit of {limit} bytes: "
        f"{omitted} bytes were left out here; the last part of the log follows.\x1b[0;m\n"
    ).encode()


class TraceLimit:
    def __init__(self, traces: TraceStore, redis: Redis, limit: int, tail: int) -> None:
        if not 0 < tail < limit:
            raise ValueError(f"trace_tail_size ({tail}) must be between 0 and trace_size_limit ({limit})")
        self._traces = traces
        self._redis = redis
        self.limit = limit
        self.tail = tail
        self.head = limit - tail
        self._overflow = redis.register_script(resources.files(__package__).joinpath("overflow.lua").read_text())

    def reaches_past_head(self, start: int, length: int) -> bool:
        return start + length > self.head

    async def size(self, job_id: int) -> int:
        """The runner's view of the log's size (its logical size once past the head)."""
        logical = await self._redis.hget(keys.trace_overflow(job_id), "logical")
        return int(logical) if logical is not None else await self._traces.size(job_id)

    async def append(self, job_id: int, start: int, body: bytes) -> int:
        """A PATCH reaching past the head: store what fits in the head, keep the rest as tail;
        returns the new logical size, or raises ``RangeMismatch`` with the logical size."""
        stored = await self._traces.size(job_id)
        overflowing = await self._redis.exists(keys.trace_overflow(job_id))
        if not overflowing:
            if start != stored:
                raise RangeMismatch(stored)
            fits = max(0, self.head - stored)
            if fits:
                stored = await self._traces.append(job_id, start, body[:fits])
            start, body = start + fits, body[fits:]
            if not body:
                return stored
        result = await self._overflow(
            keys=[keys.trace_overflow(job_id)], args=[start, body, self.tail, TTL_SECONDS, stored]
        )
        if int(result[0]) < 0:
            raise RangeMismatch(int(result[1]))
        return int(result[0])

    async def seal(self, job_id: int, expected: int | None) -> int | None:
        """At the final update of a log that overflowed: once the runner's ``expected`` bytes are
        all in, append marker + tail to the stored log; returns the logical size (None for a log
        within the limit). Before that, the caller's 202 makes the runner send the rest."""
        overflow = await self._redis.hmget(keys.trace_overflow(job_id), ["logical", "tail"])
        if overflow[0] is None:
            return None
        logical, tail = int(overflow[0]), overflow[1] or b""
        if expected is not None and logical < expected:
            return logical
        stored = await self._traces.size(job_id)
        if stored <= self.head:  # not sealed yet (a repeated final update finds it done)
            omitted = logical - stored - len(tail)
            stored = await self._traces.append(job_id, stored, marker(omitted, self.limit) + tail)
            log.warning("trace_truncated", job_id=job_id, logical=logical, omitted=omitted, stored=stored)
        return logical
