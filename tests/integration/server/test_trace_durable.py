"""Sealed chunks (``trace.durable``) on real PostgreSQL, Redis, object stores (filesystem and S3
on a local moto server) and segment files: chunks a PATCH carries whole never pass through Redis,
chunks outside the rows are recorded by row, a failing store falls back to rows, and deletion is
complete."""

from __future__ import annotations

import shutil
import zlib
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from redis.asyncio import Redis

from conveyor.server import keys
from conveyor.server.storage import ObjectStore, SegmentFiles, open_store
from conveyor.server.trace import RedisTraceStore
from conveyor.server.trace.durable import chunk_key
from tests.integration.server.test_object_store import make_store

from tests.integration.server.trace_support import engine, hot, make_job, redis  # noqa: F401 (fixtures)

pytestmark = pytest.mark.integration


@pytest.fixture
def objects(object_store: dict[str, Any], tmp_path: Path) -> ObjectStore:
    return make_store(object_store, tmp_path)


async def _rows(engine, job: int) -> list[tuple[int, bytes | None, int, int]]:  # noqa: ANN001
    async with engine.connect() as conn:
        result = await conn.execute(
            sa.text("SELECT chunk_index, data, data_size, crc32 FROM trace_chunks WHERE job_id = :j ORDER BY 1"), {"j": job}
        )
        return [(r[0], None if r[1] is None else bytes(r[1]), r[2], r[3]) for r in result]


async def _redis_appends(redis: Redis) -> int:
    stats = await redis.info("commandstats")
    return int(stats.get("cmdstat_append", {}).get("calls", 0))


async def test_chunks_a_patch_fills_whole_never_pass_through_redis(engine, redis, hot) -> None:  # noqa: ANN001
    job = await make_job(engine)
    store = RedisTraceStore(engine, redis, chunk_size=8, hot=hot)
    await redis.config_resetstat()
    assert await store.append(job, 0, b"A" * 24) == 24  # three whole chunks
    assert await _redis_appends(redis) == 0
    assert [key for key in await redis.keys(f"*{job}*") if b"chunk" in key] == []
    assert await store.append(job, 24, b"B" * 5) == 29  # a partial chunk: hot
    assert await store.append(job, 29, b"C" * 3 + b"D" * 8 + b"E" * 2) == 42
    # chunk 3 completed: its head read back from Redis and sealed with the PATCH's C's (which
    # never enter Redis), chunk 4 whole (never in Redis), chunk 5 hot
    assert await _redis_appends(redis) == 2  # B, then E
    data = b"A" * 24 + b"B" * 5 + b"C" * 3 + b"D" * 8 + b"E" * 2
    rows = await _rows(engine, job)
    assert rows == [(i, data[i * 8 : i * 8 + 8], 8, zlib.crc32(data[i * 8 : i * 8 + 8])) for i in range(5)]
    assert await redis.exists(keys.trace_chunk(job, 3)) == 0  # sealed, dropped from Redis
    assert await redis.get(keys.trace_chunk(job, 5)) == b"EE"
    assert await store.read(job, 0, 100) == data
    assert await store.persist(job) == (len(data), zlib.crc32(data))


async def test_object_store_chunks_are_rows_without_bytes_and_read_back(engine, redis, objects, hot) -> None:  # noqa: ANN001
    job = await make_job(engine)
    store = RedisTraceStore(engine, redis, chunk_size=8, objects=objects, hot=hot)
    data = bytes(range(30))
    await store.append(job, 0, data[:5])
    await store.append(job, 5, data[5:30])  # completes chunk 0, carries 1 and 2 whole, 6 bytes hot
    rows = await _rows(engine, job)
    assert rows == [(i, None, 8, zlib.crc32(data[i * 8 : i * 8 + 8])) for i in range(3)]
    for index, _, _, crc in rows:
        assert await objects.get_bytes(chunk_key(job, index, crc)) == data[index * 8 : index * 8 + 8]
    assert await store.read(job, 0, 100) == data
    assert await store.persist(job) == (30, zlib.crc32(data))  # the partial last chunk too
    assert (await _rows(engine, job))[-1][:3] == (3, None, 6)
    assert await store.durable.lengths(job) == {0: 8, 1: 8, 2: 8, 3: 6}
    await redis.flushall()  # Redis lost everything: the durable side alone answers
    assert await store.read(job, 0, 100) == data


async def test_deleting_a_log_removes_rows_and_chunk_objects_not_the_archive(engine, redis, objects, hot) -> None:  # noqa: ANN001
    job = await make_job(engine)
    store = RedisTraceStore(engine, redis, chunk_size=8, objects=objects, hot=hot)
    await store.append(job, 0, b"x" * 20)
    await store.persist(job)
    await objects.put_bytes(f"traces/{job}/job.log", b"x" * 20)  # what the archiver wrote
    await store.delete(job)
    assert await _rows(engine, job) == []
    assert await objects.delete_prefix(f"traces/{job}/chunks/") == 0
    assert await objects.get_bytes(f"traces/{job}/job.log") == b"x" * 20


async def test_a_missing_chunk_object_ends_a_read_there_like_a_gap(engine, redis, objects, hot) -> None:  # noqa: ANN001
    job = await make_job(engine)
    store = RedisTraceStore(engine, redis, chunk_size=8, objects=objects, hot=hot)
    await store.append(job, 0, b"a" * 8 + b"b" * 8 + b"c" * 8)
    await objects.delete_prefix(f"traces/{job}/chunks/")  # the archiver deleted them under a reader
    assert await store.durable.read(job, 0, 8) == []
    assert await store.read(job, 0, 100) == b""


async def _assert_sealed_into_rows(engine, store: RedisTraceStore) -> None:  # noqa: ANN001
    """Two whole chunks whose own store fails land in their rows, counted, and read back."""
    job = await make_job(engine)
    data = b"0123456789abcdefXYZ"
    assert await store.append(job, 0, data) == 19
    assert await _rows(engine, job) == [(0, data[:8], 8, zlib.crc32(data[:8])), (1, data[8:16], 8, zlib.crc32(data[8:16]))]
    assert store.durable.object_failures == 2
    assert await store.read(job, 0, 100) == data


async def test_a_failing_object_store_seals_into_the_rows_and_is_counted(engine, redis, tmp_path, hot) -> None:  # noqa: ANN001
    root = tmp_path / "objects"
    broken = open_store(root.as_uri(), tmp_path)
    (root / "traces").write_bytes(b"")  # a file where the store needs a directory: every put fails
    await _assert_sealed_into_rows(engine, RedisTraceStore(engine, redis, chunk_size=8, objects=broken, hot=hot))


async def _segment_rows(engine, job: int) -> list[tuple[int, bool, str | None, int | None, int]]:  # noqa: ANN001
    async with engine.connect() as conn:
        result = await conn.execute(sa.text(
            "SELECT chunk_index, data IS NULL, segment, segment_offset, data_size FROM trace_chunks WHERE job_id = :j ORDER BY 1"
        ), {"j": job})
        return [tuple(row) for row in result]


async def test_segment_chunks_are_rows_pointing_into_one_file_per_process(engine, redis, tmp_path, hot) -> None:  # noqa: ANN001
    job = await make_job(engine)
    segments = SegmentFiles(tmp_path / "segments")
    store = RedisTraceStore(engine, redis, chunk_size=8, segments=segments, hot=hot)
    data = bytes(range(45))
    await store.append(job, 0, data[:5])  # hot
    await store.append(job, 5, data[5:30])  # completes chunk 0, carries 1 and 2 whole, 6 bytes hot
    rows = await _segment_rows(engine, job)
    assert [row[:2] for row in rows] == [(0, True), (1, True), (2, True)]
    (name,) = {row[2] for row in rows}
    assert [row[3] for row in rows] == [0, 8, 16]  # appended in order, one write
    assert (tmp_path / "segments" / str(job) / name).read_bytes() == data[:24]
    other = RedisTraceStore(engine, redis, chunk_size=8, segments=SegmentFiles(tmp_path / "segments"), hot=hot)
    await other.append(job, 30, data[30:45])  # another process: its own file
    assert len({row[2] for row in await _segment_rows(engine, job)}) == 2
    assert await store.persist(job) == (45, zlib.crc32(data))
    await redis.flushall()  # Redis lost everything: the rows and files alone answer
    assert await store.read(job, 0, 100) == data
    assert await other.read(job, 0, 100) == data


async def test_deleting_a_log_removes_its_segment_files_of_every_process(engine, redis, tmp_path, hot) -> None:  # noqa: ANN001
    job, neighbour = await make_job(engine), await make_job(engine, "neighbour")
    stores = [RedisTraceStore(engine, redis, chunk_size=8, segments=SegmentFiles(tmp_path), hot=hot) for _ in range(2)]
    await stores[0].append(job, 0, b"a" * 16)
    await stores[1].append(job, 16, b"b" * 16)
    await stores[0].append(neighbour, 0, b"c" * 16)
    await stores[0].delete(job)
    assert await _segment_rows(engine, job) == []
    assert not (tmp_path / str(job)).exists()
    assert await stores[1].read(neighbour, 0, 100) == b"c" * 16
    await stores[0].append(job, 0, b"d" * 8)  # the same process writes the job again: a new file
    assert await stores[1].read(job, 0, 100) == b"d" * 8


async def test_a_deleted_segment_file_ends_a_read_there_like_a_gap(engine, redis, tmp_path, hot) -> None:  # noqa: ANN001
    job = await make_job(engine)
    store = RedisTraceStore(engine, redis, chunk_size=8, segments=SegmentFiles(tmp_path), hot=hot)
    await store.append(job, 0, b"a" * 8 + b"b" * 8 + b"c" * 8)
    shutil.rmtree(tmp_path / str(job))  # the archiver deleted them under a reader
    assert await store.durable.read(job, 0, 8) == []
    assert await store.read(job, 0, 100) == b""


async def test_a_failing_segment_file_seals_into_the_rows_and_is_counted(engine, redis, tmp_path, hot) -> None:  # noqa: ANN001
    segments = SegmentFiles(tmp_path / "segments")
    shutil.rmtree(tmp_path / "segments")
    (tmp_path / "segments").write_bytes(b"")  # a file where the directory should be: every append fails
    await _assert_sealed_into_rows(engine, RedisTraceStore(engine, redis, chunk_size=8, segments=segments, hot=hot))
