"""TraceStore on PostgreSQL: 128 KiB chunks, each append one short transaction."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from conveyor.server.db import queries
from conveyor.server.errors import RangeMismatch
from conveyor.server.trace.base import Announcement, TraceStore


class PostgresTraceStore(TraceStore):
    def __init__(self, engine: AsyncEngine, chunk_size: int = 128 * 1024) -> None:
        self._engine = engine
        self.chunk_size = chunk_size

    async def append(self, job_id: int, offset: int, data: bytes, announce: Announcement | None = None) -> int:
        async with self._engine.begin() as conn:
            new_size = await queries.traces.append(conn, job_id, offset, data, self.chunk_size)
            if new_size is None:
                current = await queries.traces.size(conn, job_id)
        if new_size is None:
            raise RangeMismatch(current[0] if current else 0)
        return new_size

    async def size(self, job_id: int) -> int:
        async with self._engine.connect() as conn:
            current = await queries.traces.size(conn, job_id)
        return current[0] if current else 0

    async def read(self, job_id: int, start: int, limit: int) -> bytes:
        first, skip = divmod(start, self.chunk_size)
        wanted = -(-(skip + limit) // self.chunk_size)
        async with self._engine.connect() as conn:
            rows = await queries.traces.read_chunks(conn, job_id, first, wanted)
        out = bytearray()
        expected = first
        for index, data, *_where in rows:
            if index != expected or data is None:  # a gap: chunks are being deleted by the archiver
                break
            out += data
            expected += 1
        return bytes(out[skip : skip + limit])

    async def persist(self, job_id: int, recorded: tuple[int, int] | None = None) -> tuple[int, int]:
        """Every append is already durable, with the job's size and CRC kept up to date."""
        if recorded is not None:  # read from the job's row: kept up to date by every append
            return recorded
        async with self._engine.connect() as conn:
            current = await queries.traces.size(conn, job_id)
        return current if current else (0, 0)

    async def delete(self, job_id: int, *, rows: bool = True) -> None:
        if not rows:
            return  # the rows are all this store keeps
        async with self._engine.begin() as conn:
            await queries.traces.delete(conn, job_id)
