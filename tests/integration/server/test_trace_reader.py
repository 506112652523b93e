"""TraceReader on real PostgreSQL, Redis and a filesystem object store: live bytes are read
without asking whether the log is archived; once the live log is gone, the rest comes from the
archived object, from any offset."""

from __future__ import annotations

import socket

import pytest
from redis.asyncio import Redis

from conveyor.server.db import StatementObserver, create_engine, queries
from conveyor.server.storage import open_store
from conveyor.server.trace import RedisTraceStore, TraceReader
from conveyor.server.trace.reader import archive_key
from tests.integration.server.trace_support import make_job

pytestmark = pytest.mark.integration


@pytest.fixture
async def setup(database_url: str, redis_url: str, tmp_path):  # noqa: ANN001, ANN201
    observer = StatementObserver("raise")
    statements: list[str] = []
    observer.add_listener(lambda statement, _params: statements.append(statement))
    engine = create_engine(database_url, observer, pool_size=5)
    redis = Redis.from_url(redis_url)
    store = RedisTraceStore(engine, redis, chunk_size=4096)
    objects = open_store(None, tmp_path / "objects")
    yield engine, store, TraceReader(engine, store, objects), objects, statements
    await store.aclose()
    await redis.aclose()
    await engine.dispose()


async def test_a_live_log_costs_two_archive_checks_whatever_its_size(setup) -> None:  # noqa: ANN001
    engine, store, reader, _, statements = setup
    job = await make_job(engine)
    data = bytes(range(256)) * 4096  # 1 MiB: four reads of the live log
    await store.append(job, 0, data)
    statements.clear()
    assert await reader.read_all(job, 5) == data[5:]
    assert sum("trace_archived" in s for s in statements) == 2  # at the start and where the live log ended


async def test_an_archived_log_is_read_without_the_live_store(database_url: str, tmp_path) -> None:  # noqa: ANN001
    """Regression: reading the live store first made an archived log's download fail while Redis
    was unreachable (a Redis restart had closed the server's pooled connection)."""
    engine = create_engine(database_url, StatementObserver("raise"), pool_size=2)
    dead_redis = Redis(host="127.0.0.1", port=_closed_port(), socket_connect_timeout=1)
    objects = open_store(None, tmp_path / "objects")
    try:
        job = await make_job(engine)
        await objects.put_bytes(archive_key(job), b"archived\n")
        async with engine.begin() as conn:
            await queries.jobs.mark_archived(conn, job)
        reader = TraceReader(engine, RedisTraceStore(engine, dead_redis, chunk_size=8), objects)
        assert await reader.read_all(job, 0) == b"archived\n"
    finally:
        await dead_redis.aclose()
        await engine.dispose()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_an_archived_log_is_read_from_its_object_at_any_offset(setup) -> None:  # noqa: ANN001
    engine, store, reader, objects, _ = setup
    job = await make_job(engine)
    data = b"line\n" * 100
    await store.append(job, 0, data)
    await store.persist(job)
    await objects.put_bytes(archive_key(job), data)  # what the archiver does, in its order:
    async with engine.begin() as conn:  # the flag and the chunks' deletion in one transaction
        await queries.jobs.mark_archived(conn, job)
        await queries.traces.delete(conn, job)
    await store.delete(job)
    for start in (0, 7, 499, 500):
        assert await reader.read_all(job, start) == data[start:]
