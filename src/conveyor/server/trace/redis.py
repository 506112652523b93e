"""TraceStore with hot chunks in Redis and sealed chunks durable (``trace.durable``: rows in
PostgreSQL, bytes in the object store or the rows) -- GitLab's live trace, minus the ways it lost
logs.

Append: one Lua script checks the offset against the log's size and appends the PATCH to the
128 KiB chunk keys it touches, atomically, so any number of server processes take PATCHes for one
job. A chunk that became full is then *sealed*: made durable with its CRC-32 and recorded in
``trace_chunks`` in one short transaction, and only after that deleted from Redis (at worst the
bytes exist twice, never nowhere). A chunk one PATCH fills from its first byte (a large PATCH),
or completes (its head read back from Redis), skips Redis: it is sealed first, and the script
then only moves the size past it (and drops the head). Two processes racing on one offset both seal before the script picks one: the first
writer keeps the row, and the winner rewrites it with its own bytes if it was not the first.
``persist`` seals everything, the partial last chunk too, before a job may finish.

Every PATCH's own commands (the append script, a completed chunk's head) go through
``HotRedis``, a lean pipelined client; the rest through redis-py.

Acknowledging a byte that lives only in Redis is safe only when Redis persists it (AOF): the
server picks this store then (``server.app``); otherwise ``PostgresTraceStore``.

If Redis loses a log (restart without AOF, eviction), the size falls back to what is durable and
the next PATCH gets 416 with that offset: the runner resends from its spool, nothing is lost.
Readers try the place a chunk should be, then the other, so a seal racing a read never shows a hole.
"""

from __future__ import annotations

import zlib
from importlib import resources

import structlog
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from conveyor.server import keys
from conveyor.server.db import queries
from conveyor.server.errors import RangeMismatch
from conveyor.server.storage import ObjectStore, SegmentFiles
from conveyor.server.trace.base import Announcement, FinalLog, TraceStore
from conveyor.server.trace.crc import ChunkCrc
from conveyor.server.trace.durable import DurableChunks, Sealed
from conveyor.server.trace.hot_redis import HotRedis

log = structlog.get_logger(__name__)

TTL_SECONDS = 7 * 86400  # GitLab's live chunk TTL, refreshed on every append
LOST, WRONG_OFFSET, HOLE = -2, -1, -3
LAST_KNOWN = 10_000  # jobs whose (size, crc) this process remembers


def _script(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text()


class RedisTraceStore(TraceStore):
    def __init__(
        self, engine: AsyncEngine, redis: Redis, chunk_size: int = 128 * 1024, ttl: int = TTL_SECONDS,
        objects: ObjectStore | None = None, segments: SegmentFiles | None = None, hot: HotRedis | None = None,
    ) -> None:
        self._engine = engine
        self._redis = redis
        self._hot = hot or HotRedis.like(redis)  # the append script and head reads: every PATCH's commands
        self.chunk_size = chunk_size
        self._ttl = ttl
        self._append = redis.register_script(_script("append.lua"))
        self._restore_script = redis.register_script(_script("restore.lua"))
        self._forget_script = redis.register_script(_script("forget.lua"))
        self.durable = DurableChunks(engine, objects, chunk_size, segments=segments)  # sealed chunks: rows, segments or objects
        self._chunk_crc = ChunkCrc(chunk_size)
        self._last: dict[int, tuple[int, int]] = {}  # job -> (size, crc) after this process's last append

    def _remember(self, job_id: int, size: int, crc: int) -> None:
        self._last.pop(job_id, None)
        self._last[job_id] = (size, crc)
        while len(self._last) > LAST_KNOWN:
            self._last.pop(next(iter(self._last)))

    announces = True  # the append script publishes the Announcement when the job is watched

    async def append(self, job_id: int, offset: int, data: bytes, announce: Announcement | None = None) -> int:
        for attempt in range(3):
            # the CRC of bytes 0..offset: this process's last append to the job usually knows it
            # (a runner keeps its connection, so its PATCHes land on one process); the script
            # checks the size, and a size fixes the bytes before it, so a stale entry cannot pass
            known = self._last.get(job_id) if attempt == 0 else None
            # a PATCH at offset 0 starts a new log: its meta is absent because it never existed,
            # not because Redis lost it, and the script takes a missing meta as an empty log
            # (the size check still refuses offset 0 on a log that has bytes)
            new_log = offset == 0 and attempt == 0
            if new_log and not known:
                known = (0, 0)  # crc32 of no bytes
            size, crc = known if known and known[0] == offset else await self._state(job_id)
            if size != offset:
                raise RangeMismatch(size)
            pieces = queries.traces.chunk_pieces(offset, data, self.chunk_size) or [(offset // self.chunk_size, b"")]
            new_size = offset + len(data)
            head = await self._completed_head(job_id, offset, pieces[0][1])
            whole = self._whole_chunks(pieces, head)
            # a chunk this PATCH fills from its first byte, or completes (its head read back from
            # Redis), is made durable straight away, before the script makes it part of the log:
            # durable before acknowledged, and the PATCH's bytes never pass through Redis. The
            # first writer keeps a row (two processes may race on one offset); the winner
            # rewrites any it did not write once its append has won
            sealed = await self._seal(job_id, whole, hot=False, overwrite=False) if whole else Sealed(set(), {})
            new_crc = self._log_crc(crc, pieces, sealed.crc32s)
            announced = [announce.watch_key] if announce else []
            result: list[int] = await self._hot.evalsha(  # type: ignore[assignment]
                self._append.sha, self._append.script,
                keys=[keys.trace_meta(job_id), *(keys.trace_chunk(job_id, index) for index, _ in pieces), *announced],
                args=[offset, new_size, new_crc, self._ttl, offset % self.chunk_size, int(head is not None), int(new_log),
                      *(b"" if index in whole else piece for index, piece in pieces),
                      *((announce.channel, announce.message) if announce else ())],
            )
            status, current = int(result[0]), int(result[1])
            if status == WRONG_OFFSET:
                raise RangeMismatch(current)
            if status == HOLE:
                log.warning("trace_hot_chunk_lost", job_id=job_id, size=current)
                await self._forget(job_id)
                continue
            if status == LOST:
                continue  # restored by the next _state
            self._remember(job_id, new_size, new_crc)
            if announce is not None:
                announce.watched = bool(int(result[2]))
            if sealed.kept:
                await self._seal(job_id, {i: whole[i] for i in sealed.kept}, hot=False, crcs=sealed.crc32s)
            completed = [index for index, piece in pieces
                         if index not in whole and (index + 1) * self.chunk_size <= new_size]
            if completed:
                await self._seal_completed(job_id, completed)
            return new_size
        raise RangeMismatch((await self._state(job_id))[0])

    async def _completed_head(self, job_id: int, offset: int, first: bytes | memoryview) -> bytes | None:
        """The bytes Redis holds of the hot chunk this PATCH's ``first`` piece completes, when it
        completes one and Redis holds all of them (else the script finds out and restores)."""
        index, within = divmod(offset, self.chunk_size)
        if within == 0 or within + len(first) != self.chunk_size:
            return None
        head = await self._hot.get(keys.trace_chunk(job_id, index))
        return head if head is not None and len(head) == within else None

    def _whole_chunks(self, pieces: list[tuple[int, bytes | memoryview]], head: bytes | None) -> dict[int, bytes | memoryview]:
        """The chunks ``pieces`` make whole: a piece that fills a chunk, and the first piece joined
        to the hot ``head`` it completes."""
        whole: dict[int, bytes | memoryview] = {}
        for position, (index, piece) in enumerate(pieces):
            if len(piece) == self.chunk_size:
                whole[index] = piece
            elif position == 0 and head is not None:
                whole[index] = head + piece
        return whole

    def _log_crc(self, crc: int, pieces: list[tuple[int, bytes | memoryview]], chunk_crcs: dict[int, int]) -> int:
        """The log's CRC-32 after ``pieces``, from its ``crc`` before them: a whole chunk's own
        CRC (``chunk_crcs``, hashed by the seal) extends it without hashing the chunk again."""
        for index, piece in pieces:
            if len(piece) == self.chunk_size and index in chunk_crcs:
                crc = self._chunk_crc.extend(crc, chunk_crcs[index])
            else:
                crc = zlib.crc32(piece, crc)
        return crc

    async def size(self, job_id: int) -> int:
        value = await self._redis.hget(keys.trace_meta(job_id), "size")
        if value is not None:
            return int(value)
        async with self._engine.connect() as conn:
            current = await queries.traces.size(conn, job_id)
        return current[0] if current else 0

    async def read(self, job_id: int, start: int, limit: int) -> bytes:
        end = min(start + limit, await self.size(job_id))
        out = bytearray()
        position = start
        while position < end:
            index, within = divmod(position, self.chunk_size)
            wanted = min(self.chunk_size - within, end - position)
            piece = await self._redis.getrange(keys.trace_chunk(job_id, index), within, within + wanted - 1)
            if len(piece) < wanted:  # sealed (or being sealed): durable
                rows = await self.durable.read(job_id, index, 1)
                piece = rows[0][1][within : within + wanted] if rows else b""
            if not piece:
                break
            out += piece
            position += len(piece)
        return bytes(out)

    async def persist(self, job_id: int, recorded: tuple[int, int] | None = None) -> tuple[int, int]:
        if recorded is not None and await self.unchanged(job_id, recorded):
            # the final update persisted this log; the archiver needs no second pass (a durable
            # read and a seal) unless bytes came after it: then the live size says otherwise
            return recorded
        size, crc, chunks = await self._unsealed(job_id)
        await self._seal(job_id, chunks, final=(size, crc))  # the missing chunks and the final size
        return size, crc

    async def seal_final(self, job_id: int) -> FinalLog:
        """``persist`` in two halves: the chunks not sealed yet (the partial last one too) are
        placed now; their rows, and the log's size and CRC-32 on the job, are one statement left
        for the caller's transaction (``FinalLog.record``). What they seal stays in Redis too (its
        transaction may yet roll back) until the archiver drops the log: the partial last chunk,
        and rarely a full one whose own seal failed."""
        size, crc, chunks = await self._unsealed(job_id)
        placed = await self.durable.place(job_id, chunks)

        async def record(conn: AsyncConnection) -> None:
            await self.durable.record(conn, job_id, placed, (size, crc))

        return FinalLog(size, crc, record)

    async def _unsealed(self, job_id: int) -> tuple[int, int, dict[int, bytes]]:
        """The log's size and CRC-32, and the chunks Redis holds that are not durable yet."""
        size, crc = await self._state(job_id)
        # a log of one chunk (most jobs'): that chunk is hot or durable already, so sealing what
        # Redis holds (at worst the same bytes again) saves reading the durable lengths first
        durable = await self.durable.lengths(job_id) if size > self.chunk_size else {}
        lengths = {index: min(self.chunk_size, size - index * self.chunk_size) for index in range(-(-size // self.chunk_size))}
        missing = [index for index, length in lengths.items() if durable.get(index) != length]
        found = await self._redis.mget([keys.trace_chunk(job_id, index) for index in missing]) if missing else []
        return size, crc, {index: data for index, data in zip(missing, found) if data is not None and len(data) == lengths[index]}

    async def unchanged(self, job_id: int, recorded: tuple[int, int]) -> bool:
        """The log's meta in Redis still says ``recorded``: nothing came after the final update,
        and the archiver has not dropped the log (it deletes the meta once the archive commits)."""
        size, crc = await self._redis.hmget(keys.trace_meta(job_id), ["size", "crc"])
        return size is not None and (int(size), int(crc)) == recorded

    async def delete(self, job_id: int, *, rows: bool = True) -> None:
        await self.durable.delete(job_id, rows=rows)
        await self._forget(job_id)

    async def aclose(self) -> None:
        await self._hot.aclose()

    @property
    def sealed_chunks(self) -> int:
        """Chunks this process made durable (a metric)."""
        return self.durable.sealed

    async def _state(self, job_id: int) -> tuple[int, int]:
        """(size, crc) from Redis, restoring the meta from the durable chunks when Redis lost it."""
        size, crc = await self._redis.hmget(keys.trace_meta(job_id), ["size", "crc"])
        if size is not None:
            return int(size), int(crc)
        return await self._restore(job_id)

    async def _restore(self, job_id: int) -> tuple[int, int]:
        crc, size, tail, index = 0, 0, b"", 0
        while rows := await self.durable.read(job_id, index, 8):
            for chunk_index, data in rows:
                crc, size, index = zlib.crc32(data, crc), size + len(data), chunk_index + 1
                tail = data if len(data) < self.chunk_size else b""
            if len(rows) < 8 or len(tail):
                break
        await self._restore_script(
            keys=[keys.trace_meta(job_id), keys.trace_chunk(job_id, size // self.chunk_size)],
            args=[size, crc, self._ttl, tail],
        )
        log.warning("trace_restored_from_durable", job_id=job_id, size=size)
        size_now, crc_now = await self._redis.hmget(keys.trace_meta(job_id), ["size", "crc"])
        return (int(size_now), int(crc_now)) if size_now is not None else (size, crc)

    async def _seal_completed(self, job_id: int, indexes: list[int]) -> None:
        """Seal hot chunks a PATCH completed (they began in an earlier one), read back from Redis."""
        chunks = {}
        for index, data in zip(indexes, await self._redis.mget([keys.trace_chunk(job_id, i) for i in indexes])):
            if data is not None and len(data) == self.chunk_size:
                chunks[index] = data  # else sealed already by another process
        await self._seal(job_id, chunks)

    async def _seal(self, job_id: int, chunks: dict[int, bytes | memoryview], final: tuple[int, int] | None = None,
                    hot: bool = True, crcs: dict[int, int] | None = None, overwrite: bool = True) -> Sealed:
        """Make ``chunks`` durable in one transaction, recording the ``final`` (size, crc) too if
        given; then, if they were ``hot``, drop the full ones from Redis (a partial last chunk
        stays hot): at worst the bytes exist twice, never nowhere."""
        sealed = await self.durable.seal(job_id, chunks, final, crcs, overwrite=overwrite)
        full = [keys.trace_chunk(job_id, index) for index, data in chunks.items() if len(data) == self.chunk_size]
        if hot and full:
            await self._redis.delete(*full)
        return sealed

    async def _forget(self, job_id: int) -> None:
        """Drop the log from Redis: one script call, from its meta's size (a SCAN of the whole
        keyspace per finished job before, three times per job in bench/routes); only a log whose
        meta is gone is looked for key by key."""
        self._last.pop(job_id, None)
        prefix = keys.trace_chunk(job_id, 0)[:-1]
        if await self._forget_script(keys=[keys.trace_meta(job_id)], args=[self.chunk_size, prefix]) >= 0:
            return
        doomed = [key async for key in self._redis.scan_iter(match=prefix + "*", count=100)]
        if doomed:
            await self._redis.delete(*doomed)
