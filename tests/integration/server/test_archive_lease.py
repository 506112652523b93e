"""The archive lease: one holder at a time, renewed while held, released only by its holder."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from conveyor.server.archive import lease

pytestmark = pytest.mark.integration


async def test_one_holder_renewed_while_working_then_released(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    try:
        async with lease.hold(redis, "conveyor:test:lease", ttl=1) as first:
            assert first
            async with lease.hold(redis, "conveyor:test:lease", ttl=1) as second:
                assert not second  # another process would skip this job
            await asyncio.sleep(1.6)  # past the TTL: the holder's renewals keep it
            assert await redis.exists("conveyor:test:lease")
            async with lease.hold(redis, "conveyor:test:lease", ttl=1) as third:
                assert not third
        assert not await redis.exists("conveyor:test:lease")
    finally:
        await redis.aclose()


async def test_an_expired_holder_does_not_release_its_successor(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    try:
        async with lease.hold(redis, "conveyor:test:lease2", ttl=30) as held:
            assert held
            await redis.set("conveyor:test:lease2", "someone-else", ex=30)  # ours expired; another took it
        assert await redis.get("conveyor:test:lease2") == b"someone-else"
    finally:
        await redis.aclose()
