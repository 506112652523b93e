"""Both TraceStores on real PostgreSQL and Redis: offset-checked appends, chunking, sealing, and
what happens when Redis loses a live log."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from redis.asyncio import Redis

from conveyor.server import keys
from conveyor.server.db import queries
from conveyor.server.errors import RangeMismatch
from conveyor.server.storage import SegmentFiles, open_store
from conveyor.server.trace import PostgresTraceStore, RedisTraceStore, TraceStore

from tests.integration.server.trace_support import engine, hot, make_job, redis  # noqa: F401 (fixtures)

pytestmark = pytest.mark.integration


@pytest.fixture(params=["redis", "redis-objects", "redis-segments", "postgres"])
def make_store(request, engine, redis, tmp_path, hot) -> Callable[[int], TraceStore]:  # noqa: ANN001
    if request.param == "redis":
        return lambda chunk_size: RedisTraceStore(engine, redis, chunk_size=chunk_size, hot=hot)
    if request.param == "redis-objects":  # sealed chunks in a filesystem object store
        objects = open_store(None, tmp_path / "objects")
        return lambda chunk_size: RedisTraceStore(engine, redis, chunk_size=chunk_size, objects=objects, hot=hot)
    if request.param == "redis-segments":  # sealed chunks appended to segment files
        segments = SegmentFiles(tmp_path / "segments")
        return lambda chunk_size: RedisTraceStore(engine, redis, chunk_size=chunk_size, segments=segments, hot=hot)
    return lambda chunk_size: PostgresTraceStore(engine, chunk_size)


async def _durable_bytes(engine, store: TraceStore, job: int) -> bytes:  # noqa: ANN001
    """What the durable side alone holds (rows, or the objects they point at)."""
    if isinstance(store, RedisTraceStore):
        return b"".join(bytes(chunk) for _, chunk in await store.durable.read(job, 0, 100))
    async with engine.connect() as conn:
        return b"".join(row.data or b"" for row in await queries.traces.read_chunks(conn, job, 0, 100))


async def _append_all(store: TraceStore, job_id: int, data: bytes, sizes: list[int], offset: int = 0) -> int:
    for size in sizes:
        piece = data[offset : offset + size]
        if piece:
            assert await store.append(job_id, offset, piece) == offset + len(piece)
            offset += len(piece)
    return offset


@pytest.mark.parametrize(("head", "length"), [
    (b"", 21),  # a whole chunk and a partial one
    (b"", 48),  # three whole chunks
    (b"head!", 27),  # completes the hot chunk 0 (sealed with its head from Redis), then a whole one
])
async def test_concurrent_appends_at_one_offset_store_exactly_one_writers_bytes(engine, make_store, head, length) -> None:  # noqa: ANN001
    job = await make_job(engine)
    store = make_store(16)
    if head:
        assert await store.append(job, 0, head) == len(head)
    writes = [f"writer-{i}-".encode().ljust(length, b"abcdefgh"[i : i + 1]) for i in range(8)]
    results = await asyncio.gather(*(store.append(job, len(head), data) for data in writes), return_exceptions=True)
    winners = [head + writes[i] for i, r in enumerate(results) if isinstance(r, int)]
    losers = [r for r in results if isinstance(r, RangeMismatch)]
    assert len(winners) == 1 and len(losers) == 7
    assert all(loser.size == len(head) + length for loser in losers)
    assert await store.read(job, 0, 1000) == winners[0]  # not a mix of writers, chunk by chunk
    assert await store.persist(job) == (len(winners[0]), zlib.crc32(winners[0]))
    assert await _durable_bytes(engine, store, job) == winners[0]


async def test_appends_across_chunk_boundaries_read_back_at_any_offset(engine, make_store) -> None:  # noqa: ANN001
    job = await make_job(engine)
    store = make_store(10)
    data = bytes(range(97)) * 3
    assert await _append_all(store, job, data, [3, 10, 17, 1, 40, 220]) == len(data)
    assert await store.size(job) == len(data)
    for start in (0, 5, 10, 99, len(data) - 1, len(data)):
        assert await store.read(job, start, 1000) == data[start:]
    assert await store.read(job, 33, 12) == data[33:45]
    with pytest.raises(RangeMismatch) as mismatch:
        await store.append(job, 5, b"late")
    assert mismatch.value.size == len(data)


async def test_persist_makes_every_byte_durable_with_its_size_and_crc(engine, make_store) -> None:  # noqa: ANN001
    job = await make_job(engine)
    store = make_store(10)
    data = b"0123456789" * 4 + b"tail"
    await _append_all(store, job, data, [7, 30, 7])
    assert await store.persist(job) == (len(data), zlib.crc32(data))
    async with engine.connect() as conn:
        assert await queries.traces.size(conn, job) == (len(data), zlib.crc32(data))
    assert await _durable_bytes(engine, store, job) == data  # the durable side alone has the whole log


async def test_a_full_chunk_is_sealed_into_postgresql_with_its_crc_and_leaves_redis(engine, redis, hot) -> None:  # noqa: ANN001
    job = await make_job(engine)
    store = RedisTraceStore(engine, redis, chunk_size=8, hot=hot)
    await store.append(job, 0, b"abcdefghij")  # chunk 0 full, chunk 1 hot
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.text("SELECT chunk_index, data, crc32 FROM trace_chunks WHERE job_id = :j"), {"j": job})).all()
    assert [(r[0], bytes(r[1]), r[2]) for r in rows] == [(0, b"abcdefgh", zlib.crc32(b"abcdefgh"))]
    assert await redis.exists(keys.trace_chunk(job, 0)) == 0
    assert await redis.get(keys.trace_chunk(job, 1)) == b"ij"
    assert await store.read(job, 0, 100) == b"abcdefghij"


async def test_redis_losing_a_live_log_falls_back_to_the_durable_chunks_and_the_resend_completes_it(engine, redis, hot) -> None:  # noqa: ANN001
    job = await make_job(engine)
    store = RedisTraceStore(engine, redis, chunk_size=8, hot=hot)
    data = bytes(range(40))
    await _append_all(store, job, data, [5, 6, 9])  # 20 bytes: chunks 0 and 1 sealed, 4 hot bytes
    await redis.flushall()  # Redis restarted without persistence: the hot chunk is gone
    assert await store.size(job) == 16  # what PostgreSQL holds
    with pytest.raises(RangeMismatch) as mismatch:  # the runner's next PATCH, at its own offset
        await store.append(job, 20, data[20:30])
    assert mismatch.value.size == 16
    assert await _append_all(store, job, data, [14, 10], offset=16) == len(data)  # resent from its spool
    assert await store.read(job, 0, 100) == data
    assert await store.persist(job) == (len(data), zlib.crc32(data))


async def test_a_lost_hot_chunk_under_a_surviving_meta_is_detected_not_written_around(engine, redis, hot) -> None:  # noqa: ANN001
    job = await make_job(engine)
    store = RedisTraceStore(engine, redis, chunk_size=8, hot=hot)
    await store.append(job, 0, b"abcdefghijk")  # chunk 1 holds "ijk"
    await redis.delete(keys.trace_chunk(job, 1))  # evicted
    with pytest.raises(RangeMismatch) as mismatch:
        await store.append(job, 11, b"lmn")
    assert mismatch.value.size == 8  # back to the durable end; the runner resends "ijk" + "lmn"
    assert await store.append(job, 8, b"ijklmn") == 14
    assert await store.read(job, 0, 100) == b"abcdefghijklmn"


async def test_a_persisted_partial_chunk_survives_redis_loss(engine, redis, hot) -> None:  # noqa: ANN001
    job = await make_job(engine)
    store = RedisTraceStore(engine, redis, chunk_size=8, hot=hot)
    await store.append(job, 0, b"abcdefghij")
    await store.persist(job)  # the final update: "ij" is durable too
    await redis.flushall()
    assert await store.size(job) == 10
    assert await store.read(job, 0, 100) == b"abcdefghij"
    assert await store.append(job, 10, b"kl") == 12  # the restored tail chunk continues correctly
    assert await store.read(job, 0, 100) == b"abcdefghijkl"


async def test_a_new_logs_first_patch_is_not_restored_from_the_durable_chunks(engine, redis, hot) -> None:  # noqa: ANN001
    """Regression: every job's first PATCH logged ``trace_restored_from_durable ... size=0`` (its
    absent meta was taken for a lost one: a durable read and a restore script per job)."""
    from structlog.testing import capture_logs

    job = await make_job(engine)
    store = RedisTraceStore(engine, redis, chunk_size=8, hot=hot)
    reads = 0
    durable_read = store.durable.read

    async def counted(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        nonlocal reads
        reads += 1
        return await durable_read(*args, **kwargs)

    store.durable.read = counted  # type: ignore[method-assign]
    with capture_logs() as logs:
        assert await store.append(job, 0, b"abc") == 3
        assert await store.append(job, 3, b"defghijk") == 11  # seals chunk 0
        with pytest.raises(RangeMismatch) as mismatch:  # offset 0 again: the log has bytes
            await store.append(job, 0, b"xyz")
    assert mismatch.value.size == 11
    assert reads == 0
    assert [entry for entry in logs if entry["event"] == "trace_restored_from_durable"] == []
    assert await store.read(job, 0, 100) == b"abcdefghijk"
    assert await store.persist(job) == (11, zlib.crc32(b"abcdefghijk"))


async def test_persist_trusts_a_recorded_size_only_while_the_live_log_still_has_it(engine, redis, hot) -> None:  # noqa: ANN001
    """The archiver passes the (size, crc) the final update recorded: no second durable pass then,
    but bytes appended after that record are still made durable."""
    job = await make_job(engine)
    store = RedisTraceStore(engine, redis, chunk_size=8, hot=hot)
    lengths = 0
    durable_lengths = store.durable.lengths

    async def counted(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        nonlocal lengths
        lengths += 1
        return await durable_lengths(*args, **kwargs)

    store.durable.lengths = counted  # type: ignore[method-assign]
    await store.append(job, 0, b"abcdefghij")
    recorded = await store.persist(job)  # the final update
    assert recorded == (10, zlib.crc32(b"abcdefghij")) and lengths == 1
    assert await store.persist(job, recorded) == recorded and lengths == 1  # the archiver's: trusted
    await store.append(job, 10, b"klm")  # came after the record
    assert await store.persist(job, recorded) == (13, zlib.crc32(b"abcdefghijklm")) and lengths == 2
    async with engine.connect() as conn:
        assert await queries.traces.size(conn, job) == (13, zlib.crc32(b"abcdefghijklm"))
    assert await _durable_bytes(engine, store, job) == b"abcdefghijklm"


async def test_deleting_a_live_log_drops_its_redis_keys_without_scanning_the_keyspace(engine, redis, hot) -> None:  # noqa: ANN001
    """Issue 24: a finished log left Redis by a SCAN of every key (three per job in bench/routes);
    now one script from the meta's size. A log whose meta is gone is still found key by key."""
    job, other = await make_job(engine), await make_job(engine, "q")
    store = RedisTraceStore(engine, redis, chunk_size=8, hot=hot)
    await store.append(job, 0, b"abcdefghijklmnopqrs")  # chunks 0, 1 sealed; chunk 2 hot
    await store.append(other, 0, b"xyz")
    await redis.set(keys.trace_chunk(job, 0), b"abcdefgh")  # a full chunk whose drop after its seal was lost
    scans = int((await redis.info("commandstats")).get("cmdstat_scan", {}).get("calls", 0))
    await store.delete(job)
    assert [k for k in await redis.keys(f"*{{{job}}}*") if b"overflow" not in k] == []
    assert int((await redis.info("commandstats")).get("cmdstat_scan", {}).get("calls", 0)) == scans
    assert await store.read(other, 0, 100) == b"xyz"  # another job's log is untouched
    await redis.set(keys.trace_chunk(other, 5), b"stray")
    await redis.delete(keys.trace_meta(other))  # the meta gone: the strays are looked for
    await store.delete(other)
    assert await redis.keys(f"*{{{other}}}*") == []
