"""The server's Redis client waits for a free pooled connection instead of failing (real Redis)."""

from __future__ import annotations

import asyncio

import pytest

from conveyor.server import app

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
