"""Trace chunks in PostgreSQL: offset-checked appends and chunked reads (see sql/traces.sql)."""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from conveyor.server.db import sql
from conveyor.server.db.tables import jobs, trace_chunks


async def size(conn: AsyncConnection, job_id: int) -> tuple[int, int] | None:
    """(size, crc32) of a job's trace, or None for an unknown job."""
    stmt = sa.select(jobs.c.trace_size, jobs.c.trace_crc32).where(jobs.c.id == job_id)
    row = (await conn.execute(stmt)).first()
    return (row[0], row[1]) if row else None


async def append(conn: AsyncConnection, job_id: int, offset: int, data: bytes, chunk_size: int) -> int | None:
    """Append ``data`` at ``offset``; the new size, or None if ``offset`` is not the current size.

    Must run in one transaction: the jobs-row update serialises appends; the chunk upserts
    follow under that lock. Data crossing a chunk boundary is split.
    """
    current = await size(conn, job_id)
    if current is None or current[0] != offset:
        return None
    params = {"job_id": job_id, "offset": offset, "length": len(data), "crc32": zlib.crc32(data, current[1])}
    new_size = (await conn.execute(sql.query("reserve_trace_range"), params)).scalar()
    if new_size is None:
        return None
    pieces = chunk_pieces(offset, data, chunk_size)
    await conn.execute(sql.query("append_chunks"), {"job_id": job_id, "chunk_indexes": [index for index, _ in pieces],
                                                    "pieces": [piece for _, piece in pieces]})
    return new_size


def chunk_pieces(offset: int, data: bytes, chunk_size: int) -> list[tuple[int, memoryview]]:
    """``data`` written at ``offset``, cut at chunk boundaries: (chunk index, piece) in order.
    The pieces are views of ``data``, not copies (asyncpg and zlib take them as they are)."""
    pieces: list[tuple[int, memoryview]] = []
    position, view = offset, memoryview(data)
    while view:
        index, within = divmod(position, chunk_size)
        piece = view[: chunk_size - within]
        pieces.append((index, piece))
        position += len(piece)
        view = view[len(piece) :]
    return pieces


async def archived(conn: AsyncConnection, job_id: int) -> bool:
    """Whether the job's log is in its archived object (False for an unknown job)."""
    stmt = sa.select(jobs.c.trace_archived).where(jobs.c.id == job_id)
    return bool((await conn.execute(stmt)).scalar())


class StoredChunk(NamedTuple):
    """A chunk's row: its bytes (``data``), or where they are: a segment file (``segment``,
    ``segment_offset``, ``size`` bytes) or, with neither, the object store (a key made from the
    CRC-32)."""

    index: int
    data: bytes | None
    crc32: int | None
    size: int | None
    segment: str | None
    segment_offset: int | None


async def read_chunks(conn: AsyncConnection, job_id: int, first_index: int, limit: int = 8) -> list[StoredChunk]:
    """The rows of the chunks from ``first_index``, in order."""
    c = trace_chunks.c
    stmt = (
        sa.select(c.chunk_index, c.data, c.crc32, c.data_size, c.segment, c.segment_offset)
        .where(c.job_id == job_id, c.chunk_index >= first_index)
        .order_by(c.chunk_index)
        .limit(limit)
    )
    return [StoredChunk(row[0], None if row[1] is None else bytes(row[1]), *row[2:]) for row in await conn.execute(stmt)]


async def delete(conn: AsyncConnection, job_id: int) -> None:
    await conn.execute(trace_chunks.delete().where(trace_chunks.c.job_id == job_id))


async def durable_chunks(conn: AsyncConnection, job_id: int) -> dict[int, int]:
    """chunk index -> length of each durable chunk of a job's log (in its row or the object store)."""
    length = sa.func.coalesce(sa.func.octet_length(trace_chunks.c.data), trace_chunks.c.data_size)
    stmt = sa.select(trace_chunks.c.chunk_index, length).where(
        trace_chunks.c.job_id == job_id
    )
    return {row[0]: row[1] for row in await conn.execute(stmt)}


async def seal_chunks(
    conn: AsyncConnection, job_id: int, chunks: Mapping[int, bytes | memoryview], crcs: Mapping[int, int],
    chunk_size: int, *, in_rows: bool = True, overwrite: bool = True,
    segments: Mapping[int, tuple[str, int]] | None = None, final: tuple[int, int] | None = None,
) -> set[int]:
    """Record chunks (index -> bytes) with their lengths and CRC-32s (index -> crc) in one
    statement and raise the job's durable size to the end of the last one written, or with
    ``final`` (the whole log's size and CRC-32, every byte durable) record those on the job in the same
    statement. With ``in_rows`` False the bytes are elsewhere already and the rows say where
    (``data`` NULL): in ``segments`` (index -> (segment file, offset)) when given, else in the
    object store. Without ``overwrite`` an existing row is kept; returns the indexes not written."""
    if not chunks and final is None:
        return set()
    indexes = sorted(chunks)
    segments = segments or {}
    params = {"job_id": job_id, "chunk_indexes": indexes,
              "pieces": [chunks[i] if in_rows else None for i in indexes],
              "segments": [segments[i][0] if i in segments else None for i in indexes],
              "segment_offsets": [segments[i][1] if i in segments else None for i in indexes],
              "sizes": [len(chunks[i]) for i in indexes],
              "crc32s": [crcs[i] for i in indexes],
              "durable_end": indexes[-1] * chunk_size + len(chunks[indexes[-1]]) if indexes else 0, "overwrite": overwrite,
              "final_size": final[0] if final else None, "final_crc32": final[1] if final else None}
    written = {row[0] for row in await conn.execute(sql.query("seal_chunks"), params)}
    return set(indexes) - written
