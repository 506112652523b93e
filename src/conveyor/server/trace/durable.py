"""Where a live log's sealed chunks live: a row per chunk in ``trace_chunks`` (index, length,
CRC-32), and its bytes in one of three places (``trace_chunk_store``, chosen in ``server.app``):

- the row itself (``"database"``): PostgreSQL spends ~4-6 ms of CPU per MiB of log on them
  (TOAST tuples and WAL; bench/traces part a), which is why seals are few at a time
  (``concurrency``);
- segment files (``storage.segments``; ``"object"`` with a local object store, the default then):
  each process appends the chunks it seals to one file per job, and the row records the extent;
- the object store, an object per chunk under ``traces/<job>/chunks/<index>-<crc>`` (``"object"``
  with S3), as GitLab's object-storage chunks are; a live log is then unreadable while the store
  is down. (On a local ext4 directory an object per 128 KiB made the kernel's inode allocator the
  bottleneck, hence segment files there.)

Outside the rows, the bytes are written before the row commits, and the row before the bytes
are acknowledged; when the write fails, the chunk goes into its row instead (counted), so an
outage loses nothing. A reader that finds the bytes gone (the archiver deleted them after
archiving) stops there, as it does at a missing row: the caller re-checks the archive.
"""

from __future__ import annotations

import asyncio
import itertools
import zlib
from collections.abc import Mapping
from typing import NamedTuple

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from conveyor.server.db import queries, single_statements
from conveyor.server.db.queries.traces import StoredChunk
from conveyor.server.storage import ObjectStore
from conveyor.server.storage.segments import SegmentFiles

log = structlog.get_logger(__name__)


def chunk_key(job_id: int, index: int, crc32: int) -> str:
    """A chunk's object, named by its CRC-32 too: two writers of different bytes for one chunk
    (never the same runner) cannot overwrite each other's object; the row says which is the log's."""
    return f"{chunks_prefix(job_id)}{index:08d}-{crc32 & 0xFFFFFFFF:08x}"


def chunks_prefix(job_id: int) -> str:
    return f"traces/{job_id}/chunks/"


def segments_directory(job_id: int) -> str:
    """The job's directory of segment files, one per server process that sealed its chunks."""
    return str(job_id)


class Sealed(NamedTuple):
    """What ``DurableChunks.seal`` did: the indexes whose existing row it ``kept`` (not written,
    without ``overwrite``), and the CRC-32 of every chunk it was given."""

    kept: set[int]
    crc32s: dict[int, int]


class Placed(NamedTuple):
    """Chunks whose bytes ``DurableChunks.place`` made durable outside PostgreSQL (or that go into
    their rows, ``in_rows``), with their CRC-32s: what ``DurableChunks.record`` writes rows for."""

    chunks: Mapping[int, bytes | memoryview]
    crc32s: dict[int, int]
    in_rows: bool
    segments: dict[int, tuple[str, int]] | None


class DurableChunks:
    def __init__(
        self, engine: AsyncEngine, objects: ObjectStore | None, chunk_size: int, concurrency: int = 2,
        segments: SegmentFiles | None = None,
    ) -> None:
        self._engine = engine
        # seals at once per process: 32 backends writing TOAST rows at once spent 7.3 ms of database
        # CPU per MiB against 4.3 for one and 5.6 for four (extension and WAL locks); a queue here
        # costs a PATCH some wait, not the database its throughput
        self._slots = asyncio.Semaphore(concurrency)
        self._single = single_statements(engine)  # a seal is one statement
        self._objects = None if segments is not None else objects
        self._segments = segments
        self.chunk_size = chunk_size
        self.sealed = 0  # chunks made durable by this process (a metric)
        self.object_failures = 0  # chunks that went into rows because the object store or segment file failed

    @property
    def where(self) -> str:
        """Where sealed chunks' bytes go: "database" (the rows), "segments" or "objects"."""
        return "segments" if self._segments is not None else "objects" if self._objects is not None else "database"

    async def seal(
        self, job_id: int, chunks: Mapping[int, bytes | memoryview], final: tuple[int, int] | None = None,
        crcs: Mapping[int, int] | None = None, *, overwrite: bool = True,
    ) -> Sealed:
        """Make ``chunks`` durable and record them (and the log's ``final`` (size, crc)) in one
        statement. ``crcs``: their CRC-32s when the caller has them already. Without
        ``overwrite`` a chunk that has a row already keeps it (``Sealed.kept``)."""
        if not chunks and final is None:
            return Sealed(set(), {})
        placed = await self.place(job_id, chunks, crcs)
        async with self._slots, self._single.connect() as conn:  # one statement: autocommit
            kept = await self.record(conn, job_id, placed, final, overwrite=overwrite)
        return Sealed(kept, placed.crc32s)

    async def place(self, job_id: int, chunks: Mapping[int, bytes | memoryview], crcs: Mapping[int, int] | None = None) -> Placed:
        """The first half of a seal: ``chunks``' bytes written where they live (a segment file,
        the object store), durable before any row names them; their rows are ``record``'s."""
        crc32s = {index: crcs[index] if crcs and index in crcs else zlib.crc32(data) for index, data in chunks.items()}
        segments = await self._append_segments(job_id, chunks)
        in_rows = segments is None and not await self._put_objects(job_id, chunks, crc32s)
        return Placed(chunks, crc32s, in_rows, segments)

    async def record(
        self, conn: AsyncConnection, job_id: int, placed: Placed, final: tuple[int, int] | None = None, *, overwrite: bool = True
    ) -> set[int]:
        """The second half: the rows of ``placed`` chunks (and the log's ``final`` size and CRC on
        the job), one statement on ``conn``; returns the indexes whose existing row was kept."""
        kept = await queries.traces.seal_chunks(
            conn, job_id, placed.chunks, placed.crc32s, self.chunk_size, in_rows=placed.in_rows, overwrite=overwrite,
            segments=placed.segments, final=final,
        )
        self.sealed += len(placed.chunks) - len(kept)
        return kept

    async def _append_segments(self, job_id: int, chunks: Mapping[int, bytes | memoryview]) -> dict[int, tuple[str, int]] | None:
        """Append ``chunks`` to this process's segment file of the job: index -> (file, offset);
        None without segment files or when the write failed."""
        if self._segments is None or not chunks:
            return None
        indexes = sorted(chunks)
        try:
            placed = await self._segments.append(segments_directory(job_id), [chunks[i] for i in indexes])
        except OSError:
            self.object_failures += len(chunks)
            log.warning("trace_chunk_segment_failed", job_id=job_id, chunks=indexes, exc_info=True)
            return None
        where, offset = {}, placed.offset
        for index in indexes:
            where[index] = (placed.name, offset)
            offset += len(chunks[index])
        return where

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
        consecutive = list(itertools.takewhile(lambda pair: pair[0] == pair[1].index, enumerate(rows, first_index)))
        rows = [row for _, row in consecutive]
        from_segments = await self._read_segments(job_id, rows)
        out: list[tuple[int, bytes]] = []
        for row in rows:
            data = row.data if row.data is not None else from_segments.get(row.index)
            if data is None and row.segment is None and self._objects is not None:
                data = await self._objects.get_bytes(chunk_key(job_id, row.index, row.crc32 or 0))
            if data is None:  # archived and deleted under us (or a gap)
                break
            out.append((row.index, data))
        return out

    async def _read_segments(self, job_id: int, rows: list[StoredChunk]) -> dict[int, bytes]:
        located = [row for row in rows if row.data is None and row.segment is not None]
        if not located or self._segments is None:
            return {}
        extents = [(row.segment, row.segment_offset or 0, row.size or 0) for row in located]
        found = await self._segments.read(segments_directory(job_id), extents)
        return {row.index: data for row, data in zip(located, found) if data is not None}

    async def lengths(self, job_id: int) -> dict[int, int]:
        async with self._single.connect() as conn:
            return await queries.traces.durable_chunks(conn, job_id)

    async def delete(self, job_id: int, *, rows: bool = True) -> None:
        """Drop the rows (unless the caller did: ``rows=False``), then the segment files or
        objects (a reader between the two finds rows whose bytes are gone and stops, as at a gap)."""
        if rows:
            async with self._engine.begin() as conn:
                await queries.traces.delete(conn, job_id)
        if self._segments is not None:
            await self._segments.delete(segments_directory(job_id))
        if self._objects is not None:
            await self._objects.delete_prefix(chunks_prefix(job_id))
