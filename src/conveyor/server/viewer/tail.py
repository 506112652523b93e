"""The live tail of one job's log as a Server-Sent Events byte stream.

Loop, per viewer:

1. If the job's status is due for a check, read it (first round, after a heartbeat's silence, after
   an ``end`` message or a resync). Reading the status *before* the log matters: once a job is
   final no PATCH is accepted, so a read that starts after a final status saw reaches the end.
   The heartbeat's re-check (for messages pub/sub may have lost) reads the log only if its size grew.
2. Read from the offset sent so far to the log's current end (``TraceReader.stream``, which
   stitches live chunks and the archived object) and send it as ``log`` events.
3. Final status and everything sent: send ``end`` and return.
4. Otherwise wait on ``TraceEvents`` for a larger size, the job's end, or the heartbeat; send
   ``: keepalive`` after ``heartbeat`` seconds without a write. While the job runs, refresh the
   "watched" flag every few seconds.

Viewers take at most ``slots`` pooled PostgreSQL connections per process at a time (every status
read, log read and the attach's lookups go through ``reading()``), so 1,000 viewers attaching at
once queue among themselves instead of starving runners' PATCHes and PUTs of connections. A slot
is never held across a write to the client.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import aclosing, suppress

from prometheus_client import Gauge
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncEngine

from conveyor.server.db import queries
from conveyor.server.trace import TraceReader
from conveyor.server.viewer import sse, watch
from conveyor.server.viewer.events import TraceEvents
from conveyor.server.viewer.watch import Watchers

FINISHED = frozenset({"success", "failed", "canceled", "skipped"})
SLOTS = 8  # viewers' concurrent database reads per process (the pool holds 2 x db_pool_size)


class LiveTail:
    def __init__(
        self,
        engine: AsyncEngine,
        reader: TraceReader,
        events: TraceEvents,
        watchers: Watchers,
        viewers: Gauge,
        *,
        heartbeat: float,
        retry: float,
        slots: int = SLOTS,
    ) -> None:
        self._engine = engine
        self._reader = reader
        self._events = events
        self._watchers = watchers
        self._viewers = viewers
        self.heartbeat = heartbeat
        self.retry = retry
        self._slots = asyncio.Semaphore(slots)

    def reading(self) -> asyncio.Semaphore:
        """Hold while a viewer reads PostgreSQL (``async with tail.reading(): ...``)."""
        return self._slots

    async def status(self, job_id: int) -> str | None:
        async with self._slots, self._engine.connect() as conn:
            job = await queries.jobs.get(conn, job_id)
        return job["status"] if job else None

    async def stream(self, job_id: int, start: int, status: str | None = None) -> AsyncIterator[bytes]:
        """SSE bytes from log offset ``start`` until the job ends (or the server shuts down).

        ``status``: the job's status as the caller just read it (saves the first status query).
        """
        self._viewers.inc()
        self._events.follow(job_id)
        try:
            async for frame in self._frames(job_id, start, status):
                yield frame
        finally:
            self._events.unfollow(job_id)
            self._viewers.dec()

    async def _frames(self, job_id: int, start: int, status: str | None) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        yield sse.retry_field(self.retry)
        read_to, held = start, b""  # bytes read so far; an incomplete UTF-8 tail not yet sent
        last_write, next_mark = loop.time(), 0.0
        check_status, must_read, seen_end, recheck = status is None, True, False, False
        change = None
        while True:
            if check_status:
                status, check_status = await self.status(job_id), False
            finished = status is None or status in FINISHED
            if recheck:  # the periodic re-check: read only if the log grew (or to drain a finished job)
                if not (must_read or finished):
                    async with self._slots:
                        must_read = await self._reader.size(job_id) > read_to
                recheck = False
            if not finished and loop.time() >= next_mark:
                with suppress(RedisError):  # the flag only speeds runners up; never end a tail over it
                    await self._watchers.mark(job_id)
                next_mark = loop.time() + watch.REFRESH
            if must_read:
                wanted, must_read = (change.size if change else 0), False
                async with aclosing(self._reader.stream(job_id, read_to)) as pieces:
                    while True:
                        async with self._slots:  # the slot covers the read, not the write to the client
                            piece = await anext(pieces, None)
                        if piece is None:
                            break
                        read_to, held, frame = _advance(read_to, held, piece)
                        if frame:
                            yield frame
                            last_write = loop.time()
                if read_to < wanted:  # announced but not readable yet here: do not spin on it
                    await asyncio.sleep(0.05)
            if finished:
                if held:
                    yield sse.log_event(held, read_to)
                yield sse.end_event(status or "unknown", read_to)
                return
            timeout = min(last_write + self.heartbeat, next_mark) - loop.time()
            change = await self._events.wait(job_id, read_to, max(timeout, 0.0))
            if change is None:  # nothing for a while: keepalive, and re-check what messages may have missed
                if loop.time() >= last_write + self.heartbeat:
                    yield sse.KEEPALIVE
                    last_write = loop.time()
                    check_status = recheck = True
                continue
            if change.closed:
                return  # shutting down: the client reconnects (to another server) with Last-Event-ID
            if change.resync or (change.end and not seen_end):
                seen_end = seen_end or bool(change.end)
                check_status = True
            elif change.end and change.size <= read_to:
                await asyncio.sleep(min(1.0, self.heartbeat))  # ended elsewhere, not yet visible here
                check_status = True
            else:
                news = change.data if change.data is not None and change.size - len(change.data) == read_to else None
                news = news if news is not None else self._events.recent(job_id, read_to)
                if news:  # the bytes came with the message, or are still in memory: no storage read
                    read_to, held, frame = _advance(read_to, held, news)
                    if frame:
                        yield frame
                        last_write = loop.time()
                    continue
            must_read = True


def _advance(read_to: int, held: bytes, piece: bytes) -> tuple[int, bytes, bytes]:
    """Take ``piece`` (the log's bytes at ``read_to``): (new read_to, new held tail, frame or b"")."""
    read_to += len(piece)
    body, held = sse.split_utf8(held + piece)
    return read_to, held, sse.log_event(body, read_to - len(held)) if body else b""
