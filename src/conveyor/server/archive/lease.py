"""A Redis lease one server process holds while it archives a job's log.

Every server process sweeps, so without it two could archive one log at once (the loser used to
find the chunks deleted under it). The lease has a random token: it is renewed while the holder
works (an archive of a large log to a slow store can outlast any fixed TTL) and released only by
its holder. If the holder dies, the lease expires after ``ttl`` seconds and another process
takes over from scratch: nothing was deleted, and an object it left behind is verified or
overwritten.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator

from redis.asyncio import Redis

# compare-and-act: only the holder's token may extend or drop the lease
_RENEW = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('EXPIRE', KEYS[1], ARGV[2]) end return 0"
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


@contextlib.asynccontextmanager
async def hold(redis: Redis, key: str, ttl: int = 120) -> AsyncIterator[bool]:
    """Yields True while this process holds ``key`` (renewed every ttl/3 s), False if another does."""
    token = secrets.token_hex(16)
    if not await redis.set(key, token, nx=True, ex=ttl):
        yield False
        return
    renewer = asyncio.create_task(_renew(redis, key, token, ttl), name=f"lease-renew:{key}")
    try:
        yield True
    finally:
        renewer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewer
        await redis.eval(_RELEASE, 1, key, token)


async def _renew(redis: Redis, key: str, token: str, ttl: int) -> None:
    while True:
        await asyncio.sleep(ttl / 3)
        with contextlib.suppress(Exception):  # a Redis blip: the next renewal may still make it
            await redis.eval(_RENEW, 1, key, token, ttl)
