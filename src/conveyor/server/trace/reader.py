"""One reader for a job's log at any byte offset, wherever the bytes live right now.

Order of truth: if the job's log is archived, the archived object (a verified copy of the live
bytes); otherwise the live chunks. The archiver flips ``trace_archived`` and deletes chunks in one
transaction *after* the object is written, so a reader that runs out of live bytes checks the flag
once more and goes on from the object: two lookups of the flag per read of a live log, one for an
archived log, which never touches the live stores (Redis may be down or restarted by then).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncEngine

from conveyor.server.db import queries, single_statements
from conveyor.server.db.replicas import Reads
from conveyor.server.storage import ObjectStore
from conveyor.server.trace.base import TraceStore

READ_SIZE = 256 * 1024


def archive_key(job_id: int) -> str:
    return f"traces/{job_id}/job.log"


class TraceReader:
    def __init__(self, engine: AsyncEngine, live: TraceStore, objects: ObjectStore, *, reads: Reads | None = None) -> None:
        self._reads = single_statements(engine)
        self._replicas = reads or Reads(engine, [])
        self._live = live
        self._objects = objects

    async def size(self, job_id: int) -> int:
        return await self._live.size(job_id)

    async def stream(self, job_id: int, start: int = 0) -> AsyncIterator[bytes]:
        """The log from ``start`` to its current end, in pieces."""
        position = start
        # ``trace_archived`` only ever goes from false to true, so a replica may answer the first
        # lookup: "archived" from any replica is true; "not archived" is checked on the primary
        # once the live bytes run out, as it always was
        if not await self._replicas.run(lambda conn: queries.traces.archived(conn, job_id)):
            while piece := await self._live.read(job_id, position, READ_SIZE):
                position += len(piece)
                yield piece
            if not await self._archived(job_id):
                return  # the end of the live log, as of now
        # archived (before or while we read): the rest is in the object
        async for piece in self._objects.open_read(archive_key(job_id), position):
            yield piece

    async def read_all(self, job_id: int, start: int = 0) -> bytes:
        return b"".join([piece async for piece in self.stream(job_id, start)])

    async def _archived(self, job_id: int) -> bool:
        async with self._reads.connect() as conn:
            return await queries.traces.archived(conn, job_id)
