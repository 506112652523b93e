"""One reader for a job's log at any byte offset, wherever the bytes live right now.

Live bytes, where they are still found, are the log (the archived object is a verified copy of
them); the archiver flips ``trace_archived`` and deletes chunks in one transaction *after* the
object is written, so a reader that runs out of live bytes checks the flag, once, and goes on
from the object. A read that finds everything live costs no lookup of the flag at all.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncEngine

from conveyor.server.db import queries, single_statements
from conveyor.server.storage import ObjectStore
from conveyor.server.trace.base import TraceStore

READ_SIZE = 256 * 1024


def archive_key(job_id: int) -> str:
    return f"traces/{job_id}/job.log"


class TraceReader:
    def __init__(self, engine: AsyncEngine, live: TraceStore, objects: ObjectStore) -> None:
        self._reads = single_statements(engine)
        self._live = live
        self._objects = objects

    async def size(self, job_id: int) -> int:
        return await self._live.size(job_id)

    async def stream(self, job_id: int, start: int = 0) -> AsyncIterator[bytes]:
        """The log from ``start`` to its current end, in pieces."""
        position = start
        while piece := await self._live.read(job_id, position, READ_SIZE):
            position += len(piece)
            yield piece
        if await self._archived(job_id):  # the live log is gone: the rest is in the object
            async for piece in self._objects.open_read(archive_key(job_id), position):
                yield piece
        # else: the end of the live log, as of now

    async def read_all(self, job_id: int, start: int = 0) -> bytes:
        return b"".join([piece async for piece in self.stream(job_id, start)])

    async def _archived(self, job_id: int) -> bool:
        async with self._reads.connect() as conn:
            return await queries.traces.archived(conn, job_id)
