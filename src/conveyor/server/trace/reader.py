"""One reader for a job's log at any byte offset, wherever the bytes live right now.

Order of truth: if the job's log is archived, the archived object; otherwise the live chunks.
The archiver flips ``trace_archived`` and deletes chunks in one transaction *after* the object
is written, so a reader that finds chunks gone re-checks the flag and reads the object.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncEngine

from conveyor.server.db import queries
from conveyor.server.storage import ObjectStore
from conveyor.server.trace.base import TraceStore

READ_SIZE = 256 * 1024


def archive_key(job_id: int) -> str:
    return f"traces/{job_id}/job.log"


class TraceReader:
    def __init__(self, engine: AsyncEngine, live: TraceStore, objects: ObjectStore) -> None:
        self._engine = engine
        self._live = live
        self._objects = objects

    async def size(self, job_id: int) -> int:
        return await self._live.size(job_id)

    async def stream(self, job_id: int, start: int = 0) -> AsyncIterator[bytes]:
        """The log from ``start`` to its current end, in pieces."""
        position = start
        while True:
            if await self._archived(job_id):
                async for piece in self._objects.open_read(archive_key(job_id), position):
                    yield piece
                return
            piece = await self._live.read(job_id, position, READ_SIZE)
            if piece:
                position += len(piece)
                yield piece
            elif not await self._archived(job_id):
                return  # the end of the live log, as of now
            # else: archived while we read; the loop continues from the object

    async def read_all(self, job_id: int, start: int = 0) -> bytes:
        return b"".join([piece async for piece in self.stream(job_id, start)])

    async def _archived(self, job_id: int) -> bool:
        async with self._engine.connect() as conn:
            job = await queries.jobs.get(conn, job_id)
        return bool(job and job["trace_archived"])
