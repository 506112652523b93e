"""Archive a finished job's log: one object in the object store, verified, then chunks deleted.

Order (never lose a byte; GitLab lost logs in 2019 by deleting chunks after a failed upload):

1. Take the job's lease (``lease.py``), so one server process archives a given log at a time;
   re-read the job (done meanwhile?), then ``TraceStore.persist`` it: every hot byte into
   PostgreSQL, and the size and CRC-32 kept at append time. A job whose finish this process
   just saw (``wake(job_id, recorded)``) is not read: if the live store still holds its log as
   the finish recorded it (``TraceStore.unchanged``), nobody archived it, and the final
   update persisted it already.
2. If the object exists already (an earlier attempt wrote it, then died or failed to verify),
   verify it: if it matches, go to 4 without writing (GitLab's ``AlreadyArchivedError`` case);
   if it does not, overwrite it.
3. Stream the live log (``TraceStore.read``) into ``ObjectStore.put``, checking on the way that
   the bytes read match that size and CRC-32.
4. Verify the object *as stored*: re-read it from the store, streaming, and compare its size and
   CRC-32 with the append-time ones. A mismatch is a failed attempt.
5. Compare with the runner's checksum (``jobs.trace_checksum``), when it sent one. On a mismatch
   the chunks are kept, the job is flagged (``trace_archives.checksum_mismatch``), a loud error is
   logged and counted, and the job is *not* retried: our bytes verified against our own CRC, so
   retrying cannot change the outcome. The log stays readable from its chunks; the object that
   was written stays too (a later archive reuses it). ``trace_archives.last_error`` says why.
6. Only then, in one statement: flag the job archived, delete its durable chunks, forget its
   attempts. Then drop whatever the live store still holds for it (hot chunks).

Any failure at 1-4 deletes nothing. It is counted (``conveyor_trace_archive_failures_total``) and
the job waits ``min(max, base * 2**(attempts-1))`` seconds (jittered +-20%) before the next sweep
takes it again. There is no last attempt: giving up would mean deleting the chunks or leaving
them forever, and a capped retry costs one read per hour at most. Readers see the live log
until step 6 commits and the object after it (``trace/reader.py``).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from conveyor.protocol import trace as wire
from conveyor.server import keys
from conveyor.server.archive import lease
from conveyor.server.archive.digest import ArchiveMismatch, Digest, LiveLog, stored_digest
from conveyor.server.archive.metrics import ArchiveMetrics
from conveyor.server.db import queries, single_statements
from conveyor.server.storage import ObjectStore
from conveyor.server.trace.base import TraceStore
from conveyor.server.trace.reader import archive_key

log = structlog.get_logger(__name__)

Recorded = tuple[int, int, "str | None"]  # a finished log: size, CRC-32, the runner's checksum


@dataclass(frozen=True)
class RetryPolicy:
    base_delay: float = 30.0  # seconds before the second attempt
    max_delay: float = 3600.0  # the wait never grows past this


class TraceArchiver:
    def __init__(
        self,
        engine: AsyncEngine,
        live: TraceStore,
        objects: ObjectStore,
        redis: Redis,
        interval: float = 5.0,
        *,
        retry: RetryPolicy | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self._engine = engine
        self._single = single_statements(engine)  # the read and the final mark: one statement each
        self._redis = redis
        self._live = live
        self.objects = objects
        self._interval = interval
        self._retry = retry or RetryPolicy()
        self._wake = asyncio.Event()
        # jobs this process saw finish since the last pass, with their log as the finish recorded it
        self._finished: dict[int, Recorded | None] = {}
        self._sweep_now = False  # a sweep was asked for (wake() without a job)
        self.metrics = ArchiveMetrics(registry)

    @property
    def failures(self) -> int:
        """Failed attempts in this process so far."""
        return self.metrics.total_failures

    def wake(self, job_id: int | None = None, recorded: Recorded | None = None) -> None:
        """Ask the loop to run now: a job just finished (``job_id``: that one, ``recorded``: its
        log's size, CRC-32 and the runner's checksum as its finish recorded them; None: a sweep)."""
        if job_id is None:
            self._finished.clear()  # a sweep finds them all
            self._sweep_now = True
        else:
            self._finished[job_id] = recorded
        self._wake.set()

    async def run(self) -> None:
        """Archive forever: the jobs this process saw finish as soon as they do (no search), and
        every ``interval`` seconds a sweep of every finished job whose log is due (finished on
        another process, or backing off after a failed attempt). Cancel to stop."""
        loop = asyncio.get_running_loop()
        swept = float("-inf")
        while True:
            finished, self._finished = self._finished, {}
            if self._sweep_now or loop.time() - swept >= self._interval:
                self._sweep_now, swept = False, loop.time()
                await self.archive_pending()
            else:
                for job_id in sorted(finished):
                    try:
                        await self.archive(job_id, finished[job_id])
                    except Exception:  # counted and scheduled by archive(); the sweep retries
                        pass
            try:
                await asyncio.wait_for(self._wake.wait(), max(0.0, self._interval - (loop.time() - swept)))
            except TimeoutError:
                pass
            self._wake.clear()

    async def archive_pending(self) -> int:
        """Archive every due job (finished, still live, not backing off); returns how many succeeded."""
        async with self._engine.connect() as conn:
            job_ids = await queries.archives.due(conn)
        done = 0
        for job_id in job_ids:
            try:
                done += await self.archive(job_id)
            except Exception:  # counted and scheduled by archive(); keep sweeping
                pass
        return done

    async def archive(self, job_id: int, recorded: Recorded | None = None) -> bool:
        """Archive one finished job's log now, backoff or not; True when this call archived it.

        False when there is nothing to do (unknown, unfinished, archived, another process holds
        the lease) or the runner's checksum disagrees (the job is held). Raises when the attempt
        failed, after recording it: the chunks are intact and the job is retried later.
        ``recorded``: the log as the job's finish recorded it (``wake``), trusted without reading
        the job's row when the live store says nothing changed since.
        """
        try:
            async with lease.hold(self._redis, keys.archive_lease(job_id)) as held:
                return held and await self._archive(job_id, recorded)
        except Exception as exc:  # Redis, PostgreSQL, the store or a mismatch: nothing was deleted
            await self._failed(job_id, exc)
            raise

    async def _archive(self, job_id: int, recorded: Recorded | None) -> bool:
        job, persisted = await self._still_to_do(job_id, recorded)
        if job is None:
            return False  # checked before persist: on an archived job it would find no bytes
        size, crc = job["trace_size"], job["trace_crc32"]
        if not persisted:  # every hot byte into PostgreSQL; the size and CRC kept at append time
            size, crc = await self._live.persist(job_id, (size, crc))
        expected = Digest(size, crc & 0xFFFFFFFF)
        key = archive_key(job_id)
        started = time.monotonic()
        # an object from an earlier attempt is read back only if its size could be right
        stored = await stored_digest(self.objects, key) if await self.objects.size(key) == expected.size else None
        if stored == expected:
            written = time.monotonic()
            log.info("trace_already_archived", job_id=job_id, object=str(stored))
        else:
            await self._write(job_id, key, expected)
            written = time.monotonic()
            stored = await stored_digest(self.objects, key)
            if stored != expected:
                raise ArchiveMismatch(f"job {job_id}: stored object is {stored}, expected {expected}")
        verified = time.monotonic()
        if not await self._runner_agrees(job, stored):
            return False
        async with self._single.connect() as conn:  # one statement: flagged, chunk rows and attempts gone
            await queries.archives.mark_archived(conn, job_id)
        try:
            # hot data the live store keeps outside the table (the rows went in the transaction)
            await self._live.delete(job_id, rows=False)
        except Exception:  # archived and verified already; leftovers are only space
            log.warning("trace_live_delete_failed", job_id=job_id, exc_info=True)
        self.metrics.archived.inc()
        self.metrics.archived_bytes.inc(stored.size)
        log.info("trace_archived", job_id=job_id, bytes=stored.size, write_s=round(written - started, 3),
                 verify_s=round(verified - written, 3), finish_s=round(time.monotonic() - verified, 3))
        return True

    async def _still_to_do(self, job_id: int, recorded: Recorded | None) -> tuple[Mapping[str, Any] | None, bool]:
        """Under the lease: the job's log columns if it is finished and not archived (else None),
        and whether its live log is known persisted as they say. A job this process just finished
        needs no read when the live store still holds its log exactly as the finish recorded it:
        an archive (any process's) drops that log before its lease ends, so an unchanged log is
        one nobody archived, and the one the final update persisted."""
        if recorded is not None and await self._live.unchanged(job_id, recorded[:2]):
            size, crc, checksum = recorded
            return {"id": job_id, "trace_size": size, "trace_crc32": crc, "trace_checksum": checksum}, True
        async with self._single.connect() as conn:
            job = await queries.jobs.get(conn, job_id)
        if job is None or job["trace_archived"] or job["finished_at"] is None:
            return None, False
        return job, False

    async def _write(self, job_id: int, key: str, expected: Digest) -> None:
        source = LiveLog(self._live, job_id, expected.size)
        written = await self.objects.put(key, source)
        if source.digest != expected or written != expected.size:
            raise ArchiveMismatch(f"job {job_id}: live log read as {source.digest} ({written} written), expected {expected}")

    async def _runner_agrees(self, job: Mapping[str, Any], stored: Digest) -> bool:
        runner_crc = wire.parse_checksum(job["trace_checksum"])
        if runner_crc is None or runner_crc == stored.crc32:
            return True
        message = f"runner reported crc32:{runner_crc:08x}, stored log is {stored}"
        log.error("trace_checksum_mismatch", job_id=job["id"], detail=message, action="chunks kept, job held")
        self.metrics.failed("checksum")
        async with self._engine.begin() as conn:
            await queries.archives.hold_mismatch(conn, job["id"], message)
        return False

    async def _failed(self, job_id: int, exc: Exception) -> None:
        self.metrics.failed("mismatch" if isinstance(exc, ArchiveMismatch) else "error")
        error = f"{type(exc).__name__}: {exc}"
        try:
            async with self._engine.begin() as conn:
                attempts = await queries.archives.record_failure(
                    conn, job_id, error, base_delay=self._retry.base_delay, max_delay=self._retry.max_delay,
                    jitter=random.uniform(0.8, 1.2),
                )
        except Exception:  # the database is down too: the job stays due and is tried next sweep
            log.exception("trace_archive_failure_not_recorded", job_id=job_id)
            attempts = None
        log.error("trace_archive_failed", job_id=job_id, attempts=attempts, error=error, exc_info=exc)
