"""The server's Redis client waits for a free pooled connection instead of failing, and reconnects
the connections a Redis restart dropped (real Redis)."""

from __future__ import annotations

import asyncio

import pytest

from conveyor.server import app
from tests.plugins.services import start_redis

pytestmark = pytest.mark.integration


async def test_a_command_waits_for_a_busy_pool_instead_of_failing(server_settings) -> None:  # noqa: ANN001
    redis = app._redis(server_settings.with_overrides(redis_max_connections=1))
    try:
        held = asyncio.create_task(redis.blpop(["conveyor:test:nothing"], timeout=1))  # holds the only connection
        await asyncio.sleep(0.2)
        assert await redis.ping()  # redis-py's default pool raised MaxConnectionsError here
        assert await held is None
    finally:
        await redis.aclose()


async def test_pooled_connections_survive_a_redis_restart(server_settings) -> None:  # noqa: ANN001
    """Each connection Redis dropped used to fail its next command (ConnectionError, a 500 on a log
    PATCH after a Redis restart; seen in CI): now it reconnects and the command goes through."""
    private = start_redis()
    redis = app._redis(server_settings.with_overrides(redis_url=private.url))
    try:
        held = [await redis.connection_pool.get_connection() for _ in range(3)]  # three pooled connections
        for connection in held:
            await redis.connection_pool.release(connection)
        assert await redis.set("conveyor:test:restart", b"1")
        private.stop()
        private = start_redis(private.port)  # the same address, empty: every pooled connection is dead
        assert await asyncio.gather(*(redis.get("conveyor:test:restart") for _ in range(3))) == [None, None, None]
        assert await redis.set("conveyor:test:restart", b"2")
    finally:
        await redis.aclose()
        private.stop()
