"""Where a live log's sealed chunks live: a row per chunk in ``trace_chunks`` (index, length,
CRC-32), its bytes in the row (``trace_chunk_store = "database"``, the default) or, with
``"object"``, in the object store under ``traces/<job>/chunks/<index>-<crc>``.

The rows cost PostgreSQL ~4-6 ms of CPU per MiB of log (TOAST tuples and WAL; bench/traces part
a), which is why seals are few at a time (``concurrency``). Objects take log bytes out of the
database, as GitLab's object-storage chunks do, but a live log is then unreadable while the store
is down, and on a local ext4 directory creating and deleting a file per 128 KiB made the kernel's
inode allocator the bottleneck (bench/README.md). With objects: the object is written before its
row commits, and the row before the bytes are acknowledged; when the store fails, the chunk goes
into its row instead (counted), so an outage loses nothing.

A reader that finds an object gone (the archiver deleted it after archiving) stops there, as it
does at a missing row: the caller re-checks the archive.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Mapping

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from conveyor.server.db import queries, single_statements
from conveyor.server.storage import ObjectStore

log = structlog.get_logger(__name__)


def chunk_key(job_id: int, index: int, crc32: int) -> str:
    """A chunk's object, named by its CRC-32 too: two writers of different bytes for one chunk
    (never the same runner) cannot overwrite each other's object; the row says which is the log's."""
    return f"{chunks_prefix(job_id)}{index:08d}-{crc32 & 0xFFFFFFFF:08x}"


def chunks_prefix(job_id: int) -> str:
    return f"traces/{job_id}/chunks/"


class DurableChunks:
    def __init__(
        self, engine: AsyncEngine, objects: ObjectStore | None, chunk_size: int, concurrency: int = 2
    ) -> None:
        self._engine = engine
        # seals at once per process: 32 backends writing TOAST rows at once spent 7.3 ms of database
        # CPU per MiB against 4.3 for one and 5.6 for four (extension and WAL locks); a queue here
        # costs a PATCH some wait, not the database its throughput
        self._slots = asyncio.Semaphore(concurrency)
        self._single = single_statements(engine)  # a seal without a final size is one statement
        self._objects = objects
        self.chunk_size = chunk_size
        self.sealed = 0  # chunks made durable by this process (a metric)
        self.object_failures = 0  # chunks that went into rows because the object store failed

    @property
    def in_objects(self) -> bool:
        """Whether sealed chunks go to the object store (else their bytes go in the rows)."""
        return self._objects is not None

    async def seal(
        self, job_id: int, chunks: Mapping[int, bytes | memoryview], final: tuple[int, int] | None = None,
        crcs: Mapping[int, int] | None = None, *, overwrite: bool = True,
    ) -> set[int]:
        """Make ``chunks`` durable and record them (and the log's ``final`` (size, crc)) in one
        transaction. ``crcs``: their CRC-32s when the caller has them already. Without
        ``overwrite`` a chunk that has a row already keeps it; returns the indexes not written."""
        if not chunks and final is None:
            return set()
        crcs = {index: crcs[index] if crcs and index in crcs else zlib.crc32(data) for index, data in chunks.items()}
        in_rows = not await self._put_objects(job_id, chunks, crcs)
        async with self._slots, (self._engine if final is not None else self._single).begin() as conn:
            kept = await queries.traces.seal_chunks(
                conn, job_id, chunks, crcs, self.chunk_size, in_rows=in_rows, overwrite=overwrite
            )
            if final is not None:
                await queries.traces.set_size(conn, job_id, *final)
        self.sealed += len(chunks) - len(kept)
        return kept

    async def _put_objects(self, job_id: int, chunks: Mapping[int, bytes | memoryview], crcs: Mapping[int, int]) -> bool:
        if self._objects is None or not chunks:
            return False
        try:
            await asyncio.gather(*(self._objects.put_bytes(chunk_key(job_id, i, crcs[i]), data) for i, data in chunks.items()))
        except Exception:
            self.object_failures += len(chunks)
            log.warning("trace_chunk_object_failed", job_id=job_id, chunks=sorted(chunks), exc_info=True)
            return False
        return True

    async def read(self, job_id: int, first_index: int, limit: int) -> list[tuple[int, bytes]]:
        """Up to ``limit`` consecutive chunks from ``first_index``, stopping at the first gap."""
        async with self._single.connect() as conn:
            rows = await queries.traces.read_chunks(conn, job_id, first_index, limit)
        out: list[tuple[int, bytes]] = []
        for expected, (index, data, crc) in enumerate(rows, first_index):
            if index != expected:
                break
            if data is None:
                data = await self._objects.get_bytes(chunk_key(job_id, index, crc)) if self._objects else None
                if data is None:  # archived and deleted under us
                    break
            out.append((index, data))
        return out

    async def lengths(self, job_id: int) -> dict[int, int]:
        async with self._single.connect() as conn:
            return await queries.traces.durable_chunks(conn, job_id)

    async def delete(self, job_id: int) -> None:
        """Drop the rows, then the objects (a reader between the two finds rows without bytes and
        stops, as at a gap)."""
        async with self._engine.begin() as conn:
            await queries.traces.delete(conn, job_id)
        if self._objects is not None:
            await self._objects.delete_prefix(chunks_prefix(job_id))
