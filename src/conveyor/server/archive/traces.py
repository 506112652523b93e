"""Archive a finished job's log: stream chunks into one object, verify, then delete chunks.

Order (never lose a byte): 1. write the object from the live chunks; 2. re-read its size and
compare the CRC-32 computed while streaming with the CRC kept at append time and with the
runner's checksum; 3. only then, in one transaction, flag the job archived and delete chunks.
A failure at any step leaves the chunks untouched and the job is retried on the next sweep.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator

import structlog
from redis.asyncio import Redis
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from conveyor.protocol import trace as wire
from conveyor.server import keys
from conveyor.server.db import queries
from conveyor.server.errors import ServerError
from conveyor.server.storage import ObjectStore
from conveyor.server.trace.base import TraceStore
from conveyor.server.trace.reader import READ_SIZE, archive_key

log = structlog.get_logger(__name__)

LEASE_SECONDS = 600  # longer than any archive takes; a crashed holder's lease expires


class ArchiveMismatch(ServerError):
    """The archived object does not match the live log; the live chunks are kept."""


class TraceArchiver:
    def __init__(
        self, engine: AsyncEngine, live: TraceStore, objects: ObjectStore, redis: Redis, interval: float = 5.0
    ) -> None:
        self._engine = engine
        self._redis = redis
        self._live = live
        self.objects = objects
        self._interval = interval
        self._wake = asyncio.Event()
        self.failures = 0

    def wake(self) -> None:
        """Ask the sweep loop to run now (a job just finished)."""
        self._wake.set()

    async def run(self) -> None:
        """Sweep forever: archive every finished, unarchived job. Cancel to stop."""
        while True:
            await self.archive_pending()
            try:
                await asyncio.wait_for(self._wake.wait(), self._interval)
            except TimeoutError:
                pass
            self._wake.clear()

    async def archive_pending(self) -> int:
        """Archive every finished job whose log is still live; returns how many succeeded."""
        async with self._engine.connect() as conn:
            job_ids = await queries.jobs.unarchived_finished(conn)
        done = 0
        for job_id in job_ids:
            try:
                done += await self.archive(job_id)
            except Exception:  # keep sweeping; the chunks are intact and the job is retried
                self.failures += 1
                log.exception("trace_archive_failed", job_id=job_id)
        return done

    async def archive(self, job_id: int) -> bool:
        async with self._engine.connect() as conn:
            job = await queries.jobs.get(conn, job_id)
        if job is None or job["trace_archived"] or job["finished_at"] is None:
            return False
        # every server process sweeps: a short lease keeps two from archiving the same log (the
        # loser used to find the chunks deleted under it and count a failure)
        lease = keys.archive_lease(job_id)
        if not await self._redis.set(lease, "1", nx=True, ex=LEASE_SECONDS):
            return False
        try:
            return await self._archive(job)
        finally:
            await self._redis.delete(lease)

    async def _archive(self, job: RowMapping) -> bool:
        job_id = job["id"]
        await self._live.persist(job_id)  # hot chunks into PostgreSQL; the job's size and CRC recorded
        async with self._engine.connect() as conn:  # re-read under the lease: still to do?
            job = await queries.jobs.get(conn, job_id)
        if job is None or job["trace_archived"]:
            return False
        state = _Crc()
        key = archive_key(job_id)
        written = await self.objects.put(key, state.feed(self._chunks(job_id, job["trace_size"])))
        stored = await self.objects.size(key)
        expected = job["trace_crc32"] & 0xFFFFFFFF
        runner_crc = wire.parse_checksum(job["trace_checksum"])
        if written != job["trace_size"] or stored != written or state.crc != expected:
            raise ArchiveMismatch(f"job {job_id}: archive size {stored}/{written} crc {state.crc:08x}, expected {job['trace_size']} {expected:08x}")
        if runner_crc is not None and runner_crc != state.crc:
            log.error("trace_checksum_mismatch", job_id=job_id, runner=f"{runner_crc:08x}", stored=f"{state.crc:08x}")
        async with self._engine.begin() as conn:
            await queries.jobs.mark_archived(conn, job_id)
            await queries.traces.delete(conn, job_id)
        log.info("trace_archived", job_id=job_id, bytes=written)
        return True

    async def _chunks(self, job_id: int, size: int) -> AsyncIterator[bytes]:
        position = 0
        while position < size:
            piece = await self._live.read(job_id, position, min(READ_SIZE, size - position))
            if not piece:
                raise ArchiveMismatch(f"job {job_id}: live trace ends at {position}, expected {size}")
            position += len(piece)
            yield piece


class _Crc:
    def __init__(self) -> None:
        self.crc = 0

    async def feed(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        async for chunk in chunks:
            self.crc = zlib.crc32(chunk, self.crc)
            yield chunk
