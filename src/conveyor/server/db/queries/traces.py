"""Trace chunks in PostgreSQL: offset-checked appends and chunked reads (see sql/traces.sql)."""

from __future__ import annotations

import zlib

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


def chunk_pieces(offset: int, data: bytes, chunk_size: int) -> list[tuple[int, bytes]]:
    """``data`` written at ``offset``, cut at chunk boundaries: (chunk index, piece) in order."""
    pieces, position, view = [], offset, memoryview(data)
    while view:
        index, within = divmod(position, chunk_size)
        piece = bytes(view[: chunk_size - within])
        pieces.append((index, piece))
        position += len(piece)
        view = view[len(piece) :]
    return pieces


async def read_chunks(conn: AsyncConnection, job_id: int, first_index: int, limit: int = 8) -> list[tuple[int, bytes]]:
    stmt = (
        sa.select(trace_chunks.c.chunk_index, trace_chunks.c.data)
        .where(trace_chunks.c.job_id == job_id, trace_chunks.c.chunk_index >= first_index)
        .order_by(trace_chunks.c.chunk_index)
        .limit(limit)
    )
    return [(row[0], bytes(row[1])) for row in await conn.execute(stmt)]


async def delete(conn: AsyncConnection, job_id: int) -> None:
    await conn.execute(trace_chunks.delete().where(trace_chunks.c.job_id == job_id))


async def durable_chunks(conn: AsyncConnection, job_id: int) -> dict[int, int]:
    """chunk index -> bytes stored in PostgreSQL, for a job's log."""
    stmt = sa.select(trace_chunks.c.chunk_index, sa.func.octet_length(trace_chunks.c.data)).where(
        trace_chunks.c.job_id == job_id
    )
    return {row[0]: row[1] for row in await conn.execute(stmt)}


async def seal_chunks(conn: AsyncConnection, job_id: int, chunks: dict[int, bytes], chunk_size: int) -> None:
    """Store chunks (index -> bytes) with their CRC-32s in one statement (idempotent) and raise
    the job's durable size to the end of the last one."""
    if not chunks:
        return
    indexes = sorted(chunks)
    params = {"job_id": job_id, "chunk_indexes": indexes, "pieces": [chunks[i] for i in indexes],
              "crc32s": [zlib.crc32(chunks[i]) for i in indexes],
              "durable_end": indexes[-1] * chunk_size + len(chunks[indexes[-1]])}
    await conn.execute(sql.query("seal_chunks"), params)


async def set_size(conn: AsyncConnection, job_id: int, size: int, crc32: int) -> None:
    """Record a log's final size and CRC-32 (every byte durable), for the archiver and readers."""
    await conn.execute(jobs.update().where(jobs.c.id == job_id).values(trace_size=size, trace_crc32=crc32))
